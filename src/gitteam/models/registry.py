"""Model specs to Model objects. Providers are imported only when a spec names them, so
`gitteam --help` never imports an SDK."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gitteam.config import Config, ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import CallContext, Message, Model, Reply, ToolSpec
from gitteam.models.catalog import default_spec
from gitteam.modelspec import COMMAND, ROLES, is_command, parse_spec

# provider name -> "module:factory"; a factory takes (spec, ModelDef, Registry) and returns a Model.
PROVIDERS = {
    "anthropic": "gitteam.models.anthropic:create",
    "openai": "gitteam.models.openai:create",
}

NO_MODEL_HINT = (
    "no model configured for the {role}: set ANTHROPIC_API_KEY or OPENAI_API_KEY, pass --model PROVIDER:MODEL, "
    "or configure [roles] in .gitteam.toml (gitteam init writes one); gitteam demo runs offline"
)


class Registry:
    """Resolves specs once per run and shares the instances (a replay script keeps one cursor per agent)."""

    def __init__(self, config: Config, base_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.base_dir = base_dir
        self.environ = os.environ if environ is None else environ
        self._models: dict[str, Model] = {}
        self._lock = threading.RLock()  # fallbacks resolve from agent threads; one instance per spec

    def spec_for(self, role: str, economy: bool = False) -> str:
        """The effective spec of a role: configured, else the built-in default for the key that is set."""
        return self.config.role_spec(role, economy=economy) or default_spec(role, economy, self.environ)

    def specs(self) -> dict[str, dict[str, str]]:
        """Every role's spec and its economy spec, as the run announces them."""
        return {"models": {role: self.spec_for(role) for role in ROLES},
                "economy": {role: self.spec_for(role, economy=True) for role in ROLES}}

    def for_role(self, role: str, economy: bool = False) -> Model:
        spec = self.spec_for(role, economy=economy)
        if economy and is_command(spec):  # a command cannot take over a model's conversation
            spec = self.spec_for(role)
        if not spec:
            raise UsageError(NO_MODEL_HINT.format(role=role))
        if is_command(spec):
            raise UsageError(f"the {role} is the agent command {spec!r}: it runs as a coder, not as a model")
        return self.resolve(spec)

    def check_roles(self, economy: bool = False, roles: Sequence[str] = ROLES) -> None:
        """Resolve every role's model (and economy model, when a budget can call for it) before any work:
        a missing key, an unknown model or agent command is a usage error now, not after money is spent."""
        for role in roles:
            for economy_model in (False, True) if economy else (False,):
                spec = self.spec_for(role, economy=economy_model)
                if is_command(spec):
                    check_command(spec)
                else:
                    self.for_role(role, economy=economy_model)

    def role_model(self, role: str, economy: Callable[[], bool]) -> RoleModel:
        return RoleModel(self, role, economy)

    def resolve(self, spec: str) -> Model:
        with self._lock:
            if spec not in self._models:
                self._models[spec] = self._create(spec)
            return self._models[spec]

    def _create(self, spec: str) -> Model:
        parsed = parse_spec(spec)
        if not parsed.rest:  # a [models.NAME]; "PROVIDER:" with nothing after it is looked up as a name too
            definition = self.config.models.get(spec)
            if definition is None:
                known = ", ".join(sorted(self.config.models)) or "none defined"
                raise UsageError(f"unknown model {spec!r}: use PROVIDER:MODEL or a [models.NAME] ({known})")
            return self._from_definition(spec, definition)
        if parsed.provider == "replay":
            from gitteam.models.replay import ReplayModel, find_script

            return ReplayModel(spec, find_script(parsed.rest, self.base_dir))
        if parsed.is_command:
            raise UsageError(f"{spec}: command: specs run an external agent and serve only as --coder")
        definition = ModelDef(name=spec, provider=parsed.provider, model=parsed.rest)
        return self._from_definition(spec, definition)

    def _from_definition(self, spec: str, definition: ModelDef) -> Model:
        if definition.provider == "replay":
            from gitteam.models.replay import ReplayModel, find_script

            return ReplayModel(spec, find_script(definition.model, self.base_dir))
        target = PROVIDERS.get(definition.provider)
        if target is None:
            raise UsageError(f"unknown provider {definition.provider!r} in {spec!r}: use anthropic, openai or replay")
        module_name, _, factory = target.partition(":")
        module = importlib.import_module(module_name)
        model: Model = getattr(module, factory)(spec, definition, self)
        return model


def check_command(spec: str) -> list[str]:
    """The argv of a `command:` spec; a usage error when it is empty or its program is not installed."""
    try:
        argv = shlex.split(spec.removeprefix(COMMAND))
    except ValueError as exc:
        raise UsageError(f"{spec}: cannot split the command line: {exc} (check its quotes)") from None
    if not argv:
        raise UsageError(f"{spec}: no command after 'command:'")
    if shutil.which(argv[0]) is None:
        raise UsageError(f"{spec}: {argv[0]} is not installed or not on PATH (docs/models.md shows command lines)")
    return argv


class RoleModel:
    """The model serving a role in a run: its economy model once the run's meter says so, from the next
    call on (mid-conversation, like a fallback). Agents hold this, never a fixed model."""

    def __init__(self, registry: Registry, role: str, economy: Callable[[], bool]) -> None:
        self.registry = registry
        self.role = role
        self.economy = economy

    def current(self) -> Model:
        return self.registry.for_role(self.role, economy=self.economy())

    @property
    def name(self) -> str:
        return self.current().name

    @property
    def context_tokens(self) -> int | None:
        return getattr(self.current(), "context_tokens", None)

    @property
    def max_output_tokens(self) -> int:
        return int(getattr(self.current(), "max_output_tokens", 0) or 0)

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        return self.current().complete(system, messages, tools, require_tool=require_tool, context=context)

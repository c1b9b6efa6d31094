"""Model specs to Model objects. Providers are imported only when a spec names them, so
`gitteam --help` never imports an SDK."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from gitteam.config import Config, ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import Model

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

    def __init__(self, config: Config, base_dir: Path) -> None:
        self.config = config
        self.base_dir = base_dir
        self._models: dict[str, Model] = {}
        self._lock = threading.RLock()  # fallbacks resolve from agent threads; one instance per spec

    def for_role(self, role: str, economy: bool = False) -> Model:
        spec = self.config.role_spec(role, economy=economy)
        if not spec:
            raise UsageError(NO_MODEL_HINT.format(role=role))
        return self.resolve(spec)

    def resolve(self, spec: str) -> Model:
        with self._lock:
            if spec not in self._models:
                self._models[spec] = self._create(spec)
            return self._models[spec]

    def _create(self, spec: str) -> Model:
        provider, _, rest = spec.partition(":")
        if not rest:
            definition = self.config.models.get(spec)
            if definition is None:
                known = ", ".join(sorted(self.config.models)) or "none defined"
                raise UsageError(f"unknown model {spec!r}: use PROVIDER:MODEL or a [models.NAME] ({known})")
            return self._from_definition(spec, definition)
        if provider == "replay":
            from gitteam.models.replay import ReplayModel, find_script

            return ReplayModel(spec, find_script(rest, self.base_dir))
        if provider == "command":
            raise UsageError(f"{spec}: command: specs run an external agent and serve only as --coder")
        definition = ModelDef(name=spec, provider=provider, model=rest)
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

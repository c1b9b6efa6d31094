"""`.gitteam.toml`: the typed schema, the layers and the one validation.

Layers, lowest first: built-in defaults, the user config (`$XDG_CONFIG_HOME/gitteam/config.toml`),
`<repo>/.gitteam.toml`, the environment (`GITTEAM_*`), then flags (dotted-key overrides). Every value
remembers where it came from, so each error names the key and the file (or variable) that set it.
The repository's file may not set what RESTRICTED lists: such settings are left out and reported.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from gitteam.commandline import entry_problem, splits
from gitteam.errors import ConfigError, UsageError
from gitteam.modelspec import FORMS, OLLAMA_HINT, PROVIDERS, ROLES, is_command, parse_spec
from gitteam.secrets import READABLE_SECRET_FILES, SECRET_FILES, SecretFiles

REPO_CONFIG = ".gitteam.toml"
EXAMPLE_RESOURCE = "data/gitteam.example.toml"

DEFAULTS = "built-in default"
COMMAND_LINE = "command line"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Settings that weaken containment or send credentials somewhere. They count only from the user config,
# the environment and flags: a repository's .gitteam.toml is written by whoever controls the repository
# (a pull request, a cloned project, gitteam's own agents), so when it sets one, the setting is left out,
# listed in Config.ignored and reported, and the rest of the file still applies. Dotted keys; "*" is any
# name, and "SECTION.*" also covers a SECTION that is not a table.
RESTRICTED: tuple[str, ...] = (
    "sandbox.*",  # containment itself: mode, network, paths contained commands may reach, HOME files
    "protect.*",  # the files no plan may hand to an agent
    "worktrees.*",  # where agents' worktrees live (reserved for the [worktrees] section to come)
    "commands.allowed",  # what the coders' run tool may execute
    "commands.pass_env",  # variables (credentials, often) that commands receive
    "commands.agent_env",  # variables that command: coders receive
    "run.setup",  # a command run in every new worktree
    "secrets.*",  # which files agents may not read: a repository must not open its own `.env` to them
    "models.*.base_url",  # where a model's requests, and its API key, are sent
    "models.*.api_key_env",  # which variable's secret is sent as the API key
)
_RESTRICTED_SECTIONS = frozenset(pattern[:-2] for pattern in RESTRICTED if pattern.endswith(".*"))


def is_restricted(key: str) -> bool:
    """Whether a dotted key is one only the user config, the environment and flags may set (RESTRICTED)."""
    return key in _RESTRICTED_SECTIONS or any(fnmatchcase(key, pattern) for pattern in RESTRICTED)


@dataclass(frozen=True)
class _Rule:
    desc: str  # the whole expectation, type included: "an integer >= 1"
    ok: Callable[[Any], bool]  # called with a value already of the field's type
    hint: str = ""


def _rule(desc: str, ok: Callable[[Any], bool], hint: str = "") -> dict[str, _Rule]:
    return {"rule": _Rule(desc, ok, hint)}


def _all_argv(lines: tuple[str, ...]) -> bool:
    return all(entry_problem(line) is None for line in lines)


def _is_env_name(name: str) -> bool:
    return _ENV_NAME.match(name) is not None


_COMMAND_LINE = _rule("a command line with balanced quotes (no shell)", splits)


@dataclass(frozen=True)
class RolesConfig:
    """[roles]: the model spec of each role ("" = not set here)."""

    planner: str = ""
    """Splits the task into file-disjoint subtasks."""
    coder: str = ""
    """Writes one subtask's change in its worktree; the only role that may be a `command:` spec."""
    reviewer: str = ""
    """Reviews each subtask's diff and the integrated result."""
    economy_planner: str = ""
    """Cheaper planner used once spending passes run.economy_at of the budget ("" = keep the planner)."""
    economy_coder: str = ""
    """Cheaper coder used near the budget ("" = keep the coder)."""
    economy_reviewer: str = ""
    """Cheaper reviewer used near the budget ("" = keep the reviewer)."""


_PRICE = _rule("a number >= 0 (USD per million tokens)", lambda v: v >= 0)
_TOKENS = _rule("an integer >= 1", lambda v: v >= 1)


@dataclass(frozen=True)
class ModelDef:
    """[models.NAME]: a named model that role specs and fallbacks refer to by NAME."""

    name: str
    """The NAME of the table; never contains ':' (it would read as a spec)."""
    provider: str = field(
        metadata=_rule('one of "anthropic", "openai", "replay"', PROVIDERS.__contains__, OLLAMA_HINT)
    )
    """Which client talks to it."""
    model: str = field(metadata=_rule("a non-empty string", lambda v: bool(v.strip())))
    """The provider's model id (for replay: the script's path)."""
    base_url: str | None = None
    """Endpoint of the API; None = the SDK's default (or ANTHROPIC_BASE_URL / OPENAI_BASE_URL)."""
    api_key_env: str | None = field(
        default=None, metadata=_rule("an environment variable name", _is_env_name)
    )
    """Variable holding the API key; None = the SDK's default variable (or no key, for local servers)."""
    input_price: float | None = field(default=None, metadata=_PRICE)
    """USD per million input tokens; None = gitteam's built-in price table, if it knows the model."""
    output_price: float | None = field(default=None, metadata=_PRICE)
    """USD per million output tokens."""
    cache_read_price: float | None = field(default=None, metadata=_PRICE)
    """USD per million input tokens read from the prompt cache."""
    cache_write_price: float | None = field(default=None, metadata=_PRICE)
    """USD per million input tokens written to the prompt cache."""
    fallbacks: tuple[str, ...] = ()
    """Names or specs tried in order when this model keeps failing."""
    context_tokens: int | None = field(default=None, metadata=_TOKENS)
    """Context window in tokens; None = the provider's known value or a safe guess."""
    max_output_tokens: int | None = field(default=None, metadata=_TOKENS)
    """Largest reply asked for, in tokens."""
    timeout: float | None = field(default=None, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Seconds one request may take before it is retried; None = 600 (a slow local model needs long)."""


@dataclass(frozen=True)
class RunConfig:
    """[run]: how one run proceeds."""

    max_agents: int = field(default=4, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Coder agents working at the same time."""
    target: str = ""
    """Branch fast-forwarded at the end ("" = the current branch)."""
    budget: float | None = field(default=None, metadata=_rule("a number > 0 (USD)", lambda v: v > 0))
    """Money one run may spend, in USD; None = no limit."""
    max_rounds: int = field(default=2, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Review rounds per subtask before its changes are refused."""
    keep_worktrees: bool = False
    """Keep worktrees after a run ends (branches are always kept)."""
    setup: str = field(default="", metadata=_COMMAND_LINE)
    """Command line run (without a shell) in each new worktree before its coder starts."""
    setup_timeout: float = field(default=600.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Seconds the setup command may take."""
    economy_at: float = field(default=0.8, metadata=_rule("a number > 0 and <= 1", lambda v: 0 < v <= 1))
    """Fraction of the budget (money or tokens) after which roles switch to their economy models."""
    max_tokens: int | None = field(default=None, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Tokens the whole run may use; None = no limit."""
    max_seconds: float | None = field(default=None, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Wall time one run (or one resume of it) may take; None = no limit."""


@dataclass(frozen=True)
class LimitsConfig:
    """[limits]: what one agent may use."""

    max_steps: int = field(default=40, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Model calls per agent."""
    max_tokens: int = field(default=400_000, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Tokens (input + output) per agent."""
    plan_attempts: int = field(default=3, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Planner attempts before an invalid plan fails the run."""
    reminders: int = field(default=2, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Nudges sent when a model answers without calling a tool."""
    agent_budget: float | None = field(default=None, metadata=_rule("a number > 0 (USD)", lambda v: v > 0))
    """Money one agent may spend, in USD; None = only the run's budget."""
    max_seconds: float = field(default=3600.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Wall time one agent may take, a command: coder included."""
    search_seconds: float = field(default=5.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Wall time one `search` tool call may take; past it the search stops and says so."""


@dataclass(frozen=True)
class CommandsConfig:
    """[commands]: what the coder's `run` tool and the checks may execute."""

    test: str = field(default="", metadata=_COMMAND_LINE)
    """The project's test command ("" = none)."""
    allowed: tuple[str, ...] = field(
        default=(), metadata=_rule(
            "a list of non-empty command lines with balanced quotes, each starting with its program", _all_argv,
            'a last word "..." allows more arguments, and only there: ["pytest -q ...", "ruff check ..."]'),
    )
    """Command lines the coder's `run` tool may execute, matched word by word (globs; a last `...` allows
    more arguments); empty = the test command followed by any arguments."""
    timeout: float = field(default=300.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Seconds one command may take."""
    max_output: int = field(default=20_000, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Characters of a command's output shown to the model."""
    pass_env: tuple[str, ...] = field(
        default=(),
        metadata=_rule("a list of environment variable names", lambda v: all(map(_is_env_name, v))),
    )
    """Environment variables passed to commands besides a safe base."""
    agent_env: tuple[str, ...] = field(
        default=(),
        metadata=_rule("a list of environment variable names", lambda v: all(map(_is_env_name, v))),
    )
    """Environment variables a command: coder receives besides the safe base (its API key, its config)."""


SANDBOX_MODES = ("bwrap", "none")
NETWORK_MODES = ("none", "host")
_NETWORK = _rule('"none" or "host"', NETWORK_MODES.__contains__)
_PATHS = _rule("a list of non-empty paths", lambda v: all(p.strip() for p in v))


@dataclass(frozen=True)
class SandboxConfig:
    """[sandbox]: how commands that execute agent or repository code are contained (user config only)."""

    mode: str = field(default="bwrap", metadata=_rule('"bwrap" or "none"', SANDBOX_MODES.__contains__))
    """"bwrap": every such command runs in bubblewrap; "none": uncontained, said at the top of every run."""
    network: str = field(default="none", metadata=_NETWORK)
    """Network of the `run` tool's and the test command's processes: "none", or "host" (the host's network)."""
    setup_network: str = field(default="none", metadata=_NETWORK)
    """Network of the setup command (`npm ci` needs "host")."""
    agent_network: str = field(default="none", metadata=_NETWORK)
    """Network of `command:` coders (they need "host" to reach their model API)."""
    read_only: tuple[str, ...] = field(default=(), metadata=_PATHS)
    """More paths contained commands may read (a toolchain outside the system directories); `~` is HOME."""
    read_write: tuple[str, ...] = field(default=(), metadata=_PATHS)
    """Paths contained commands may write besides the worktree (a shared cache); `~` is HOME."""
    home_files: tuple[str, ...] = field(default=(), metadata=_PATHS)
    """Files or directories of your HOME copied into a `command:` coder's private HOME (its login)."""
    home_write_back: bool = False
    """Copy `home_files` back to your HOME after a `command:` coder ran (a refreshed login token)."""


PROTECTED_PATHS = (
    ".gitteam.toml", ".worktreeinclude", ".gitattributes", "**/.gitattributes", ".gitmodules", ".github/",
    ".gitlab-ci.yml", ".gitlab/", ".circleci/", ".buildkite/", "azure-pipelines.yml", ".travis.yml",
    "Jenkinsfile", ".pre-commit-config.yaml", ".pre-commit-hooks.yaml", ".husky/", "lefthook.yml",
    ".lefthook.yml", ".envrc", ".vscode/", ".idea/", ".devcontainer/", ".editorconfig",
)


@dataclass(frozen=True)
class ProtectConfig:
    """[protect]: files no plan may give an agent unless you allow it (user config only)."""

    paths: tuple[str, ...] = field(default=PROTECTED_PATHS, metadata=_PATHS)
    """Protected paths: a file, a directory ending in "/", or a glob ("**/.gitattributes")."""
    allow: tuple[str, ...] = field(default=(), metadata=_PATHS)
    """Protected paths plans may assign anyway (`gitteam run --allow-protected PATH` for one run)."""


@dataclass(frozen=True)
class SecretsConfig:
    """[secrets]: files whose content no agent may read (user config only)."""

    files: tuple[str, ...] = field(default=SECRET_FILES, metadata=_PATHS)
    """Secret files: a file name ("*.pem"), a path glob ("config/**/*.key"), or a directory ending in "/"."""
    allow_read: tuple[str, ...] = field(default=READABLE_SECRET_FILES, metadata=_PATHS)
    """Of those, the ones agents may read all the same (templates that document the variables)."""


@dataclass(frozen=True)
class PlannerConfig:
    """[planner]: what the planner starts from."""

    overview_tokens: int = field(default=6000, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Token budget of the repository overview in the planner's first prompt."""


_REVIEWER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class ReviewerDef:
    """[[review.reviewers]]: one reviewer agent of the merge gate, with its own focus and model."""

    name: str = field(metadata=_rule(
        "a name of letters, digits, '-' and '_'", lambda v: _REVIEWER_NAME.match(v) is not None))
    """Shown with its findings (source "reviewer:NAME") and in CI output; unique."""
    focus: str = ""
    """What this reviewer looks at, added to its instructions ("" = a general review)."""
    model: str = ""
    """Model spec or [models.NAME] ("" = roles.reviewer)."""


@dataclass(frozen=True)
class ReviewConfig:
    """[review]: the merge gate, in runs and in `gitteam review`."""

    chunk_tokens: int = field(default=24_000, metadata=_rule("an integer >= 500", lambda v: v >= 500))
    """Largest piece of a diff one reviewer call reads, in tokens; bigger diffs are split by file, then hunk."""
    integration: bool = True
    """After a run's subtasks merge: review the combined diff and run the test command on the integrated tree."""
    max_file_bytes: int = field(default=1_000_000, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """A changed file larger than this (in bytes) is a finding; so is any binary file."""
    conventions: tuple[str, ...] = field(
        default=("AGENTS.md", "CONTRIBUTING.md", "CONVENTIONS.md"),
        metadata=_rule("a list of non-empty paths", lambda v: all(p.strip() for p in v)),
    )
    """Files of the repository's own rules given to reviewers, read from the base commit, never the branch."""
    reviewers: tuple[ReviewerDef, ...] = ()
    """The reviewers, as [[review.reviewers]] tables; empty = one general reviewer on roles.reviewer."""


SECTIONS: dict[str, type] = {
    "roles": RolesConfig,
    "run": RunConfig,
    "limits": LimitsConfig,
    "commands": CommandsConfig,
    "planner": PlannerConfig,
    "review": ReviewConfig,
    "sandbox": SandboxConfig,
    "protect": ProtectConfig,
    "secrets": SecretsConfig,
}


@dataclass(frozen=True)
class Config:
    """The whole configuration, validated; build it with `load_config`."""

    roles: RolesConfig = RolesConfig()
    models: Mapping[str, ModelDef] = field(default_factory=dict)
    run: RunConfig = RunConfig()
    limits: LimitsConfig = LimitsConfig()
    commands: CommandsConfig = CommandsConfig()
    planner: PlannerConfig = PlannerConfig()
    review: ReviewConfig = ReviewConfig()
    sandbox: SandboxConfig = SandboxConfig()
    protect: ProtectConfig = ProtectConfig()
    secrets: SecretsConfig = SecretsConfig()
    sources: tuple[str, ...] = ()
    """Config files that contributed, lowest layer first, as shown in messages."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Dotted key ("run.budget", "models.NAME") -> the file, variable or "command line" that set it."""
    ignored: tuple[str, ...] = ()
    """Dotted keys ("sandbox.mode", "models.NAME.base_url") the repository's file set but may not (RESTRICTED)."""
    ignored_in: str = ""
    """The file those keys were ignored in, as shown in messages ("" = none ignored)."""

    def role_spec(self, role: str, economy: bool = False) -> str:
        """The spec for "planner", "coder" or "reviewer" ("" = unset); economy: its economy model if set."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        spec: str = getattr(self.roles, role)
        return (getattr(self.roles, f"economy_{role}") or spec) if economy else spec

    def allowed_commands(self) -> tuple[str, ...]:
        """Allow-list entries of the coder's `run` tool: allowed, else the test command with any further
        arguments (a test file, `-k name`), else none."""
        if self.commands.allowed:
            return self.commands.allowed
        return (f"{self.commands.test} ...",) if self.commands.test else ()

    def origin(self, key: str) -> str:
        """Where a dotted key's value came from, for messages."""
        return self.origins.get(key, DEFAULTS)

    def secret_files(self) -> SecretFiles:
        """The files the agents' read tools refuse ([secrets])."""
        return SecretFiles(self.secrets.files, self.secrets.allow_read)


# --- layers -------------------------------------------------------------------------------------------

_REVIEWERS_KEY = "review.reviewers"  # an array of tables, read like [models.NAME]: whole, from one layer
_KNOWN_KEYS = {f"{name}.{f.name}": cls for name, cls in SECTIONS.items() for f in fields(cls)
               if f"{name}.{f.name}" != _REVIEWERS_KEY}
_REVIEWER_KEYS = [f.name for f in fields(ReviewerDef)]
_MODEL_KEYS = [f.name for f in fields(ModelDef) if f.name != "name"]
_ROLE_KEYS = tuple(f"roles.{role}" for role in ROLES)
# Order matters: GITTEAM_MODEL first, so a variable for one role wins over it.
_ENV_KEYS: dict[str, tuple[str, ...]] = {
    "GITTEAM_MODEL": _ROLE_KEYS,
    "GITTEAM_PLANNER": ("roles.planner",),
    "GITTEAM_CODER": ("roles.coder",),
    "GITTEAM_REVIEWER": ("roles.reviewer",),
    "GITTEAM_MAX_AGENTS": ("run.max_agents",),
    "GITTEAM_BUDGET": ("run.budget",),
    "GITTEAM_TARGET": ("run.target",),
    "GITTEAM_TEST_COMMAND": ("commands.test",),
    "GITTEAM_SANDBOX": ("sandbox.mode",),
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass
class _Model:
    """A [models.NAME] table as one layer defined it."""

    table: dict[str, object]
    source: str
    kept: dict[str, str] = field(default_factory=dict)
    """Keys of the table carried over from a lower layer's definition -> the source that set them."""


@dataclass
class _Layers:
    """Raw values merged so far, each with the source that set it."""

    values: dict[str, tuple[object, str]] = field(default_factory=dict)
    models: dict[str, _Model] = field(default_factory=dict)
    reviewers: tuple[object, str] | None = None
    sources: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    ignored_in: str = ""


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/gitteam/config.toml`, or `~/.config/gitteam/config.toml`."""
    environ = os.environ if env is None else env
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "gitteam" / "config.toml"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".config" / "gitteam" / "config.toml"


def load_config(
    repo_root: Path | None,
    overrides: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read every layer, validate once, and return the configuration (ConfigError on any problem)."""
    environ = os.environ if env is None else env
    layers = _Layers()
    _add_file(layers, user_config_path(environ), trusted=True)
    if repo_root is not None:
        _add_file(layers, repo_root / REPO_CONFIG, trusted=False)
    _add_env(layers, environ)
    _add_overrides(layers, overrides or {})
    return _build(layers)


def ignored_warning(config: Config, env: Mapping[str, str] | None = None) -> str | None:
    """One line naming the repository's settings that were ignored and where they may go; None if none were."""
    if not config.ignored:
        return None
    return (f"{config.ignored_in} sets {', '.join(config.ignored)}: settings that weaken containment count only "
            f"from your user config ({_shown(user_config_path(env))}), the environment or flags; ignored")


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the current directory or home when under them."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except (ValueError, OSError):
        pass
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def _add_file(layers: _Layers, path: Path, trusted: bool) -> None:
    """Add a config file; an untrusted one (the repository's) without the RESTRICTED settings."""
    shown = _shown(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the config file: {exc.strerror or exc}") from exc
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(shown, exc)) from exc
    layers.sources.append(shown)
    if not trusted:
        table, ignored = _without_restricted(table)
        if ignored:
            layers.ignored, layers.ignored_in = ignored, shown
    _add_table(layers, table, shown, trusted)


def _without_restricted(table: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """The parsed file without its restricted keys, and those keys, dotted, in file order.

    This runs before validation: a restricted value never counts, so a bad one must not fail the load either.
    """
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in table.items():
        key = prefix + name
        if is_restricted(key) or _runs_an_agent_cli(key, value):
            whole = key in _RESTRICTED_SECTIONS and isinstance(value, dict)
            ignored.extend([f"{key}.{sub}" for sub in value] if whole else [key])
        elif isinstance(value, dict):
            kept[name], below = _without_restricted(value, key + ".")
            ignored.extend(below)
        else:
            kept[name] = value
    return kept, ignored


def _runs_an_agent_cli(key: str, value: object) -> bool:
    """A `command:` coder receives the variables `commands.agent_env` names (the user's API keys): which
    program gets them is the user's choice, never the repository's."""
    return key in ("roles.coder", "roles.economy_coder") and isinstance(value, str) and \
        is_command(value.strip())


def _toml_error(shown: str, exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    where = re.search(r" \(at line (\d+), column (\d+)\)$", text)
    if where is None:
        return f"{shown}: invalid TOML: {text}"
    return f"{shown}:{where[1]}: invalid TOML: {text[: where.start()]} (column {where[2]})"


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _add_table(layers: _Layers, table: dict[str, Any], source: str, trusted: bool) -> None:
    for section, body in table.items():
        if section == "models":
            _add_models(layers, body, source, trusted)
        elif section not in SECTIONS:
            raise ConfigError(f"{source}: {_unknown_top_level(section, body)}")
        elif not isinstance(body, dict):
            raise ConfigError(f"{source}: {section} must be a table [{section}] (got {_show(body)})")
        else:
            for key, value in body.items():
                if f"{section}.{key}" == _REVIEWERS_KEY:
                    layers.reviewers = (value, source)
                else:
                    layers.values[_known(f"{section}.{key}", source)] = (value, source)


def _unknown_top_level(name: str, body: object) -> str:
    if isinstance(body, dict):
        close = difflib.get_close_matches(name, [*SECTIONS, "models"], n=1)
        return f"unknown section [{name}]" + (f" (did you mean [{close[0]}]?)" if close else "")
    tails = {key.partition(".")[2]: key for key in _KNOWN_KEYS}
    close = difflib.get_close_matches(name, list(tails), n=1)
    return f"unknown key {name}" + (
        f" (did you mean {tails[close[0]]}?)" if close else " (settings go in a section such as [run])"
    )


def _known(key: str, source: str) -> str:
    if key not in _KNOWN_KEYS:
        raise ConfigError(f"{source}: unknown key {key}{_suggest(key, list(_KNOWN_KEYS))}")
    return key


def _add_models(layers: _Layers, body: object, source: str, trusted: bool) -> None:
    if not isinstance(body, dict):
        raise ConfigError(f"{source}: models must hold [models.NAME] tables (got {_show(body)})")
    for name, table in body.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: models.{name} must be a table [models.{name}] (got {_show(table)})")
        for key in table:
            if key not in _MODEL_KEYS:
                raise ConfigError(f"{source}: unknown key models.{name}.{key}{_suggest(key, _MODEL_KEYS)}")
        # A model is defined whole by one layer: mixing keys of two definitions would pair a base_url
        # with the wrong provider. Except where a layer may not set a key (the repository's base_url,
        # api_key_env): the lower definition's value stays, so the repository cannot send the user's
        # named model, or the key it reads, elsewhere.
        model = _Model(dict(table), source)
        below = layers.models.get(name)
        if not trusted and below is not None:
            for key, value in below.table.items():
                if is_restricted(f"models.{name}.{key}"):
                    model.table[key] = value
                    model.kept[key] = below.kept.get(key, below.source)
        layers.models[name] = model


def _add_env(layers: _Layers, environ: Mapping[str, str]) -> None:
    for variable, keys in _ENV_KEYS.items():
        text = environ.get(variable, "")
        if text.strip():
            for key in keys:
                layers.values[key] = (_from_text(text, key), variable)


def _add_overrides(layers: _Layers, overrides: Mapping[str, object]) -> None:
    # "roles.*" (--model) first, so a flag for one role (--coder) wins over it.
    for key, value in sorted(overrides.items(), key=lambda item: item[0] != "roles.*"):
        if value is None:
            continue
        for each in _ROLE_KEYS if key == "roles.*" else (_known(key, COMMAND_LINE),):
            layers.values[each] = (_from_text(value, each) if isinstance(value, str) else value, COMMAND_LINE)


def _from_text(text: str, key: str) -> object:
    """The string as the key's type; left as is when it will not convert, for validation to report."""
    base = _base_type(_hints(_KNOWN_KEYS[key])[key.partition(".")[2]])
    word = text.strip().lower()
    if base is bool:
        return True if word in _TRUE else False if word in _FALSE else text
    try:
        return int(word) if base is int else float(word) if base is float else text.strip()
    except ValueError:
        return text


# --- validation ---------------------------------------------------------------------------------------

_BAD = object()
_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "a list of strings",
}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _base_type(hint: Any) -> type:
    """str | None -> str; tuple[str, ...] -> tuple."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    return tuple if get_origin(hint) is tuple else hint  # type: ignore[no-any-return]


def _normalize(value: object, base: type) -> object:
    """The value as the field's type, or _BAD (TOML has no null; bool is never taken for a number)."""
    if base is bool or isinstance(value, bool):
        return value if base is bool and isinstance(value, bool) else _BAD
    if base is int:
        return value if isinstance(value, int) else _BAD
    if base is float:
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else _BAD
    if base is tuple:
        ok = isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)
        return tuple(value) if ok else _BAD  # type: ignore[arg-type]
    return value if isinstance(value, str) else _BAD


def _show(value: object) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _checked(cls: type, fld: Field[Any], key: str, value: object, source: str) -> object:
    base = _base_type(_hints(cls)[fld.name])
    rule: _Rule | None = fld.metadata.get("rule")
    normal = _normalize(value, base)
    if normal is _BAD or (rule is not None and not rule.ok(normal)):
        expected = rule.desc if rule else _TYPE_WORDS[base]
        hint = f"; {rule.hint}" if rule and rule.hint else ""
        raise ConfigError(f"{source}: {key} must be {expected} (got {_show(value)}){hint}")
    return normal


def _build_section(name: str, cls: type, values: Mapping[str, tuple[object, str]]) -> Any:
    kwargs: dict[str, object] = {}
    for fld in fields(cls):
        key = f"{name}.{fld.name}"
        if key in values:
            value, source = values[key]
            kwargs[fld.name] = _checked(cls, fld, key, value, source)
    return cls(**kwargs)


def _build_model(name: str, raw: _Model) -> ModelDef:
    table, source = raw.table, raw.source
    if not name.strip() or ":" in name:
        raise ConfigError(
            f"{source}: [models.{name}]: a model name must be non-empty and without ':' (a spec)"
        )
    kwargs: dict[str, Any] = {}
    for fld in fields(ModelDef)[1:]:
        key = f"models.{name}.{fld.name}"
        if fld.name in table:
            kwargs[fld.name] = _checked(ModelDef, fld, key, table[fld.name], raw.kept.get(fld.name, source))
        elif fld.default is MISSING:
            raise ConfigError(f"{source}: {key} is required in [models.{name}]")
    return ModelDef(name=name, **kwargs)


def _build(layers: _Layers) -> Config:
    sections = {name: _build_section(name, cls, layers.values) for name, cls in SECTIONS.items()}
    if layers.reviewers is not None:
        sections["review"] = dataclasses.replace(sections["review"], reviewers=_build_reviewers(*layers.reviewers))
    models = {name: _build_model(name, raw) for name, raw in layers.models.items()}
    origins = {key: source for key, (_, source) in layers.values.items()}
    for name, raw in layers.models.items():
        origins[f"models.{name}"] = raw.source
        origins.update({f"models.{name}.{key}": source for key, source in raw.kept.items()})
    if layers.reviewers is not None:
        origins[_REVIEWERS_KEY] = layers.reviewers[1]
    config = Config(**sections, models=models, sources=tuple(layers.sources), origins=origins,
                    ignored=tuple(layers.ignored), ignored_in=layers.ignored_in)
    check_role_specs(config)
    _check_references(config)
    return config


def _build_reviewers(raw: object, source: str) -> tuple[ReviewerDef, ...]:
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ConfigError(f"{source}: {_REVIEWERS_KEY} must be [[review.reviewers]] tables (got {_show(raw)})")
    reviewers: list[ReviewerDef] = []
    for index, table in enumerate(raw):
        where = f"{_REVIEWERS_KEY}[{index}]"
        for key in table:
            if key not in _REVIEWER_KEYS:
                raise ConfigError(f"{source}: unknown key {where}.{key}{_suggest(key, _REVIEWER_KEYS)}")
        if "name" not in table:
            raise ConfigError(f"{source}: {where}.name is required: a short name such as \"security\"")
        kwargs = {fld.name: _checked(ReviewerDef, fld, f"{where}.{fld.name}", table[fld.name], source)
                  for fld in fields(ReviewerDef) if fld.name in table}
        reviewer = ReviewerDef(**kwargs)  # type: ignore[arg-type]
        if any(other.name == reviewer.name for other in reviewers):
            raise ConfigError(f"{source}: {where}.name: two reviewers are named {reviewer.name!r}")
        reviewers.append(reviewer)
    return tuple(reviewers)


def _spec_problem(spec: str, models: Mapping[str, ModelDef], allow_command: bool) -> str | None:
    """Why a spec names nothing usable, or None when it is fine."""
    parsed = parse_spec(spec)
    if parsed.named and spec not in models:
        return f'"{spec}" is neither a spec ({FORMS}) nor a [models.NAME]{_suggest(spec, list(models))}'
    return parsed.problem(allow_command)


def _check_references(config: Config) -> None:
    """Every role spec and every fallback must name a model."""
    for fld in fields(RolesConfig):
        spec = getattr(config.roles, fld.name)
        problem = spec and _spec_problem(spec, config.models, allow_command=True)
        if problem:
            raise ConfigError(f"{config.origin('roles.' + fld.name)}: roles.{fld.name}: {problem}")
    for name, model in config.models.items():
        for fallback in model.fallbacks:
            problem = _spec_problem(fallback, config.models, allow_command=False)
            if fallback == name:
                problem = "a model cannot fall back to itself"
            if problem:
                raise ConfigError(f"{config.origin('models.' + name)}: models.{name}.fallbacks: {problem}")
    for index, reviewer in enumerate(config.review.reviewers):
        problem = reviewer.model and _spec_problem(reviewer.model, config.models, allow_command=False)
        if problem:
            where = f"{_REVIEWERS_KEY}[{index}].model"
            raise ConfigError(f"{config.origin(_REVIEWERS_KEY)}: {where} ({reviewer.name}): {problem}")


def check_role_specs(config: Config) -> None:
    """Refuse `command:` for any role but the coder; the message points to --coder."""
    roles = config.roles
    if all(is_command(getattr(roles, role)) for role in ROLES):
        raise ConfigError(
            f"{config.origin('roles.planner')}: a command: spec was given for every role, but command: "
            "runs an external coding agent and is for the coder only: pass it with --coder "
            "(or GITTEAM_CODER, roles.coder) and give the planner and reviewer a model "
            "(--planner, --reviewer, or --model)"
        )
    for role in ("planner", "reviewer", "economy_planner", "economy_reviewer"):
        if is_command(getattr(roles, role)):
            raise ConfigError(
                f"{config.origin('roles.' + role)}: roles.{role} cannot be a command: spec; command: is for "
                "the coder only (--coder, GITTEAM_CODER or roles.coder)"
            )


# --- the example file ---------------------------------------------------------------------------------


def settings_of(config: Config) -> dict[str, object]:
    """Every setting but the roles' models, as dotted keys with JSON values: what a run records, so that a
    replay works under the same settings whatever set them (a flag, a variable, a file since edited)."""
    settings: dict[str, object] = {}
    for name in SECTIONS:
        if name == "roles":
            continue
        section = getattr(config, name)
        for fld in fields(section):
            key = f"{name}.{fld.name}"
            if key in _KNOWN_KEYS:
                value = getattr(section, fld.name)
                settings[key] = list(value) if isinstance(value, tuple) else value
    return settings


def example_text() -> str:
    """The commented example configuration shipped in the package."""
    from importlib import resources  # only `gitteam init` and the demo need it

    return resources.files("gitteam").joinpath(EXAMPLE_RESOURCE).read_text(encoding="utf-8")


def write_example(path: Path, force: bool = False) -> None:
    """Write the example configuration to path; an existing file is replaced only with force."""
    text = example_text().encode("utf-8")
    if not force:
        try:
            with path.open("xb") as out:
                out.write(text)
        except FileExistsError:
            raise UsageError(f"{path} already exists; edit it, or pass --force to replace it") from None
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(text)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)

"""Where the configuration comes from: the files, the layers, what the repository's file may not set, the
environment and the flags. Every raw value keeps its source; `schema` validates the merged result once.

Layers, lowest first: built-in defaults, the user config (`$XDG_CONFIG_HOME/gitteam/config.toml`),
`<repo>/.gitteam.toml`, the environment (`GITTEAM_*`), then flags (dotted-key overrides).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from gitteam.config.schema import (
    KNOWN_KEYS,
    MODEL_KEYS,
    REVIEWERS_KEY,
    SECTIONS,
    Config,
    base_type,
    build_model,
    build_reviewers,
    build_section,
    check_references,
    check_role_specs,
    hints,
    show,
    suggest,
)
from gitteam.errors import ConfigError
from gitteam.modelspec import ROLES, is_command

REPO_CONFIG = ".gitteam.toml"
EXAMPLE_RESOURCE = "data/gitteam.example.toml"
COMMAND_LINE = "command line"


# Settings that weaken containment or send credentials somewhere. They count only from the user config,
# the environment and flags: a repository's .gitteam.toml is written by whoever controls the repository
# (a pull request, a cloned project, gitteam's own agents), so when it sets one, the setting is left out,
# listed in Config.ignored and reported, and the rest of the file still applies. Dotted keys; "*" is any
# name, and "SECTION.*" also covers a SECTION that is not a table.
RESTRICTED: tuple[str, ...] = (
    "sandbox.*",  # containment itself: mode, network, paths contained commands may reach, HOME files
    "protect.*",  # the files no plan may hand to an agent
    "worktrees.root",  # where worktrees are made, run in and deleted: never a repository's choice
    "commands.allowed",  # what the coders' run tool may execute
    "commands.pass_env",  # variables (credentials, often) that commands receive
    "commands.agent_env",  # variables that command: coders receive
    "commands.syntax_check",  # commands run after each of a coder's writes
    "run.setup",  # a command run in every new worktree
    "run.notify",  # a command run with the user's authority when a run needs them
    "secrets.*",  # which files agents may not read: a repository must not open its own `.env` to them
    "models.*.base_url",  # where a model's requests, and its API key, are sent
    "models.*.api_key_env",  # which variable's secret is sent as the API key
)
_RESTRICTED_SECTIONS = frozenset(pattern[:-2] for pattern in RESTRICTED if pattern.endswith(".*"))


def is_restricted(key: str) -> bool:
    """Whether a dotted key is one only the user config, the environment and flags may set (RESTRICTED)."""
    return key in _RESTRICTED_SECTIONS or any(fnmatchcase(key, pattern) for pattern in RESTRICTED)


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


def _add_table(layers: _Layers, table: dict[str, Any], source: str, trusted: bool) -> None:
    for section, body in table.items():
        if section == "models":
            _add_models(layers, body, source, trusted)
        elif section not in SECTIONS:
            raise ConfigError(f"{source}: {_unknown_top_level(section, body)}")
        elif not isinstance(body, dict):
            raise ConfigError(f"{source}: {section} must be a table [{section}] (got {show(body)})")
        else:
            for key, value in body.items():
                if f"{section}.{key}" == REVIEWERS_KEY:
                    layers.reviewers = (value, source)
                else:
                    layers.values[_known(f"{section}.{key}", source)] = (value, source)


def _unknown_top_level(name: str, body: object) -> str:
    if isinstance(body, dict):
        close = difflib.get_close_matches(name, [*SECTIONS, "models"], n=1)
        return f"unknown section [{name}]" + (f" (did you mean [{close[0]}]?)" if close else "")
    tails = {key.partition(".")[2]: key for key in KNOWN_KEYS}
    close = difflib.get_close_matches(name, list(tails), n=1)
    return f"unknown key {name}" + (
        f" (did you mean {tails[close[0]]}?)" if close else " (settings go in a section such as [run])"
    )


def _known(key: str, source: str) -> str:
    if key not in KNOWN_KEYS:
        raise ConfigError(f"{source}: unknown key {key}{suggest(key, list(KNOWN_KEYS))}")
    return key


def _add_models(layers: _Layers, body: object, source: str, trusted: bool) -> None:
    if not isinstance(body, dict):
        raise ConfigError(f"{source}: models must hold [models.NAME] tables (got {show(body)})")
    for name, table in body.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: models.{name} must be a table [models.{name}] (got {show(table)})")
        for key in table:
            if key not in MODEL_KEYS:
                raise ConfigError(f"{source}: unknown key models.{name}.{key}{suggest(key, MODEL_KEYS)}")
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
    base = base_type(hints(KNOWN_KEYS[key])[key.partition(".")[2]])
    word = text.strip().lower()
    if base is bool:
        return True if word in _TRUE else False if word in _FALSE else text
    try:
        return int(word) if base is int else float(word) if base is float else text.strip()
    except ValueError:
        return text


def _build(layers: _Layers) -> Config:
    sections = {name: build_section(name, cls, layers.values) for name, cls in SECTIONS.items()}
    if layers.reviewers is not None:
        sections["review"] = dataclasses.replace(sections["review"], reviewers=build_reviewers(*layers.reviewers))
    models = {name: build_model(name, raw.table, raw.source, raw.kept) for name, raw in layers.models.items()}
    origins = {key: source for key, (_, source) in layers.values.items()}
    for name, raw in layers.models.items():
        origins[f"models.{name}"] = raw.source
        origins.update({f"models.{name}.{key}": source for key, source in raw.kept.items()})
    if layers.reviewers is not None:
        origins[REVIEWERS_KEY] = layers.reviewers[1]
    config = Config(**sections, models=models, sources=tuple(layers.sources), origins=origins,
                    ignored=tuple(layers.ignored), ignored_in=layers.ignored_in)
    check_role_specs(config)
    check_references(config)
    return config


# --- the example file ---------------------------------------------------------------------------------


def example_text() -> str:
    """The commented example configuration shipped in the package."""
    from importlib import resources  # only `gitteam init` and the demo need it

    return resources.files("gitteam").joinpath(EXAMPLE_RESOURCE).read_text(encoding="utf-8")

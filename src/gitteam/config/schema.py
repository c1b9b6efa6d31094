"""The configuration's schema: one frozen dataclass a section, with defaults and the rule each value must meet,
and the validation that turns raw values (already merged by `loader`) into them, naming the key and its source.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from gitteam.commandline import entry_problem, splits
from gitteam.errors import ConfigError
from gitteam.modelspec import FORMS, OLLAMA_HINT, PROVIDERS, ROLES, is_command, parse_spec
from gitteam.secrets import READABLE_SECRET_FILES, SECRET_FILES, SecretFiles

DEFAULTS = "built-in default"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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


def _is_checker(line: str) -> bool:
    """A syntax checker's command line: "" (check nothing), or a command naming the file with {file}."""
    return not line.strip() or (bool(splits(line)) and "{file}" in line)


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

APIS = ("chat", "responses")
THINKING_KEYS = ("type", "budget_tokens", "display")
THINKING_MIN_BUDGET = 1024  # the Messages API refuses less
# Effort levels each provider accepts: OpenAI's reasoning_effort, Anthropic's output_config.effort.
EFFORTS = {
    "openai": ("none", "minimal", "low", "medium", "high", "xhigh", "max"),
    "anthropic": ("low", "medium", "high", "xhigh", "max"),
}


def _thinking_ok(value: dict[str, Any]) -> bool:
    """The Messages API's `thinking` object: {budget_tokens = N} (type "enabled" implied), {type = "adaptive"}
    or {type = "disabled"}, with an optional display."""
    if not set(value) <= set(THINKING_KEYS):
        return False
    budget = value.get("budget_tokens")
    kind = value.get("type", "enabled" if budget is not None else None)
    if kind == "enabled":
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < THINKING_MIN_BUDGET:
            return False
    elif kind not in ("adaptive", "disabled") or budget is not None:
        return False
    return value.get("display") in (None, "summarized", "omitted")


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
    """Seconds the server may stay silent (before the reply starts, or between two parts of the streamed reply)
    before the request is retried; None = 600 (a slow local model needs long)."""
    api: str = field(default="chat", metadata=_rule('"chat" or "responses"', APIS.__contains__))
    """openai only: "chat" (Chat Completions: OpenAI and every compatible server) or "responses" (the Responses
    API, stateless: store false, reasoning items kept encrypted and sent back each turn)."""
    thinking: dict[str, Any] | None = field(default=None, metadata=_rule(
        'a table: {budget_tokens = N} (N >= 1024), {type = "adaptive"} or {type = "disabled"}, with an optional '
        'display = "summarized" | "omitted"', _thinking_ok))
    """anthropic only: the Messages API's `thinking`: {budget_tokens = 16000} for extended thinking with that
    budget, {type = "adaptive"} where the model decides (the newer models); None = not sent."""
    reasoning_effort: str | None = field(default=None, metadata=_rule(
        'one of "none", "minimal", "low", "medium", "high", "xhigh", "max"',
        lambda v: any(v in levels for levels in EFFORTS.values())))
    """How hard the model reasons: OpenAI's reasoning_effort (Chat Completions) or reasoning.effort (Responses),
    Anthropic's output_config.effort ("low" to "max"); None = the model's default."""


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
    replans: int = field(default=1, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Times a failed subtask goes back to the planner for a new attempt (fresh branch, same start); 0 = never."""
    notify: str = field(default="", metadata=_COMMAND_LINE)
    """Command line run (without a shell, uncontained: your own, user config only) when a run ends needing a
    person: failed, refused, out of budget, or pending approval; `{run}`, `{state}` and `{message}` in its words
    are filled in, and GITTEAM_RUN/STATE/MESSAGE set. "" = none."""
    lock_wait: float = field(default=1800.0, metadata=_rule("a number >= 0 (seconds)", lambda v: v >= 0))
    """Seconds a subtask waits for files another live run holds before it fails; 0 = never wait (the run fails
    before coding when another run holds a file it needs)."""


@dataclass(frozen=True)
class LimitsConfig:
    """[limits]: what one agent may use."""

    max_steps: int = field(default=100, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Model calls one agent may make in one round; a review round sends a coder back with a fresh allowance
    (at most run.max_rounds of them)."""
    max_tokens: int = field(default=1_000_000, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Tokens that may enter one agent's conversation, all rounds together: each call's new prompt tokens and
    its output, a prefix re-sent (cached or not) counted once (docs/agents.md#limits)."""
    granted_files: int = field(default=5, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Files one subtask may be granted beyond its plan (the coder's request_files); 0 = none."""
    plan_attempts: int = field(default=3, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """Planner attempts before an invalid plan fails the run."""
    reminders: int = field(default=2, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Nudges sent when a model answers without calling a tool."""
    agent_budget: float | None = field(default=5.0, metadata=_rule("a number > 0 (USD)", lambda v: v > 0))
    """Money one agent may spend, in USD, all rounds together, at the model's prices (cache reads at theirs);
    None = only the run's budget. A model without a known price is held by the steps and tokens alone."""
    max_seconds: float = field(default=3600.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Wall time one agent may take, a command: coder included."""
    search_seconds: float = field(default=5.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Wall time one `search` tool call may take; past it the search stops and says so."""
    compact_at: float = field(default=0.7, metadata=_rule("a number >= 0.2 and <= 0.95",
                                                           lambda v: 0.2 <= v <= 0.95))
    """Share of the model's prompt limit past which an agent's conversation is compacted (old tool outputs
    trimmed, then aged out, then earlier turns summarized)."""


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
    syntax_check: Mapping[str, str] = field(
        default_factory=dict, metadata=_rule(
            'a table of glob = command line, each command holding {file} (or "" to check nothing)',
            lambda v: all(glob.strip() and isinstance(line, str) and _is_checker(line) for glob, line in v.items()),
            'e.g. syntax_check = {"*.js" = "node --check {file}"}'),
    )
    """Syntax checkers by file glob, run (contained, without a shell) after a coder's write or edit of a matching
    file, `{file}` its path: a change that makes a passing file fail is refused. The first matching glob wins;
    Python files are compiled by gitteam itself unless a glob here matches them ("" turns checking off)."""


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


def _worktree_root(value: str) -> bool:
    return value == "" or value.startswith("/") or value == "~" or value.startswith("~/")


WORKTREE_MODES = ("auto", "full", "sparse")
SPARSE_ABOVE = 5000


@dataclass(frozen=True)
class WorktreesConfig:
    """[worktrees]: where agents' worktrees live (root: user config only) and how much of the tree they hold."""

    root: str = field(default="", metadata=_rule(
        'an absolute path, one starting with "~/", or "" (the default)', _worktree_root,
        "never inside the repository or its .git: the user's git status must not see them"))
    """Directory of every repository's worktrees, as `<root>/<repository key>/<run>/<agent>` ("" =
    `$XDG_DATA_HOME/gitteam/worktrees`, else `~/.local/share/gitteam/worktrees`); `~` is HOME."""
    mode: str = field(default="auto", metadata=_rule('"auto", "full" or "sparse"', WORKTREE_MODES.__contains__))
    """What an agent's worktree holds: "full" = every file; "sparse" = the directories of its files, the
    top-level files and `always` (a cone-mode sparse checkout); "auto" = sparse above `sparse_above` files."""
    sparse_above: int = field(default=SPARSE_ABOVE, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Tracked files above which "auto" makes sparse worktrees."""
    always: tuple[str, ...] = field(default=(), metadata=_PATHS)
    """Directories every sparse worktree holds besides its files' own (test directories, build config)."""


@dataclass(frozen=True)
class RemoteConfig:
    """[remote]: runs published to a git remote for workers elsewhere (`gitteam run --remote`, `gitteam worker`)."""

    lease: float = field(default=60.0, metadata=_rule("a number >= 1 (seconds)", lambda v: v >= 1))
    """Seconds a worker's claim on a subtask lasts unrenewed (it renews every third of it); past that, another
    worker takes the subtask over. Judged on each observer's own clock, so skewed clocks do not matter."""
    poll: float = field(default=2.0, metadata=_rule("a number > 0 (seconds)", lambda v: v > 0))
    """Seconds between two looks at the remote while the run waits for workers, or a worker for work."""


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
    integration_repairs: int = field(default=1, metadata=_rule("an integer >= 0", lambda v: v >= 0))
    """Rounds in which the integration review's findings go back to the subtasks owning the files they name."""
    max_file_bytes: int = field(default=1_000_000, metadata=_rule("an integer >= 1", lambda v: v >= 1))
    """A changed file larger than this (in bytes) is a finding; so is any binary file."""
    conventions: tuple[str, ...] = field(
        default=("AGENTS.md", "CONTRIBUTING.md", "CONVENTIONS.md"),
        metadata=_rule("a list of non-empty paths", lambda v: all(p.strip() for p in v)),
    )
    """Files of the repository's own rules given to reviewers, read from the base commit, never the branch."""
    reviewers: tuple[ReviewerDef, ...] = ()
    """The reviewers, as [[review.reviewers]] tables; empty = one general reviewer on roles.reviewer."""


ROUTED_ROLES = ("coder", "reviewer")


def _routes_ok(value: dict[str, Any]) -> bool:
    return all(role in ROUTED_ROLES and isinstance(spec, str) and spec.strip() for role, spec in value.items())


_ROUTES = _rule('a table of role = "model spec" (roles: coder, reviewer)', _routes_ok)


@dataclass(frozen=True)
class RoutingConfig:
    """[routing]: models by subtask priority. The planner gives each subtask a priority; a role's spec here
    replaces roles.ROLE for that priority's subtasks (economy mode still wins)."""

    critical: dict[str, Any] = field(default_factory=dict, metadata=_ROUTES)
    """Models for critical subtasks, e.g. {coder = "anthropic:claude-opus-4-8"}; unset roles keep roles.ROLE."""
    normal: dict[str, Any] = field(default_factory=dict, metadata=_ROUTES)
    """Models for normal subtasks (the default priority); unset roles keep roles.ROLE."""
    low: dict[str, Any] = field(default_factory=dict, metadata=_ROUTES)
    """Models for low-priority subtasks, e.g. {coder = "anthropic:claude-haiku-4-5"}."""
    downgrade_at: float = field(default=0.5, metadata=_rule("a number > 0 and <= 1", lambda v: 0 < v <= 1))
    """Fraction of the budget (money or tokens) past which new subtasks get the models of the tier below
    their priority (critical -> normal -> low), before economy mode (run.economy_at) switches every role."""


SECTIONS: dict[str, type] = {
    "roles": RolesConfig,
    "run": RunConfig,
    "limits": LimitsConfig,
    "commands": CommandsConfig,
    "planner": PlannerConfig,
    "review": ReviewConfig,
    "sandbox": SandboxConfig,
    "worktrees": WorktreesConfig,
    "remote": RemoteConfig,
    "protect": ProtectConfig,
    "secrets": SecretsConfig,
    "routing": RoutingConfig,
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
    worktrees: WorktreesConfig = WorktreesConfig()
    remote: RemoteConfig = RemoteConfig()
    protect: ProtectConfig = ProtectConfig()
    secrets: SecretsConfig = SecretsConfig()
    routing: RoutingConfig = RoutingConfig()
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


REVIEWERS_KEY = "review.reviewers"  # an array of tables, read like [models.NAME]: whole, from one layer
KNOWN_KEYS = {f"{name}.{f.name}": cls for name, cls in SECTIONS.items() for f in fields(cls)
              if f"{name}.{f.name}" != REVIEWERS_KEY}
REVIEWER_KEYS = [f.name for f in fields(ReviewerDef)]
MODEL_KEYS = [f.name for f in fields(ModelDef) if f.name != "name"]


# --- validation ---------------------------------------------------------------------------------------

_BAD = object()
_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "a list of strings",
    dict: "a table",
}


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def base_type(hint: Any) -> type:
    """str | None -> str; tuple[str, ...] -> tuple; dict[str, Any] -> dict."""
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    origin = get_origin(hint)
    if origin in (dict, Mapping):
        return dict
    return tuple if origin is tuple else hint  # type: ignore[no-any-return]


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
    if base is dict:  # a TOML table, in the file's order, handed on as it is (its rule checks the values)
        return dict(value) if isinstance(value, Mapping) else _BAD
    return value if isinstance(value, str) else _BAD


def show(value: object) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def checked(cls: type, fld: Field[Any], key: str, value: object, source: str) -> object:
    base = base_type(hints(cls)[fld.name])
    rule: _Rule | None = fld.metadata.get("rule")
    normal = _normalize(value, base)
    if normal is _BAD or (rule is not None and not rule.ok(normal)):
        expected = rule.desc if rule else _TYPE_WORDS[base]
        hint = f"; {rule.hint}" if rule and rule.hint else ""
        raise ConfigError(f"{source}: {key} must be {expected} (got {show(value)}){hint}")
    return normal


def build_section(name: str, cls: type, values: Mapping[str, tuple[object, str]]) -> Any:
    kwargs: dict[str, object] = {}
    for fld in fields(cls):
        key = f"{name}.{fld.name}"
        if key in values:
            value, source = values[key]
            kwargs[fld.name] = checked(cls, fld, key, value, source)
    return cls(**kwargs)


def suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def build_model(name: str, table: Mapping[str, object], source: str, kept: Mapping[str, str]) -> ModelDef:
    """A [models.NAME] as one layer defined it; `kept`: keys carried over from a lower layer -> their source."""
    if not name.strip() or not parse_spec(name).named:
        raise ConfigError(
            f"{source}: [models.{name}]: a model name must be non-empty and without ':' (a spec)"
        )
    kwargs: dict[str, Any] = {}
    for fld in fields(ModelDef)[1:]:
        key = f"models.{name}.{fld.name}"
        if fld.name in table:
            kwargs[fld.name] = checked(ModelDef, fld, key, table[fld.name], kept.get(fld.name, source))
        elif fld.default is MISSING:
            raise ConfigError(f"{source}: {key} is required in [models.{name}]")
    model = ModelDef(name=name, **kwargs)
    problem = _provider_problem(model)
    if problem:
        raise ConfigError(f"{source}: models.{name}.{problem}")
    return model


def _provider_problem(model: ModelDef) -> str | None:
    """Keys that only one provider understands, and the thinking budget against the reply's length."""
    if model.api == "responses" and model.provider != "openai":
        return f'api = "responses" is the OpenAI Responses API: it needs provider = "openai" (got {model.provider!r})'
    if model.thinking is not None and model.provider != "anthropic":
        return ('thinking is for provider = "anthropic"; OpenAI models reason by themselves: set reasoning_effort '
                "instead")
    levels = EFFORTS.get(model.provider, ())
    if model.reasoning_effort is not None and model.reasoning_effort not in levels:
        accepted = ", ".join(f'"{level}"' for level in levels) or "none (it is for anthropic and openai)"
        return f"reasoning_effort {model.reasoning_effort!r} is not one {model.provider} accepts: {accepted}"
    budget = (model.thinking or {}).get("budget_tokens")
    if isinstance(budget, int) and model.max_output_tokens is not None and budget >= model.max_output_tokens:
        return (f"thinking: budget_tokens ({budget}) must be below max_output_tokens ({model.max_output_tokens}): "
                "thinking counts toward the reply's length")
    return None


def build_reviewers(raw: object, source: str) -> tuple[ReviewerDef, ...]:
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ConfigError(f"{source}: {REVIEWERS_KEY} must be [[review.reviewers]] tables (got {show(raw)})")
    reviewers: list[ReviewerDef] = []
    for index, table in enumerate(raw):
        where = f"{REVIEWERS_KEY}[{index}]"
        for key in table:
            if key not in REVIEWER_KEYS:
                raise ConfigError(f"{source}: unknown key {where}.{key}{suggest(key, REVIEWER_KEYS)}")
        if "name" not in table:
            raise ConfigError(f"{source}: {where}.name is required: a short name such as \"security\"")
        kwargs = {fld.name: checked(ReviewerDef, fld, f"{where}.{fld.name}", table[fld.name], source)
                  for fld in fields(ReviewerDef) if fld.name in table}
        reviewer = ReviewerDef(**kwargs)  # type: ignore[arg-type]
        if any(other.name == reviewer.name for other in reviewers):
            raise ConfigError(f"{source}: {where}.name: two reviewers are named {reviewer.name!r}")
        reviewers.append(reviewer)
    return tuple(reviewers)


def spec_problem(spec: str, models: Mapping[str, ModelDef], allow_command: bool) -> str | None:
    """Why a spec names nothing usable, or None when it is fine."""
    parsed = parse_spec(spec)
    if parsed.named and spec not in models:
        return f'"{spec}" is neither a spec ({FORMS}) nor a [models.NAME]{suggest(spec, list(models))}'
    return parsed.problem(allow_command)


def check_references(config: Config) -> None:
    """Every role spec and every fallback must name a model."""
    for fld in fields(RolesConfig):
        spec = getattr(config.roles, fld.name)
        problem = spec and spec_problem(spec, config.models, allow_command=True)
        if problem:
            raise ConfigError(f"{config.origin('roles.' + fld.name)}: roles.{fld.name}: {problem}")
    for name, model in config.models.items():
        for fallback in model.fallbacks:
            problem = spec_problem(fallback, config.models, allow_command=False)
            if fallback == name:
                problem = "a model cannot fall back to itself"
            if problem:
                raise ConfigError(f"{config.origin('models.' + name)}: models.{name}.fallbacks: {problem}")
    for index, reviewer in enumerate(config.review.reviewers):
        problem = reviewer.model and spec_problem(reviewer.model, config.models, allow_command=False)
        if problem:
            where = f"{REVIEWERS_KEY}[{index}].model"
            raise ConfigError(f"{config.origin(REVIEWERS_KEY)}: {where} ({reviewer.name}): {problem}")


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
            if key in KNOWN_KEYS:
                value = getattr(section, fld.name)
                settings[key] = list(value) if isinstance(value, tuple) else \
                    dict(value) if isinstance(value, Mapping) else value
    return settings


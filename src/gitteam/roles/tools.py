"""Agent tools: schemas, the read-only tools every role has, and how a call becomes a result.

A refused or failing call never raises out of the run: it becomes an error result the model reads,
and it touches nothing. Tool names and argument names are fixed by the contract.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gitteam import fences
from gitteam.cone import Cone
from gitteam.errors import GitteamError
from gitteam.git import Grep, GrepPatternError, Repository
from gitteam.locks.paths import normalize_repo_path, resolve_path
from gitteam.memory import Blackboard
from gitteam.memory.recall import describe
from gitteam.models.base import ToolCall, ToolSpec
from gitteam.roles import lines
from gitteam.roles.errors import AgentFailed, ToolRefused
from gitteam.secrets import SecretFiles

MAX_LIST = 400
BINARY_PROBE = 8000  # bytes looked at for a NUL, as git does to call a file binary
MAX_MATCHES = 150
MAX_MATCH_CHARS = 300  # of a matching line; a minified file's line may be megabytes
SEARCH_SECONDS = 5.0  # [limits] search_seconds


@dataclass(frozen=True, slots=True)
class ToolResult:
    text: str
    is_error: bool = False
    finished: bool = False  # a terminal tool (done, submit_plan, submit_review) was accepted
    value: Any = None


Handler = Callable[[dict[str, Any]], "str | ToolResult"]


@dataclass(frozen=True, slots=True)
class Tool:
    spec: ToolSpec
    handler: Handler


def tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ToolSpec(name, description, schema)


@dataclass(frozen=True, slots=True)
class CallLimits:
    """What one tool call may take: the agent's deadline (time.monotonic()) and a search's own time limit."""

    deadline: float | None = None
    search_seconds: float = SEARCH_SECONDS


# The limits of the tool call running in this thread (each agent runs in its own): handlers read them through
# `call_limits` and `seconds_left` without every handler taking them as an argument.
_UNLIMITED = CallLimits()
_CALL_LIMITS: ContextVar[CallLimits] = ContextVar("gitteam_call_limits", default=_UNLIMITED)


def call_limits() -> CallLimits:
    return _CALL_LIMITS.get()


def seconds_left(limit: float) -> float:
    """Seconds a tool call may still take: its own `limit`, cut at the agent's deadline."""
    deadline = _CALL_LIMITS.get().deadline
    if deadline is None:
        return limit
    return max(0.0, min(limit, deadline - time.monotonic()))


class Toolbox:
    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {t.spec.name: t for t in tools}

    @property
    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    def execute(self, call: ToolCall, limits: CallLimits | None = None) -> ToolResult:
        """Run one call; a long one (a command, a search) is cut at `limits.deadline`."""
        token = _CALL_LIMITS.set(limits or _UNLIMITED)
        try:
            return self._execute(call)
        finally:
            _CALL_LIMITS.reset(token)

    def _execute(self, call: ToolCall) -> ToolResult:
        entry = self.tools.get(call.name)
        if entry is None:
            return ToolResult(f"error: unknown tool {call.name!r}; available: {', '.join(self.tools)}", True)
        if call.malformed is not None:
            detail = call.malformed[:200]
            return ToolResult(f"error: the arguments of {call.name} were not a JSON object: {detail}", True)
        problem = check_arguments(entry.spec, call.arguments)
        if problem:
            return ToolResult(f"error: {call.name}: {problem}", True)
        try:
            outcome = entry.handler(call.arguments)
        except AgentFailed:
            raise
        except GitteamError as exc:  # ToolRefused, PathRefused, PlanError, GitError: all reported to the model
            return ToolResult(f"error: {exc}", True)
        except OSError as exc:  # the filesystem said no (e.g. a file where a directory must go): the model adapts
            return ToolResult(f"error: {call.name} failed: {exc}", True)
        return outcome if isinstance(outcome, ToolResult) else ToolResult(outcome)


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


MAX_PROBLEMS = 8


def check_arguments(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """A call against its tool's JSON schema: required arguments present, no unknown ones, right JSON
    types and enum values, nested arrays and objects included. All problems found, in one line each."""
    properties: dict[str, Any] = spec.parameters.get("properties", {})
    required = spec.parameters.get("required", [])
    missing = [name for name in required if name not in arguments]
    if missing:
        return f"missing required argument(s): {', '.join(missing)}"
    unknown = [name for name in arguments if name not in properties]
    if unknown:
        return f"unknown argument(s): {', '.join(unknown)}; expected: {', '.join(properties)}"
    problems: list[str] = []
    for name, value in arguments.items():
        if value is None and name not in required:
            continue  # an optional argument sent as null: as if left out
        expected = properties[name].get("type")
        if not _is_type(value, expected):
            problems.append(f"argument {name!r} must be of type {expected}")
        else:
            _check_value(properties[name], value, name, problems)
    if not problems:
        return None
    more = f"\n... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    return "; ".join(problems[:MAX_PROBLEMS]) + more


def _is_type(value: Any, expected: Any) -> bool:
    python_type = _JSON_TYPES.get(expected) if isinstance(expected, str) else None
    if python_type is None:
        return True  # no type, or one this checker does not know: the handler decides
    return isinstance(value, python_type) and not (expected in ("integer", "number") and isinstance(value, bool))


def _check_value(schema: dict[str, Any], value: Any, where: str, problems: list[str]) -> None:
    """Enums, array items and object properties below a value whose own type is already right."""
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        problems.append(f"{where} must be one of {', '.join(map(str, enum))} (got {json.dumps(value)[:60]})")
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        for index, item in enumerate(value):
            _check_nested(items, item, f"{where}[{index}]", problems)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        properties: dict[str, Any] = schema["properties"]
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where} is missing {name!r}")
        for name, item in value.items():
            if name in properties:
                if item is not None or name in schema.get("required", []):
                    _check_nested(properties[name], item, f"{where}.{name}", problems)
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where} has an unknown key {name!r} (expected: {', '.join(properties)})")


def _check_nested(schema: dict[str, Any], value: Any, where: str, problems: list[str]) -> None:
    if len(problems) > MAX_PROBLEMS:
        return
    expected = schema.get("type")
    if not _is_type(value, expected):
        problems.append(f"{where} must be of type {expected} (got {json.dumps(value)[:60]})")
    else:
        _check_value(schema, value, where, problems)


class FileView(Protocol):
    """What the read-only tools read: a commit (planner, reviewer) or a live worktree (coder).

    Secret files (`hidden`) are never read: `read` refuses them and `grep` leaves them out.
    """

    def paths(self) -> list[str]: ...

    def hidden(self, path: str) -> bool:
        """Whether `path` (repo-relative, normalized) is a secret file no agent may read ([secrets])."""
        ...

    def read(self, path: str) -> bytes: ...

    def grep(self, pattern: str, paths: Sequence[str], *, seconds: float, max_matches: int,
             max_line: int) -> Grep:
        """What `search` finds in those of `paths` that are files and not hidden: `git grep`, bounded in time
        and output."""
        ...


class CommitView:
    """Files as committed at `rev`: what the planner and reviewers see, unaffected by any checkout."""

    def __init__(self, repo: Repository, rev: str, secret_files: SecretFiles | None = None) -> None:
        self.repo = repo
        self.rev = rev
        self.secret_files = secret_files or SecretFiles()
        self._paths: list[str] | None = None

    def paths(self) -> list[str]:
        if self._paths is None:
            self._paths = self.repo.tracked_files(self.rev)
        return self._paths

    def hidden(self, path: str) -> bool:
        return self.secret_files.hides(path)

    def read(self, path: str) -> bytes:
        normalized = normalize_repo_path(path)
        if self.hidden(normalized):
            raise ToolRefused(self.secret_files.refusal(normalized))
        data = self.repo.read_blob(self.rev, normalized)
        if data is None:
            raise ToolRefused(f"no such file: {normalized}")
        return data

    def grep(self, pattern: str, paths: Sequence[str], *, seconds: float, max_matches: int,
             max_line: int) -> Grep:
        shown = [path for path in paths if not self.hidden(path)]
        return self.repo.grep(pattern, shown, rev=self.rev, seconds=seconds, max_matches=max_matches,
                              max_line=max_line)


class WorktreeView:
    """The coder's worktree: tracked files at its start, plus what the coder has created. Files on disk are read
    there; in a sparse worktree, the files outside its cone, which are not on disk, from the start commit, so the
    coder sees the whole repository either way."""

    def __init__(self, repo: Repository, worktree: Path, start: str, secret_files: SecretFiles | None = None) -> None:
        self.repo = repo
        self.worktree = worktree
        self.start = start
        self.secret_files = secret_files or SecretFiles()
        self._cone: tuple[Cone | None] | None = None  # read on first use: the worktree may still be being made
        self._tracked: list[str] | None = None  # listed on first use: most coders never list 10,000 files
        self._tracked_set: frozenset[str] | None = None
        self.created: set[str] = set()
        self.deleted: set[str] = set()

    @property
    def cone(self) -> Cone | None:
        if self._cone is None:
            self._cone = (self.repo.sparse_cone(self.worktree),)
        return self._cone[0]

    def paths(self) -> list[str]:
        return sorted((set(self._start_files()) | self.created) - self.deleted)

    def _start_files(self) -> list[str]:
        if self._tracked is None:
            self._tracked = self.repo.tracked_files(self.start)
        return self._tracked

    def hidden(self, path: str) -> bool:
        if self.secret_files.hides(path):
            return True
        # a symlink inside the worktree (resolve_path refuses the others) to a secret file is one too
        real, root = os.path.realpath(self.worktree / path), os.path.realpath(self.worktree)
        inside = os.path.relpath(real, root).replace(os.sep, "/")
        return inside != path and self.secret_files.hides(inside)

    def read(self, path: str) -> bytes:
        rel = resolve_path(self.worktree, path)
        if self.hidden(rel):
            raise ToolRefused(self.secret_files.refusal(rel))
        target = self.worktree / rel
        if target.is_file():
            return target.read_bytes()
        if self._from_start(rel):
            data = self.repo.read_blob(self.start, rel)
            if data is not None:
                return data
        raise ToolRefused(f"no such file: {rel}")

    def _from_start(self, path: str) -> bool:
        """Whether `path` is read from the start commit: outside the cone of a sparse worktree, tracked there,
        not on disk (a command may have written it there: then the disk has the newer bytes)."""
        if self.cone is None or self.cone.contains(path) or path in self.deleted:
            return False
        if self._tracked_set is None:
            self._tracked_set = frozenset(self._start_files())
        return path in self._tracked_set and not os.path.lexists(self.worktree / path)

    def grep(self, pattern: str, paths: Sequence[str], *, seconds: float, max_matches: int,
             max_line: int) -> Grep:
        """Only the files `read` would open (git grep --no-index does not follow symlinks either; this does not
        depend on it): those on disk there, those outside a sparse cone in the start commit."""
        deadline = time.monotonic() + seconds
        on_disk = [path for path in paths if self._readable(path)]
        found = self.repo.grep(pattern, on_disk, worktree=self.worktree, seconds=seconds,
                               max_matches=max_matches, max_line=max_line)
        elsewhere = [path for path in paths if not self.secret_files.hides(path) and self._from_start(path)]
        if found.stopped or not elsewhere:
            return found
        more = self.repo.grep(pattern, elsewhere, rev=self.start, seconds=max(0.0, deadline - time.monotonic()),
                              max_matches=max_matches - len(found.matches), max_line=max_line)
        matches = sorted([*found.matches, *more.matches], key=lambda m: (m.path, m.line))
        return Grep(matches, more.flavour, more.stopped, more.detail)

    def _readable(self, path: str) -> bool:
        try:
            return (resolve_path(self.worktree, path) == path and (self.worktree / path).is_file()
                    and not self.hidden(path))
        except GitteamError:
            return False


def nameable(path: str) -> bool:
    """A tracked path the tools can name (read_file would open): no control or bidi characters, no `.git`."""
    try:
        return normalize_repo_path(path) == path
    except GitteamError:
        return False


def glob_match(path: str, pattern: str) -> bool:
    """Shell-style globs where `**/` spans directories and a bare name matches at any depth."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    if fnmatch.fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:])


def read_tools(view: FileView, board: Blackboard | None, author: str, role: str) -> list[Tool]:
    """list_files, read_file, search, recall, remember: the tools every role has."""

    def list_files(args: dict[str, Any]) -> str:
        pattern = args.get("glob") or ""
        paths = [p for p in view.paths() if not pattern or glob_match(p, pattern)]
        shown = paths[:MAX_LIST]
        more = f"\n... {len(paths) - MAX_LIST} more; narrow the glob" if len(paths) > MAX_LIST else ""
        return ("\n".join(shown) + more) if shown else "no files match"

    def read_file(args: dict[str, Any]) -> str:
        data = view.read(args["path"])
        path = normalize_repo_path(args["path"])
        if b"\0" in data[:BINARY_PROBE]:
            return f"{path} is a binary file ({len(data):,} bytes): read_file shows text files only"
        return lines.window(data.decode("utf-8", errors="replace"), path, args.get("start_line"),
                            args.get("end_line"))

    def search(args: dict[str, Any]) -> str:
        pattern = args.get("glob") or ""
        wanted = [path for path in view.paths() if (not pattern or glob_match(path, pattern)) and nameable(path)]
        seconds = seconds_left(call_limits().search_seconds)
        try:
            found = view.grep(args["pattern"], wanted, seconds=seconds, max_matches=MAX_MATCHES,
                              max_line=MAX_MATCH_CHARS * 4)  # bytes: a character is at most four
        except GrepPatternError as exc:
            raise ToolRefused(f"bad regular expression: {exc}") from exc
        lines = [f"{m.path}:{m.line}: {m.text[:MAX_MATCH_CHARS]}"
                 + (" [... line cut]" if m.cut or len(m.text) > MAX_MATCH_CHARS else "") for m in found.matches]
        notes = [search_note(found, seconds)] if found.stopped else []
        if found.flavour != "perl":
            notes.append("(this git has no PCRE support: the pattern was read as a POSIX extended regular "
                         "expression)")
        if not lines:
            lines = ["no matches" + (" before the search stopped" if found.stopped else "")]
        return "\n".join([*lines, *notes])

    tools = [
        Tool(tool("list_files", "List the repository's files, optionally filtered by a glob such as 'src/**/*.py'.",
                  {"glob": {"type": "string"}}, []), list_files),
        Tool(tool("read_file", READ_FILE, {
            "path": {"type": "string"},
            "start_line": {"type": "integer", "description": "first line to show (1-based; default 1)"},
            "end_line": {"type": "integer", "description": "last line to show, inclusive (default: the end)"},
        }, ["path"]), read_file),
        Tool(tool("search", "Search file contents with a regular expression (Perl-compatible, as git grep -P; "
                  "binary files skipped); returns path:line: text. A search that takes too long stops early and "
                  "says so: then narrow the pattern or the glob.",
                  {"pattern": {"type": "string"}, "glob": {"type": "string"}}, ["pattern"]), search),
    ]
    return tools + memory_tools(board, author, role)


READ_FILE = (
    f"Read a text file as numbered lines, at most {lines.MAX_LINES:,} lines or {lines.MAX_CHARS:,} characters a "
    "call. The answer starts with 'PATH: lines X-Y of N' and, when more follows, ends by saying which start_line "
    "reads on. Each line shows as its number, a tab, then the text: the number and the tab are not part of the "
    "file, so leave them out of edit_file's `old`.")


def search_note(found: Grep, seconds: float) -> str:
    """Why a search stopped before it had read every file: the model narrows the pattern or the glob."""
    if found.stopped == "matches":
        return "... more matches; narrow the pattern or glob"
    if found.stopped == "engine":
        return (f"[search stopped early: the regular expression engine gave up on a line ({found.detail}); the "
                "results are incomplete: simplify the pattern (nested repetition such as (a+)+ backtracks "
                "without end) or narrow the glob]")
    cut = call_limits().search_seconds > seconds
    why = "the time left to this agent" if cut else f"the search time limit of {seconds:g} s"
    return (f"[search stopped early at {why}: the results are incomplete; narrow the pattern (nested repetition "
            "such as (a+)+ backtracks without end) or the glob]")


def memory_tools(board: Blackboard | None, author: str, role: str) -> list[Tool]:
    def recall(args: dict[str, Any]) -> str:
        if board is None:
            return "memory is not available in this context"
        entries = board.recall(args.get("query") or "", tags=args.get("tags") or [])
        if not entries:
            return "nothing remembered matches"
        return fences.render(fences.data("team_memory", "\n".join(describe(e) for e in entries)))

    def remember(args: dict[str, Any]) -> str:
        if board is None:
            return "memory is not available in this context"
        tags = [str(t) for t in args.get("tags") or []]
        entry = board.remember(str(args["content"]), tags=tags, agent=author, role=role)
        return f"remembered as {entry.id[:12]}"

    string_list = {"type": "array", "items": {"type": "string"}}
    return [
        Tool(tool("recall", "Read the team's shared memory: notes left by earlier agents and runs.",
                  {"query": {"type": "string"}, "tags": string_list}, []), recall),
        Tool(tool("remember", "Leave a short, durable note for the rest of the team (facts about the code, "
                  "decisions, pitfalls). Not for progress reports.",
                  {"content": {"type": "string"}, "tags": string_list}, ["content"]), remember),
    ]


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)

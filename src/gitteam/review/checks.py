"""The deterministic half of the merge gate: checks that need no model, behind one `Check` seam.

Each check looks at the change from `base` to `head` (parsed once into `changes`) and returns findings;
`run_checks` runs them in order and stamps each finding with `source="check:<name>"`.
`verdict.gate_decision` turns the findings into a decision: critical blocks, major requests changes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gitteam import secrets
from gitteam.errors import GitteamError
from gitteam.git import Repository
from gitteam.locks.ownership import Ownership
from gitteam.review.diff import FileChange
from gitteam.review.verdict import Finding, Severity
from gitteam.sandbox import parse_command, safe_env
from gitteam.sandbox.runner import CommandRunner

PYTHON_SUFFIXES = (".py", ".pyi")
TEST_OUTPUT_TAIL = 3000  # characters of a failing test command's output kept in its finding
TEST_MAX_OUTPUT = 50_000
BINARY_PROBE = 8000  # bytes git looks at for a NUL to call a file binary (xdiff's heuristic)
# compile() may warn (invalid escapes); warnings filters are process-wide: one check at a time edits them
_WARNINGS_LOCK = threading.Lock()


@dataclass
class CheckContext:
    repo: Repository
    base: str
    head: str
    changes: list[FileChange]
    ownership: Ownership | None  # None: no ownership to enforce (e.g. `gitteam review` on any range)
    worktree: Path | None = None  # a checkout of `head`, for the test command
    commands: CommandRunner | None = None  # runs the test command contained; needed with a worktree
    test_command: str = ""
    command_env: Mapping[str, str] | None = None  # default: sandbox.safe_env(worktree, {}, ())
    command_timeout: float = 300
    max_file_bytes: int = 1_000_000
    _blobs: dict[tuple[str, str], bytes] = field(default_factory=dict, init=False, repr=False)

    def read(self, rev: str, paths: Sequence[str]) -> dict[str, bytes]:
        """Contents at `rev` (self.base or self.head) of those `paths` that exist there; read once, cached."""
        missing = [path for path in paths if (rev, path) not in self._blobs]
        if missing:
            for path, data in self.repo.read_blobs(rev, missing).items():
                self._blobs[(rev, path)] = data
        return {path: self._blobs[(rev, path)] for path in paths if (rev, path) in self._blobs}


class Check(Protocol):
    name: str

    def run(self, ctx: CheckContext) -> list[Finding]: ...


def _finding(check: Check, file: str, line: int | None, severity: Severity, message: str,
             suggestion: str | None = None) -> Finding:
    return Finding(file, line, severity, message, suggestion, f"check:{check.name}")


class OwnershipCheck:
    """Every changed path (both sides of a rename) must belong to the subtask."""

    name = "ownership"

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.ownership is None:
            return []
        paths = [path for change in ctx.changes for path in (change.path, change.old_path) if path]
        return [
            _finding(self, path, None, "critical",
                     f"{path} is changed, but it is not among the files this subtask owns",
                     f"revert the change to {path}; if the task needs it, it belongs in another subtask")
            for path in ctx.ownership.violations(paths)
        ]


class SecretsCheck:
    """Credentials the change adds, found in the changed files' contents at head: blobs, not the diff, so the
    change's own `.gitattributes` (`-diff`, `binary`) cannot hide a file, and binary files are read too. A
    secret whose text the file already held at base is not the change's. Findings never repeat the secret."""

    name = "secrets"

    def run(self, ctx: CheckContext) -> list[Finding]:
        changed = [change for change in ctx.changes if change.status != "deleted"]
        after = ctx.read(ctx.head, [change.path for change in changed])
        before = ctx.read(ctx.base, [change.old_path or change.path for change in changed
                                     if change.status != "added"])
        findings = []
        for change in changed:
            data = after.get(change.path)
            if data is None:
                continue  # a submodule: no blob of its own
            binary = b"\0" in data[:BINARY_PROBE]
            text = data.decode("utf-8", "replace")  # a binary file's ASCII runs stay as they are
            had = before.get(change.old_path or change.path, b"").decode("utf-8", "replace")
            for match in secrets.find_secrets(text, entropy=not (binary or secrets.is_lockfile(change.path))):
                if text[match.start:match.end] in had:
                    continue
                findings.append(_finding(
                    self, change.path, None if binary else match.line, "critical",
                    f"possible secret added ({match.kind}); the value is not shown here",
                    "remove it, read it from the environment or a secret store instead, "
                    "and rotate it if it was real"))
        return findings


class ConflictMarkerCheck:
    """Added lines must not be merge conflict markers."""

    name = "conflict_markers"
    _PROSE = (".md", ".markdown", ".rst", ".txt", ".adoc")  # where "=======" underlines a heading

    def run(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        for change in ctx.changes:
            markers = [(number, text) for number, text in change.added if _conflict_marker(text)]
            if change.path.endswith(self._PROSE) and all(text == "=======" for _, text in markers):
                continue
            findings += [
                _finding(self, change.path, number, "major", f"merge conflict marker {text[:7]!r} added",
                         "resolve the conflict and remove the markers")
                for number, text in markers
            ]
        return findings


def _conflict_marker(text: str) -> bool:
    return text.startswith(("<<<<<<< ", ">>>>>>> ", "||||||| ")) or text == "======="


class PythonSyntaxCheck:
    """Added and modified Python files must compile (with the Python running gitteam)."""

    name = "python_syntax"

    def run(self, ctx: CheckContext) -> list[Finding]:
        paths = [change.path for change in ctx.changes if change.status != "deleted" and not change.binary
                 and change.path.endswith(PYTHON_SUFFIXES)]
        blobs = ctx.read(ctx.head, paths)
        findings = []
        for path in paths:
            data = blobs.get(path)
            if data is None or len(data) > ctx.max_file_bytes:
                continue
            problem = _compile_problem(data, path)
            if problem is not None:
                line, message = problem
                findings.append(_finding(self, path, line, "major", message, "fix the syntax"))
        return findings


def _compile_problem(source: bytes, path: str) -> tuple[int | None, str] | None:
    error = python_syntax_error(source, path)
    if isinstance(error, SyntaxError):
        return error.lineno, f"Python syntax error: {error.msg} (checked with Python {python_version()})"
    if error is not None:
        return None, f"Python source cannot be compiled: {error}"
    return None


def python_syntax_error(source: bytes, path: str) -> SyntaxError | ValueError | None:
    """Why `source` does not compile with the Python running gitteam (nothing is run), or None. The coder's
    write tools ask it too (roles/syntax.py)."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
            return exc
    return None


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


class LargeFileCheck:
    """No binary files, and no file growing past `max_file_bytes`, without a human deciding so."""

    name = "large_files"

    def run(self, ctx: CheckContext) -> list[Finding]:
        findings = [
            _finding(self, change.path, None, "major",
                     f"binary file {'added' if change.status == 'added' else 'changed'}",
                     "agents should not add or change binary files; drop it, or have a human commit it")
            for change in ctx.changes if change.binary and change.status != "deleted"
        ]
        text = [change for change in ctx.changes if not change.binary and change.status != "deleted"]
        sizes = {path: len(data) for path, data in ctx.read(ctx.head, [c.path for c in text]).items()}
        large = [change for change in text if sizes.get(change.path, 0) > ctx.max_file_bytes]
        before = ctx.read(ctx.base, [change.old_path or change.path for change in large
                                     if change.status != "added"])
        for change in large:
            old = before.get(change.old_path or change.path)
            if old is not None and len(old) > ctx.max_file_bytes:
                continue  # it was already this large: the change did not make it so
            findings.append(_finding(
                self, change.path, None, "major",
                f"file is {sizes[change.path]:,} bytes, over the limit of {ctx.max_file_bytes:,}",
                "keep generated or bulky data out of the repository, or split the file"))
        return findings


class TestCommandCheck:
    """The configured test command must pass in the worktree at head."""

    __test__ = False  # not a pytest class, whatever its name

    name = "test_command"

    def run(self, ctx: CheckContext) -> list[Finding]:
        if not ctx.test_command.strip() or ctx.worktree is None or ctx.commands is None:
            return []
        try:
            argv = parse_command(ctx.test_command)
        except GitteamError as exc:
            return [_finding(self, "", None, "major", str(exc), "fix [commands] test in .gitteam.toml")]
        env = ctx.command_env if ctx.command_env is not None else safe_env(ctx.worktree, {}, ())
        result = ctx.commands.run(argv, ctx.worktree, env, ctx.command_timeout, TEST_MAX_OUTPUT, purpose="test")
        if result.timed_out:
            message = f"test command `{ctx.test_command}` timed out after {ctx.command_timeout:g}s"
        elif result.exit_code != 0:
            message = f"test command `{ctx.test_command}` failed (exit {result.exit_code})"
        else:
            return []
        tail = secrets.redact(result.output[-TEST_OUTPUT_TAIL:]).strip()
        return [_finding(self, "", None, "major", f"{message}:\n{tail}" if tail else message,
                         "make the tests pass")]


DEFAULT_CHECKS: tuple[Check, ...] = (
    OwnershipCheck(), SecretsCheck(), ConflictMarkerCheck(), PythonSyntaxCheck(), LargeFileCheck(),
    TestCommandCheck(),
)


def run_checks(ctx: CheckContext, checks: Sequence[Check] | None = None) -> list[Finding]:
    """Findings of every check, in check order; each finding's source is `check:<name>`."""
    findings: list[Finding] = []
    for check in DEFAULT_CHECKS if checks is None else checks:
        source = f"check:{check.name}"
        findings += [dataclasses.replace(found, source=source) for found in check.run(ctx)]
    return findings


def statement(ctx: CheckContext, findings: Sequence[Finding], checks: Sequence[Check] | None = None) -> str:
    """Which checks ran and what came of each, for the reviewer: a test command that passed reads differently
    from one that is not configured (or could not run here)."""
    lines = []
    for check in DEFAULT_CHECKS if checks is None else checks:
        found = [f for f in findings if f.source == f"check:{check.name}"]
        if isinstance(check, TestCommandCheck):
            if not ctx.test_command.strip():
                lines.append("- test_command: not run: no test command is configured")
                continue
            if ctx.worktree is None or ctx.commands is None:
                lines.append("- test_command: not run: no checkout of the change to run it in")
                continue
            shown = f"`{ctx.test_command.strip()}`"
            lines.append(f"- test_command {shown}: " + ("failed (see the findings)" if found else "passed"))
            continue
        lines.append(f"- {check.name}: " + (f"{len(found)} finding(s)" if found else "passed"))
    return "Checks run on this change:\n" + "\n".join(lines)

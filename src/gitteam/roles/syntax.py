"""Whether a coder's write leaves a file that parses: Python by compile() with the Python running gitteam
(nothing is run), other files by the `[commands] syntax_check` command whose glob names them, run through the
run's CommandRunner (contained, like every command).

Only a change that breaks a file is refused, with the error and its line: a file that did not parse before
may stay broken (work in progress across several edits), and a checker that cannot tell (it is missing, it
timed out) blocks nothing and says so. SWE-agent refuses edits that its linter finds new errors in; this is
that, for syntax only, so it never stands between a coder and a style it does not share.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gitteam.review.checks import PYTHON_SUFFIXES, python_syntax_error, python_version
from gitteam.roles.errors import ToolRefused
from gitteam.roles.lines import numbered, split_lines
from gitteam.roles.tools import glob_match
from gitteam.sandbox.process import CommandResult

CHECKER_OUTPUT = 2000  # characters of a checker's output shown to the model
COULD_NOT_RUN = (126, 127)  # the shell's codes for a program that cannot be run or was not found


@dataclass(frozen=True, slots=True)
class Parse:
    """One check of one content: ok, broken (with the error), or unknown (the checker could not tell)."""

    ok: bool | None
    detail: str = ""


class Checker:
    """How the files of one worktree are checked; `run` executes a checker's argv in the worktree."""

    def __init__(self, commands: Mapping[str, str], run: Callable[[list[str]], CommandResult] | None) -> None:
        self.commands = dict(commands)
        self.run = run

    def check(self, rel: str, target: Path, data: bytes) -> Parse | None:
        """Parse `data` as the content of `rel`; None when no check applies to the file. A command checker
        reads the file on disk, so `data` is written to `target` first."""
        command = next((line for glob, line in self.commands.items() if glob_match(rel, glob)), None)
        if command is None:
            return python_parse(rel, data) if rel.endswith(PYTHON_SUFFIXES) else None
        if not command.strip() or self.run is None:
            return None
        target.write_bytes(data)
        shown = f"./{rel}" if rel.startswith("-") else rel  # never read as an option
        argv = [word.replace("{file}", shown) for word in shlex.split(command)]  # validated by the config
        line = shlex.join(argv)
        # bubblewrap reports a missing program with exit 1, as a checker reports an error: ask first (a path
        # relative to the worktree, `node_modules/.bin/x`, is left to the run)
        if "/" not in argv[0] and shutil.which(argv[0]) is None:
            return Parse(None, f"the syntax check `{line}` could not run: {argv[0]} is not installed")
        result = self.run(argv)
        if result.timed_out or result.exit_code in COULD_NOT_RUN:
            why = "timed out" if result.timed_out else f"could not run (exit {result.exit_code})"
            return Parse(None, f"the syntax check `{line}` {why}: {result.output.strip()[:300]}")
        if result.exit_code == 0:
            return Parse(True)
        output = result.output.strip()
        more = f"\n[... {len(output) - CHECKER_OUTPUT:,} more characters]" if len(output) > CHECKER_OUTPUT else ""
        return Parse(False, f"`{line}` exited {result.exit_code}:\n{output[:CHECKER_OUTPUT]}{more}")

    def write(self, rel: str, target: Path, data: bytes, tool: str) -> str:
        """Write `data` to `target` unless that breaks a file that parsed (a new file counts as one that did).
        Returns a note for the tool's answer ("" when there is nothing to say). Refused, or on any error, the
        file is left as it was."""
        before = target.read_bytes() if target.is_file() else None
        accepted = False
        try:
            note = self._judge(rel, target, data, before, tool)
            accepted = True
        finally:
            if accepted:
                target.write_bytes(data)
            elif before is not None:
                target.write_bytes(before)
            else:
                target.unlink(missing_ok=True)
        return note

    def _judge(self, rel: str, target: Path, data: bytes, before: bytes | None, tool: str) -> str:
        after = self.check(rel, target, data)
        if after is None or after.ok:
            return ""
        if after.ok is None:
            return f"\nnote: {after.detail}; the file was written unchecked"
        earlier = self.check(rel, target, before) if before is not None else Parse(True)
        if earlier is not None and earlier.ok is False:
            return (f"\nnote: {rel} still does not parse ({_first_line(after.detail)}); it did not before this "
                    "change either: fix it before you call done")
        what = "a new file that does not parse" if before is None else "a syntax error in a file that parsed"
        raise ToolRefused(f"{tool} {rel}: refused: it would leave {what}. {after.detail}\nNothing was written. "
                          f"Correct the content (a bracket, quote or block left open? the indentation?) and call "
                          f"{tool} again; read_file shows the file as it is.")


def python_parse(rel: str, data: bytes) -> Parse:
    try:
        error = python_syntax_error(data, rel)
    except (RecursionError, MemoryError):  # nested too deep for the compiler here: it cannot tell
        return Parse(None, "the Python compiler gave up on it (nested too deeply)")
    if error is None:
        return Parse(True)
    if not isinstance(error, SyntaxError) or not error.lineno:
        return Parse(False, f"Python cannot compile it: {error}")
    lines = split_lines(data.decode("utf-8", errors="replace"))
    where = f"line {error.lineno}" + (f", column {error.offset}" if error.offset else "")
    shown = ""
    if 1 <= error.lineno <= len(lines):
        shown = "\n" + numbered(lines, max(1, error.lineno - 1), min(len(lines), error.lineno + 1))
    return Parse(False, f"Python {python_version()} reports a syntax error at {where}: {error.msg}{shown}")


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]

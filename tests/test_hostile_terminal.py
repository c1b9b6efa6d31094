"""Hostile text on the way to a terminal: what agents, models and the repository wrote is shown, never obeyed.

A scripted hostile team writes a file, a summary, a review and a memory note full of terminal control sequences
(cursor up, erase line, concealed text, an OSC 52 clipboard write, a CSI as one C1 byte, a bidi override, CR,
backspace, DEL). Every command a person reads them with runs as the user runs it, and what reached the terminal
is asserted: no raw control character from the content, and the content's visible form instead. JSON output
keeps the exact data.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files, git
from gitteam.terminal import json_text, one_line, visible
from scripts import (
    approve,
    call,
    cli,
    coder_writes,
    done,
    finding,
    only_run,
    plan_turn,
    script,
    script_path,
    spec,
    subtask,
    turn,
    write_script,
)

# Cursor up, erase line, concealed text, a clipboard write (OSC 52, ended by BEL), a bidi override, CSI as the
# one C1 byte 0x9b, and CR, backspace, DEL that overwrite what was printed.
HOSTILE = ("up\x1b[3A erase\x1b[2K conceal\x1b[8mHIDDEN\x1b[0m clip\x1b]52;c;cm0gLXJmIH4=\x07 "
           "bidi\u202eEVIL\u202c csi\x9b2J cr\rback\x08del\x7f")
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c", "\r", "\x08", "\x7f")
SHOWN = ("up^[[3A", "erase^[[2K", "conceal^[[8mHIDDEN^[[0m", "clip^[]52;c;cm0gLXJmIH4=^G",
         "bidi<U+202E>EVIL<U+202C>", "csi<U+009B>2J", "cr^Mback^Hdel^?")


def assert_shown(output: str, label: str) -> None:
    """The content reached the terminal visibly, and none of its control characters did."""
    for char in RAW:
        assert char not in output, (label, repr(char), output)
    for form in SHOWN:
        assert form in output, (label, form, output)


def hostile_script() -> dict[str, Any]:
    return script(
        planner=[plan_turn([subtask("change", ["src/evil.txt"])], summary=f"plan {HOSTILE}")],
        coder={"change": [turn(coder_writes("src/evil.txt", f"line {HOSTILE}\n"),
                               call("remember", content=f"note {HOSTILE}", tags=["hostile"])),
                          done(f"summary {HOSTILE}")]},
        reviewer={"*": [approve(f"review {HOSTILE}", [finding("src/evil.txt", f"finding {HOSTILE}", "minor", 1)])]},
    )


@pytest.fixture
def hostile_run(repo: Path) -> tuple[Path, str, subprocess.CompletedProcess[str]]:
    """A merged run of the hostile team, started with `gitteam run --yes` as a user types it."""
    path = write_script(script_path(repo), hostile_script())
    proc = cli(repo, "run", f"task {HOSTILE}", "--model", spec(path), "--yes")
    assert proc.returncode == 0, proc.stderr
    return repo, only_run(repo), proc


# --- the rule itself ------------------------------------------------------------------------------------------

def test_visible_shows_every_control_and_bidi_character_and_keeps_the_layout() -> None:
    assert visible(HOSTILE) == " ".join(SHOWN)
    assert visible("a\n\tb") == "a\n\tb"  # newlines and tabs keep their places
    assert one_line("a\nb\tc") == "a^Jb\tc"  # a one-line field cannot start a line of its own
    assert visible("plain, café, 日本, emoji \U0001f600") == "plain, café, 日本, emoji \U0001f600"
    assert visible("\ud800") == "<U+D800>"  # a lone surrogate cannot even be printed
    document = json.dumps({"text": HOSTILE}, ensure_ascii=False)
    assert json.loads(json_text(document)) == {"text": HOSTILE}  # JSON: the same data, escaped
    assert not any(char in json_text(document) for char in RAW)


# --- through the real CLI ---------------------------------------------------------------------------------------

def test_progress_of_a_hostile_run_shows_its_summaries_and_reasons(hostile_run: tuple[Path, str, Any]) -> None:
    _, _, proc = hostile_run
    assert_shown(proc.stdout + proc.stderr, "run progress")
    assert f"review {' '.join(SHOWN)}" in proc.stderr  # the review's line, on one line


def test_show_prints_the_diff_notes_and_findings_visibly(hostile_run: tuple[Path, str, Any]) -> None:
    repo, run, _ = hostile_run
    for args in (["show", run, "change"], ["show", run]):
        proc = cli(repo, *args)
        assert proc.returncode == 0, proc.stderr
        assert_shown(proc.stdout + proc.stderr, " ".join(args))
        assert f"+line {' '.join(SHOWN)}" in proc.stdout  # the file's line in the diff
    proc = cli(repo, "show", run, "change")
    assert f"finding {' '.join(SHOWN)}" in proc.stdout and f"review {' '.join(SHOWN)}" in proc.stdout
    # --json keeps the exact data (escaped the JSON way, never rewritten)
    data = cli(repo, "show", run, "change", "--json")
    assert not any(char in data.stdout for char in RAW)
    view = json.loads(data.stdout)
    assert f"+line {HOSTILE}" in view["diff"]
    assert any(n.get("review", {}).get("summary") == f"review {HOSTILE}" for n in view["notes"])


def test_status_cost_memory_and_backlog_show_the_text_visibly(hostile_run: tuple[Path, str, Any]) -> None:
    repo, run, _ = hostile_run
    for args in (["status"], ["status", run], ["memory", "list"], ["memory", "search", "note"], ["backlog"],
                 ["cost"], ["cost", run]):
        proc = cli(repo, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        output = proc.stdout + proc.stderr
        for char in RAW:
            assert char not in output, (args, repr(char), output)
    assert f"finding {' '.join(SHOWN)}" in cli(repo, "status", run).stdout
    assert f"task {SHOWN[0]}" in cli(repo, "status").stdout  # the task, in the run's line
    listed = cli(repo, "memory", "list").stdout
    assert f"note {' '.join(SHOWN)}" in listed
    assert f"note {' '.join(SHOWN)}" in cli(repo, "memory", "search", "note").stdout
    assert f"finding {' '.join(SHOWN[:-1])} cr" in cli(repo, "backlog").stdout  # its first line: up to the CR
    entries = json.loads(cli(repo, "memory", "list", "--json").stdout)
    note = next(e for e in entries if e["content"] == f"note {HOSTILE}")  # exact data in JSON
    shown = cli(repo, "memory", "show", note["id"])
    assert shown.returncode == 0, shown.stderr
    assert_shown(shown.stdout, "memory show")


def test_plan_prints_the_planners_text_visibly(repo: Path) -> None:
    data = script(planner=[plan_turn([{**subtask("change", ["src/app.py"]), "title": f"title {HOSTILE}"}],
                                     summary=f"plan {HOSTILE}")], coder={})
    proc = cli(repo, "plan", "do it", "--model", spec(write_script(script_path(repo), data)))
    assert proc.returncode == 0, proc.stderr
    assert_shown(proc.stdout + proc.stderr, "plan")
    assert f"plan {' '.join(SHOWN)}" in proc.stdout and f"title {' '.join(SHOWN)}" in proc.stdout


def test_the_one_line_error_shows_what_the_repository_wrote(repo: Path) -> None:
    """A repository's `.gitteam.toml` names itself in the error: a section name is repository text."""
    commit_files(repo, {".gitteam.toml": '["bad\\u001b[2J\\u001b]52;c;eA==\\u0007key"]\nx = 1\n'})
    proc = cli(repo, "plan", "do it", "--model", "replay:demo")
    assert proc.returncode == 2, proc.stderr
    assert not any(char in proc.stderr for char in RAW), proc.stderr
    assert "bad^[[2J^[]52;c;eA==^Gkey" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- the approval prompt, at a real terminal ------------------------------------------------------------------

DOWN, ENTER = b"\x1b[B", b"\r"


class Terminal:
    """gitteam in a pseudo-terminal: what it wrote to the terminal, and keys typed into it."""

    def __init__(self, root: Path, *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "250", "LINES": "50",
               "GITTEAM_PAGER": "cat"}  # the diff as the terminal gets it, not as a pager redraws it
        self.proc = subprocess.Popen([sys.executable, "-m", "gitteam", *args], cwd=root, stdin=slave,
                                     stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, start: int = 0, guard: float = 120.0) -> int:
        """Read until `needle` appears at or after `start`; the guard only stops a hung test."""
        until = time.monotonic() + guard
        while self.output.find(needle, start) < 0:
            assert time.monotonic() < until and self._read(1.0) is not None, (needle, self.output[-3000:])
        return self.output.find(needle, start)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, guard: float = 120.0) -> int:
        """Everything gitteam wrote until it closed the terminal; its exit code."""
        until = time.monotonic() + guard
        while self._read(0.2) is not None:
            assert time.monotonic() < until, self.output[-3000:]
        os.close(self.master)
        return self.proc.wait(timeout=guard)

    def _read(self, timeout: float) -> bytes | None:
        """What arrived within `timeout` (b"" for nothing yet); None once every writer closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return None
        self.output += data
        return data or None


def test_the_approval_prompts_diff_shows_the_content_visibly(repo: Path) -> None:
    path = write_script(script_path(repo), hostile_script())
    term = Terminal(repo, "run", "do it", "--model", spec(path))
    prompt = term.read_until(b"Fast-forward main")
    term.type(DOWN + DOWN + ENTER)  # approve, reject, show diff
    diff = term.read_until(b"+line up^[[3A", prompt)
    term.read_until(b"Fast-forward main", diff)  # asked again after the diff
    term.type(DOWN + ENTER)  # reject
    assert term.finish() == 5, term.output[-3000:]
    shown = term.output.decode("utf-8", "replace")
    assert f"+line {' '.join(SHOWN)}" in shown
    # the terminal got gitteam's own styling and the prompt's drawing, but none of the content's sequences
    for raw in (b"up\x1b[3A", b"erase\x1b[2K", b"\x1b[8mHIDDEN", b"\x1b]52;", "\u202e".encode(), "\x9b".encode(),
                b"cr\rback", b"back\x08", b"del\x7f", b"\x07"):
        assert raw not in term.output, raw
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", "HEAD")  # rejected: main did not move


def test_review_shows_the_reviewers_text_visibly_and_keeps_json_exact(repo: Path) -> None:
    commit_files(repo, {"src/evil.txt": f"line {HOSTILE}\n"})
    data = {"gitteam_replay": 1, "reviewer": {"*": [
        call("submit_review", decision="REQUEST_CHANGES", summary=f"review {HOSTILE}",
             findings=[finding("src/evil.txt", f"finding {HOSTILE}", "major", 1, f"line {HOSTILE}")])]}}
    reviewer = spec(write_script(script_path(repo), data))
    proc = cli(repo, "review", "--base", "HEAD~1", "--reviewer", reviewer)
    assert proc.returncode == 0, proc.stderr
    assert_shown(proc.stdout + proc.stderr, "review --format text")
    assert f"finding {' '.join(SHOWN)}" in proc.stdout
    proc = cli(repo, "review", "--base", "HEAD~1", "--reviewer", reviewer, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert not any(char in proc.stdout for char in RAW)
    verdict = json.loads(proc.stdout)
    assert verdict["summary"] == f"review {HOSTILE}"
    assert any(f["message"] == f"finding {HOSTILE}" for f in verdict["findings"])

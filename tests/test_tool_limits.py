"""Limits inside tools: a search cannot hang on a hostile pattern, and an agent's time limit holds during every
tool call (a search, a command), not only between model calls.

Time bounds are measured against a harmless twin (the same search or run with a harmless pattern or command),
never against fixed timeouts: the bound is the twin's time plus the limit under test plus slack.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from conftest import commit_files
from gitteam.git import find_repository
from gitteam.models.base import ToolCall
from gitteam.roles.tools import CallLimits, CommitView, Toolbox, read_tools
from gitteam.run.context import RunResult
from scripts import (
    blob,
    call,
    coder_runs,
    coder_writes,
    done,
    plan_turn,
    run_state,
    script,
    start,
    subtask,
    turn,
)

SLACK = 3.0  # seconds: process start-up and a loaded machine, never the limit under test
# Lines that cost PCRE about 2^18 steps each for `(x+x+)+[yz]`, just under its match limit: many of them take
# far longer than any limit here, and no single one makes the engine give up.
BACKTRACKING = ("x" * 18 + "\n") * 40_000
LONG_LINE = "x" * 100_000 + "\n"  # the case: one long line and `(x+x+)+y`
HOSTILE, HARMLESS = "(x+x+)+[yz]", "xxx[yz]"


def searcher(repo: Path) -> Toolbox:
    return Toolbox(read_tools(CommitView(find_repository(repo), "HEAD"), None, "planner", "planner"))


def timed_search(box: Toolbox, limits: CallLimits, **args: str) -> tuple[float, str]:
    started = time.monotonic()
    result = box.execute(ToolCall("1", "search", dict(args)), limits)
    assert not result.is_error, result.text
    return time.monotonic() - started, result.text


def test_a_backtracking_search_stops_at_its_time_limit_and_says_so(repo: Path) -> None:
    commit_files(repo, {"data/lines.txt": BACKTRACKING, "data/long.txt": LONG_LINE, "src/lib.py": "x = 'xxxy'\n"})
    box = searcher(repo)
    limit = 1.0
    twin, found = timed_search(box, CallLimits(None, limit), pattern=HARMLESS)
    assert found == "src/lib.py:1: x = 'xxxy'"
    took, text = timed_search(box, CallLimits(None, limit), pattern=HOSTILE, glob="lines.txt")
    assert took <= twin + limit + SLACK, (took, twin)
    assert "search stopped early at the search time limit of 1 s" in text and "narrow the pattern" in text
    # the pattern on one long line: answered (PCRE finds no `y` to match) within the same bound
    took, text = timed_search(box, CallLimits(None, limit), pattern="(x+x+)+y", glob="long.txt")
    assert took <= twin + limit + SLACK, (took, twin)
    # and where PCRE gives up on a long line, the model is told so rather than given a silent "no matches"
    took, text = timed_search(box, CallLimits(None, limit), pattern=HOSTILE, glob="long.txt")
    assert took <= twin + limit + SLACK, (took, twin)
    assert "search stopped early" in text


def test_a_search_is_cut_at_the_agents_remaining_time(repo: Path) -> None:
    commit_files(repo, {"data/lines.txt": BACKTRACKING})
    box = searcher(repo)
    twin, _ = timed_search(box, CallLimits(None, 60.0), pattern=HARMLESS)
    left = 1.0
    took, text = timed_search(box, CallLimits(time.monotonic() + left, 60.0), pattern=HOSTILE)
    assert took <= twin + left + SLACK, (took, twin)
    assert "search stopped early at the time left to this agent" in text


def test_search_keeps_its_contract_paths_line_numbers_and_a_cap(repo: Path) -> None:
    lines = "".join(f"NEEDLE {n} " + "y" * 5000 + "\n" for n in range(400))
    commit_files(repo, {"a/many.txt": lines, "b/one.py": "nothing\nNEEDLE here\n"})
    box = searcher(repo)
    _, text = timed_search(box, CallLimits(), pattern=r"NEEDLE \d+", glob="*.txt")
    shown = text.splitlines()
    assert shown[0].startswith("a/many.txt:1: NEEDLE 0 yyy") and shown[0].endswith(" [... line cut]")
    assert all(len(line) < 400 for line in shown)  # a line of the file is 5,000 characters
    assert shown[-1] == "... more matches; narrow the pattern or glob"
    assert len(shown) == 151
    _, text = timed_search(box, CallLimits(), pattern=r"NEEDLE\s+here")
    assert text == "b/one.py:2: NEEDLE here"


# --- the agent's time limit, through the real pipeline ----------------------------------------------------------

def timed_run(repo: Path, first: dict[str, object], config: dict[str, object],
              content: str = "def main():\n    return 2\n") -> tuple[float, RunResult]:
    """A run whose coder makes `first` call, then (in the same turn) writes `content` and finishes."""
    data = script(
        planner=[plan_turn([subtask("change", ["src/app.py"])])],
        coder={"change": [turn(first, coder_writes("src/app.py", content)), done("done")]},
    )
    started = time.monotonic()
    result = start(repo, data, config=config)
    return time.monotonic() - started, result


LATE = "def main():\n    return 3\n"  # what the hostile runs' coder writes after the long call


def assert_cut_at_the_time_limit(repo: Path, result: RunResult) -> None:
    assert result.exit_code == 1, result.message
    agent = run_state(repo, result.run).agents["change"]
    assert agent.status == "failed" and "time limit reached" in (agent.reason or ""), agent
    # the write in the same turn came after the time ran out: it never happened (work is committed on failure)
    assert blob(repo, f"gitteam/{result.run}/change", "src/app.py") != LATE.encode()
    assert blob(repo, "main", "src/app.py") != LATE.encode()


def test_the_agents_time_limit_holds_during_a_search(repo: Path) -> None:
    commit_files(repo, {"data/lines.txt": BACKTRACKING})
    limit = 5.0
    config: dict[str, object] = {"limits.max_seconds": limit, "limits.search_seconds": 600.0}
    twin, result = timed_run(repo, call("search", pattern=HARMLESS), config)
    assert result.exit_code == 0, result.message
    took, result = timed_run(repo, call("search", pattern=HOSTILE), config, LATE)
    assert took <= twin + limit + SLACK, (took, twin)
    assert_cut_at_the_time_limit(repo, result)


def test_the_agents_time_limit_holds_during_a_command(repo: Path) -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
    harmless = [sys.executable, "-c", "pass"]
    limit = 5.0
    config: dict[str, object] = {"limits.max_seconds": limit, "commands.timeout": 900.0,
                                 "commands.allowed": [shlex.join(sleep), shlex.join(harmless)]}
    twin, result = timed_run(repo, coder_runs(shlex.join(harmless)), config)
    assert result.exit_code == 0, result.message
    took, result = timed_run(repo, coder_runs(shlex.join(sleep)), config, LATE)
    assert took <= twin + limit + SLACK, (took, twin)
    assert_cut_at_the_time_limit(repo, result)

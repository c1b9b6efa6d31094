"""Control characters in paths: the one path resolver refuses C0 and C1 controls, DEL and bidi overrides in any
component, so no agent tool, plan or ownership can name such a file, and nothing with such a name lands.

A file named `src/x\\n.py` breaks every line-based tool that lists it (and every person reading `git status`);
one with an escape sequence rewrites the terminal that lists it; `\\u202e` makes `evil\\u202eyp.txt` read as
`eviltxt.py`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import commit_files
from gitteam.git import find_repository
from gitteam.locks.ownership import Ownership
from gitteam.locks.paths import PathRefused, normalize_repo_path
from gitteam.models.base import ToolCall
from gitteam.roles.tools import CommitView, Toolbox, read_tools
from scripts import (
    blob,
    call,
    coder_runs,
    coder_writes,
    done,
    events,
    plan_turn,
    refused,
    script,
    start,
    subtask,
    turn,
)

HOSTILE_NAMES = ["src/x\n.py", "src/x\r.py", "src/\x1b[2Jx.py", "src/x\x9b2J.py", "src/evil\u202eyp.txt",
                 "src/x\u2066.py", "src/del\x7f.py", "src/tab\t.py", "src/bell\x07/y.py"]


def tree(root: Path, rev: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", rev], cwd=root, capture_output=True,
                         check=True)
    return [name.decode("utf-8", "surrogateescape") for name in out.stdout.split(b"\0") if name]


@pytest.mark.parametrize("path", HOSTILE_NAMES)
def test_the_resolver_refuses_controls_and_bidi_characters_in_any_component(path: str) -> None:
    with pytest.raises(PathRefused, match="control or bidirectional character"):
        normalize_repo_path(path)
    assert not Ownership(["src/"]).owns(path)  # an owned directory does not own such a name
    with pytest.raises(PathRefused):
        Ownership([path])


def test_printable_names_still_resolve() -> None:
    assert normalize_repo_path("src/café/日本語 file.py") == "src/café/日本語 file.py"


def test_a_coders_write_to_such_a_name_is_refused_and_nothing_of_it_lands(repo: Path) -> None:
    make = [sys.executable, "-c", "open('src/made\\n.py', 'w').write('x = 1\\n')"]
    data = script(
        planner=[plan_turn([subtask("change", ["src/"])])],
        coder={"change": [turn(*(coder_writes(path, "x = 1\n") for path in HOSTILE_NAMES),
                               coder_writes("src/ok.py", "OK = 1\n"), coder_runs(shlex.join(make))),
                          done("wrote src/ok.py")]},
    )
    result = start(repo, data, config={"commands.allowed": [shlex.join(make)]})
    assert result.state == "merged", result.message
    refusals = [e for e in refused(repo, result.run, "change") if e["tool"] == "write_file"]
    assert len(refusals) == len(HOSTILE_NAMES)
    assert all("control or bidirectional character" in e["error"] for e in refusals), refusals
    assert blob(repo, "main", "src/ok.py") == b"OK = 1\n"  # the legitimate edit landed
    landed = tree(repo, "main")
    assert sorted(landed) == ["README.md", "src/app.py", "src/ok.py"], landed
    # the file its command made is left behind as a stray, never committed
    committed = [e for e in events(repo, result.run, "agent_committed") if e["agent"] == "change"]
    assert any("src/made\n.py" in e.get("stray", []) for e in committed), committed
    assert not any("made" in name for name in tree(repo, f"gitteam/{result.run}/change"))


def test_a_plan_that_lists_such_a_file_is_refused(repo: Path) -> None:
    bad = plan_turn([subtask("change", ["src/app.py", "src/x\n.py"])])
    data = script(
        planner=[bad, plan_turn([subtask("change", ["src/app.py"])])],
        coder={"change": [coder_writes("src/app.py", "def main():\n    return 2\n"), done("returns 2")]},
    )
    result = start(repo, data)
    assert result.state == "merged", result.message
    refusal = [e for e in refused(repo, result.run) if e["tool"] == "submit_plan"]
    assert len(refusal) == 1 and "control or bidirectional character" in refusal[0]["error"], refusal
    planned = events(repo, result.run, "plan")[-1]["plan"]["subtasks"]
    assert [s["files"] for s in planned] == [["src/app.py"]]
    assert tree(repo, "main") == ["README.md", "src/app.py"]


def test_the_planner_cannot_own_such_a_file_even_as_its_only_file(repo: Path) -> None:
    """Every attempt lists it: the run fails before any coder starts, and nothing lands."""
    bad = plan_turn([subtask("change", ["src/\u202eyp.txt"])])
    data = script(planner=[bad, bad, bad], coder={"change": [call("done", summary="never")]})
    head = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True).stdout
    result = start(repo, data)
    assert result.exit_code != 0 and result.state != "merged", result.message
    assert not events(repo, result.run, "agent_started")
    assert subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True).stdout == head


def test_a_tracked_file_with_such_a_name_is_neither_read_nor_searched(repo: Path) -> None:
    """The repository may already hold one: agents see it listed, but no tool opens it."""
    commit_files(repo, {"data/x\x1b[2J.txt": "NEEDLE in a hostile name\n", "data/ok.txt": "NEEDLE here\n"})
    box = Toolbox(read_tools(CommitView(find_repository(repo), "HEAD"), None, "planner", "planner"))
    found = box.execute(ToolCall("1", "search", {"pattern": "NEEDLE"}))
    assert found.text == "data/ok.txt:1: NEEDLE here", found.text
    read = box.execute(ToolCall("2", "read_file", {"path": "data/x\x1b[2J.txt"}))
    assert read.is_error and "control or bidirectional character" in read.text

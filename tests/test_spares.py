"""The first wave's worktrees made while the planner answers (run/spares.py): a run whose worktrees are full
checkouts makes `max_agents` (at most 8) of its start beside the planner's call; each subtask of the first wave
takes one (its branch made, the checkout moved to the subtask's place: nothing checked out again), and those the
plan does not need are deleted. A worktree keeps the admin dir git named when it was made, which says
which it was."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import threading
from pathlib import Path

import pytest

from conftest import git
from gitteam.models.replay import ReplayModel
from gitteam.run import orchestrator
from gitteam.run.context import RunOptions
from scripts import call, done, events, plan_turn, script, start, subtask


def writers(ids: str, later: str = "") -> dict[str, object]:
    """Subtasks `ids` in the first wave, each writing its own file; `later` ones depend on the first."""
    plan = [subtask(x, [f"{x}.txt"]) for x in ids] + [subtask(x, [f"{x}.txt"], depends_on=[ids[0]]) for x in later]
    return script([plan_turn(plan)], {x: [call("write_file", path=f"{x}.txt", content=f"{x}\n"), done(x)]
                                      for x in ids + later})


def admin_name(worktree: Path) -> str:
    return Path(git(worktree, "rev-parse", "--absolute-git-dir")).name


def kept_worktrees(repo: Path) -> list[Path]:
    listed = git(repo, "worktree", "list", "--porcelain").splitlines()
    return [Path(line.removeprefix("worktree ")) for line in listed if line.startswith("worktree ")][1:]


def test_the_first_waves_subtasks_take_the_checkouts_made_while_planning_and_the_rest_go(repo: Path) -> None:
    result = start(repo, writers("ab", later="c"), RunOptions(yes=True, keep=True, max_agents=3))
    assert result.state == "merged", result.message
    assert [git(repo, "show", f"main:{x}.txt") for x in "abc"] == ["a", "b", "c"]
    places = {e["agent"]: Path(e["worktree"]) for e in events(repo, result.run, "agent_started")}
    assert sorted(kept_worktrees(repo)) == sorted(places.values())  # the third spare went, and was pruned
    assert not list(places["a"].parent.glob(".spare-*"))
    for agent, place in places.items():
        assert place.name == agent
        assert git(place, "symbolic-ref", "HEAD") == f"refs/heads/gitteam/{result.run}/{agent}"
        assert git(place, "status", "--porcelain") == ""
        assert (place / "README.md").read_text() == "# project\n"  # a whole checkout, as before
    assert {admin_name(places[x]) for x in "ab"} <= {"-spare-1", "-spare-2", "-spare-3"}  # made while planning
    assert admin_name(places["c"]) == "c"  # the second wave starts from what the first merged: its own


def test_sparse_worktrees_get_no_spares(repo: Path) -> None:
    result = start(repo, writers("ab"), RunOptions(yes=True, keep=True, max_agents=2),
                   config={"worktrees.mode": "sparse"})
    assert result.state == "merged", result.message
    places = [Path(e["worktree"]) for e in events(repo, result.run, "agent_started")]
    assert sorted(kept_worktrees(repo)) == sorted(places)
    assert sorted(admin_name(place) for place in places) == ["a", "b"]


def test_a_run_makes_at_most_eight_spares_and_leaves_none(repo: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    shim, log = tmp_path / "shim", tmp_path / "git.log"  # a git on PATH that logs what gitteam asks of it
    shim.mkdir()
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("git")} "$@"\n')
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    result = start(repo, writers("a"), RunOptions(yes=True, max_agents=12))
    assert result.state == "merged", result.message
    made = [line for line in log.read_text().splitlines() if "worktree add" in line and "/.spare-" in line]
    assert len(made) == 8, made
    assert kept_worktrees(repo) == [] and git(repo, "show", "main:a.txt") == "a"



def test_the_spares_are_begun_once_the_planners_request_is_out(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not while the planner's prompt is built: their checkouts would take the CPU and the disk it needs."""
    def spare_threads() -> list[str]:
        return [thread.name for thread in threading.enumerate() if thread.name.startswith("spare")]

    seen: dict[str, list[str]] = {}
    overview = orchestrator.repository_overview

    def building(*args: object, **kwargs: object) -> object:
        seen["building the prompt"] = spare_threads()
        return overview(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(orchestrator, "repository_overview", building)
    result = start(repo, writers("ab"), RunOptions(yes=True, keep=True, max_agents=2))
    assert result.state == "merged", result.message
    assert seen["building the prompt"] == []
    assert {admin_name(Path(e["worktree"])) for e in events(repo, result.run, "agent_started")} == \
        {"-spare-1", "-spare-2"}


WAIT_FOR_THE_FIRST_REQUEST = r'''
import os, pathlib, sys, time
agent = os.environ["GITTEAM_AGENT"]
if agent not in sys.argv[2:]:
    sys.exit(0)  # the integrated result's checkout: no coder of its own
marker = pathlib.Path(sys.argv[1]) / agent
deadline = time.monotonic() + 30
while not marker.exists():
    if time.monotonic() > deadline:
        sys.exit("the coder's first request had not gone out while its worktree was being set up")
    time.sleep(0.02)
'''


def test_a_coders_first_request_goes_out_while_its_worktree_is_set_up(repo: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The setup command waits until its coder's first model request has gone out: it ends only because the
    request was made while the worktree was being set up; the coder's tools then ran in the ready worktree."""
    requests = tmp_path / "requests"
    requests.mkdir()
    answer = ReplayModel.complete

    def noting(self: ReplayModel, *args: object, **kwargs: object) -> object:
        context = kwargs["context"]
        if context.role == "coder":  # type: ignore[attr-defined]
            (requests / context.agent).touch()  # type: ignore[attr-defined]
        return answer(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ReplayModel, "complete", noting)
    (repo / "tools").mkdir()
    (repo / "tools" / "wait.py").write_text(WAIT_FOR_THE_FIRST_REQUEST)
    git(repo, "add", "tools/wait.py")
    git(repo, "commit", "-q", "-m", "a setup that waits for the coder")
    setup = f"{shlex.quote(sys.executable)} tools/wait.py {shlex.quote(str(requests))} a b"
    result = start(repo, writers("ab"), RunOptions(yes=True, max_agents=2),
                   config={"run.setup": setup, "sandbox.read_write": (str(requests),)})
    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert [git(repo, "show", f"main:{x}.txt") for x in "ab"] == ["a", "b"]

"""The first wave's worktrees made while the planner answers (run/spares.py): a run whose worktrees are full
checkouts makes `max_agents` (at most 8) of its start beside the planner's call; each subtask of the first wave
takes one (its branch made, the checkout moved to the subtask's place: nothing checked out again), and those the
plan does not need are deleted. A worktree keeps the admin dir git named when it was made, which says
which it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import git
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

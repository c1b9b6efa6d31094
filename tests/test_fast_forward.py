"""`Repository.fast_forward` never moves a branch to a commit that does not descend from where it was.

The guard is one `is_ancestor` call: without it a branch that is not checked out is simply set to any commit
(update_ref's compare-and-swap only checks the old value), and a checked-out one is refused for the wrong
reason or not at all. Each case is checked both ways a commit can fail to descend: a commit of another line
of history, and an older commit of the branch (a rewind).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.git import Repository, find_repository


def status(path: Path) -> str:
    args = ["git", "status", "--porcelain", "--untracked-files=all"]
    return subprocess.run(args, cwd=path, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def r(repo: Path) -> Repository:
    return find_repository(repo)


def history(repo: Path) -> dict[str, str]:
    """main: initial - one - two; other: initial - elsewhere (main is checked out, at two)."""
    initial = git(repo, "rev-parse", "HEAD")
    one = commit_files(repo, {"one.txt": "1\n"}, "one")
    two = commit_files(repo, {"two.txt": "2\n"}, "two")
    git(repo, "checkout", "-q", "-b", "other", initial)
    elsewhere = commit_files(repo, {"elsewhere.txt": "e\n"}, "elsewhere")
    git(repo, "checkout", "-q", "main")
    return {"initial": initial, "one": one, "two": two, "elsewhere": elsewhere}


NOT_DESCENDANTS = ["elsewhere", "one"]  # another line of history; an ancestor of the branch (a rewind)


@pytest.mark.parametrize("new", NOT_DESCENDANTS)
def test_a_branch_not_checked_out_is_not_moved_to_a_commit_that_does_not_descend(
        r: Repository, repo: Path, new: str) -> None:
    commits = history(repo)
    git(repo, "branch", "topic", commits["two"])  # at two, checked out nowhere
    result = r.fast_forward("topic", commits[new], commits["two"])
    assert not result.moved
    assert result.checked_out is None
    assert "does not descend" in result.detail
    assert r.rev_parse("topic") == commits["two"]


@pytest.mark.parametrize("new", NOT_DESCENDANTS)
def test_a_checked_out_branch_is_not_moved_to_a_commit_that_does_not_descend(
        r: Repository, repo: Path, new: str) -> None:
    commits = history(repo)
    (repo / "README.md").write_text("the user's edit\n")
    before = status(repo)
    result = r.fast_forward("main", commits[new], commits["two"])
    assert not result.moved
    assert "does not descend" in result.detail  # refused up front, not by whatever git merge makes of it
    assert git(repo, "rev-parse", "HEAD") == commits["two"]
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert status(repo) == before
    assert (repo / "two.txt").exists() and not (repo / "elsewhere.txt").exists()


@pytest.mark.parametrize("new", NOT_DESCENDANTS)
def test_a_branch_checked_out_in_a_linked_worktree_is_not_moved_to_a_commit_that_does_not_descend(
        r: Repository, repo: Path, tmp_path: Path, new: str) -> None:
    commits = history(repo)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(linked), commits["two"])
    result = r.fast_forward("topic", commits[new], commits["two"])
    assert not result.moved and "does not descend" in result.detail
    assert git(linked, "rev-parse", "HEAD") == commits["two"]
    assert status(linked) == ""


def test_the_same_calls_move_a_branch_to_a_descendant(r: Repository, repo: Path, tmp_path: Path) -> None:
    """The refusals above are the guard's, not a fast-forward that never works: from `one`, `two` descends."""
    commits = history(repo)
    git(repo, "branch", "topic", commits["one"])
    assert r.fast_forward("topic", commits["two"], commits["one"]).moved
    assert r.rev_parse("topic") == commits["two"]
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "linked", str(linked), commits["one"])
    assert r.fast_forward("linked", commits["two"], commits["one"]).moved
    assert git(linked, "rev-parse", "HEAD") == commits["two"]

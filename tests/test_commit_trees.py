"""Commits built from the changed paths alone (gittree.py through Repository.commit_paths and snapshot): the
tree is the one git's own index would write for the same files, in full and sparse worktrees, whatever the
shape of the change; the worktree's index follows without growing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.cone import Cone
from gitteam.errors import GitteamError
from gitteam.git import Repository, find_repository

AUTHOR = ("Agent One", "agent1@example.com")
FILES = {
    "a.txt": "a dot\n", "a-b": "a dash\n", "a0": "a zero\n", "a/b.py": "B = 1\n", "a/c/d.py": "D = 1\n",
    "dir/x": "x\n", "lone/only.txt": "alone\n", "file": "a file that becomes a directory\n",
    "deep/er/est/leaf.py": "LEAF = 1\n", "run.sh": "#!/bin/sh\n",
}


def index_tree(worktree: Path, paths: list[str]) -> str:
    """What git's own index writes for HEAD with `paths` as on disk: a temporary index, `git add -A`."""
    env = {**os.environ, "GIT_INDEX_FILE": str(worktree.parent / f"{worktree.name}.index")}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=worktree, env=env, check=True)
    subprocess.run(["git", "add", "-A", "--sparse", "--", *paths], cwd=worktree, env=env, check=True)
    return subprocess.run(["git", "write-tree"], cwd=worktree, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def shaped(repo: Path) -> Repository:
    commit_files(repo, FILES, "a tree of many shapes")
    return find_repository(repo)


def change_every_shape(wt: Path) -> list[str]:
    """Adds, edits, deletions (one empties its directory), a file made a directory and a directory made a
    file, a mode change, a link, names that sort around a directory's; the paths to commit."""
    (wt / "a" / "b.py").write_text("B = 2\n")
    (wt / "a" / "c" / "new.py").write_text("NEW = 1\n")
    (wt / "a.b").write_text("sorts between a-b and a/\n")
    (wt / "lone" / "only.txt").unlink()
    (wt / "deep" / "er" / "est" / "leaf.py").unlink()
    (wt / "file").unlink()
    (wt / "file").mkdir()
    (wt / "file" / "inside.txt").write_text("now a directory\n")
    (wt / "dir" / "x").unlink()
    (wt / "dir").rmdir()
    (wt / "dir").write_text("now a file\n")
    (wt / "run.sh").chmod(0o755)
    (wt / "link").symlink_to("a/b.py")
    (wt / "new" / "nested" / "tree").mkdir(parents=True)
    (wt / "new" / "nested" / "tree" / "n.txt").write_text("n\n")
    return ["a/b.py", "a/c/new.py", "a.b", "lone/only.txt", "deep/er/est/leaf.py", "file", "file/inside.txt",
            "dir", "dir/x", "run.sh", "link", "new/nested/tree/n.txt", "a0"]


def test_a_commit_of_every_shape_of_change_has_the_tree_git_would_write(shaped: Repository, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    shaped.create_worktree(wt, "agent", "HEAD")
    paths = change_every_shape(wt)
    expected = [p for p in paths if p != "file"]  # git add takes the directory's files, not the directory
    want = index_tree(wt, expected)

    sha = shaped.commit_paths(wt, [p for p in paths if p != "file"], "every shape", AUTHOR)

    assert sha is not None and git(wt, "rev-parse", f"{sha}^{{tree}}") == want
    git(wt, "fsck", "--no-dangling", "--strict")  # every tree well formed, sorted, nothing missing
    listing = git(wt, "ls-tree", "-r", sha)
    assert "\tlone/" not in listing and "\tdeep/" not in listing  # emptied directories are gone
    assert "100755 blob" in git(wt, "ls-tree", sha, "run.sh") and "120000 blob" in git(wt, "ls-tree", sha, "link")
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""  # the index followed


def test_a_snapshot_builds_the_same_tree_and_moves_nothing(shaped: Repository, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    shaped.create_worktree(wt, "agent", "HEAD")
    head = git(wt, "rev-parse", "HEAD")
    paths = [p for p in change_every_shape(wt) if p != "file"]
    want = index_tree(wt, paths)
    before = git(wt, "status", "--porcelain", "--untracked-files=all")

    sha = shaped.snapshot(wt, paths, "left behind", AUTHOR)

    assert sha is not None and git(wt, "rev-parse", f"{sha}^{{tree}}") == want
    assert git(wt, "rev-parse", f"{sha}^") == head == git(wt, "rev-parse", "HEAD")
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == before


def test_deleting_every_file_leaves_an_empty_tree(repo: Path, tmp_path: Path) -> None:
    r = find_repository(repo)
    (repo / "README.md").unlink()
    (repo / "src" / "app.py").unlink()
    sha = r.commit_paths(repo, ["README.md", "src/app.py"], "empty", AUTHOR)
    assert sha is not None and git(repo, "ls-tree", "-r", sha) == ""
    assert git(repo, "status", "--porcelain") == ""


def test_a_path_git_refuses_is_a_one_line_error_and_commits_nothing(shaped: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    for bad in ("../outside", "a//b.py", ".git/config", "a/./b.py", "A/.GIT/x"):
        with pytest.raises(GitteamError, match="invalid path"):
            shaped.commit_paths(repo, [bad], "bad", AUTHOR)
    assert git(repo, "rev-parse", "HEAD") == head


def test_a_commit_in_a_sparse_worktree_keeps_its_index_sparse(shaped: Repository, repo: Path,
                                                              tmp_path: Path) -> None:
    many = {f"far/d{n}/f{m}.txt": f"{n} {m}\n" for n in range(30) for m in range(5)}
    commit_files(repo, many, "directories outside the cone")
    wt = tmp_path / "wt"
    shaped.create_worktree(wt, "agent", "HEAD", Cone.around(["a/b.py"]))
    index = shaped._dirs(wt)[0] / "index"
    sparse_entries = git(wt, "ls-files", "--sparse")
    (wt / "a" / "b.py").write_text("B = 3\n")
    (wt / "a" / "fresh.py").write_text("F = 1\n")

    sha = shaped.commit_paths(wt, ["a/b.py", "a/fresh.py"], "in the cone", AUTHOR)

    assert sha is not None and shaped.read_blob(sha, "a/fresh.py") == b"F = 1\n"
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    after = git(wt, "ls-files", "--sparse").splitlines()
    assert after == sorted([*sparse_entries.splitlines(), "a/fresh.py"])
    assert "far/" in after  # still one entry for the whole directory outside the cone
    assert index.stat().st_size < 4096


def test_an_unchanged_commit_is_none_and_writes_no_tree(shaped: Repository, repo: Path) -> None:
    objects = git(repo, "count-objects")
    assert shaped.commit_paths(repo, ["a/c/d.py", "a/b.py"], "nothing", AUTHOR) is None
    assert git(repo, "count-objects") == objects


def commands(calls: list[list[str]]) -> list[str]:
    """The git subcommand of each call (the first word after the options)."""
    names = []
    for args in calls:
        rest = args[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] == "-c" else rest[1:]
        names.append(rest[0] if rest else "")
    return names


def test_a_commit_reads_no_whole_tree_and_asks_git_five_times(shaped: Repository, tmp_path: Path,
                                                              started: list[list[str]]) -> None:
    wt = tmp_path / "wt"
    shaped.create_worktree(wt, "agent", "HEAD")
    (wt / "a" / "b.py").write_text("B = 2\n")
    shaped.commit_paths(wt, ["a/b.py"], "the first reads core.fileMode, once", AUTHOR)
    (wt / "a" / "c" / "d.py").write_text("D = 2\n")
    started.clear()
    assert shaped.commit_paths(wt, ["a/c/d.py"], "one file", AUTHOR) is not None
    # the blob, the trees on its way, the commit, HEAD's transaction, the index: no read-tree, write-tree,
    # ls-tree or reset of the whole tree, and HEAD read through the cat-file process already running
    assert commands(started) == ["hash-object", "mktree", "commit-tree", "update-ref", "update-index"]


def test_a_tree_is_listed_once_by_whatever_name(shaped: Repository, repo: Path, started: list[list[str]]) -> None:
    head = git(repo, "rev-parse", "HEAD")
    first = shaped.tracked_files("HEAD")
    assert first == sorted(["README.md", "src/app.py", *FILES])
    assert shaped.tracked_files(head) == first == shaped.tracked_files("main")
    first.append("changed by a caller")  # a caller's copy: the kept listing is not theirs to change
    assert shaped.tracked_files(f"{head}^{{tree}}") == first[:-1]
    commit_files(repo, {"later.txt": "later\n"})
    assert "later.txt" in shaped.tracked_files("HEAD")  # a new tree is listed anew
    assert commands(started).count("ls-tree") == 2
    with pytest.raises(GitteamError):
        shaped.tracked_files("no-such-rev")


def test_without_core_filemode_the_executable_bit_on_disk_is_not_trusted(repo: Path, tmp_path: Path) -> None:
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    git(repo, "add", "run.sh")
    git(repo, "commit", "-q", "-m", "an executable")
    git(repo, "config", "core.fileMode", "false")
    r = find_repository(repo)
    (repo / "run.sh").write_text("#!/bin/sh\necho changed\n")
    (repo / "run.sh").chmod(0o644)  # a file system that loses the bit: the committed mode stays
    (repo / "new.sh").write_text("#!/bin/sh\n")
    (repo / "new.sh").chmod(0o755)  # nor does a new file get one git would not trust
    sha = r.commit_paths(repo, ["run.sh", "new.sh"], "modes", AUTHOR)
    assert sha is not None
    assert git(repo, "ls-tree", sha, "run.sh").startswith("100755 ")
    assert git(repo, "ls-tree", sha, "new.sh").startswith("100644 ")

"""Repository.merge_chain: a chain of merges makes what `merge` and `update_ref`, one merge at a time, make.

Each case builds branches from one base with plumbing (a temporary index), merges them both ways onto two
copies of one branch, and compares the results: the trees, the parents and the messages of every merge, and
where a chain stopped. The merges gitmerge.py takes (disjoint files) are checked to be made without git's
`merge`; the others (deletions, overlapping paths, merges already made, unknown bases) to be left to it."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from conftest import git
from gitteam.git import Merging, Repository, find_repository

AUTHOR = ("gitteam", "gitteam@gitteam.invalid")
Change = str | None | tuple[str, str]  # content; None deletes; ("link", target) or ("exec", content)


@pytest.fixture
def r(repo: Path) -> Repository:
    files = {f"pkg{p}/mod{m}/f{n}.py": f"x = {p}{m}{n}\n" for p in range(3) for m in range(3) for n in range(3)}
    files.update({"top.txt": "top\n", "dir/a.txt": "a\n", "dir/sub/b.txt": "b\n"})
    return _seeded(repo, files)


def _seeded(repo: Path, files: dict[str, str]) -> Repository:
    branch_commit(repo, git(repo, "rev-parse", "HEAD"), dict(files), ref="refs/heads/main")
    git(repo, "reset", "-q", "--hard", "main")
    return find_repository(repo)


def branch_commit(repo: Path, parent: str, changes: dict[str, Change], message: str = "work",
                  ref: str | None = None) -> str:
    """A commit on `parent` with `changes`, made through a private index; `ref` moved to it when given."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "test-index")}

    def plumb(*args: str, data: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, input=data, capture_output=True, text=True,
                              check=True).stdout.strip()

    plumb("read-tree", parent)
    for path, change in changes.items():
        if change is None:
            plumb("update-index", "--force-remove", "--", path)
            continue
        mode, content = ("100644", change) if isinstance(change, str) else \
            ("120000" if change[0] == "link" else "100755", change[1])
        blob = plumb("hash-object", "-w", "--stdin", data=content)
        plumb("update-index", "--add", "--index-info", data=f"{mode} {blob}\t{path}\n")
    tree = plumb("write-tree")
    commit = plumb("commit-tree", tree, "-p", parent, "-m", message)
    (repo / ".git" / "test-index").unlink()
    if ref:
        git(repo, "update-ref", ref, commit)
    return commit


def one_at_a_time(r: Repository, ref: str, merges: list[Merging]) -> tuple[list[str], bool]:
    """What `merge` and `update_ref` make, merge after merge: (heads, stopped on a conflict)."""
    heads = []
    for merging in merges:
        old = r.rev_parse(ref)
        assert old is not None
        new = r.merge(old, merging.theirs, merging.message, AUTHOR)
        if new is None:
            return heads, True
        assert r.update_ref(ref, new, old)
        heads.append(new)
    return heads, False


def shape(repo: Path, commit: str) -> tuple[str, str, str, str]:
    """Tree, parents, message, author: what two merges made at different moments share but for their parents'
    own dates."""
    return (git(repo, "rev-parse", f"{commit}^{{tree}}"), git(repo, "log", "-1", "--format=%P", commit),
            git(repo, "log", "-1", "--format=%B", commit), git(repo, "log", "-1", "--format=%an <%ae>", commit))


def compare(r: Repository, repo: Path, start: str, merges: list[Merging], without_git: bool,
            monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], bool]:
    """Both ways from `start`; asserts they agree (and, `without_git`, that git's `merge` was never asked)."""
    git(repo, "update-ref", "refs/heads/slow", start)
    git(repo, "update-ref", "refs/heads/fast", start)
    slow, slow_conflict = one_at_a_time(r, "refs/heads/slow", merges)
    if without_git:
        def refused(*args: object) -> None:
            raise AssertionError("git's merge was asked for a merge of disjoint files")
        monkeypatch.setattr(Repository, "merge", refused)
    chain = r.merge_chain("refs/heads/fast", merges, AUTHOR)
    monkeypatch.undo()
    assert (len(chain.heads), chain.conflict, chain.moved) == (len(slow), slow_conflict, False)
    same = {start: start}  # a commit of the slow chain -> the fast chain's (merges differ by their dates)
    for fast_head, slow_head in zip(chain.heads, slow, strict=True):
        tree, parents, *rest = shape(repo, slow_head)
        assert shape(repo, fast_head) == (tree, " ".join(same.get(p, p) for p in parents.split()), *rest)
        same[slow_head] = fast_head
    assert git(repo, "rev-parse", "refs/heads/fast") == (chain.heads[-1] if chain.heads else start)
    assert git(repo, "fsck", "--no-dangling", "--no-progress") == ""
    return chain.heads, chain.conflict


def merges_of(repo: Path, base: str, branches: list[dict[str, Change]], bases: bool = True) -> list[Merging]:
    return [Merging(branch_commit(repo, base, changes, f"work {n}"), f"gitteam: merge t{n}\n\ngitteam-agent: t{n}\n",
                    base if bases else None) for n, changes in enumerate(branches, 1)]


def test_a_wave_of_disjoint_subtasks_merges_in_one_chain_as_git_would(r: Repository, repo: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    base = git(repo, "rev-parse", "main")
    branches: list[dict[str, Change]] = [
        {"pkg0/mod0/f0.py": "changed\n"},  # the first: a fast-forward, as git makes it
        {"pkg0/mod0/new.py": "new in a directory another changed\n", "pkg1/mod1/f1.py": "edit\n"},
        {"fresh/deep/dir/file.py": "a new directory\n"},
        {"pkg2/run.sh": ("exec", "#!/bin/sh\n"), "pkg2/link": ("link", "mod0/f0.py")},
        {"pkg2/mod2/f2.py": ("exec", "x = 222\n")},  # content and mode
        {"odd name \"quoted\" \\ é.txt": "spaces, quotes, a backslash, UTF-8\n", "tab\there": "a tab\n"},
        {"dir/sub/c.txt": "beside another's directory\n"},
    ]
    heads, _ = compare(r, repo, base, merges_of(repo, base, branches), True, monkeypatch)
    assert heads[0] == git(repo, "rev-parse", "refs/heads/fast~" + str(len(heads) - 1))  # forwarded, then merged
    assert git(repo, "rev-list", "--count", "--merges", f"{base}..refs/heads/fast") == str(len(branches) - 1)


def test_branches_of_several_commits_merge_whole(r: Repository, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = git(repo, "rev-parse", "main")
    first = branch_commit(repo, base, {"pkg0/a.py": "1\n"})
    second = branch_commit(repo, first, {"pkg0/a.py": "2\n", "pkg0/b.py": "b\n"})
    other = branch_commit(repo, base, {"pkg1/c.py": "c\n"})
    start = branch_commit(repo, base, {"top.txt": "the head moved since the base\n"})  # no fast-forward here
    compare(r, repo, start, [Merging(second, "two commits\n", base), Merging(other, "one\n", base)], True, monkeypatch)


@pytest.mark.parametrize("case", ["deletes", "same path", "file where a directory", "directory where a file",
                                  "no base", "wrong base", "already merged", "merged, then undone",
                                  "nothing to merge"])
def test_what_the_chain_cannot_tell_goes_to_git_with_the_same_result(r: Repository, repo: Path, case: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    base = git(repo, "rev-parse", "main")
    start = branch_commit(repo, base, {"pkg0/mod0/f0.py": "ours\n", "dir/a.txt": "ours\n"})
    branches: dict[str, list[dict[str, Change]]] = {
        "deletes": [{"pkg1/mod1/f1.py": None}, {"pkg2/x.py": "after a deletion\n"}],
        "same path": [{"pkg1/x.py": "one\n"}, {"pkg0/mod0/f0.py": "theirs\n"}, {"pkg2/y.py": "after\n"}],
        "file where a directory": [{"dir/a.txt/inner": "a directory where ours has a file\n"}],
        "directory where a file": [{"pkg2/new": "x\n"}, {"pkg2/new/inner.py": "y\n"}],
        "no base": [{"pkg1/x.py": "one\n"}],
        "wrong base": [{"pkg1/x.py": "one\n"}],
        "already merged": [{"pkg1/x.py": "one\n"}],
        "merged, then undone": [{"pkg1/x.py": "one\n"}],
        "nothing to merge": [{}],
    }
    merges = merges_of(repo, base, branches[case], bases=case != "no base")
    if case == "wrong base":
        merges = [Merging(merges[0].theirs, merges[0].message, start)]
    if case == "already merged":
        start = branch_commit(repo, merges[0].theirs, {"top.txt": "merged already, then more\n"})
    if case == "merged, then undone":  # the head's tree does not show it: only its history does
        start = branch_commit(repo, merges[0].theirs, {"pkg1/x.py": None})
    if case == "nothing to merge":
        merges = [Merging(base, "nothing\n", base)]
    heads, conflict = compare(r, repo, start, merges, False, monkeypatch)
    if case in ("same path", "file where a directory", "directory where a file"):
        assert conflict  # stopped where git stops, the merges before it made
    if case in ("already merged", "merged, then undone", "nothing to merge"):
        assert heads == [start]


def test_random_disjoint_waves_match_git(r: Repository, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(16)
    files = git(repo, "ls-tree", "-r", "--name-only", "main").splitlines()
    for round_number in range(4):
        base = git(repo, "rev-parse", "main")
        pool = rng.sample(files, 12) + [f"new{round_number}/d{n}/n{n}.py" for n in range(6)]
        rng.shuffle(pool)
        branches: list[dict[str, Change]] = [{path: f"{round_number} {path}\n" for path in pool[k::6]}
                                             for k in range(6)]
        compare(r, repo, base, merges_of(repo, base, branches), True, monkeypatch)


def test_a_branch_moved_under_the_chain_is_left_as_the_other_writer_left_it(r: Repository, repo: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    base = git(repo, "rev-parse", "main")
    elsewhere = branch_commit(repo, base, {"top.txt": "another writer\n"})
    merges = merges_of(repo, base, [{"pkg0/a.py": "a\n"}, {"pkg1/b.py": "b\n"}])
    git(repo, "update-ref", "refs/heads/fast", branch_commit(repo, base, {"pkg2/c.py": "c\n"}))
    written = Repository._write_merges

    def moved_first(self: Repository, ref: str, *args: object) -> object:
        git(repo, "update-ref", ref, elsewhere)  # not a descendant of what the chain read
        return written(self, ref, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Repository, "_write_merges", moved_first)
    chain = r.merge_chain("refs/heads/fast", merges, AUTHOR)
    assert (chain.heads, chain.moved) == ([], True)
    assert git(repo, "rev-parse", "refs/heads/fast") == elsewhere

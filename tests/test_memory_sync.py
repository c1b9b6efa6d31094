"""Memory across machines: separate clones exchanging through a bare remote, with `gitteam memory push|pull` and
with plain `git push`/`git fetch` after `gitteam init`; compaction that other clones did not do; diverged copies
of one ref; the first version's single notes ref."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from conftest import commit_files, git
from gitteam.git import find_repository
from gitteam.memory import MEMORY_PREFIX, Blackboard, sync, writer_id
from gitteam.memory.store import LEGACY_REF, WRITER_FILE


def gitteam(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def clones(tmp_path: Path, *names: str) -> list[Path]:
    """A bare remote with one commit on main, and separate clones of it (separate repositories)."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(bare), str(seed))
    commit_files(seed, {"README.md": "# project\n"}, "initial")
    git(seed, "push", "-q", "origin", "HEAD:main")
    paths = []
    for name in names:
        git(tmp_path, "clone", "-q", str(bare), str(tmp_path / name))
        paths.append(tmp_path / name)
    return paths


def board(path: Path) -> Blackboard:
    return Blackboard(find_repository(path), role="user")


def remember(path: Path, *contents: str, tags: tuple[str, ...] = ()) -> list[str]:
    b = board(path)
    return [b.remember(content, tags=tags, agent="user").id for content in contents]


def visible(path: Path) -> list[str]:
    return sorted(e.id for e in board(path).entries())


def push(path: Path) -> sync.SyncResult:
    return sync.push(find_repository(path))


def pull(path: Path) -> sync.SyncResult:
    return sync.pull(find_repository(path))


def test_two_clones_converge_both_ways_through_a_bare_remote(tmp_path: Path) -> None:
    a, b = clones(tmp_path, "a", "b")
    from_a = remember(a, "A: the parser is hand-written.", "A: tests run with pytest.")
    from_b = remember(b, "B: releases are tagged by CI.")

    pushed = gitteam(a, "memory", "push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["refs"] == {MEMORY_PREFIX + writer_id(find_repository(a)): "new"}
    pulled = gitteam(b, "memory", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "+2 entries (3 now)" in pulled.stdout
    assert gitteam(b, "memory", "push").returncode == 0
    assert gitteam(a, "memory", "pull").returncode == 0
    assert visible(a) == visible(b) == sorted(from_a + from_b)

    # both write again, concurrently, then sync in the other order: still one set, no duplicates
    from_a += remember(a, "A: the cache is per request.")
    from_b += remember(b, "B: the API is versioned.", "B: logs go to stderr.")
    push(b)
    pull(a)
    push(a)
    result = pull(b)
    assert result.after - result.before == 1
    assert visible(a) == visible(b) == sorted(from_a + from_b)
    assert len(board(a).entries()) == 6
    again = pull(a)  # nothing new: idempotent
    assert again.before == again.after == 6 and set(again.refs.values()) == {"up to date"}
    # each clone wrote only its own ref; the remote holds one ref per clone
    remote_refs = git(tmp_path / "remote.git", "for-each-ref", "--format=%(refname)", MEMORY_PREFIX).split()
    assert sorted(remote_refs) == sorted(MEMORY_PREFIX + writer_id(find_repository(p)) for p in (a, b))
    assert git(a, "for-each-ref", "refs/gitteam/") == ""  # the fetch scratch refs are gone


def test_plain_git_push_and_fetch_carry_memory_after_init(tmp_path: Path) -> None:
    a, b = clones(tmp_path, "a", "b")
    for path in (a, b):
        init = gitteam(path, "init")
        assert init.returncode == 0, init.stderr
        me = writer_id(find_repository(path))
        assert f"git config remote.origin.fetch = ^{MEMORY_PREFIX}{me}" in init.stdout
        assert git(path, "config", "--get-all", "remote.origin.push").split("\n") == [
            "HEAD", f"{MEMORY_PREFIX}{me}*:{MEMORY_PREFIX}{me}*"]
        (path / ".gitteam.toml").unlink()  # init's other job; not part of this test
    assert "git config" not in gitteam(a, "init").stdout  # idempotent
    (a / ".gitteam.toml").unlink()

    mine = remember(a, "A: remembered before a plain git push.")
    commit_files(a, {"a.txt": "a\n"}, "work of a")
    git(a, "push", "-q")  # plain git: the current branch and this clone's memory
    assert git(tmp_path / "remote.git", "rev-parse", "main") == git(a, "rev-parse", "HEAD")
    git(b, "pull", "-q", "--ff-only")  # plain git: every other clone's memory, as fast-forwards, and the branch
    assert visible(b) == mine and (b / "a.txt").is_file()

    theirs = remember(b, "B: remembered and pushed with git push.")
    git(b, "push", "-q")
    unpushed = remember(a, "A: not pushed yet.")
    fetched = subprocess.run(["git", "fetch"], cwd=a, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr  # this clone's own, unpushed ref is never fetched over
    assert visible(a) == sorted(mine + theirs + unpushed)
    git(a, "push", "-q")
    git(b, "fetch", "-q")
    assert visible(b) == visible(a)


def test_compaction_survives_a_sync_with_a_clone_that_did_not_compact(tmp_path: Path) -> None:
    a, b, c = clones(tmp_path, "a", "b", "c")
    originals = remember(a, "Builds use make.", "Builds take two minutes.", tags=("build",))
    originals += remember(b, "Build artifacts go to dist/.", tags=("build",))
    push(a)
    pull(b)
    push(b)
    pull(a)
    pull(c)
    assert visible(a) == visible(b) == visible(c) == sorted(originals)
    before = git(a, "rev-parse", MEMORY_PREFIX + writer_id(find_repository(a)))

    compacted = gitteam(a, "memory", "compact", "--older-than", "0", "--json")
    assert compacted.returncode == 0, compacted.stderr
    [summary] = json.loads(compacted.stdout)["summaries"]
    assert visible(a) == [summary["id"]]

    # b did not compact and still holds the originals (one in its own ref); it writes more and syncs
    later = remember(b, "Deploys need a tag.", tags=("deploy",))
    push(b)
    pull(a)
    assert visible(a) == sorted([summary["id"], *later])  # the compacted entries did not come back
    push(a)
    pull(b)
    assert visible(b) == visible(a)
    assert sorted(e.id for e in board(b).entries(hidden=True)) == sorted([*originals, summary["id"], *later])
    # c compacts the same entries on its own: the same summary (deterministic), so the union holds it once
    assert [e.id for e in board(c).compact(older_than=timedelta(0)).summaries] == [
        summary["id"]]
    push(c)
    pull(a)
    assert visible(a) == sorted([summary["id"], *later])

    # the originals stay reachable from the compacting clone's ref history
    ref = MEMORY_PREFIX + writer_id(find_repository(a))
    assert git(a, "merge-base", "--is-ancestor", before, ref) == ""
    history = git(a, "log", "-p", "--format=%s", ref)
    assert "compact 3 entries into 1" in history and "Builds take two minutes." in history
    for entry_id in originals:
        assert json.loads(git(a, "cat-file", "blob", entry_id))["tags"] == ["build"]


def test_diverged_copies_of_one_ref_merge_as_a_union(tmp_path: Path) -> None:
    """Two clones made to share a writer id (the rare case): pull merges; a tombstone beats its entry."""
    a, b = clones(tmp_path, "a", "b")
    first = remember(a, "A: shared before the split.")
    push(a)
    me = writer_id(find_repository(a))
    (find_repository(b).state_dir).mkdir(parents=True, exist_ok=True)
    (find_repository(b).state_dir / WRITER_FILE).write_text(f"{me}\n{find_repository(b).common_dir.resolve()}\n")
    assert writer_id(find_repository(b)) == me
    pull(b)
    only_b = remember(b, "B: written to the same ref name.")
    board(b).forget(first, reason="wrong")
    only_a = remember(a, "A: written meanwhile.")
    push(a)

    refused = gitteam(b, "memory", "push")
    assert refused.returncode == 1 and "run gitteam memory pull" in refused.stderr
    result = pull(b)
    assert result.refs[MEMORY_PREFIX + me] == "merged"
    assert visible(b) == sorted(only_a + only_b)  # the tombstone of b's copy beat the entry of a's copy
    push(b)
    pull(a)
    assert visible(a) == visible(b)


def test_a_copied_repository_gets_its_own_writer(tmp_path: Path, repo: Path) -> None:
    remember(repo, "Before the copy.")
    original = writer_id(find_repository(repo))
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(repo), str(copy)], check=True)
    assert writer_id(find_repository(copy)) != original
    assert writer_id(find_repository(repo)) == original
    remember(copy, "In the copy.")
    assert len(git(copy, "for-each-ref", MEMORY_PREFIX).splitlines()) == 2
    assert len(board(copy).entries()) == 2


def test_the_first_versions_single_ref_is_read_and_migrated(repo: Path) -> None:
    data = json.dumps({"content": "From the first version.", "tags": ["old"], "run": "", "agent": "user",
                       "role": "user", "files": [], "created": "2024-01-01T00:00:00.000+00:00"}, sort_keys=True)
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True,
                          text=True, check=True).stdout.strip()
    git(repo, "notes", "--ref=gitteam-memory", "add", "-C", blob, blob)
    legacy = git(repo, "rev-parse", LEGACY_REF)
    assert [e.id for e in board(repo).entries()] == [blob]  # read as it is

    new = remember(repo, "From this version.")
    refs = dict(line.split() for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)",
                                               "refs/notes/", "refs/gitteam/").splitlines())
    assert refs.pop(f"{MEMORY_PREFIX}legacy-{legacy[:12]}") == legacy  # moved, not rewritten
    assert list(refs) == [MEMORY_PREFIX + writer_id(find_repository(repo))]
    assert visible(repo) == sorted([blob, *new])

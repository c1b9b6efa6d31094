"""The git gateway on real temporary repositories: no mocks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import commit_files, git, side_commit
from gitteam.errors import GitteamError, UsageError
from gitteam.git import FastForward, GitError, Repository, Worktree, find_repository

AUTHOR = ("Agent One", "agent1@example.com")


@pytest.fixture
def r(repo: Path) -> Repository:
    return find_repository(repo)


def child_pids() -> set[int]:
    """Live children of this process, read from /proc (a leaked `git cat-file` would show up here)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            children.add(int(entry.name))
    return children


def status(path: Path) -> str:
    """`git status --porcelain`, unstripped: its leading spaces carry meaning."""
    args = ["git", "status", "--porcelain", "--untracked-files=all"]
    return subprocess.run(args, cwd=path, check=True, capture_output=True, text=True).stdout


# -- discovery and the runner -------------------------------------------------------------------------------


def test_import_does_not_load_gitpython() -> None:
    code = "import sys, gitteam.git; print('git' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_find_repository_from_subdirectory(repo: Path) -> None:
    found = find_repository(repo / "src")
    assert found.root == repo.resolve()
    assert found.git_dir == (repo / ".git").resolve()
    assert found.common_dir == (repo / ".git").resolve()
    assert found.state_dir == found.common_dir / "gitteam"


def test_find_repository_defaults_to_cwd(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "src")
    assert find_repository().root == repo.resolve()


def test_find_repository_in_linked_worktree(r: Repository, tmp_path: Path) -> None:
    r.create_worktree(tmp_path / "wt", "feature", "HEAD")
    found = find_repository(tmp_path / "wt")
    assert found.root == (tmp_path / "wt").resolve()
    assert found.git_dir != found.common_dir
    assert found.common_dir == r.common_dir


def test_find_repository_outside_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="not a git repository") as info:
        find_repository(tmp_path / "plain")
    assert info.value.exit_code == 2
    with pytest.raises(UsageError):
        find_repository(tmp_path / "does-not-exist")


def test_find_repository_refuses_bare(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    with pytest.raises(UsageError, match="not a git repository"):
        find_repository(tmp_path / "bare.git")


def test_git_error_shows_command_code_and_stderr(r: Repository) -> None:
    with pytest.raises(GitError) as info:
        r.git("rev-parse", "--verify", "no-such-rev")
    err = info.value
    assert isinstance(err, GitteamError) and err.exit_code == 1
    assert err.returncode == 128 and err.command == ["git", "rev-parse", "--verify", "no-such-rev"]
    assert str(err) == "git rev-parse --verify no-such-rev: exit 128: fatal: Needed a single revision"


def test_runner_env_is_per_call(r: Repository) -> None:
    before = dict(os.environ)
    ident = r.git("var", "GIT_AUTHOR_IDENT", env={"GIT_AUTHOR_NAME": "Someone Else"})
    assert ident.startswith("Someone Else <author@example.com>")
    assert dict(os.environ) == before
    assert r.git("var", "GIT_AUTHOR_IDENT").startswith("Test Author <")


def test_runner_check_false_and_bytes(r: Repository) -> None:
    assert r.git("rev-parse", "--verify", "-q", "nope", check=False) == ""
    assert r.run_git("rev-parse", "--verify", "-q", "nope").returncode == 1
    assert r.git_bytes("cat-file", "blob", "HEAD:README.md") == b"# project\n"
    assert r.git("hash-object", "--stdin", input="x\n").strip() == r.write_blob(b"x\n")


# -- queries ------------------------------------------------------------------------------------------------


def test_rev_parse(r: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert r.rev_parse("HEAD") == head
    assert r.rev_parse("main") == head
    git(repo, "tag", "-a", "-m", "v1", "v1")
    assert r.rev_parse("v1") == head  # annotated tag peeled to its commit
    blob = git(repo, "rev-parse", "HEAD:README.md")
    assert r.rev_parse(blob) == blob
    assert r.rev_parse("no-such-branch") is None


def test_head_branch_and_is_ancestor(r: Repository, repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    second = commit_files(repo, {"a.txt": "a\n"})
    assert r.head_branch() == "main"
    assert r.is_ancestor(first, second) and not r.is_ancestor(second, first)
    git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "detached"), first)
    assert r.head_branch(tmp_path / "detached") is None
    with pytest.raises(GitError):
        r.is_ancestor("no-such", second)


def test_tracked_files(r: Repository) -> None:
    assert r.tracked_files("HEAD") == ["README.md", "src/app.py"]


def test_read_blobs_exact_bytes_missing_left_out_one_reader_closed(r: Repository, repo: Path) -> None:
    data = {"crlf.txt": b"one\r\ntwo\r\n", "no newline.txt": b"last", "bin.dat": bytes(range(256)) * 3}
    for name, content in data.items():
        (repo / name).write_bytes(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bytes")
    before = child_pids()
    blobs = r.read_blobs("HEAD", [*data, "missing.txt", "src", "README.md"])
    assert blobs == {**data, "README.md": b"# project\n"}
    assert r.read_blob("HEAD", "no newline.txt") == b"last"
    assert r.read_blob("HEAD", "missing.txt") is None
    assert r.read_blobs("HEAD", []) == {}
    assert len(child_pids() - before) == 1  # this thread's `git cat-file`, kept for the next read
    r.close()
    assert child_pids() == before


def test_diff_and_changed_paths(r: Repository, repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "README.md", "README.txt")
    head = commit_files(repo, {"src/app.py": "def main():\n    return 2\n"})
    assert sorted(r.changed_paths(base, head)) == ["README.md", "README.txt", "src/app.py"]
    diff = r.diff(base, head, ["src/app.py"])
    assert diff.startswith("diff --git a/src/app.py b/src/app.py\n") and "+    return 2" in diff
    assert "README" not in diff
    assert "rename from README.md" in r.diff(base, head)


def test_worktree_changes(r: Repository, repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    commit_files(repo, {"old.txt": "o\n"})
    (repo / "README.md").write_text("changed\n")  # unstaged
    (repo / "staged.txt").write_text("s\n")
    git(repo, "add", "staged.txt")
    git(repo, "mv", "old.txt", "new name.txt")  # staged rename: both paths
    (repo / "deep" / "er").mkdir(parents=True)
    (repo / "deep" / "er" / "untracked.txt").write_text("u\n")
    (repo / "debug.log").write_text("ignored\n")
    assert sorted(r.worktree_changes(repo)) == sorted(
        ["README.md", "staged.txt", "new name.txt", "old.txt", "deep/er/untracked.txt"])


def test_write_blob(r: Repository, repo: Path) -> None:
    sha = r.write_blob(b"a\r\nb")
    assert git(repo, "cat-file", "-t", sha) == "blob"
    assert r.git_bytes("cat-file", "blob", sha) == b"a\r\nb"


# -- worktrees ----------------------------------------------------------------------------------------------


def test_worktree_lifecycle(r: Repository, repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    path = tmp_path / "agents" / "wt1"
    r.create_worktree(path, "gitteam/a1", "main")
    assert (path / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    assert r.head_branch(path) == "gitteam/a1"
    assert Worktree(path.resolve(), head, "refs/heads/gitteam/a1") in r.list_worktrees()
    assert r.list_worktrees()[0] == Worktree(repo.resolve(), head, "refs/heads/main")
    assert r.worktree_of_branch("gitteam/a1") == path.resolve()
    assert r.worktree_of_branch("refs/heads/main") == repo.resolve()
    assert r.worktree_of_branch("nowhere") is None
    with pytest.raises(GitteamError, match="already exists"):
        r.create_worktree(tmp_path / "wt2", "gitteam/a1", "main")
    (path / "dirty.txt").write_text("x\n")
    with pytest.raises(GitError):
        r.remove_worktree(path)
    r.remove_worktree(path, force=True)
    assert not path.exists()
    assert [wt.path for wt in r.list_worktrees()] == [repo.resolve()]
    assert r.rev_parse("refs/heads/gitteam/a1") == head  # the branch stays


def test_add_worktree_resumes_existing_branch(r: Repository, repo: Path, tmp_path: Path) -> None:
    r.create_worktree(tmp_path / "first", "agent", "HEAD")
    (tmp_path / "first" / "work.txt").write_text("w\n")
    sha = r.commit_paths(tmp_path / "first", ["work.txt"], "work", AUTHOR)
    shutil.rmtree(tmp_path / "first")  # deleted by hand, not pruned
    r.add_worktree(tmp_path / "again", "agent")
    assert r.head_branch(tmp_path / "again") == "agent"
    assert git(tmp_path / "again", "rev-parse", "HEAD") == sha
    assert (tmp_path / "again" / "work.txt").read_text() == "w\n"
    with pytest.raises(GitteamError, match="does not exist"):
        r.add_worktree(tmp_path / "other", "no-such-branch")


def test_worktree_hooks_do_not_run(r: Repository, repo: Path, tmp_path: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path / 'hook-ran'}\n")
    hook.chmod(0o755)
    r.create_worktree(tmp_path / "wt", "b", "HEAD")
    assert not (tmp_path / "hook-ran").exists()


def test_copy_included_files(r: Repository, repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {".gitignore": ".env\nsecrets/\nbuild/\n*.local\n"})
    r.create_worktree(tmp_path / "wt0", "b0", "HEAD")
    assert r.copy_included_files(tmp_path / "wt0") == []  # no .worktreeinclude: nothing
    (repo / ".worktreeinclude").write_text(".env\nsecrets/\n*.local\n")
    (repo / ".env").write_text("KEY=1\n")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "token").write_bytes(b"t\r\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("o\n")  # ignored, not included
    (repo / "notes.local").write_text("n\n")
    (repo / "src" / "untracked.local.txt").write_text("u\n")  # neither ignored nor included
    wt = tmp_path / "wt"
    r.create_worktree(wt, "b", "HEAD")
    (wt / "notes.local").write_text("already here\n")
    assert sorted(r.copy_included_files(wt)) == [".env", "secrets/token"]
    assert (wt / ".env").read_text() == "KEY=1\n"
    assert (wt / "secrets" / "token").read_bytes() == b"t\r\n"
    assert (wt / "notes.local").read_text() == "already here\n"
    assert not (wt / "build").exists()
    assert status(wt) == ""


# -- commits ------------------------------------------------------------------------------------------------


def test_commit_paths_stages_only_given_paths(r: Repository, repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {"gone.txt": "bye\n", "unowned.txt": "u\n"})
    wt = tmp_path / "wt"
    r.create_worktree(wt, "agent", "HEAD")
    base = git(wt, "rev-parse", "HEAD")
    (wt / "src" / "app.py").write_bytes(b"def main():\r\n    return 2")  # CRLF, no final newline
    (wt / "src" / "new.py").write_text("NEW = 1\n")
    (wt / "gone.txt").unlink()
    (wt / "unowned.txt").write_text("modified, not ours\n")
    (wt / "stray.txt").write_text("untracked, not ours\n")
    git(wt, "add", "unowned.txt")  # even staged, it must stay out

    sha = r.commit_paths(wt, ["src/app.py", "src/new.py", "gone.txt"], "agent: change app", AUTHOR)

    assert sha == git(wt, "rev-parse", "HEAD") == git(repo, "rev-parse", "refs/heads/agent")
    assert git(wt, "rev-parse", "HEAD^") == base
    assert sorted(r.changed_paths(base, sha)) == ["gone.txt", "src/app.py", "src/new.py"]
    assert r.read_blob(sha, "src/app.py") == b"def main():\r\n    return 2"
    assert git(wt, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B") == (
        "Agent One <agent1@example.com>|Agent One <agent1@example.com>|agent: change app")
    assert sorted(status(wt).splitlines()) == ["?? stray.txt", "M  unowned.txt"]
    assert git(repo, "rev-parse", "HEAD") != sha  # the main worktree is untouched


def test_commit_paths_nothing_changed(r: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "other.txt").write_text("not asked for\n")
    assert r.commit_paths(repo, ["README.md"], "no-op", AUTHOR) is None
    assert r.commit_paths(repo, [], "no-op", AUTHOR) is None
    assert git(repo, "rev-parse", "HEAD") == head


def test_commit_paths_runs_no_hooks(r: Repository, repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    for name in ("pre-commit", "commit-msg", "post-commit"):
        (hooks / name).write_text("#!/bin/sh\nexit 1\n")
        (hooks / name).chmod(0o755)
    (repo / "README.md").write_text("new\n")
    assert r.commit_paths(repo, ["README.md"], "hooks would fail this", AUTHOR) is not None
    assert status(repo) == ""


def test_commit_paths_in_parallel_worktrees(r: Repository, tmp_path: Path) -> None:
    worktrees = [tmp_path / f"wt{i}" for i in range(4)]
    for i, wt in enumerate(worktrees):
        r.create_worktree(wt, f"agent{i}", "HEAD")
        (wt / f"file{i}.txt").write_text(f"{i}\n")
    results: list[str | None] = [None] * len(worktrees)

    def work(i: int) -> None:
        results[i] = r.commit_paths(worktrees[i], [f"file{i}.txt"], f"agent {i}", AUTHOR)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(worktrees))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, wt in enumerate(worktrees):
        assert results[i] == r.rev_parse(f"agent{i}")
        assert status(wt) == ""


def test_merge(r: Repository, repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "left")
    git(repo, "branch", "right")
    git(repo, "checkout", "-q", "left")
    left = commit_files(repo, {"left.txt": "l\n"})
    git(repo, "checkout", "-q", "right")
    right = commit_files(repo, {"right.txt": "r\n"})
    merged = r.merge("left", "right", "merge right into left", AUTHOR)
    assert merged is not None
    assert git(repo, "rev-parse", f"{merged}^1", f"{merged}^2").split() == [left, right]
    assert r.tracked_files(merged) == ["README.md", "left.txt", "right.txt", "src/app.py"]
    assert git(repo, "log", "-1", "--format=%an", merged) == "Agent One"
    assert r.merge(left, base, "m", AUTHOR) == left  # theirs already in ours
    assert r.merge(base, right, "m", AUTHOR) == right  # fast-forward


def test_merge_conflict(r: Repository, repo: Path) -> None:
    git(repo, "branch", "other")
    ours = commit_files(repo, {"README.md": "ours\n"})
    git(repo, "checkout", "-q", "other")
    theirs = commit_files(repo, {"README.md": "theirs\n"})
    assert r.merge(ours, theirs, "m", AUTHOR) is None
    assert status(repo) == ""


# -- refs ---------------------------------------------------------------------------------------------------


def test_update_ref_compare_and_swap(r: Repository, repo: Path) -> None:
    one = git(repo, "rev-parse", "HEAD")
    two = commit_files(repo, {"a.txt": "a\n"})
    ref = "refs/gitteam/locks/a"
    assert r.update_ref(ref, one, None)
    assert not r.update_ref(ref, two, None)  # must not exist, but does
    assert not r.update_ref(ref, two, two)  # wrong old value
    assert r.rev_parse(ref) == one
    assert r.update_ref(ref, two, one)
    assert not r.delete_ref(ref, one)
    assert r.rev_parse(ref) == two
    assert r.delete_ref(ref, two)
    assert r.rev_parse(ref) is None
    assert not r.delete_ref(ref, two)


def test_update_ref_errors_are_not_cas_losses(r: Repository) -> None:
    with pytest.raises(GitError):
        r.update_ref("refs/gitteam/x", "1" * 40, None)  # no such object
    with pytest.raises(GitteamError):
        r.update_ref("refs/gitteam/x y", "1" * 40, None)


def test_update_refs_is_atomic(r: Repository, repo: Path) -> None:
    one = git(repo, "rev-parse", "HEAD")
    two = commit_files(repo, {"a.txt": "a\n"})
    assert r.update_refs([("refs/gitteam/a", one, None), ("refs/gitteam/b", one, None)])
    assert not r.update_refs([
        ("refs/gitteam/a", two, one),  # fine on its own
        ("refs/gitteam/c", two, None),  # fine on its own
        ("refs/gitteam/b", None, two),  # wrong old value: the whole transaction fails
    ])
    assert r.refs("refs/gitteam/") == {"refs/gitteam/a": one, "refs/gitteam/b": one}
    assert not r.update_refs([("refs/gitteam/a", None, one), ("refs/gitteam/b", None, None)])
    assert r.update_refs([("refs/gitteam/a", None, one), ("refs/gitteam/b", two, one),
                          ("refs/gitteam/z", None, None)])
    assert r.refs("refs/gitteam/") == {"refs/gitteam/b": two}


def test_refs_prefix(r: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "branch", "feature-1")
    git(repo, "branch", "feature/x")
    git(repo, "branch", "fix")
    assert r.refs("refs/heads/feature") == {"refs/heads/feature-1": head, "refs/heads/feature/x": head}
    assert set(r.refs("")) >= {"refs/heads/main", "refs/heads/fix"}
    assert r.refs("refs/nothing/") == {}
    assert r.refs("refs/heads/feature/", "refs/heads/fi") == {"refs/heads/feature/x": head, "refs/heads/fix": head}
    assert set(r.refs("refs/heads/fix", "")) >= {"refs/heads/main", "refs/heads/fix"}


# -- notes --------------------------------------------------------------------------------------------------


def test_notes_round_trip(r: Repository, repo: Path) -> None:
    one = git(repo, "rev-parse", "HEAD")
    two = commit_files(repo, {"a.txt": "a\n"})
    ref = "refs/notes/gitteam"
    assert r.read_note(ref, one) is None
    assert r.notes(ref) == {}
    r.set_note(ref, one, '{"status": "done"}')  # exact text: no newline added
    r.set_note(ref, two, "first\n\n")
    r.set_note(ref, two, "second\n")
    assert r.read_note(ref, one) == '{"status": "done"}'
    assert r.read_note(ref, two) == "second\n"
    assert r.notes(ref) == {one: '{"status": "done"}', two: "second\n"}
    assert git(repo, "notes", f"--ref={ref}", "show", two) == "second"  # plain git sees them
    assert r.refs("refs/notes/") == {ref: r.rev_parse(ref)}  # no temporary refs left behind
    with pytest.raises(GitteamError, match="refs/notes/"):
        r.set_note("gitteam", one, "x")


def test_notes_concurrent_writers_lose_nothing(r: Repository, repo: Path) -> None:
    blobs = [r.write_blob(f"object {i}\n".encode()) for i in range(160)]
    ref = "refs/notes/gitteam"
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(k * 20, k * 20 + 20):
                r.set_note(ref, blobs[i], f"note {i}")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert r.notes(ref) == {blob: f"note {i}" for i, blob in enumerate(blobs)}
    assert list(r.refs("refs/notes/")) == [ref]



def _queued_writers(r: Repository, ref: str,
                    notes: dict[str, str]) -> tuple[list[threading.Thread], list[BaseException]]:
    """Writers of `notes` started while the test holds the ref's turn, returned once every note is queued."""
    from gitteam.git import _note_queue

    queue = _note_queue(r.common_dir, ref)
    errors: list[BaseException] = []

    def writer(obj: str, text: str) -> None:
        try:
            r.set_note(ref, obj, text)
        except BaseException as exc:  # surfaced by the caller's assertions
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=item) for item in notes.items()]
    with queue.turn:
        for t in threads:
            t.start()
        while True:  # every writer has queued its note and waits for the turn the test holds
            with queue.lock:
                if len(queue.pending) == len(notes):
                    break
            threading.Event().wait(0.001)
    for t in threads:
        t.join()
    return threads, errors


def test_notes_queued_while_another_writes_go_in_one_commit(r: Repository, repo: Path) -> None:
    ref = "refs/notes/gitteam"
    blobs = [r.write_blob(f"object {i}\n".encode()) for i in range(8)]
    r.set_note(ref, blobs[0], "first")
    before = git(repo, "rev-parse", ref)
    _, errors = _queued_writers(r, ref, {blob: f"note {i}" for i, blob in enumerate(blobs)})
    assert errors == []
    assert r.notes(ref) == {blob: f"note {i}" for i, blob in enumerate(blobs)}
    assert git(repo, "rev-list", "--count", f"{before}..{ref}") == "1"  # eight writers, one commit
    assert git(repo, "rev-parse", f"{ref}^") == before  # on top of what was there: compare-and-swap


def test_a_failed_group_commit_fails_every_writer_in_it(r: Repository, repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ref = "refs/notes/gitteam"
    blobs = [r.write_blob(f"object {i}\n".encode()) for i in range(3)]

    def refused(self: Repository, notes_ref: str, batch: object) -> None:
        raise GitteamError(f"could not update {notes_ref}")

    monkeypatch.setattr(Repository, "_write_notes", refused)
    _, errors = _queued_writers(r, ref, {blob: "n" for blob in blobs})
    assert len(errors) == 3 and all(isinstance(e, GitteamError) for e in errors)
    monkeypatch.undo()
    assert r.notes(ref) == {}
    r.set_note(ref, blobs[0], "later")  # the queue is empty again: nothing of the failed turn is written
    assert r.notes(ref) == {blobs[0]: "later"}

# -- fast_forward -------------------------------------------------------------------------------------------


def test_fast_forward_branch_not_checked_out(r: Repository, repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    old, new = side_commit(r, tmp_path, {"a.txt": "a\n"})
    assert r.fast_forward("main", new, old) == FastForward(True, None, f"refs/heads/main moved to {new[:12]}")
    assert r.rev_parse("main") == new
    result = r.fast_forward("main", new, old)  # main is no longer at old
    assert not result.moved and "no longer at" in result.detail


def test_fast_forward_checked_out_clean(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"a.txt": "a\n", "README.md": None, "src/app.py": "changed\n"})
    result = r.fast_forward("main", new, old)
    assert result.moved and result.checked_out == repo.resolve()
    assert git(repo, "rev-parse", "HEAD") == new
    assert (repo / "a.txt").read_text() == "a\n"
    assert (repo / "src" / "app.py").read_text() == "changed\n"
    assert not (repo / "README.md").exists()
    assert status(repo) == ""


def test_fast_forward_refuses_overlapping_dirty_file(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"src/app.py": "theirs\n", "a.txt": "a\n"})
    (repo / "src" / "app.py").write_text("the user's work\n")
    result = r.fast_forward("main", new, old)
    assert result == FastForward(False, repo.resolve(), result.detail)
    assert "src/app.py" in result.detail and "a.txt" not in result.detail
    assert (repo / "src" / "app.py").read_text() == "the user's work\n"
    assert git(repo, "rev-parse", "HEAD") == old


def test_fast_forward_refuses_overlapping_untracked_file(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"a.txt": "theirs\n"})
    (repo / "a.txt").write_text("the user's untracked file\n")
    result = r.fast_forward("main", new, old)
    assert not result.moved and "a.txt" in result.detail
    assert (repo / "a.txt").read_text() == "the user's untracked file\n"


def test_fast_forward_keeps_non_overlapping_changes(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"src/app.py": "theirs\n"})
    (repo / "README.md").write_text("the user's edit\n")
    (repo / "scratch.txt").write_text("untracked\n")
    result = r.fast_forward("main", new, old)
    assert result.moved
    assert git(repo, "rev-parse", "HEAD") == new
    assert (repo / "src" / "app.py").read_text() == "theirs\n"
    assert (repo / "README.md").read_text() == "the user's edit\n"
    assert sorted(status(repo).splitlines()) == [" M README.md", "?? scratch.txt"]


def test_fast_forward_refuses_non_descendant(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"a.txt": "a\n"})
    diverged = commit_files(repo, {"b.txt": "b\n"})
    result = r.fast_forward("main", new, diverged)
    assert not result.moved and "does not descend" in result.detail
    assert git(repo, "rev-parse", "HEAD") == diverged
    result = r.fast_forward("main", new, old)  # descends from old, but main is not at old any more
    assert not result.moved and "not at" in result.detail
    assert git(repo, "rev-parse", "HEAD") == diverged


def test_fast_forward_runs_no_hooks(r: Repository, repo: Path, tmp_path: Path) -> None:
    old, new = side_commit(r, tmp_path, {"a.txt": "a\n"})
    hook = repo / ".git" / "hooks" / "post-merge"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path / 'hook-ran'}\n")
    hook.chmod(0o755)
    assert r.fast_forward("main", new, old).moved
    assert not (tmp_path / "hook-ran").exists()


def test_no_leaked_children(r: Repository, repo: Path, tmp_path: Path) -> None:
    before = child_pids()
    old, new = side_commit(r, tmp_path, {"a.txt": "a\n"})
    r.fast_forward("main", new, old)
    r.set_note("refs/notes/gitteam", new, "n")
    r.notes("refs/notes/gitteam")
    r.read_blobs("HEAD", r.tracked_files("HEAD"))
    r.read_note("refs/notes/gitteam", new)
    r.close()  # the reader process: the one child that outlives a call, until closed
    assert child_pids() - before == set()  # an earlier test's reader may end meanwhile: only new ones count


def test_finish_checkout_completes_a_worktree_registered_but_not_checked_out(repo: Path) -> None:
    repository = find_repository(repo)
    path = repo.parent / "wt-unfinished"
    git(repo, "worktree", "add", "-q", "--no-checkout", "-b", "unfinished", str(path))
    assert not (path / "README.md").exists()
    assert repository.finish_checkout(path) is True
    assert (path / "README.md").read_text() == "# project\n"
    assert git(path, "status", "--porcelain") == ""
    (path / "README.md").write_text("agent work\n")
    assert repository.finish_checkout(path) is False  # a checked-out worktree is never reset
    assert (path / "README.md").read_text() == "agent work\n"


# -- reads shared by concurrent callers ---------------------------------------------------------------------


def test_concurrent_reads_share_one_that_began_after_they_asked_never_an_older_one() -> None:
    from gitteam.git import _SharedReads

    reads = _SharedReads()
    fetched: list[str] = []
    first_started, release_first = threading.Event(), threading.Event()

    def fetch() -> object:
        fetched.append(f"read {len(fetched) + 1}")
        if len(fetched) == 1:
            first_started.set()
            release_first.wait(30)
        return fetched[-1]

    results: dict[str, object] = {}

    def ask(name: str) -> None:
        results[name] = reads.read("key", fetch)

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    assert first_started.wait(30)
    later = [threading.Thread(target=ask, args=(name,)) for name in ("b", "c", "d")]
    for thread in later:
        thread.start()
    while reads._keys["key"].inside < 4:  # b, c and d asked while a's read runs; nothing else moves it on
        threading.Event().wait(0.001)
    release_first.set()
    for thread in [first, *later]:
        thread.join(30)
    assert results == {"a": "read 1", "b": "read 2", "c": "read 2", "d": "read 2"}
    assert fetched == ["read 1", "read 2"]
    assert reads._keys == {}  # nothing kept once every caller returned


def test_a_failed_shared_read_fails_its_caller_only_and_the_waiting_read_again() -> None:
    from gitteam.git import _SharedReads

    reads = _SharedReads()
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def fetch() -> object:
        calls.append(1)
        if len(calls) == 1:
            started.set()
            release.wait(30)
            raise GitteamError("git failed")
        return "fresh"

    outcome: dict[str, object] = {}

    def ask(name: str) -> None:
        try:
            outcome[name] = reads.read(("k",), fetch)
        except GitteamError as exc:
            outcome[name] = exc

    failing = threading.Thread(target=ask, args=("failing",))
    failing.start()
    assert started.wait(30)
    waiting = threading.Thread(target=ask, args=("waiting",))
    waiting.start()
    while reads._keys[("k",)].inside < 2:
        threading.Event().wait(0.001)
    release.set()
    failing.join(30)
    waiting.join(30)
    assert isinstance(outcome["failing"], GitteamError)
    assert outcome["waiting"] == "fresh"
    assert len(calls) == 2


def test_refs_listed_by_many_threads_at_once_include_each_ones_own_write(r: Repository, repo: Path) -> None:
    """Read your writes through the shared listing: each thread moves a ref of its own, then lists, while the
    others list too; every listing it gets began after its write."""
    head = git(repo, "rev-parse", "HEAD").strip()
    barrier = threading.Barrier(8)
    seen: dict[int, bool] = {}

    def work(n: int) -> None:
        barrier.wait(30)
        for round_number in range(5):
            ref = f"refs/notes/shared-{n}-{round_number}"
            assert r.update_ref(ref, head, None)
            seen[n] = seen.get(n, True) and ref in r.refs("refs/notes/")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert seen == {n: True for n in range(8)}
    assert len(r.refs("refs/notes/")) == 40

"""Nothing written into a repository or a worktree makes gitteam's git run a program or read other content,
and a fast-forward never overwrites the user's untracked or ignored files (invariants 7 and 12).

Each test plants a program that leaves a marker file when it runs, checks that gitteam's calls leave no
marker, and then (where it shows the plant is live) that plain git with the same setup does run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import commit_files, git, side_commit
from gitteam.errors import GitteamError
from gitteam.git import GitError, Repository, find_repository
from scripts import coder_writes, done, plan_turn, rev, script, sha, start, status, subtask, turn

AUTHOR = ("Agent One", "agent1@example.com")
HOOKS = ("pre-commit", "commit-msg", "post-commit", "post-checkout", "post-merge", "pre-merge-commit",
         "reference-transaction", "post-index-change", "pre-push", "pre-auto-gc", "post-rewrite")


@pytest.fixture
def r(repo: Path) -> Repository:
    return find_repository(repo)


def program(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An executable that leaves a marker file and copies stdin to stdout, as a filter must: (it, the marker)."""
    marker = tmp_path / f"{name}-ran"
    path = tmp_path / f"{name}.sh"
    path.write_text(f"#!/bin/sh\ntouch '{marker}'\n[ -t 0 ] || cat\n")
    path.chmod(0o755)
    return path, marker


def hooks_dir(path: Path, hook: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        shutil.copy(hook, path / name)
    return path


def exercise(r: Repository, repo: Path, tmp_path: Path) -> None:
    """The calls of a run: worktrees, status, commits, diff, merge, refs, notes, memory sync, fast-forward."""
    old, new = side_commit(r, tmp_path, {"src/app.py": "def main():\n    return 2\n", "new.txt": "n\n"})
    (tmp_path / "side" / "scratch.txt").write_text("s\n")
    assert r.worktree_changes(tmp_path / "side") == ["scratch.txt"]
    assert "+++ b/new.txt\n@@ -0,0 +1 @@\n+n\n" in r.diff(old, new)
    assert r.changed_paths(old, new) == ["new.txt", "src/app.py"]
    r.create_worktree(tmp_path / "other", "other", "main")
    (tmp_path / "other" / "other.txt").write_text("o\n")
    other = r.commit_paths(tmp_path / "other", ["other.txt"], "other work", AUTHOR)
    assert other is not None and r.merge(new, other, "merge", AUTHOR) is not None
    assert r.update_ref("refs/gitteam/test", new, None)
    r.set_note("refs/notes/gitteam", new, "provenance")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    assert [p.status for p in r.push_refs(str(remote), ["refs/notes/gitteam:refs/notes/gitteam"])] == ["*"]
    r.fetch_refs(str(remote), ["refs/notes/gitteam:refs/notes/fetched"])
    (repo / "README.md").write_text("the user's edit\n")
    assert r.worktree_changes(repo) == ["README.md"]
    assert r.fast_forward("main", new, old).moved
    r.remove_worktree(tmp_path / "other")
    assert git(repo, "rev-parse", "main", "refs/notes/fetched") == f"{new}\n{r.rev_parse('refs/notes/gitteam')}"


# -- programs named by config ---------------------------------------------------------------------------------


def test_a_repository_fsmonitor_runs_for_plain_git_but_never_for_gitteam(r: Repository, repo: Path,
                                                                          tmp_path: Path) -> None:
    fsmonitor, marker = program(tmp_path, "fsmonitor")
    git(repo, "config", "core.fsmonitor", str(fsmonitor))
    exercise(r, repo, tmp_path)
    assert not marker.exists()
    git(repo, "status")
    assert marker.exists()  # the plant is live: only gitteam's calls ignore it


@pytest.mark.parametrize("where", ["git-dir", "hooksPath"])
def test_hooks_never_run(r: Repository, repo: Path, tmp_path: Path, where: str) -> None:
    hook, marker = program(tmp_path, "hook")
    if where == "git-dir":
        hooks_dir(repo / ".git" / "hooks", hook)
    else:
        git(repo, "config", "core.hooksPath", str(hooks_dir(tmp_path / "hooks", hook)))
    exercise(r, repo, tmp_path)
    assert not marker.exists()
    if where == "hooksPath":  # what the user configured is what gitteam reads (`gitteam hook install` does)
        assert r.config_values("core.hooksPath") == [str(tmp_path / "hooks")]
    git(repo, "commit", "-q", "--allow-empty", "-m", "by hand")
    assert marker.exists()


def test_an_included_config_cannot_name_programs(r: Repository, repo: Path, tmp_path: Path) -> None:
    fsmonitor, marker = program(tmp_path, "fsmonitor")
    hook, hook_marker = program(tmp_path, "hook")
    hostile = tmp_path / "hostile.cfg"
    hostile.write_text(f"[core]\n\tfsmonitor = {fsmonitor}\n\thooksPath = {hooks_dir(tmp_path / 'h', hook)}\n")
    with (repo / ".git" / "config").open("a") as config:
        config.write(f'[includeIf "gitdir:/"]\n\tpath = {hostile}\n')
    exercise(r, repo, tmp_path)
    assert not marker.exists() and not hook_marker.exists()
    git(repo, "status")
    assert marker.exists()


def test_diff_drivers_and_external_diffs_never_run(r: Repository, repo: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    external, marker = program(tmp_path, "external")
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(external))
    git(repo, "config", "diff.external", str(external))
    git(repo, "config", "diff.x.command", str(external))
    git(repo, "config", "diff.x.textconv", str(external))
    old = git(repo, "rev-parse", "HEAD")
    new = commit_files(repo, {".gitattributes": "* diff=x\n", "README.md": "# changed\n"})
    assert "-# project\n+# changed\n" in r.diff(old, new)
    assert r.diff(old, new, ["README.md"]).endswith("-# project\n+# changed\n")
    assert r.changed_paths(old, new) == [".gitattributes", "README.md"]
    assert r.commit_messages(old, new).strip() == "change"
    assert not marker.exists()
    git(repo, "diff", old, new)
    assert marker.exists()


def test_an_outer_git_config_cannot_switch_the_pins_off(r: Repository, repo: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`git -c core.hooksPath=... team run` hands its config down in GIT_CONFIG_PARAMETERS, a caller may have
    GIT_CONFIG_COUNT entries of its own: the pins come after both, and the user's other entries still count."""
    hook, marker = program(tmp_path, "hook")
    hooks = hooks_dir(tmp_path / "hooks", hook)
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.hooksPath'='{hooks}' 'gitteam.outer'='yes'")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(hooks))
    monkeypatch.setenv("GIT_CONFIG_KEY_1", "gitteam.counted")
    monkeypatch.setenv("GIT_CONFIG_VALUE_1", "also")
    exercise(r, repo, tmp_path)
    assert not marker.exists()
    assert (r.config_values("gitteam.outer"), r.config_values("gitteam.counted")) == (["yes"], ["also"])


# -- replaced objects -----------------------------------------------------------------------------------------


def test_replace_refs_do_not_change_what_gitteam_reads(r: Repository, repo: Path) -> None:
    old = git(repo, "rev-parse", "HEAD")
    new = commit_files(repo, {"README.md": "the real content\n"})
    real = git(repo, "rev-parse", "HEAD:README.md")
    (repo.parent / "fake.txt").write_text("other content\n")
    git(repo, "replace", real, git(repo, "hash-object", "-w", str(repo.parent / "fake.txt")))
    assert r.read_blobs("HEAD", ["README.md"]) == {"README.md": b"the real content\n"}
    assert r.read_blob(new, "README.md") == b"the real content\n"
    assert r.diff(old, new).endswith("-# project\n+the real content\n")
    assert git(repo, "show", "HEAD:README.md") == "other content"  # plain git sees the replacement
    assert "+other content" in git(repo, "diff", old, new)


def test_grafts_do_not_change_the_history_gitteam_sees(r: Repository, repo: Path) -> None:
    old = git(repo, "rev-parse", "HEAD")
    new = commit_files(repo, {"a.txt": "a\n"})
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "grafts").write_text(f"{new}\n")  # as if `new` had no parent
    assert r.is_ancestor(old, new) and r.commits_between(old, new) == [new]
    assert r.merge_base(old, new) == old
    assert git(repo, "rev-list", "--count", new) == "1"  # plain git follows the graft


# -- a worktree's .git, rewritten by a command that ran in it -------------------------------------------------


def hostile_git_dir(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A repository whose config runs programs (fsmonitor, hooks, a clean filter): (its git dir, markers)."""
    evil = tmp_path / "evil"
    git(tmp_path, "init", "-q", "-b", "main", str(evil))
    commit_files(evil, {"src/app.py": "evil\n"})
    fsmonitor, fsmonitor_ran = program(tmp_path, "fsmonitor")
    clean, clean_ran = program(tmp_path, "clean")
    hook, hook_ran = program(tmp_path, "hook")
    git(evil, "config", "core.fsmonitor", str(fsmonitor))
    git(evil, "config", "core.hooksPath", str(hooks_dir(tmp_path / "evil-hooks", hook)))
    git(evil, "config", "filter.x.clean", str(clean))
    hooks_dir(evil / ".git" / "hooks", hook)
    return evil / ".git", [fsmonitor_ran, clean_ran, hook_ran]


@pytest.mark.parametrize("plant", ["gitdir file", "git directory"])
def test_a_rewritten_worktree_git_is_never_followed(r: Repository, repo: Path, tmp_path: Path,
                                                    plant: str) -> None:
    wt = tmp_path / "agent"
    r.create_worktree(wt, "agent", "main")
    head = git(repo, "rev-parse", "main")
    evil, markers = hostile_git_dir(tmp_path)
    evil_head = git(evil.parent, "rev-parse", "HEAD")
    (wt / ".git").unlink()
    if plant == "gitdir file":
        (wt / ".git").write_text(f"gitdir: {evil}\n")
    else:
        shutil.copytree(evil, wt / ".git")
    (wt / ".gitattributes").write_text("* filter=x\n")
    (wt / "src" / "app.py").write_text("agent work\n")

    assert sorted(r.worktree_changes(wt)) == [".gitattributes", "src/app.py"]
    assert r.head_branch(wt) == "agent"
    new = r.commit_paths(wt, ["src/app.py"], "agent work", AUTHOR)
    assert new is not None and git(repo, "rev-parse", "agent") == new
    assert git(repo, "rev-parse", f"{new}^") == head
    assert git(repo, "show", f"{new}:src/app.py") == "agent work"
    assert git(evil.parent, "rev-parse", "HEAD") == evil_head
    assert r.worktree_changes(wt) == [".gitattributes"]
    assert [m for m in markers if m.exists()] == []

    subprocess.run(["git", "status"], cwd=wt, capture_output=True, check=False)
    assert [m for m in markers if m.exists()] != []  # plain git follows the plant
    for marker in markers:
        marker.unlink(missing_ok=True)

    with pytest.raises(GitError):  # .gitattributes is not committed: the worktree is kept
        r.remove_worktree(wt)
    assert (wt / ".gitattributes").exists()
    r.remove_worktree(wt, force=True)
    assert not wt.exists() and git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert [m for m in markers if m.exists()] == []


def test_a_clean_worktree_with_a_planted_git_is_removed_without_running_anything(r: Repository, repo: Path,
                                                                                 tmp_path: Path) -> None:
    commit_files(repo, {".gitattributes": "* filter=x\n"})  # no such filter here; there is in the plant
    wt = tmp_path / "agent"
    r.create_worktree(wt, "agent", "main")
    evil, markers = hostile_git_dir(tmp_path)
    (wt / ".git").write_text(f"gitdir: {evil}\n")
    r.remove_worktree(wt)
    assert not wt.exists()
    assert [m for m in markers if m.exists()] == []


def test_a_submodule_git_planted_in_a_worktree_is_never_followed(r: Repository, repo: Path,
                                                                 tmp_path: Path) -> None:
    evil, markers = hostile_git_dir(tmp_path)
    gitlink = git(evil.parent, "rev-parse", "HEAD")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{gitlink},sub")
    git(repo, "commit", "-q", "-m", "a submodule")
    wt = tmp_path / "agent"
    r.create_worktree(wt, "agent", "main")
    (wt / "sub" / ".git").write_text(f"gitdir: {evil}\n")
    (wt / "sub" / ".gitattributes").write_text("* filter=x\n")
    (wt / "sub" / "src").mkdir()
    (wt / "sub" / "src" / "app.py").write_text("evil\n")  # what the plant's index tracks, with other stat data

    assert r.worktree_changes(wt) == []
    assert [m for m in markers if m.exists()] == []
    subprocess.run(["git", "status"], cwd=wt, capture_output=True, check=False)
    assert [m for m in markers if m.exists()] != []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a repository to another user takes root")
def test_a_repository_another_user_owns_is_still_refused(repo: Path) -> None:
    """Every call names its git dir, which turns off git's ownership check: opening the repository keeps it."""
    os.chown(repo, 12345, 12345)
    try:
        with pytest.raises(GitError):
            find_repository(repo)
    finally:
        os.chown(repo, 0, 0)


def test_a_path_that_is_no_worktree_of_the_repository_is_refused(r: Repository, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    with pytest.raises(GitteamError):
        r.worktree_changes(other)
    with pytest.raises(GitteamError):
        r.worktree_changes(tmp_path)
    with pytest.raises(GitError):  # as `git worktree remove` refuses it
        r.remove_worktree(other)
    assert (other / ".git").is_dir()


def test_worktrees_removed_and_added_again_are_found_again(r: Repository, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "wt", tmp_path / "b" / "wt"  # same name: git reuses the admin dir's id
    r.create_worktree(first, "one", "main")
    assert r.head_branch(first) == "one"
    r.remove_worktree(first, force=True)
    r.create_worktree(second, "two", "main")
    first.mkdir(parents=True)
    with pytest.raises(GitteamError):
        r.head_branch(first)
    assert r.head_branch(second) == "two"
    git(second, "checkout", "-q", "-b", "three")  # another process may change it
    assert r.head_branch(second) == "three"
    assert r.head_branch(tmp_path / "b" / ".." / "b" / "wt") == "three"


# -- the config a contained command's git reads ------------------------------------------------------------


def test_contained_config_keeps_only_what_reading_the_repository_needs(tmp_path: Path) -> None:
    root = tmp_path / "sha256"
    git(tmp_path, "init", "-q", "-b", "main", "--object-format=sha256", str(root))
    commit_files(root, {"a.txt": "a\n"})
    hostile = tmp_path / "included.cfg"
    hostile.write_text("[core]\n\tfsmonitor = /bin/evil\n[extensions]\n\tnoop-v1 = INCLUDED\n")
    with (root / ".git" / "config").open("a") as config:
        config.write(
            '[remote "origin"]\n\turl = https://x-access-token:ghs_REMOTE@github.com/o/r.git\n'
            '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic SECRETHEADER\n'
            "[credential]\n\thelper = store\n[core]\n\thooksPath = /tmp/hooks\n\tsshCommand = ssh -i key\n"
            f'[includeIf "gitdir:/"]\n\tpath = {hostile}\n[include]\n\tpath = {hostile}\n'
            "[core]\n\tsymlinks\n"  # no value: true
            # noop takes any value: one that would start a section of its own, were it written unquoted
            '[extensions]\n\tworktreeConfig = true\n\tnoop = "a\\"b\\\\c\\n[core]\\n\\tfsmonitor = evil\\tz"\n')
    repository = find_repository(root)

    text = repository.contained_config()

    for kept_out in (b"ghs_REMOTE", b"SECRETHEADER", b"store", b"/tmp/hooks", b"ssh -i", b"/bin/evil", b"INCLUDED",
                     b"origin", b"logallrefupdates"):
        assert kept_out not in text
    copy = tmp_path / "copy.cfg"
    copy.write_bytes(text)
    listed = git(tmp_path, "config", "--file", str(copy), "--list", "-z").split("\0")
    assert sorted(item for item in listed if item) == sorted([
        "core.repositoryformatversion\n1", "core.filemode\ntrue", "core.bare\nfalse", "core.symlinks",
        "extensions.objectformat\nsha256", "extensions.worktreeconfig\ntrue",
        'extensions.noop\na"b\\c\n[core]\n\tfsmonitor = evil\tz'])
    # a git with only this config reads the sha256 repository
    contained = tmp_path / "contained.git"
    shutil.copytree(root / ".git", contained)
    (contained / "config").write_bytes(text)
    out = subprocess.run(["git", f"--git-dir={contained}", "show", "HEAD:a.txt"], capture_output=True, text=True)
    assert out.stdout == "a\n"


# -- the fast-forward and the user's untracked and ignored files -------------------------------------------


def test_an_ignored_file_the_update_adds_stops_the_fast_forward(r: Repository, repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {".gitignore": "local_settings.py\n"})
    (repo / "local_settings.py").write_text("SECRET = 'the only copy'\n")
    old, new = side_commit(r, tmp_path, {".gitignore": "", "local_settings.py": "SECRET = None\n"})

    result = r.fast_forward("main", new, old)

    assert not result.moved and "local_settings.py" in result.detail
    assert (repo / "local_settings.py").read_text() == "SECRET = 'the only copy'\n"
    assert git(repo, "rev-parse", "HEAD") == old
    (repo / "local_settings.py").rename(tmp_path / "moved-away.py")
    assert r.fast_forward("main", new, old).moved
    assert (repo / "local_settings.py").read_text() == "SECRET = None\n"


@pytest.mark.parametrize(("ignored", "theirs", "mine"), [
    ("build/\n", {"build": "a file\n"}, {"build/cache.bin": "mine\n"}),            # a directory where a file goes
    ("build/\n", {"build": "a file\n"}, {"build/deep/er/cache.bin": "mine\n"}),
    ("cache\n", {"cache/x.txt": "x\n"}, {"cache": "mine\n"}),                     # a file where a directory goes
    ("", {"docs/index.md": "x\n"}, {"docs": "untracked\n"}),                      # untracked, not ignored
    ("", {"docs": "x\n"}, {"docs/notes.md": "untracked\n"}),
    ("", {"a/b/c.txt": "x\n"}, {"a/b": "untracked\n"}),
])
def test_files_where_the_update_needs_the_other_kind_stop_the_fast_forward(
        r: Repository, repo: Path, tmp_path: Path, ignored: str, theirs: dict[str, str],
        mine: dict[str, str]) -> None:
    if ignored:
        commit_files(repo, {".gitignore": ignored})
    for rel, content in mine.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(content)
    before = status(repo)
    old, new = side_commit(r, tmp_path, dict(theirs))

    result = r.fast_forward("main", new, old)

    assert not result.moved and result.checked_out == repo.resolve()
    assert git(repo, "rev-parse", "HEAD") == old and status(repo) == before
    for rel, content in mine.items():
        assert (repo / rel).read_text() == content


def test_many_files_in_the_way_are_counted(r: Repository, repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {".gitignore": "*.local\n"})
    names = [f"f{n}.local" for n in range(7)]
    for name in names:
        (repo / name).write_text("mine\n")
    old, new = side_commit(r, tmp_path, {name: "theirs\n" for name in names})
    result = r.fast_forward("main", new, old)
    assert not result.moved and "and 2 more" in result.detail
    assert all((repo / name).read_text() == "mine\n" for name in names)


def test_ignored_files_out_of_the_way_still_fast_forward(r: Repository, repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {".gitignore": ".venv/\n*.pyc\nempty/\n", "old/a.py": "a\n"})
    (repo / ".venv").mkdir()
    (repo / ".venv" / "pyvenv.cfg").write_text("mine\n")
    (repo / "old" / "a.pyc").write_text("mine\n")
    (repo / "empty" / "nested").mkdir(parents=True)  # directories without files are git's to remove
    old, new = side_commit(r, tmp_path, {"old/a.py": None, "src/new.py": "x\n", "empty": "now a file\n"})

    result = r.fast_forward("main", new, old)

    assert result.moved, result.detail
    assert git(repo, "rev-parse", "HEAD") == new
    assert (repo / ".venv" / "pyvenv.cfg").read_text() == "mine\n"
    assert (repo / "old" / "a.pyc").read_text() == "mine\n"
    assert (repo / "empty").read_text() == "now a file\n"


def test_a_run_stopped_by_an_ignored_file_says_where_its_result_is(repo: Path) -> None:
    commit_files(repo, {".gitignore": "local_settings.py\n"})
    (repo / "local_settings.py").write_text("the only copy\n")
    base = sha(repo, "main")
    data = script(planner=[plan_turn([subtask("settings", [".gitignore", "local_settings.py"])])],
                  coder={"settings": [turn(coder_writes(".gitignore", ""),
                                           coder_writes("local_settings.py", "generated\n"), done())]})

    result = start(repo, data)

    assert (result.exit_code, result.state) == (1, "pending")
    assert "local_settings.py" in result.message and f"gitteam/{result.run}/integration" in result.message
    assert rev(repo, "main") == base
    assert (repo / "local_settings.py").read_text() == "the only copy\n"


def test_diffs_and_commits_without_attributes_share_one_empty_work_tree_and_nothing_planted_there_counts(
        r: Repository, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `.gitattributes` applies: no temporary directory is made (a disk's directories cost), and a file put
    in the shared empty work tree is never read as attributes (it is then not used)."""
    import tempfile

    made: list[str] = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append("dir") or real(*a, **k))
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"notes.txt": "plain text\n"})
    wt = tmp_path / "wt"
    r.create_worktree(wt, "feature", head)
    (wt / "notes.txt").write_text("changed text\n")
    committed = r.commit_paths(wt, ["notes.txt"], "change\n", ("a", "a@example.com"))
    assert "+plain text" in r.diff(base, head) and "+changed text" in r.diff(head, committed or "")
    assert made == []
    shared = r.state_dir / "empty-work-tree"
    (shared / ".gitattributes").write_text("* -diff\n")  # would mark every file binary, were it read
    assert "+changed text" in r.diff(head, committed or "") and made == ["dir"]

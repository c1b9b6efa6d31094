"""Where worktrees live and what becomes of them: outside the repository under a key of its own, found again
after a kill, a move of the repository or an older gitteam's layout, emptied into a leftovers ref before they go,
and the git locks a killed gitteam left cleared (only those)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.config import load_config
from gitteam.errors import UsageError
from gitteam.git import find_repository
from gitteam.run import worktrees
from killing import FILTER, gitteam, lock_files, worktree_dirs
from scripts import call, cli, done, journal_so_far, plan_turn, script, subtask, write_script


def data_root() -> Path:
    return Path.home() / ".local" / "share" / "gitteam" / "worktrees"


def two_writers(delay: float = 0) -> dict[str, object]:
    return script([plan_turn([subtask(x, [f"{x}.txt"]) for x in "ab"])],
                  {x: [{**call("write_file", path=f"{x}.txt", content=f"{x}\n"), "delay": delay}, done(x)]
                   for x in "ab"})


def started(found: list[dict[str, object]]) -> dict[str, Path]:
    return {str(e["agent"]): Path(str(e["worktree"])) for e in found if e["event"] == "agent_started"}


def killed_run(repo: Path, model: Path, point: str) -> str:
    """`gitteam run --yes` killed by itself at `point` (GITTEAM_TEST_KILL_AT), git holding its locks."""
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{model}", "two files",
                   env={"GITTEAM_TEST_KILL_AT": point})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -9, err
    return journal_so_far(repo)[0]


def landed(repo: Path) -> None:
    assert git(repo, "show", "main:a.txt") == "a" and git(repo, "show", "main:b.txt") == "b"
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert worktree_dirs(Path.home()) == [] and lock_files(repo) == []
    assert git(repo, "status", "--porcelain") == ""


# --- the place --------------------------------------------------------------------------------------------------

def test_worktrees_go_under_the_users_data_dir_with_a_key_per_repository(repo: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gateway, config = find_repository(repo), load_config(repo)
    key = worktrees.repo_key(gateway)
    assert key.startswith("repo-") and len(key) == len("repo-") + 12
    assert worktrees.new_path(gateway, config, "r1", "a") == data_root() / key / "r1" / "a"
    assert worktrees.repo_key(find_repository(repo / "src")) == key  # stable: from any directory of it
    clone = tmp_path / "elsewhere" / "repo"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert worktrees.repo_key(find_repository(clone)) not in (key, "")  # a clone of the same name: its own
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert worktrees.root(config) == tmp_path / "data" / "gitteam" / "worktrees"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # invalid by the XDG spec: ignored
    assert worktrees.root(config) == data_root()
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[worktrees]\nroot = "~/wt"\n')
    assert worktrees.repo_dir(gateway, load_config(repo)) == Path.home() / "wt" / key
    for inside in (repo / ".git" / "wt", repo / "wt"):
        user.write_text(f'[worktrees]\nroot = "{inside}"\n')
        with pytest.raises(UsageError, match=r"inside the repository's .*\[worktrees\] root"):
            worktrees.repo_dir(gateway, load_config(repo))


def test_a_test_command_leaving_pycache_in_a_repository_without_gitignore_ends_clean(repo: Path,
                                                                                   tmp_path: Path) -> None:
    """The test command byte-compiles the code (`__pycache__/`) in every worktree, the integration review's
    too; nothing in this repository ignores it. Build output is no one's work: the run ends with no worktree
    kept and nothing saved, and clean has nothing left to do."""
    commit_files(repo, {"tests/test_app.py": "import app\n"})
    test = shlex.join([sys.executable, "-m", "compileall", "-q", "src", "tests"])
    data = script([plan_turn([subtask("a", ["src/a.py"]), subtask("b", ["src/b.py"])])],
                  {x: [call("write_file", path=f"src/{x}.py", content=f"X = '{x}'\n"), done(x)] for x in "ab"})
    path = write_script(tmp_path / "s.json", data)
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(f'[sandbox]\nmode = "none"\n[commands]\ntest = {json.dumps(test)}\n')
    proc = cli(repo, "run", "--yes", "--json", "--model", f"replay:{path}", "two modules")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["state"] == "merged" and "kept" not in summary["message"], summary["message"]
    assert "leftover" not in summary["message"]
    assert git(repo, "for-each-ref", "refs/gitteam/leftovers/") == ""
    assert not any(e["event"] == "agent_committed" and e["stray"] for e in journal_so_far(repo)[1])
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert worktree_dirs(Path.home()) == []
    cleaned = cli(repo, "clean")
    assert cleaned.returncode == 0 and "removed 0 worktree(s)" in cleaned.stdout, cleaned.stdout


# --- kills, moves, clones, older runs ---------------------------------------------------------------------------

def test_a_repository_moved_between_a_kill_and_resume_resumes_and_lands(repo: Path, tmp_path: Path) -> None:
    model = write_script(tmp_path / "s.json", two_writers())
    run = killed_run(repo, model, "transaction:3")  # the first agent's commit, git holding HEAD's locks
    before = started(journal_so_far(repo)[1])
    assert before and all(path.is_dir() and data_root() in path.parents for path in before.values())
    moved = tmp_path / "moved" / "project"
    moved.parent.mkdir()
    shutil.move(repo, moved)
    proc = gitteam(moved, "resume", run, "--yes", "--model", f"replay:{model}")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    landed(moved)
    assert not any(path.exists() for path in before.values())


def test_two_clones_of_one_repository_run_at_once_without_mixing_worktrees(repo: Path, tmp_path: Path) -> None:
    clones = [tmp_path / where / "project" for where in ("one", "two")]
    for clone in clones:
        git(tmp_path, "clone", "-q", str(repo), str(clone))
    model = write_script(tmp_path / "s.json", two_writers(delay=1.0))
    procs = [gitteam(clone, "run", "--yes", "--model", f"replay:{model}", "two files") for clone in clones]
    deadline = time.monotonic() + 60
    while not all(len(started(journal_so_far(clone)[1])) == 2 for clone in clones):
        assert time.monotonic() < deadline and all(proc.poll() is None for proc in procs)
        time.sleep(0.02)
    places = [started(journal_so_far(clone)[1]) for clone in clones]
    listed = [{Path(line.removeprefix("worktree ")) for line in git(clone, "worktree", "list", "--porcelain")
               .splitlines() if line.startswith("worktree ")} for clone in clones]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    keys = [{path.parents[1] for path in where.values()} for where in places]
    assert all(len(key) == 1 for key in keys) and keys[0] != keys[1]
    assert all(key.name.startswith("project-") and key.parent == data_root() for found in keys for key in found)
    for where, seen, clone in zip(places, listed, clones, strict=True):
        spares = {path for path in seen if path.name.startswith(".spare-")}  # made while planning, going now
        assert seen - spares == {clone, *where.values()}  # each clone's git knows its own worktrees, only
        assert {path.parent for path in spares} <= {path.parent for path in where.values()}
    for clone in clones:
        assert git(clone, "show", "main:a.txt") == "a" and git(clone, "worktree", "list").count("\n") == 0
    assert worktree_dirs(Path.home()) == []


def test_an_agents_branch_the_user_checked_out_is_never_taken_over(repo: Path, tmp_path: Path) -> None:
    """After a kill the user removed an agent's worktree and checked its branch out in one of their own: resume
    fails that subtask saying so, abort removes the run's worktrees, and the user's stays as it is."""
    model = write_script(tmp_path / "s.json", two_writers())
    run = killed_run(repo, model, "transaction:4")
    assert lock_files(repo) and cli(repo, "clean").returncode == 0 and lock_files(repo) == []  # clean recovers too
    git(repo, "worktree", "remove", "--force", str(started(journal_so_far(repo)[1])["b"]))
    mine = tmp_path / "mine"
    git(repo, "worktree", "add", "-q", str(mine), f"gitteam/{run}/b")
    (mine / "notes.txt").write_text("mine\n")
    resumed = cli(repo, "resume", run, "--yes", "--model", f"replay:{model}")
    assert resumed.returncode == 1 and f"is checked out in {mine}" in resumed.stderr, resumed.stderr
    assert cli(repo, "abort", run).returncode == 0
    assert (mine / "notes.txt").read_text() == "mine\n" and git(mine, "status", "--porcelain") == "?? notes.txt"
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 2 and f"worktree {mine}" in listed


def old_layout(repo: Path, run: str) -> dict[str, Path]:
    """Move the run's worktrees where a gitteam before this layout made them, as git and the journal say."""
    journal = repo / ".git" / "gitteam" / "runs" / run / "events.jsonl"
    places = started(journal_so_far(repo)[1])
    text = journal.read_text()
    legacy = {}
    for agent, path in places.items():
        legacy[agent] = repo.resolve() / ".git" / "gitteam" / "worktrees" / run / agent
        legacy[agent].parent.mkdir(parents=True, exist_ok=True)
        git(repo, "worktree", "move", str(path), str(legacy[agent]))
        text = text.replace(json.dumps(str(path)), json.dumps(str(legacy[agent])))
    journal.write_text(text)
    shutil.rmtree(data_root())
    return legacy


@pytest.mark.parametrize("action", ["resume", "abort", "clean"])
def test_a_run_with_worktrees_in_the_git_dir_can_be_resumed_aborted_or_cleaned(repo: Path, tmp_path: Path,
                                                                              action: str) -> None:
    model = write_script(tmp_path / "s.json", two_writers())
    if action == "clean":
        assert cli(repo, "run", "--yes", "--keep", "--model", f"replay:{model}", "two files").returncode == 0
        run = journal_so_far(repo)[0]
    else:
        run = killed_run(repo, model, "transaction:4")
    legacy = old_layout(repo, run)
    (legacy["a"] / "mine.txt").write_text("not a's\n")
    args = {"resume": ["resume", run, "--yes", "--model", f"replay:{model}"], "abort": ["abort", run],
            "clean": ["clean"]}[action]
    proc = cli(repo, *args)
    assert proc.returncode == 0, proc.stderr
    assert not (repo / ".git" / "gitteam" / "worktrees" / run).exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "show", f"refs/gitteam/leftovers/{run}/a:mine.txt") == "not a's"
    if action != "abort":
        assert git(repo, "show", "main:b.txt") == "b"


def test_a_deleted_repositorys_worktrees_are_orphans_clean_lists_and_removes(repo: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    git(tmp_path, "clone", "-q", str(repo), str(gone))
    model = write_script(tmp_path / "s.json", two_writers())
    assert cli(gone, "run", "--yes", "--keep", "--model", f"replay:{model}", "two files").returncode == 0
    left = started(journal_so_far(gone)[1])
    shutil.rmtree(gone)
    for path in left.values():  # older than a worktree being made by another gitteam right now
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    listed = cli(repo, "clean")
    assert listed.returncode == 0, listed.stderr
    assert "found 2 orphaned worktree(s)" in listed.stdout and "--orphans" in listed.stdout
    assert all(path.is_dir() and str(path) in listed.stdout for path in left.values())
    removed = cli(repo, "clean", "--orphans")
    assert "removed 2 orphaned worktree(s)" in removed.stdout, removed.stdout
    assert worktree_dirs(Path.home()) == []


# --- git's lock files ------------------------------------------------------------------------------------------

def in_a_killed_process(repo: Path, code: str, env: dict[str, str] | None = None) -> None:
    """Run gitteam's `code` (with `r`, the repository) in a process of its own session, which dies by SIGKILL."""
    prelude = ("from pathlib import Path\nfrom gitteam.git import find_repository\n"
               f"r = find_repository(Path({str(repo)!r}))\n")
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          start_new_session=True, env={**os.environ, **(env or {})}, timeout=60)
    assert proc.returncode == -9, proc.stderr


def test_a_ref_lock_a_killed_gitteam_left_is_cleared_and_a_live_gits_is_not(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    in_a_killed_process(repo, f"r.update_ref('refs/heads/gitteam/r/a', {head!r}, None)",
                        {"GITTEAM_TEST_KILL_AT": "transaction:1"})
    assert lock_files(repo) == ["refs/heads/gitteam/r/a.lock"]
    refused = subprocess.run(["git", "branch", "gitteam/r/a"], cwd=repo, capture_output=True, text=True)
    assert "File exists" in refused.stderr
    live = subprocess.Popen(["git", "update-ref", "--stdin"], cwd=repo, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # the user's git, in the middle of its update
    assert live.stdin is not None and live.stdout is not None
    live.stdin.write(f"start\nupdate refs/heads/mine {head}\nprepare\n")
    live.stdin.flush()
    assert live.stdout.readline() == "start: ok\n" and live.stdout.readline() == "prepare: ok\n"
    removed = find_repository(repo).clear_stale_locks()
    assert removed == [repo.resolve() / ".git/refs/heads/gitteam/r/a.lock"]
    assert lock_files(repo) == ["refs/heads/mine.lock"]  # no record of gitteam's names it: never touched
    live.stdin.write("commit\n")
    live.stdin.close()
    assert live.wait() == 0 and git(repo, "rev-parse", "mine") == head
    git(repo, "branch", "gitteam/r/a")


def test_a_target_branchs_lock_a_killed_fast_forward_left_is_cleared_once_it_is_old_enough(repo: Path) -> None:
    """The target branch is a place the user's git writes too: its lock goes only once it has sat unchanged
    for SHARED_AGE seconds (a git the user just started keeps its own)."""
    old = git(repo, "rev-parse", "main")
    git(repo, "checkout", "-q", "-b", "elsewhere")  # main is checked out nowhere: the fast-forward is a CAS
    new = commit_files(repo, {"x.txt": "x\n"})
    in_a_killed_process(repo, f"r.fast_forward('main', {new!r}, {old!r})", {"GITTEAM_TEST_KILL_AT": "transaction:1"})
    assert lock_files(repo) == ["refs/heads/main.lock"]
    began = time.monotonic()
    assert find_repository(repo).clear_stale_locks() == [repo.resolve() / ".git/refs/heads/main.lock"]
    assert time.monotonic() - began >= 1.0  # made just now: waited until it was SHARED_AGE old
    assert find_repository(repo).fast_forward("main", new, old).moved
    assert git(repo, "rev-parse", "main") == new and lock_files(repo) == []


def test_a_worktree_add_killed_midway_is_unlocked_and_its_place_made_again(repo: Path, tmp_path: Path) -> None:
    """`git worktree add` marks the worktree `locked` ("initializing") until it is made; killed inside its
    checkout (a filter of the user's), the mark stays and git refuses the place until the lock is cleared."""
    commit_files(repo, {".gitattributes": "*.txt filter=pause\n", "one.txt": "one\n"})
    control = tmp_path / "control"
    control.mkdir()
    (control / "filter.py").write_text(FILTER)
    (control / "kill-at").write_text("1")
    git(repo, "config", "filter.pause.smudge", f"{sys.executable} -I -S {control / 'filter.py'} {control}")
    place = tmp_path / "wt" / "a"
    in_a_killed_process(repo, f"""
        import subprocess
        with r.locks.held(adding="a"):
            subprocess.run(["git", "worktree", "add", "-q", "-b", "x", {str(place)!r}], cwd={str(repo)!r})
    """)
    assert "worktrees/a/locked" in lock_files(repo)
    (control / "kill-at").unlink()
    gateway = find_repository(repo)
    assert repo.resolve() / ".git/worktrees/a/locked" in gateway.clear_stale_locks()
    worktrees.discard(gateway, place)
    gateway.add_worktree(place, "x")
    assert (place / "one.txt").read_text() == "one\n" and lock_files(repo) == []


def test_a_worktree_add_killed_before_its_admin_dir_was_whole_goes_with_it(repo: Path, tmp_path: Path) -> None:
    """Killed while git wrote the admin dir's `commondir` (left empty), a `git worktree add` leaves a dir every
    later `git worktree` command dies reading: recovery removes it, and worktrees can be made again."""
    place = tmp_path / "wt" / ".spare-1"
    in_a_killed_process(repo, f"""
        import os, signal, subprocess
        with r.locks.held(adding={place.name!r}):
            subprocess.run(["git", "worktree", "add", "-q", "--no-checkout", "--detach", {str(place)!r}],
                           cwd={str(repo)!r}, check=True)
            admin = Path({str(repo)!r}) / ".git" / "worktrees" / "-spare-1"
            (admin / "locked").write_text("initializing")  # as git leaves it until the worktree is made
            (admin / "commondir").write_text("")  # opened, not yet written
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    broken = subprocess.run(["git", "worktree", "add", "-q", str(tmp_path / "other")], cwd=repo, capture_output=True,
                            text=True)
    assert broken.returncode != 0 and "commondir" in broken.stderr
    gateway = find_repository(repo)
    assert repo.resolve() / ".git/worktrees/-spare-1" in gateway.clear_stale_locks()
    assert not (repo / ".git" / "worktrees" / "-spare-1").exists()
    worktrees.discard(gateway, place)
    gateway.create_worktree(tmp_path / "wt" / "a", "a", "HEAD")
    assert (tmp_path / "wt" / "a" / "README.md").read_text() == "# project\n"


def test_a_fast_forward_of_the_users_checkout_killed_midway_is_completed(repo: Path, tmp_path: Path) -> None:
    """Killed inside `git merge --ff-only` of the checked-out branch: the user's index.lock stays, and files are
    half updated. Once the lock is cleared, the fast-forward completes over what it had written (exactly the
    update's own content), and nothing else of the user's is touched."""
    commit_files(repo, {".gitattributes": "*.txt filter=pause\n"})
    control = tmp_path / "control"
    control.mkdir()
    (control / "filter.py").write_text(FILTER)
    git(repo, "config", "filter.pause.smudge", f"{sys.executable} -I -S {control / 'filter.py'} {control}")
    old = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "side")
    new = commit_files(repo, {"A.md": "written first\n", "b.txt": "b\n", "c.txt": "c\n"})
    git(repo, "checkout", "-q", "main")
    (repo / "untracked.md").write_text("mine\n")
    (control / "kill-at").write_text("1")
    in_a_killed_process(repo, f"r.fast_forward('main', {new!r}, {old!r})")
    (control / "kill-at").unlink()
    assert "index.lock" in lock_files(repo) and (repo / "A.md").exists() and not (repo / "c.txt").exists()
    gateway = find_repository(repo)
    assert repo.resolve() / ".git/index.lock" in gateway.clear_stale_locks()
    result = gateway.fast_forward("main", new, old)
    assert result.moved, result.detail
    assert git(repo, "rev-parse", "HEAD") == new and git(repo, "status", "--porcelain") == "?? untracked.md"
    assert (repo / "c.txt").read_text() == "c\n" and (repo / "untracked.md").read_text() == "mine\n"


def test_a_run_removes_its_worktrees_at_its_end_without_walking_them_for_their_size(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The size is what `gitteam clean` reports (test_cli); a run's own removal, on the way to its result, does
    not walk its worktrees for a number no one reads."""
    from gitteam.run.context import RunOptions
    from scripts import events, start

    def walked(paths: object) -> int:
        raise AssertionError("a run's own removal measured its worktrees")

    monkeypatch.setattr(worktrees, "disk_usage", walked)
    plan = [subtask(x, [f"{x}.txt"]) for x in "ab"]
    result = start(repo, script([plan_turn(plan)], {x: [call("write_file", path=f"{x}.txt", content=x), done(x)]
                                                    for x in "ab"}), RunOptions(yes=True))
    assert result.state == "merged", result.message
    removals = events(repo, result.run, "worktrees_removed")  # during the integration review, then at the end
    assert sorted(path for removal in removals for path in removal["removed"]) == sorted(
        str(e["worktree"]) for e in events(repo, result.run, "agent_started"))
    assert not any("freed" in removal for removal in removals)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.parametrize("how", ["yes", "keep", "no_merge"])
def test_an_unattended_run_removes_merged_worktrees_while_its_integration_is_reviewed(repo: Path, how: str) -> None:
    """The integration review's model call is the run's one wait with every subtask merged: an unattended run
    (--yes) removes their worktrees then, so its end has nothing left to remove. --keep keeps them; a run that
    waits for a person (--no-merge) keeps them until approve or reject."""
    from gitteam.run.context import RunOptions
    from scripts import events, start

    plan = [subtask(x, [f"{x}.txt"]) for x in "ab"]
    data = script([plan_turn(plan)], {x: [call("write_file", path=f"{x}.txt", content=x), done(x)] for x in "ab"})
    options = {"yes": RunOptions(yes=True), "keep": RunOptions(yes=True, keep=True),
               "no_merge": RunOptions(no_merge=True)}[how]
    result = start(repo, data, options)
    assert result.state == ("pending" if how == "no_merge" else "merged"), result.message
    made = sorted(str(e["worktree"]) for e in events(repo, result.run, "agent_started"))
    assert len(made) == 2
    kinds = [e["event"] for e in events(repo, result.run)]
    removals = events(repo, result.run, "worktrees_removed")
    if how == "yes":
        first = kinds.index("worktrees_removed")
        assert kinds.index("integration_review") < kinds.index("approved") and first < kinds.index("approved")
        assert sorted(removals[0]["removed"]) == made
        assert not any(Path(path).exists() for path in made)
        assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    else:
        assert removals == []
        assert all(Path(path).is_dir() for path in made)
        assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 3

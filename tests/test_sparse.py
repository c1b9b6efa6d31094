"""Sparse worktrees ([worktrees] mode): an agent's worktree holds the directories of its files, the top-level
files and the configured ones, with a sparse index; its read tools still see the whole repository (outside the
cone: the start commit); what its commands write outside the cone is seen, kept out of its commit and saved."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.cone import Cone
from gitteam.config import load_config
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.roles.tools import WorktreeView
from gitteam.run import worktrees
from gitteam.run.context import RunOptions
from gitteam.transcripts import DIR, read_transcript
from scripts import (
    call,
    coder_runs,
    coder_writes,
    done,
    events,
    plan_turn,
    rev,
    script,
    start,
    subtask,
    write_script,
)
from scripts import worktrees as listed_worktrees

SCRATCH = ".gitteam-scratch"
FILES = {
    "Makefile": "all:\n",
    "src/app/main.py": "def main():\n    return 1\n",
    "src/app/deep/util.py": "HELPER = 1\n",
    "src/top.py": "TOP = 1\n",
    "src/other/far.py": "def far_away():\n    return 'outside the cone'\n",
    "docs/guide.md": "# far_away is documented here\n",
    "tests/test_app.py": "def test_app():\n    assert True\n",
}


@pytest.fixture
def big(repo: Path) -> Path:
    commit_files(repo, FILES, "a tree with directories")
    return repo


def on_disk(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and ".git" not in p.parts}


# --- the cone -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dirs", [["src/app"], ["src/app", "tests", "a b/c#d"], ["lib", "src/x/y/z"], []])
def test_the_pattern_file_is_the_one_git_writes_for_the_same_cone(repo: Path, dirs: list[str]) -> None:
    git(repo, "worktree", "add", "-q", "--no-checkout", str(repo.parent / "probe"))
    probe = repo.parent / "probe"
    subprocess.run(["git", "sparse-checkout", "set", "--cone", "--", *dirs], cwd=probe, check=True,
                   capture_output=True)
    admin = Path(git(probe, "rev-parse", "--absolute-git-dir"))
    written = (admin / "info" / "sparse-checkout").read_text()
    cone = Cone.around([f"{d}/f.py" for d in dirs])
    assert cone.patterns() == written
    assert Cone.parse(written) == cone


def test_a_cone_holds_whole_directories_top_files_and_the_files_of_their_parents() -> None:
    cone = Cone.around(["src/app/main.py", "README.md"], always=["tests/"])
    assert cone.directories == ("src/app", "tests")
    inside = ["README.md", "Makefile", "src/app/main.py", "src/app/deep/util.py", "src/top.py", "tests/x/y.py"]
    outside = ["src/other/far.py", "docs/guide.md", "srcx/a.py", "src/application/a.py"]
    assert [p for p in inside if not cone.contains(p)] == []
    assert [p for p in outside if cone.contains(p)] == []
    assert Cone.around(["a/b.py", "a/c/d.py"]).directories == ("a",)  # one inside another: the outer one


# --- the worktree ----------------------------------------------------------------------------------------------

def test_a_sparse_worktree_has_its_cone_on_disk_a_clean_status_and_a_sparse_index(big: Path) -> None:
    r = find_repository(big)
    path = big.parent / "wt"
    r.create_worktree(path, "agent", "main", Cone.around(["src/app/main.py"], ["tests"]))
    assert on_disk(path) == {"README.md", "Makefile", "src/app.py", "src/app/main.py", "src/app/deep/util.py",
                             "src/top.py", "tests/test_app.py"}
    assert git(path, "status", "--porcelain") == ""  # no staged deletions: the index was filled, sparsely
    assert "src/other/" in git(path, "ls-files", "--sparse").splitlines()  # a collapsed directory entry
    assert git(path, "sparse-checkout", "list").splitlines() == ["src/app", "tests"]
    assert r.sparse_cone(path) == Cone(("src/app", "tests"))
    assert r.sparse_cone(big) is None
    assert git(big, "status", "--porcelain") == ""
    r.create_worktree(big.parent / "full", "whole", "main")  # the next full one is whole
    assert on_disk(big.parent / "full") == {"README.md", "src/app.py", *FILES}


def test_a_write_outside_the_cone_is_seen_by_status_even_when_the_user_expects_files_there(big: Path) -> None:
    git(big, "config", "sparse.expectFilesOutsideOfPatterns", "true")  # would hide it from git status
    r = find_repository(big)
    path = big.parent / "wt"
    r.create_worktree(path, "agent", "main", Cone.around(["src/app/main.py"]))
    (path / "src" / "other").mkdir()
    (path / "src" / "other" / "far.py").write_text("changed by a command\n")
    (path / "docs").mkdir()
    (path / "docs" / "new.md").write_text("new\n")
    assert sorted(r.worktree_changes(path)) == ["docs/new.md", "src/other/far.py"]


def test_auto_goes_sparse_above_the_threshold_and_never_for_a_command_coder(big: Path) -> None:
    r = find_repository(big)
    start = git(big, "rev-parse", "HEAD")
    files = ["src/app/main.py"]
    assert worktrees.tracked_count(r, start) == len(FILES) + 2
    assert worktrees.cone_for(r, load_config(big), files, start, external=False) is None  # 9 files: full
    few = load_config(big, {"worktrees.sparse_above": 8})
    assert worktrees.cone_for(r, few, files, start, external=False) == Cone(("src/app",))
    assert worktrees.cone_for(r, few, files, start, external=True) is None
    forced = load_config(big, {"worktrees.mode": "sparse", "worktrees.always": ["tests"]})
    assert worktrees.cone_for(r, forced, files, start, external=True) == Cone(("src/app", "tests"))
    assert worktrees.cone_for(r, load_config(big, {"worktrees.mode": "full", "worktrees.sparse_above": 0}),
                              files, start, external=False) is None


def test_a_repository_may_choose_the_mode_but_not_the_root(big: Path) -> None:
    (big / ".gitteam.toml").write_text('[worktrees]\nmode = "sparse"\nalways = ["tests"]\nroot = "/tmp/x"\n')
    config = load_config(big)
    assert (config.worktrees.mode, config.worktrees.always, config.worktrees.root) == ("sparse", ("tests",), "")
    assert "worktrees.root" in config.ignored


def test_a_bad_mode_is_a_one_line_error(big: Path) -> None:
    (big / ".gitteam.toml").write_text('[worktrees]\nmode = "thin"\n')
    proc = subprocess.run([sys.executable, "-m", "gitteam", "plan", "x"], cwd=big, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert 'worktrees.mode must be "auto", "full" or "sparse"' in proc.stderr


# --- the read tools ------------------------------------------------------------------------------------------

def test_the_read_tools_see_the_whole_repository_from_a_sparse_worktree(big: Path) -> None:
    r = find_repository(big)
    start = git(big, "rev-parse", "HEAD")
    path = big.parent / "wt"
    r.create_worktree(path, "agent", start, Cone.around(["src/app/main.py"]))
    (path / "src" / "app" / "main.py").write_text("def main():\n    return far_away()\n")  # the agent's own
    view = WorktreeView(r, path, start)
    assert view.paths() == sorted(["README.md", "src/app.py", *FILES])
    assert view.read("src/other/far.py") == FILES["src/other/far.py"].encode()  # from the start commit
    assert view.read("src/app/main.py") == b"def main():\n    return far_away()\n"  # from disk
    found = view.grep("far_away", view.paths(), seconds=10, max_matches=50, max_line=200)
    assert [(m.path, m.line) for m in found.matches] == [("docs/guide.md", 1), ("src/app/main.py", 2),
                                                          ("src/other/far.py", 1)]
    assert view.grep("far_away", view.paths(), seconds=10, max_matches=2, max_line=200).stopped == "matches"
    (path / "src" / "other").mkdir()
    (path / "src" / "other" / "far.py").write_text("written by a command\n")
    assert view.read("src/other/far.py") == b"written by a command\n"  # on disk now: the disk's bytes
    (path / "src" / "app" / "main.py").unlink()
    with pytest.raises(Exception, match="no such file: src/app/main.py"):  # inside the cone: the disk says
        view.read("src/app/main.py")


# --- a whole run ------------------------------------------------------------------------------------------------

LOOK = ("import os, pathlib\n"
        "print(sorted(str(p) for p in pathlib.Path('.').rglob('*.py') if '.git' not in p.parts))\n"
        "pathlib.Path('src/other').mkdir(exist_ok=True)\n"
        "pathlib.Path('src/other/far.py').write_text('a command changed it\\n')\n")


def test_a_sparse_run_reads_everything_commits_its_file_and_saves_a_write_outside_the_cone(big: Path) -> None:
    python = shlex.quote(sys.executable)
    data = script(
        planner=[plan_turn([subtask("app", ["src/app/main.py"])])],
        coder={"app": [call("read_file", path="src/other/far.py"), call("search", pattern="far_away"),
                       coder_writes(f"{SCRATCH}/look.py", LOOK), coder_runs(f"{python} {SCRATCH}/look.py"),
                       coder_writes("src/app/main.py", "def main():\n    return 2\n"), done("changed main")]},
    )
    before = git(big, "status", "--porcelain")
    result = start(big, data, config={"worktrees.mode": "sparse", "commands.allowed": [f"{python} {SCRATCH}/*.py"]})
    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert git(big, "show", "main:src/app/main.py") == "def main():\n    return 2"
    assert git(big, "show", "main:src/other/far.py") == FILES["src/other/far.py"].strip()  # not the agent's
    [committed] = events(big, result.run, "agent_committed")
    assert committed["stray"] == ["src/other/far.py"]  # seen on the file system, outside the cone
    saved = rev(big, f"refs/gitteam/leftovers/{result.run}/app") or ""
    assert git(big, "show", f"{saved}:src/other/far.py") == "a command changed it"
    assert listed_worktrees(big) == [str(big)] and git(big, "status", "--porcelain") == before
    path = Journal(find_repository(big).state_dir, result.run).dir / DIR / "coder-app.jsonl"
    results = {r["name"]: r["text"] for r in read_transcript(path).records if r["kind"] == "tool_result"}
    assert "outside the cone" in results["read_file"]
    assert "src/other/far.py:1:" in results["search"] and "docs/guide.md:1:" in results["search"]
    assert "'src/app/main.py'" in results["run"] and "src/other" not in results["run"].split("]")[0]


CHECK = ("from pathlib import Path\n"
         "assert Path('src/other/far.py').is_file() and Path('docs/guide.md').is_file(), 'not a whole tree'\n"
         "assert not Path('junk.txt').exists(), 'an earlier test left an untracked file'\n"
         "Path('junk.txt').write_text('x')\n"
         "marker = Path('build/marker')\n"
         "marker.parent.mkdir(exist_ok=True)\n"
         "marker.write_text(str(int(marker.read_text()) + 1 if marker.exists() else 1))\n")


def test_the_gate_tests_a_sparse_subtask_in_a_whole_tree_reused_across_subtasks(big: Path) -> None:
    commit_files(big, {"check.py": CHECK, ".gitignore": "build/\n"}, "a test needing the whole tree")
    data = script(
        planner=[plan_turn([subtask("app", ["src/app/main.py"]),
                            subtask("far", ["src/other/far.py"], depends_on=["app"])])],
        coder={"app": [coder_writes("src/app/main.py", "def main():\n    return 2\n"), done()],
               "far": [coder_writes("src/other/far.py", "def far_away():\n    return 2\n"), done()]},
    )
    config = {"worktrees.mode": "sparse", "commands.test": f"{shlex.quote(sys.executable)} check.py"}
    result = start(big, data, RunOptions(yes=True, keep=True), config=config)
    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert git(big, "show", "main:src/other/far.py") == "def far_away():\n    return 2"
    places = {Path(p).name: Path(p) for p in listed_worktrees(big)[1:]}
    assert sorted(places) == [".gate-1", "app", "far"]  # one whole tree, lent to both subtasks in turn
    assert (places[".gate-1"] / "build" / "marker").read_text() == "2"
    assert git(places[".gate-1"], "rev-parse", "HEAD") == rev(big, f"gitteam/{result.run}/far")
    assert not (places["app"] / "src" / "other").exists()  # the agents' own stayed sparse


def test_a_failing_test_in_the_whole_tree_requests_changes_of_a_sparse_subtask(big: Path) -> None:
    commit_files(big, {"check.py": "raise SystemExit('the tests fail')\n"}, "failing tests")
    data = script(
        planner=[plan_turn([subtask("app", ["src/app/main.py"])])],
        # the failing checks go back to the coder (twice, without a review round), which cannot fix them
        coder={"app": [coder_writes("src/app/main.py", "def main():\n    return 2\n"), done(), done(), done()]},
    )
    config = {"worktrees.mode": "sparse", "commands.test": f"{shlex.quote(sys.executable)} check.py",
              "run.max_rounds": 1}
    result = start(big, data, config=config)
    assert result.exit_code == 3, result.message
    [reviewed] = events(big, result.run, "review")
    assert "the tests fail" in str(reviewed["verdict"])
    assert git(big, "show", "main:src/app/main.py") == "def main():\n    return 1"


# --- the integration review -----------------------------------------------------------------------------------

@pytest.mark.parametrize("test_command", [False, True])
def test_the_integration_review_checks_out_the_result_only_when_a_command_runs_in_it(
        repo: Path, tmp_path: Path, test_command: bool) -> None:
    data = script(
        planner=[plan_turn([subtask(x, [f"{x}.txt"]) for x in "ab"])],
        coder={x: [coder_writes(f"{x}.txt", f"{x}\n"), done()] for x in "ab"},
    )
    path = write_script(tmp_path / "script.json", data)
    config = tmp_path / "config" / "gitteam" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[commands]\ntest = "{sys.executable} -c pass"\n[sandbox]\nmode = "none"\n'
                      if test_command else "")
    shim, log = tmp_path / "shim", tmp_path / "git.log"  # a git on PATH that logs what gitteam asks of it
    shim.mkdir()
    (shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("git")} "$@"\n')
    (shim / "git").chmod(0o755)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": f"{shim}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "gitteam", "run", "--yes", "--model", f"replay:{path}", "two"],
                          cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "show", "main:a.txt") == "a" and git(repo, "show", "main:b.txt") == "b"
    added = [line for line in log.read_text().splitlines() if "worktree add" in line]
    result = [line for line in added if line.split()[-2].endswith("/integration")]
    assert len(result) == (1 if test_command else 0), added  # the result's, for its tests only
    assert len(added) - len(result) == 4, added  # the agents' (made while the planner answered: max_agents)

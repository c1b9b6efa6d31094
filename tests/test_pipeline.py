"""The core pipeline end to end, on real repositories: plan, waves of coders in worktrees, the merge gate,
integration, approval and the fast-forward, with every role played by a replay script.

Each test asserts what a run leaves in git (branches, commits, notes, files, the user's checkout) and its
exit code; nothing of git or gitteam is mocked.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import commit_files, git
from gitteam.config import load_config
from gitteam.git import find_repository
from gitteam.run.context import ApprovalRequest, RunOptions
from gitteam.run.control import decide
from scripts import (
    approve,
    blob,
    block,
    branches,
    call,
    cli,
    coder_deletes,
    coder_edits,
    coder_reads,
    coder_runs,
    coder_writes,
    commits,
    done,
    events,
    finding,
    is_ancestor,
    note,
    only_run,
    plan_turn,
    refused,
    request_changes,
    resume,
    rev,
    run_state,
    script,
    script_path,
    sha,
    spec,
    start,
    status,
    subtask,
    turn,
    worktrees,
    write_script,
)

PRICES = {"input": 3.0, "output": 15.0}
APP = "def main():\n    return 1\n"


def one_file_script(path: str = "src/app.py", content: str = "def main():\n    return 2\n") -> dict[str, object]:
    return script(
        planner=[plan_turn([subtask("change", [path])])],
        coder={"change": [turn(coder_writes(path, content), done("changed it"))]},
    )


def decide_run(root: Path, run: str, decision: str) -> tuple[int, str]:
    repo = find_repository(root)
    result = decide(repo, load_config(repo.root, {}), run, decision)
    return result.exit_code, result.message


# --- 1. a run with a dependency wave -----------------------------------------------------------------------

def test_dependent_subtask_starts_from_its_dependencys_merge_and_everything_lands(repo: Path) -> None:
    derive = [sys.executable, "tools/derive.py"]
    commit_files(repo, {"tools/derive.py": (
        "import pathlib\n"
        "lib = pathlib.Path('src/lib.py').read_text()\n"
        "pathlib.Path('src/use.py').write_text('# derived from src/lib.py\\n' + lib)\n"
    )}, "a generator")
    base = sha(repo, "main")
    before = status(repo)
    data = script(
        planner=[
            turn({"call": "list_files", "args": {}}),
            plan_turn([
                subtask("lib", ["src/lib.py", "src/app.py"]),
                subtask("docs", ["docs/guide.md"]),
                subtask("use", ["src/use.py"], depends_on=["lib"]),
            ]),
        ],
        coder={
            "lib": [turn(coder_writes("src/lib.py", "VALUE = 42\n"), coder_edits("src/app.py", "return 1", "return 2")),
                    done("src/lib.py defines VALUE")],
            "docs": [turn(coder_writes("docs/guide.md", "# Guide\n"), done())],
            # reads what its dependency created, then derives its own file from it in its worktree
            "use": [coder_reads("src/lib.py"), coder_runs(shlex.join(derive)), done("derived")],
        },
        prices=PRICES,
    )
    model = spec(script_path(repo))  # where start() writes the script

    result = start(repo, data, config={"commands.allowed": [shlex.join(derive)]})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    run = result.run
    assert [e["waves"] for e in events(repo, run, "plan")] == [[["lib", "docs"], ["use"]]]
    assert refused(repo, run) == []  # the read of src/lib.py in the dependent's worktree succeeded
    head = sha(repo, "main")
    assert head == rev(repo, f"gitteam/{run}/integration")
    assert is_ancestor(repo, base, head)
    assert blob(repo, "main", "src/use.py") == b"# derived from src/lib.py\nVALUE = 42\n"
    assert blob(repo, "main", "src/lib.py") == b"VALUE = 42\n"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    assert blob(repo, "main", "docs/guide.md") == b"# Guide\n"
    # the dependent's branch grew from the integration branch holding lib's commit; docs ran beside lib
    assert is_ancestor(repo, f"gitteam/{run}/lib", f"gitteam/{run}/use")
    assert not is_ancestor(repo, f"gitteam/{run}/lib", f"gitteam/{run}/docs")
    # the user's checkout followed the fast-forward and is otherwise as it was
    assert (repo / "src/use.py").read_text() == "# derived from src/lib.py\nVALUE = 42\n"
    assert status(repo) == before
    assert git(repo, "rev-parse", "HEAD") == head
    # provenance on every agent commit
    for agent in ("lib", "docs", "use"):
        authors = git(repo, "log", "--format=%an", f"{base}..gitteam/{run}/{agent}").splitlines()
        assert authors.count(f"gitteam coder {agent}") == 1, (agent, authors)
        data_note = note(repo, sha(repo, f"gitteam/{run}/{agent}"))
        assert {k: data_note[k] for k in ("run", "agent", "role", "model")} == {
            "run": run, "agent": agent, "role": "coder", "model": model}
        assert data_note["tokens"] > 0
        assert data_note["cost"] > 0
        assert data_note["review"]["decision"] == "APPROVE"
    assert '"agent": "docs"' in git(repo, "log", "-1", "--notes=gitteam", f"gitteam/{run}/docs")
    # worktrees gone, branches kept
    assert worktrees(repo) == [str(repo.resolve())]
    assert not list((Path.home() / ".local/share/gitteam/worktrees").glob(f"*/{run}"))
    assert branches(repo, run) == {"lib", "docs", "use", "integration"}


# --- 2. overlapping files serialized -----------------------------------------------------------------------

def test_two_subtasks_owning_one_file_are_serialized_and_both_edits_land(repo: Path) -> None:
    data = script(
        planner=[plan_turn([subtask("first", ["src/app.py", "src/a.py"]),
                            subtask("second", ["src/app.py", "src/b.py"])])],
        coder={
            "first": [turn(coder_edits("src/app.py", "def main():", "def main():  # first"),
                           coder_writes("src/a.py", "A = 1\n"), done())],
            # only matches if first's edit is already in second's worktree
            "second": [turn(coder_edits("src/app.py", "def main():  # first\n    return 1",
                                        "def main():  # first\n    return 2"),
                            coder_writes("src/b.py", "B = 2\n"), done())],
        },
    )
    result = start(repo, data)

    assert result.exit_code == 0, result.message
    [plan] = events(repo, result.run, "plan")
    by_id = {s["id"]: s for s in plan["plan"]["subtasks"]}
    assert by_id["second"]["depends_on"] == ["first"]
    assert by_id["first"]["depends_on"] == []
    assert any('"second" now waits for "first"' in line and "src/app.py" in line for line in plan["serialized"])
    assert plan["waves"] == [["first"], ["second"]]
    assert blob(repo, "main", "src/app.py") == b"def main():  # first\n    return 2\n"
    assert blob(repo, "main", "src/a.py") == b"A = 1\n"
    assert blob(repo, "main", "src/b.py") == b"B = 2\n"


# --- 4. exact bytes ------------------------------------------------------------------------------------------

def test_written_bytes_arrive_exactly_in_the_target(repo: Path) -> None:
    text = "h\u00e9llo w\u00f6rld \u2014 \u2713 \u65e5\u672c\u8a9e \U0001f600\n"
    data = script(
        planner=[plan_turn([subtask("bytes", ["data/nonl.txt", "data/crlf.txt", "data/utf8.txt"])])],
        coder={"bytes": [
            turn(coder_writes("data/nonl.txt", "no final newline"),
                 coder_writes("data/crlf.txt", "one\r\ntwo\r\nthree\r\n"),
                 coder_writes("data/utf8.txt", text)),
            turn(coder_edits("data/crlf.txt", "two", "d\u00f6s")),
            done(),
        ]},
    )
    result = start(repo, data)

    assert result.exit_code == 0, result.message
    expected = {
        "data/nonl.txt": b"no final newline",
        "data/crlf.txt": "one\r\nd\u00f6s\r\nthree\r\n".encode(),
        "data/utf8.txt": text.encode(),
    }
    for path, data_bytes in expected.items():
        assert blob(repo, "main", path) == data_bytes, path
        assert (repo / path).read_bytes() == data_bytes, path
    assert status(repo) == ""


# --- 5. deletion and creation ------------------------------------------------------------------------------

def test_deleted_and_created_files_land_in_the_target(repo: Path) -> None:
    commit_files(repo, {"old/legacy.py": "OLD = True\n", "old/keep.py": "KEEP = True\n"}, "legacy")
    data = script(
        planner=[plan_turn([subtask("remove", ["old/legacy.py"]), subtask("add", ["new/deep/module.py"])])],
        coder={
            "remove": [turn(coder_deletes("old/legacy.py"), done("removed"))],
            "add": [turn(coder_writes("new/deep/module.py", "NEW = True\n"), done("added"))],
        },
    )
    result = start(repo, data)

    assert result.exit_code == 0, result.message
    tracked = set(git(repo, "ls-tree", "-r", "--name-only", "main").split())
    assert "old/legacy.py" not in tracked
    assert {"old/keep.py", "new/deep/module.py", "src/app.py"} <= tracked
    assert not (repo / "old/legacy.py").exists()
    assert (repo / "new/deep/module.py").read_text() == "NEW = True\n"
    assert status(repo) == ""


# --- 6, 7. review rounds -------------------------------------------------------------------------------------

def test_requested_changes_then_approval_gives_two_commits_and_merges(repo: Path) -> None:
    base = sha(repo, "main")
    data = script(
        planner=[plan_turn([subtask("fix", ["src/app.py"])])],
        coder={"fix": [turn(coder_writes("src/app.py", "def main():\n    return 2\n"), done("first try")),
                       turn(coder_writes("src/app.py", "def main() -> int:\n    return 2\n"), done("typed"))]},
        reviewer={"fix": [request_changes("needs a type", [finding("src/app.py", "main has no return type", line=1,
                                                                  evidence="def main():")]),
                          approve("good now")]},
        prices=PRICES,
    )
    result = start(repo, data)

    assert result.exit_code == 0, result.message
    first, second = commits(repo, base, f"gitteam/{result.run}/fix")
    one, two = note(repo, first), note(repo, second)
    assert (one["round"], one["review"]["decision"]) == (1, "REQUEST_CHANGES")
    assert one["review"]["findings"][0]["message"] == "main has no return type"
    assert (two["round"], two["review"]["decision"], two["review"]["summary"]) == (2, "APPROVE", "good now")
    assert two["cost"] > one["cost"] > 0  # the coder's spend so far, at each commit
    assert blob(repo, "main", "src/app.py") == b"def main() -> int:\n    return 2\n"
    assert [e["verdict"]["decision"] for e in events(repo, result.run, "review")] == ["REQUEST_CHANGES", "APPROVE"]


def test_block_refuses_the_run_and_leaves_the_target_alone(repo: Path) -> None:
    base = sha(repo, "main")
    data = script(
        planner=[plan_turn([subtask("evil", ["src/app.py"]), subtask("fine", ["README.md"])])],
        coder={"evil": [turn(coder_writes("src/app.py", "import os\nos.system('rm -rf ~')\n"), done())],
               "fine": [turn(coder_writes("README.md", "# better\n"), done())]},
        reviewer={"evil": [block("deletes the home directory")], "fine": [approve()]},
    )
    result = start(repo, data)

    assert (result.exit_code, result.state) == (3, "refused")
    assert "blocked: deletes the home directory" in result.message
    assert rev(repo, "main") == base
    assert rev(repo, f"gitteam/{result.run}/integration") == base  # all or nothing: "fine" is not merged either
    assert (repo / "src/app.py").read_text() == APP and status(repo) == ""
    [commit] = commits(repo, base, f"gitteam/{result.run}/evil")
    assert blob(repo, commit, "src/app.py") == b"import os\nos.system('rm -rf ~')\n"
    assert note(repo, commit)["review"]["decision"] == "BLOCK"
    assert {"evil", "fine", "integration"} <= branches(repo, result.run)


def test_changes_still_requested_after_the_last_round_refuse_the_run(repo: Path) -> None:
    base = sha(repo, "main")
    data = script(
        planner=[plan_turn([subtask("fix", ["src/app.py"])])],
        coder={"fix": [turn(coder_writes("src/app.py", "x = 1\n"), done()),
                       turn(coder_writes("src/app.py", "x = 2\n"), done()),
                       turn(coder_writes("src/app.py", "x = 3\n"), done())]},
        reviewer={"fix": [request_changes("no", [finding("src/app.py", "x must be 3", evidence="x = 1")]),
                          request_changes("still no", [finding("src/app.py", "x must be 3", evidence="x = 2")]),
                          approve()]},
    )
    result = start(repo, data, config={"run.max_rounds": 2})

    assert (result.exit_code, result.state) == (3, "refused")
    assert "changes still requested after 2 round(s): still no" in result.message
    assert rev(repo, "main") == base
    history = commits(repo, base, f"gitteam/{result.run}/fix")
    assert [note(repo, c)["review"]["decision"] for c in history] == ["REQUEST_CHANGES", "REQUEST_CHANGES"]
    assert blob(repo, f"gitteam/{result.run}/fix", "src/app.py") == b"x = 2\n"


# --- 8, 9. approval --------------------------------------------------------------------------------------

def test_rejected_by_the_approver_exits_5_and_keeps_the_branches(repo: Path) -> None:
    base = sha(repo, "main")
    asked: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> str:
        asked.append(request)
        return "reject"

    result = start(repo, one_file_script(), RunOptions(approver=approver))

    assert (result.exit_code, result.state) == (5, "rejected")
    assert rev(repo, "main") == base and status(repo) == ""
    assert branches(repo, result.run) == {"change", "integration"}
    [request] = asked  # what the person saw: the changed files and the diff of the result, nothing protected
    assert (request.run, request.target, request.files, request.protected) == (result.run, "main", ["src/app.py"], [])
    assert "+    return 2" in request.diff
    assert blob(repo, f"gitteam/{result.run}/integration", "src/app.py") == b"def main():\n    return 2\n"
    assert git(repo, "for-each-ref", "refs/gitteam/locks/") == ""  # its files are free again
    assert worktrees(repo) == [str(repo.resolve())]


def test_cli_run_without_a_terminal_is_left_pending_then_rejected(repo: Path) -> None:
    base = sha(repo, "main")
    path = write_script(script_path(repo), one_file_script())

    ran = cli(repo, "run", "change the app", "--model", spec(path))

    assert ran.returncode == 0, ran.stderr
    run = only_run(repo)
    assert "pending" in ran.stdout and f"gitteam approve {run}" in ran.stdout
    assert rev(repo, "main") == base
    rejected = cli(repo, "reject", run)
    assert rejected.returncode == 5, rejected.stderr
    assert "rejected" in rejected.stdout
    assert rev(repo, "main") == base and status(repo) == ""
    assert branches(repo, run) == {"change", "integration"}
    assert run_state(repo, run).state == "rejected"


def test_cli_pending_json_then_approve_fast_forwards(repo: Path) -> None:
    base = sha(repo, "main")
    path = write_script(script_path(repo), one_file_script())

    ran = cli(repo, "run", "change the app", "--model", spec(path), "--json")

    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)  # exactly one JSON document on stdout
    assert summary["state"] == "pending" and summary["exit_code"] == 0
    assert summary["files"] == ["src/app.py"]
    run = summary["run"]
    assert f"gitteam approve {run}" in summary["message"]
    assert rev(repo, "main") == base and (repo / "src/app.py").read_text() == APP
    approved = cli(repo, "approve", run)
    assert approved.returncode == 0, approved.stderr
    assert rev(repo, "main") == rev(repo, f"gitteam/{run}/integration") != base
    assert (repo / "src/app.py").read_text() == "def main():\n    return 2\n"
    assert status(repo) == ""
    assert run_state(repo, run).state == "merged"


# --- 10. the target moves during the run -------------------------------------------------------------------

def test_an_unmoved_target_is_fast_forwarded_to_the_integration_head_itself(repo: Path) -> None:
    """No catch-up when the target stayed where the run started: no merge commit, no `target_moved`, and the
    target lands exactly on the commit the gate approved."""
    result = start(repo, one_file_script(), RunOptions(no_merge=True))
    assert result.state == "pending", result.message
    integrated = sha(repo, f"gitteam/{result.run}/integration")

    code, message = decide_run(repo, result.run, "approve")

    assert code == 0, message
    assert sha(repo, "main") == integrated == sha(repo, f"gitteam/{result.run}/integration")
    assert events(repo, result.run, "target_moved") == []


def test_target_moved_while_pending_is_merged_in_never_forced(repo: Path) -> None:
    result = start(repo, one_file_script(), RunOptions(no_merge=True))
    assert (result.exit_code, result.state) == (0, "pending"), result.message
    integrated = sha(repo, f"gitteam/{result.run}/integration")
    theirs = commit_files(repo, {"README.md": "# project, edited by the user\n"}, "user's own work")

    code, message = decide_run(repo, result.run, "approve")

    assert code == 0, message
    head = sha(repo, "main")
    assert is_ancestor(repo, theirs, head)  # moved forward from the user's commit
    assert head == rev(repo, f"gitteam/{result.run}/integration")
    assert blob(repo, "main", "README.md") == b"# project, edited by the user\n"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    assert git(repo, "rev-list", "--parents", "-1", head).split()[1:] == [integrated, theirs]  # a real merge
    assert len(events(repo, result.run, "target_moved")) == 1
    assert (repo / "README.md").read_text() == "# project, edited by the user\n" and status(repo) == ""


def test_target_moved_with_a_conflicting_commit_is_not_approved(repo: Path) -> None:
    result = start(repo, one_file_script(), RunOptions(no_merge=True))
    assert result.state == "pending", result.message
    theirs = commit_files(repo, {"src/app.py": "def main():\n    return 99\n"}, "user's conflicting work")

    code, message = decide_run(repo, result.run, "approve")

    assert code == 1
    assert f"gitteam/{result.run}/integration" in message
    assert rev(repo, "main") == theirs
    assert (repo / "src/app.py").read_text() == "def main():\n    return 99\n" and status(repo) == ""
    assert run_state(repo, result.run).state == "pending"


def test_a_moved_target_that_breaks_the_tests_together_with_the_run_is_not_approved(repo: Path) -> None:
    """Each side passes alone; merged they fail the test command: nothing reaches main, and a second approve
    checks again instead of fast-forwarding the untested merge."""
    commit_files(repo, {"calc.py": "def double(x):\n    return 2 * x\n"}, "calc")
    test = "import unittest\n\nimport calc\n\n\nclass T(unittest.TestCase):\n" \
           "    def test_double(self):\n        self.assertEqual(calc.double(2), 4)\n"
    data = script([plan_turn([subtask("tests", ["test_calc.py"])])],
                  {"tests": [coder_writes("test_calc.py", test), done()]})
    config = {"commands.test": f"{sys.executable} -m unittest discover -q"}
    result = start(repo, data, RunOptions(no_merge=True), config=config)
    assert result.state == "pending", result.message
    integrated = sha(repo, f"gitteam/{result.run}/integration")
    theirs = commit_files(repo, {"calc.py": "def twice(x):\n    return 2 * x\n"}, "user renames double")

    for _ in range(2):
        repository = find_repository(repo)
        code = decide(repository, load_config(repository.root, config), result.run, "approve").exit_code
        assert code == 3
        assert rev(repo, "main") == theirs
        assert rev(repo, f"gitteam/{result.run}/integration") == integrated
        assert run_state(repo, result.run).state == "pending"
    checked = events(repo, result.run, "catch_up_checked")
    assert [e["decision"] for e in checked] == ["REQUEST_CHANGES", "REQUEST_CHANGES"]
    assert any("test" in f["source"] for f in checked[0]["findings"])


# --- 11. the user's uncommitted changes ----------------------------------------------------------------------

def test_uncommitted_changes_elsewhere_survive_the_fast_forward(repo: Path) -> None:
    (repo / "README.md").write_text("# project\nwork in progress\n")
    (repo / "scratch.txt").write_text("notes\n")
    git(repo, "add", "scratch.txt")
    (repo / "scratch.txt").write_text("notes, edited after staging\n")
    before = status(repo)

    result = start(repo, one_file_script())

    assert result.exit_code == 0, result.message
    assert rev(repo, "main") == rev(repo, f"gitteam/{result.run}/integration")
    assert (repo / "src/app.py").read_text() == "def main():\n    return 2\n"
    assert (repo / "README.md").read_text() == "# project\nwork in progress\n"
    assert (repo / "scratch.txt").read_text() == "notes, edited after staging\n"
    assert git(repo, "show", ":scratch.txt") == "notes"  # the index too
    assert status(repo) == before


def test_uncommitted_changes_to_a_planned_file_stop_the_run_before_any_coder(repo: Path) -> None:
    base = sha(repo, "main")
    (repo / "src/app.py").write_text("def main():\n    return 'mine'\n")
    before = status(repo)

    result = start(repo, one_file_script())

    assert (result.exit_code, result.state) == (2, "failed")
    assert "src/app.py" in result.message and f"gitteam resume {result.run}" in result.message
    assert events(repo, result.run, "agent_started") == []
    assert rev(repo, "main") == base
    assert (repo / "src/app.py").read_text() == "def main():\n    return 'mine'\n"
    assert status(repo) == before
    git(repo, "checkout", "--", "src/app.py")
    approved = cli(repo, "resume", result.run)  # the run's --yes and models are kept
    assert approved.returncode == 0, approved.stderr
    assert rev(repo, "main") == rev(repo, f"gitteam/{result.run}/integration") != base
    assert (repo / "src/app.py").read_text() == "def main():\n    return 2\n"


def test_a_target_not_checked_out_moves_without_touching_the_checkout(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    (repo / "src/app.py").write_text("def main():\n    return 'mine'\n")  # dirty, in a file the run changes
    base, before = sha(repo, "main"), status(repo)

    result = start(repo, one_file_script(), config={"run.target": "main"})

    assert result.exit_code == 0, result.message
    assert rev(repo, "main") == rev(repo, f"gitteam/{result.run}/integration") != base
    assert is_ancestor(repo, base, "main")
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "feature" and rev(repo, "feature") == base
    assert (repo / "src/app.py").read_text() == "def main():\n    return 'mine'\n"
    assert status(repo) == before


# --- 12. limits and budget -----------------------------------------------------------------------------------

def test_step_limit_fails_the_agent_commits_its_work_and_skips_its_dependent(repo: Path) -> None:
    base = sha(repo, "main")
    data = script(
        planner=[plan_turn([subtask("slow", ["src/app.py", "src/more.py"]), subtask("quick", ["README.md"]),
                            subtask("later", ["docs/later.md"], depends_on=["slow"])])],
        coder={
            "slow": [coder_writes("src/app.py", "def main():\n    return 'half'\n"),
                     coder_writes("src/more.py", "MORE = 1\n"), done("never reached")],
            "quick": [turn(coder_writes("README.md", "# quick\n"), done())],
            "later": [turn(coder_writes("docs/later.md", "later\n"), done())],
        },
    )
    result = start(repo, data, config={"limits.max_steps": 2})

    assert (result.exit_code, result.state) == (1, "failed")
    assert "slow" in result.message and "step limit" in result.message
    assert rev(repo, "main") == base and status(repo) == ""
    assert rev(repo, f"gitteam/{result.run}/integration") == base
    [partial] = commits(repo, base, f"gitteam/{result.run}/slow")
    assert blob(repo, partial, "src/app.py") == b"def main():\n    return 'half'\n"
    assert blob(repo, partial, "src/more.py") == b"MORE = 1\n"
    unreviewed = note(repo, partial)
    assert (unreviewed["run"], unreviewed["agent"], unreviewed["review"]) == (result.run, "slow", None)
    assert unreviewed["tokens"] > 0
    finished = {e["agent"]: e["status"] for e in events(repo, result.run, "agent_finished")}
    assert finished == {"slow": "failed", "quick": "approved", "later": "skipped"}
    assert rev(repo, f"gitteam/{result.run}/later") is None


def test_budget_stop_commits_partial_work_and_resume_finishes(repo: Path) -> None:
    base = sha(repo, "main")
    dollar = {"input_tokens": 1000, "output_tokens": 0}  # $1 a call at the prices below
    data = script(
        planner=[turn(plan_turn([subtask("work", ["src/app.py", "src/extra.py"])]), usage=dollar)],
        coder={"work": [turn(coder_writes("src/app.py", "def main():\n    return 3\n"), usage=dollar),
                        turn(coder_writes("src/extra.py", "EXTRA = 3\n"), usage=dollar),
                        turn(done("both files"), usage=dollar)]},
        reviewer={"work": [turn(approve(), usage=dollar)]},
        prices={"input": 1000.0, "output": 0.0},
    )

    result = start(repo, data, config={"run.budget": 2.5})

    assert (result.exit_code, result.state) == (4, "budget"), result.message
    assert rev(repo, "main") == base
    [partial] = commits(repo, base, f"gitteam/{result.run}/work")
    assert blob(repo, partial, "src/app.py") == b"def main():\n    return 3\n"
    assert blob(repo, partial, "src/extra.py") == b"EXTRA = 3\n"
    assert run_state(repo, result.run).cost == 3.0
    assert (note(repo, partial)["cost"], note(repo, partial)["review"]) == (2.0, None)

    again = resume(repo, result.run, data, config={"run.budget": 20.0})

    assert (again.exit_code, again.state) == (0, "merged"), again.message
    assert rev(repo, "main") == rev(repo, f"gitteam/{result.run}/integration") != base
    assert blob(repo, "main", "src/extra.py") == b"EXTRA = 3\n"
    assert (repo / "src/app.py").read_text() == "def main():\n    return 3\n"
    assert commits(repo, base, f"gitteam/{result.run}/work") == [partial]  # nothing left to commit on resume
    assert note(repo, partial)["review"]["decision"] == "APPROVE"


# --- 13. invalid plans -------------------------------------------------------------------------------------

def test_refused_plans_are_reported_to_the_planner_and_a_valid_one_proceeds(repo: Path) -> None:
    data = script(
        planner=[
            plan_turn([subtask("Bad Id!", ["src/app.py"])]),
            plan_turn([subtask("a", ["src/app.py"], depends_on=["b"]), subtask("b", ["README.md"], depends_on=["a"])]),
            plan_turn([subtask("a", ["src/app.py"])]),
        ],
        coder={"a": [turn(coder_writes("src/app.py", "A = 1\n"), done())]},
    )
    result = start(repo, data)

    assert result.exit_code == 0, result.message
    errors = [e["error"] for e in refused(repo, result.run, "planner")]
    assert len(errors) == 2
    assert '"Bad Id!"' in errors[0]
    assert "dependency cycle" in errors[1]
    assert blob(repo, "main", "src/app.py") == b"A = 1\n"


def test_three_invalid_plans_fail_the_run(repo: Path) -> None:
    base = sha(repo, "main")
    bad = plan_turn([subtask("a", ["src/app.py"], depends_on=["missing"])])
    result = start(repo, script(planner=[bad, bad, bad, bad], coder={}))

    assert (result.exit_code, result.state) == (1, "failed")
    assert "plan was invalid 3 times" in result.message and '"missing"' in result.message
    assert rev(repo, "main") == base
    assert branches(repo, result.run) == set()


# --- 14. stray files ---------------------------------------------------------------------------------------

def test_files_a_command_leaves_outside_the_subtask_are_reported_not_committed(repo: Path) -> None:
    make = [sys.executable, "tools/make.py"]
    commit_files(repo, {"tools/make.py": (
        "import pathlib\n"
        "pathlib.Path('src/generated.py').write_text('GENERATED = True\\n')\n"
        "pathlib.Path('build').mkdir(exist_ok=True)\n"
        "pathlib.Path('build/stray.txt').write_text('stray\\n')\n"
    )}, "a build script")
    base = sha(repo, "main")
    data = script(
        planner=[plan_turn([subtask("gen", ["src/generated.py"])])],
        coder={"gen": [coder_runs(shlex.join(make)), done("generated")]},
    )
    result = start(repo, data, config={"commands.allowed": [shlex.join(make)]})

    assert result.exit_code == 0, result.message
    [committed] = events(repo, result.run, "agent_committed")
    assert committed["stray"] == ["build/stray.txt"]
    branch_files = git(repo, "ls-tree", "-r", "--name-only", f"gitteam/{result.run}/gen").split()
    assert "src/generated.py" in branch_files and "build/stray.txt" not in branch_files
    assert rev(repo, "main") != base and blob(repo, "main", "build/stray.txt") is None
    assert blob(repo, "main", "src/generated.py") == b"GENERATED = True\n"
    assert not (repo / "build").exists()
    # the worktree is removed, the stray file kept on the run's leftovers ref, and the message says so
    leftovers = f"refs/gitteam/leftovers/{result.run}/gen"
    assert blob(repo, leftovers, "build/stray.txt") == b"stray\n"
    assert sha(repo, f"{leftovers}^") == sha(repo, f"gitteam/{result.run}/gen")
    assert leftovers in result.message and worktrees(repo) == [str(repo.resolve())]


# --- 15. cross-run file locks --------------------------------------------------------------------------------

def test_a_file_held_by_a_pending_run_is_refused_until_that_run_is_rejected(repo: Path) -> None:
    first = start(repo, one_file_script(content="FIRST = 1\n"), RunOptions(no_merge=True), task="first run")
    assert first.state == "pending", first.message
    base = sha(repo, "main")
    path = write_script(script_path(repo), one_file_script(content="SECOND = 2\n"))

    refused_run = cli(repo, "run", "second run", "--model", spec(path), "--yes")

    assert refused_run.returncode == 1
    assert f"run {first.run}" in refused_run.stdout and "src/app.py" in refused_run.stdout
    assert rev(repo, "main") == base
    assert cli(repo, "reject", first.run).returncode == 5
    again = cli(repo, "run", "second run", "--model", spec(path), "--yes")
    assert again.returncode == 0, again.stderr
    assert blob(repo, "main", "src/app.py") == b"SECOND = 2\n"
    assert (repo / "src/app.py").read_text() == "SECOND = 2\n"


# --- 16. the demo ----------------------------------------------------------------------------------------------

def test_demo_runs_the_whole_pipeline_offline(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    ran = subprocess.run([sys.executable, "-m", "gitteam", "demo", "--dir", str(target)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)

    assert ran.returncode == 0, ran.stderr
    assert git(target, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert status(target) == ""
    assert b"def power(" in (blob(target, "main", "calc/ops.py") or b"")
    assert b"def main(" in (blob(target, "main", "calc/cli.py") or b"")
    assert b"power 2 10" in (blob(target, "main", "README.md") or b"")
    tests = subprocess.run([sys.executable, "-m", "unittest"], cwd=target, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stderr
    assert "Ran 4 tests" in tests.stderr


def test_a_run_leaves_refs_only_where_the_contract_puts_them(repo: Path) -> None:
    """Branches under gitteam/<run>/, provenance in refs/notes/gitteam, memory in refs/notes/gitteam-memory/*,
    machinery under refs/gitteam/ only (never a helper ref under refs/notes/)."""
    before = set(git(repo, "for-each-ref", "--format=%(refname)").split())
    data = script(
        [turn(call("remember", content="the app returns numbers", tags=["app"]),
              call("submit_plan", subtasks=[subtask("one", ["src/app.py"]), subtask("two", ["README.md"])]))],
        {"one": [coder_writes("src/app.py", "def main():\n    return 3\n"), done()],
         "two": [coder_writes("README.md", "# project\n\nThree.\n"), done()]},
    )
    result = start(repo, data)
    assert result.exit_code == 0, result.message
    added = set(git(repo, "for-each-ref", "--format=%(refname)").split()) - before
    run = result.run
    allowed = (f"refs/heads/gitteam/{run}/", "refs/notes/gitteam-memory/", "refs/gitteam/")
    assert "refs/notes/gitteam" in added
    assert any(ref.startswith("refs/notes/gitteam-memory/") for ref in added)
    strays = [ref for ref in added if ref != "refs/notes/gitteam" and not ref.startswith(allowed)]
    assert strays == []

"""Rework: another round for chosen merged subtasks, with given feedback, reviewed and merged again.

Two callers share run/rework.py: the integration review's findings go back to the subtasks owning the files
they name (`[review] integration_repairs` rounds), and the person's "request changes" at the approval prompt
or `gitteam approve RUN --request-changes AGENT=TEXT`. Every test runs the real pipeline on a real repository,
every role played by a replay script, and asserts what lands in git, the journal and the agents' requests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import commit_files
from gitteam.run.context import ApprovalRequest, ChangesRequested, RunOptions
from pausing import paused, wait_reached
from scripts import (
    approve,
    assert_error,
    blob,
    coder_writes,
    done,
    events,
    finding,
    only_run,
    plan_turn,
    request_changes,
    rev,
    run_state,
    script,
    script_path,
    sha,
    start,
    subtask,
    turn,
    write_script,
)

LIB = "def total(items):\n    return sum(items)\n"
RENAMED = "def sum_of(items):\n    return sum(items)\n"
BROKEN_USE = "from src.lib import total\n\nprint(total([1]))\n"
FIXED_USE = "from src.lib import sum_of\n\nprint(sum_of([1]))\n"
CROSS_FILE = finding("src/use.py", "total no longer exists: lib renamed it sum_of", "major", 1,
                     evidence="from src.lib import total")


def two_subtasks(coder_use: list[dict[str, Any]], integration: list[dict[str, Any]],
                 use_reviews: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`lib` renames total() to sum_of(); `use` calls total(): each fine alone, together they break."""
    return script(
        planner=[plan_turn([subtask("lib", ["src/lib.py"]), subtask("use", ["src/use.py"])])],
        coder={"lib": [turn(coder_writes("src/lib.py", RENAMED), done("renamed total to sum_of"))],
               "use": coder_use},
        reviewer={"lib": [approve()], "use": use_reviews or [approve(), approve("fixed")],
                  "integration": integration},
    )


def user_messages(root: Path, run: str, name: str) -> list[str]:
    """Every message a person's side (gitteam) sent this agent's model, from its transcript, in order."""
    path = root / ".git" / "gitteam" / "runs" / run / "transcripts" / f"{name}.jsonl"
    found: list[str] = []
    for line in path.read_text().splitlines():
        for message in json.loads(line).get("messages", []):
            if message.get("role") == "user":
                found.append(str(message.get("content")))
    return found


# --- (a) the integration review's findings go back for a repair round -------------------------------------

def test_integration_findings_go_to_the_owning_subtask_for_a_repair_round_and_the_run_lands(repo: Path) -> None:
    commit_files(repo, {"src/lib.py": LIB})
    data = two_subtasks(
        [turn(coder_writes("src/use.py", BROKEN_USE), done("calls total")),
         turn(coder_writes("src/use.py", FIXED_USE), done("calls sum_of now"))],
        [request_changes("use.py calls a function lib renamed", [CROSS_FILE]), approve("they fit now")])
    result = start(repo, data)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    [rework] = events(repo, result.run, "rework")
    assert rework["origin"] == "integration" and list(rework["feedback"]) == ["use"]  # lib owns no finding
    assert "total no longer exists" in rework["feedback"]["use"]
    assert blob(repo, "main", "src/use.py") == FIXED_USE.encode() and blob(repo, "main", "src/lib.py") == \
        RENAMED.encode()
    assert [e["verdict"]["decision"] for e in events(repo, result.run, "integration_review")] == \
        ["REQUEST_CHANGES", "APPROVE"]
    # the repair round's coder was told the findings; the gate reviewed its whole change again
    assert "total no longer exists: lib renamed it sum_of" in user_messages(repo, result.run, "coder-use")[-1]
    assert [e["agent"] for e in events(repo, result.run, "review")].count("use") == 2
    assert run_state(repo, result.run).repairs == 1


def test_a_repair_round_that_fails_its_gate_refuses_the_run_and_moves_nothing(repo: Path) -> None:
    base = commit_files(repo, {"src/lib.py": LIB})
    data = two_subtasks(
        [turn(coder_writes("src/use.py", BROKEN_USE), done("calls total")),
         turn(coder_writes("src/use.py", BROKEN_USE + "# still\n"), done("unchanged"))],
        [request_changes("use.py calls a function lib renamed", [CROSS_FILE])],
        use_reviews=[approve(), request_changes("still calls total", [CROSS_FILE])])
    result = start(repo, data, config={"run.max_rounds": 1})

    assert (result.exit_code, result.state) == (3, "refused"), result.message
    assert "the repair round did not pass the gate (use: refused" in result.message
    assert rev(repo, "main") == base
    integrated = sha(repo, f"gitteam/{result.run}/integration")
    assert blob(repo, integrated, "src/use.py") == BROKEN_USE.encode()  # the refused round never merged
    assert run_state(repo, result.run).agents["use"].status == "merged"


def test_no_repair_round_when_integration_repairs_is_zero(repo: Path) -> None:
    commit_files(repo, {"src/lib.py": LIB})
    data = two_subtasks([turn(coder_writes("src/use.py", BROKEN_USE), done("calls total"))],
                        [request_changes("use.py calls a function lib renamed", [CROSS_FILE])])
    result = start(repo, data, config={"review.integration_repairs": 0})

    assert (result.exit_code, result.state) == (3, "refused"), result.message
    assert events(repo, result.run, "rework") == []


# --- (b) the person requests changes ---------------------------------------------------------------------

def one_plan(coder_use: list[dict[str, Any]]) -> dict[str, Any]:
    return script(planner=[plan_turn([subtask("lib", ["src/lib.py"]), subtask("use", ["src/use.py"])])],
                  coder={"lib": [turn(coder_writes("src/lib.py", RENAMED), done("renamed"))], "use": coder_use},
                  reviewer={"*": [approve(), approve()]})


def test_the_approval_prompts_request_changes_runs_another_round_then_asks_again(repo: Path) -> None:
    commit_files(repo, {"src/lib.py": LIB})
    data = one_plan([turn(coder_writes("src/use.py", FIXED_USE), done("calls sum_of")),
                     turn(coder_writes("src/use.py", FIXED_USE + "print('ok')\n"), done("prints ok"))])
    asked: list[ApprovalRequest] = []

    def person(request: ApprovalRequest) -> str | ChangesRequested:
        asked.append(request)
        return ChangesRequested({"use": "also print ok at the end"}) if len(asked) == 1 else "approve"

    result = start(repo, data, RunOptions(approver=person))

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert len(asked) == 2 and asked[0].reworkable == [("lib", "Subtask lib"), ("use", "Subtask use")]
    assert "print('ok')" not in asked[0].diff and "+print('ok')" in asked[1].diff and asked[1].note == ""
    assert blob(repo, "main", "src/use.py") == (FIXED_USE + "print('ok')\n").encode()
    [rework] = events(repo, result.run, "rework")
    assert rework == {**rework, "origin": "person", "feedback": {"use": "also print ok at the end"}}
    assert "also print ok at the end" in user_messages(repo, result.run, "coder-use")[-1]


def gitteam(root: Path, *args: str, model: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"GITTEAM_MODEL": f"replay:{model}"} if model else {})}
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=root, stdin=subprocess.DEVNULL, env=env,
                          capture_output=True, text=True, timeout=120)


def test_approve_request_changes_reworks_a_pending_run_which_then_waits_again(repo: Path) -> None:
    base = commit_files(repo, {"src/lib.py": LIB})
    first = write_script(script_path(repo), one_plan([turn(coder_writes("src/use.py", FIXED_USE), done("calls"))]))
    ran = gitteam(repo, "run", "rename total", "--no-merge", "--json", model=first)
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)["run"]
    pending = sha(repo, f"gitteam/{run}/integration")

    # a new process: the coder's script for the round asked for, and reviewers that approve it
    again = write_script(script_path(repo), script(
        planner=[], coder={"use": [turn(coder_writes("src/use.py", FIXED_USE + "print('ok')\n"), done("ok"))]},
        reviewer={"*": [approve()]}))
    reworked = gitteam(repo, "approve", run, "--request-changes", "use=print ok at the end", "--json", model=again)

    assert reworked.returncode == 0, reworked.stderr
    assert json.loads(reworked.stdout)["state"] == "pending"
    assert rev(repo, "main") == base  # nothing lands until the person approves the new result
    head = sha(repo, f"gitteam/{run}/integration")
    assert head != pending and blob(repo, head, "src/use.py") == (FIXED_USE + "print('ok')\n").encode()
    assert "print ok at the end" in user_messages(repo, run, "coder-use")[-1]
    assert [e["verdict"]["decision"] for e in events(repo, run, "integration_review")] == ["APPROVE", "APPROVE"]

    landed = gitteam(repo, "approve", run)
    assert landed.returncode == 0, landed.stderr
    assert sha(repo, "main") == head


def test_request_changes_with_bad_arguments_is_one_line_and_exit_2(repo: Path) -> None:
    commit_files(repo, {"src/lib.py": LIB})
    first = write_script(script_path(repo), one_plan([turn(coder_writes("src/use.py", FIXED_USE), done("calls"))]))
    ran = gitteam(repo, "run", "rename total", "--no-merge", "--json", model=first)
    run = json.loads(ran.stdout)["run"]
    journal = len(events(repo, run))

    assert_error(gitteam(repo, "approve", run, "--request-changes", "nobody=do it"), 2,
                 "'nobody' is not a subtask of this run (its subtasks: lib, use)")
    assert_error(gitteam(repo, "approve", run, "--request-changes", "use=  "), 2, "say what 'use' should change")
    assert_error(gitteam(repo, "approve", run, "--request-changes", "use"), 2, "takes AGENT=")
    assert len(events(repo, run)) == journal and run_state(repo, run).state == "pending"


def test_a_requested_change_the_gate_refuses_leaves_the_pending_result_as_it_was(repo: Path) -> None:
    commit_files(repo, {"src/lib.py": LIB})
    first = write_script(script_path(repo), one_plan([turn(coder_writes("src/use.py", FIXED_USE), done("calls"))]))
    run = json.loads(gitteam(repo, "run", "rename total", "--no-merge", "--json", model=first).stdout)["run"]
    pending = sha(repo, f"gitteam/{run}/integration")
    again = write_script(script_path(repo), script(
        planner=[], coder={"use": [turn(coder_writes("src/use.py", BROKEN_USE), done("back to total")),
                                   turn(coder_writes("src/use.py", BROKEN_USE + "# as asked\n"), done("as asked"))]},
        reviewer={"use": [request_changes("calls total, which is gone", [CROSS_FILE])] * 2}))

    reworked = gitteam(repo, "approve", run, "--request-changes", "use=call total again", model=again)
    assert reworked.returncode == 3, reworked.stderr
    assert "the requested changes did not pass the gate" in reworked.stdout
    assert sha(repo, f"gitteam/{run}/integration") == pending  # the refused round never merged
    state = run_state(repo, run)
    assert state.state == "pending" and state.agents["use"].status == "merged"
    assert gitteam(repo, "approve", run).returncode == 0 and sha(repo, "main") == pending


def test_a_repair_round_stopped_by_an_error_fails_the_run_resumably(repo: Path) -> None:
    """Not a refusal: the coder of the repair round failed (here its script ran out), so the run is failed (exit
    1) and resumable, not refused (exit 3)."""
    base = commit_files(repo, {"src/lib.py": LIB})
    data = two_subtasks([turn(coder_writes("src/use.py", BROKEN_USE), done("calls total"))],
                        [request_changes("use.py calls a function lib renamed", [CROSS_FILE])])
    result = start(repo, data)

    assert (result.exit_code, result.state) == (1, "failed"), result.message
    assert "the repair round of the integrated result stopped (use: failed" in result.message
    assert rev(repo, "main") == base


def test_a_run_killed_in_its_repair_round_resumes_it_with_the_feedback(repo: Path, tmp_path: Path) -> None:
    base = commit_files(repo, {"src/lib.py": LIB})
    marker = tmp_path / "repair"
    data = two_subtasks(
        [turn(coder_writes("src/use.py", BROKEN_USE), done("calls total")),
         paused(turn(coder_writes("src/use.py", FIXED_USE), done("calls sum_of now")), marker)],
        [request_changes("use.py calls a function lib renamed", [CROSS_FILE])])
    path = write_script(script_path(repo), data)
    proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "rename total", "--yes"], cwd=repo,
                            env={**os.environ, "GITTEAM_MODEL": f"replay:{path}"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_reached(proc, marker)  # the repair round's coder is at its model call
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = only_run(repo)
    assert run_state(repo, run).rework == {"use": json_feedback(repo, run)}

    # a new process, a new script: the round again, then reviewers that approve it
    again = write_script(script_path(repo), script(
        planner=[], coder={"use": [turn(coder_writes("src/use.py", FIXED_USE), done("calls sum_of now"))]},
        reviewer={"*": [approve()]}))
    resumed = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{again}", model=again)

    assert resumed.returncode == 0, resumed.stderr
    assert rev(repo, "main") != base and blob(repo, "main", "src/use.py") == FIXED_USE.encode()
    assert "total no longer exists: lib renamed it sum_of" in user_messages(repo, run, "coder-use")[-1]
    assert len(events(repo, run, "rework")) == 1 and run_state(repo, run).rework == {}


def json_feedback(repo: Path, run: str) -> str:
    [rework] = events(repo, run, "rework")
    return str(rework["feedback"]["use"])


# --- the approval prompt's choice ------------------------------------------------------------------------

DOWN, ENTER, SPACE = "\x1b[B", "\r", " "


def answer_prompt(request: ApprovalRequest, keys: str) -> object:
    """ui.ask_approval as a person at a terminal answers it, keys typed into prompt_toolkit's input."""
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from gitteam import ui

    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        with create_app_session(input=pipe, output=DummyOutput()):
            return ui.ask_approval(request)


def test_the_prompt_asks_which_subtasks_and_what_each_should_change() -> None:
    request = ApprovalRequest(run="r", target="main", files=["src/use.py"], protected=[], diff="+x",
                              reworkable=[("lib", "Rename total"), ("use", "Call it")])
    # approve, reject, show diff, request changes: the fourth; then the second subtask, then its text
    chosen = answer_prompt(request, DOWN * 3 + ENTER + DOWN + SPACE + ENTER + "call sum_of" + ENTER)
    assert chosen == ChangesRequested({"use": "call sum_of"})
    # nothing chosen: back at the first question, where reject is the second choice
    assert answer_prompt(request, DOWN * 3 + ENTER + ENTER + DOWN + ENTER) == "reject"

"""Return to the dispatcher: a failed subtask goes back to the planner once, on a fresh branch from the same
start (run/replan.py); each run a separate `gitteam` process on a real repository."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import git
from scripts import approve, call, done, finding, plan_turn, request_changes, script, subtask, write_script


def gitteam(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def events(repo: Path, run: str, kind: str) -> list[dict[str, Any]]:
    lines = (repo / ".git" / "gitteam" / "runs" / run / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == kind]


NIT = finding("x.txt", "it must say hello, not hi", "major", 1, evidence="hi there")
WRONG = [request_changes("wrong greeting", [NIT])] * 2  # two rounds, then the gate refuses the attempt


def scenario(planner_again: list[dict[str, Any]], second_attempt: list[dict[str, Any]],
             second_review: list[dict[str, Any]]) -> dict[str, Any]:
    return script(
        [plan_turn([subtask("x", ["x.txt"]), subtask("y", ["y.txt"], depends_on=["x"])]), *planner_again],
        {"x": [call("write_file", path="x.txt", content="hi there\n"), done("wrote hi"), done("still hi")],
         "x-2": second_attempt,
         "y": [call("write_file", path="y.txt", content="after x\n"), done("wrote y")]},
        reviewer={"x": WRONG, "x-2": second_review, "y": [approve()], "*": [approve()]})


AGAIN = call("submit_plan", subtasks=[{"id": "x", "title": "Greet", "files": ["x.txt", "greeting.txt"],
                                       "instructions": "Write hello (not hi) to x.txt, and the greeting to "
                                                       "greeting.txt."}], summary="say hello")


def test_a_refused_subtask_is_replanned_and_its_next_attempt_lands_with_its_dependent(repo: Path,
                                                                                       tmp_path: Path) -> None:
    data = scenario([AGAIN], [call("write_file", path="x.txt", content="hello\n"),
                              call("write_file", path="greeting.txt", content="hello\n"), done("said hello")],
                    [approve()])
    ran = gitteam(repo, "run", "--yes", "--json", "--model", f"replay:{write_script(tmp_path / 's.json', data)}",
                  "greet")

    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["run"]
    assert git(repo, "show", "main:x.txt") == "hello" and git(repo, "show", "main:greeting.txt") == "hello"
    assert git(repo, "show", "main:y.txt") == "after x"
    [replanned] = events(repo, run, "replanned")
    assert (replanned["agent"], replanned["attempt"], replanned["subtask"]["id"]) == ("x", 2, "x-2")
    assert replanned["subtask"]["files"] == ["x.txt", "greeting.txt"]
    assert "changes still requested" in replanned["reason"]
    # the failed attempt's branch is kept; the next one began at the same commit, fresh
    assert git(repo, "show", f"gitteam/{run}/x:x.txt") == "hi there"
    starts = {e["agent"]: e["base"] for e in events(repo, run, "agent_started")}
    assert starts["x-2"] == starts["x"]
    # y waited for the next attempt and started on it
    assert git(repo, "show", f"{starts['y']}:x.txt") == "hello"
    # the planner read why the attempt failed and what it had committed
    planner = (repo / ".git" / "gitteam" / "runs" / run / "transcripts" / "planner-planner.jsonl").read_text()
    assert "it must say hello, not hi" in planner and "+hi there" in planner


def test_a_next_attempt_that_fails_again_stops_the_run_with_both_branches_kept(repo: Path, tmp_path: Path) -> None:
    data = scenario([AGAIN], [call("write_file", path="x.txt", content="hi again\n"), done("hi"), done("hi")],
                    [request_changes("still wrong", [finding("x.txt", "hi again", "major", 1, evidence="hi again")])]
                    * 2)
    ran = gitteam(repo, "run", "--yes", "--json", "--model", f"replay:{write_script(tmp_path / 's.json', data)}",
                  "greet")

    assert ran.returncode == 3, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["run"]
    assert len(events(repo, run, "replanned")) == 1  # [run] replans = 1: no third attempt
    assert git(repo, "show", f"gitteam/{run}/x:x.txt") == "hi there"
    assert git(repo, "show", f"gitteam/{run}/x-2:x.txt") == "hi again"
    assert "y.txt" not in git(repo, "ls-tree", "--name-only", "main")  # all or nothing: y never ran
    finished = {e["agent"]: e["status"] for e in events(repo, run, "agent_finished")}
    assert finished == {"x": "refused", "x-2": "refused", "y": "skipped"}


def test_a_planner_that_gives_the_subtask_up_stops_the_run(repo: Path, tmp_path: Path) -> None:
    data = scenario([call("submit_plan", subtasks=[], summary="it needs a person's decision")], [], [])
    ran = gitteam(repo, "run", "--yes", "--json", "--model", f"replay:{write_script(tmp_path / 's.json', data)}",
                  "greet")
    assert ran.returncode == 3, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["run"]
    [replanned] = events(repo, run, "replanned")
    assert replanned["agent"] == "x" and replanned.get("subtask") is None


def test_a_run_stopped_in_its_next_attempt_resumes_that_attempt_with_the_new_plan(repo: Path,
                                                                                  tmp_path: Path) -> None:
    broken = scenario([AGAIN], [], [])  # the next attempt's coder has no script: it fails, the run stops (exit 1)
    ran = gitteam(repo, "run", "--yes", "--json", "--model", f"replay:{write_script(tmp_path / 'a.json', broken)}",
                  "greet")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["run"]

    fixed = scenario([], [call("write_file", path="x.txt", content="hello\n"),
                          call("write_file", path="greeting.txt", content="hello\n"), done("said hello")],
                     [approve()])
    resumed = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{write_script(tmp_path / 'b.json', fixed)}")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert git(repo, "show", "main:x.txt") == "hello" and git(repo, "show", "main:y.txt") == "after x"
    assert len(events(repo, run, "replanned")) == 1  # the plan journaled with the next attempt: no new planning
    assert len(events(repo, run, "plan")) == 1

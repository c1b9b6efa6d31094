"""Invariant 8: a run killed at any point resumes from its journal to the same final result.

The first tests kill after each kind of journal event; the kill-point tests kill inside git operations and
model requests (tests/killing.py), a few points of each kind; tests/kill_matrix.py (run by .ci/run) kills at
every one of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import commit_files, git
from killing import expected_tree, kill_and_resume, make_repo, team
from pausing import paused, wait_reached

SCRIPT = {
    "gitteam_replay": 1,
    "planner": [{"call": "submit_plan", "args": {"subtasks": [
        {"id": "a", "title": "A", "instructions": "Create a.txt.", "files": ["a.txt"]},
        {"id": "b", "title": "B", "instructions": "Change README.md.", "files": ["README.md"]},
        {"id": "c", "title": "C", "instructions": "Create c.txt from a.txt.", "files": ["c.txt"], "depends_on": ["a"]},
    ]}}],
    "coder": {
        "a": [{"call": "write_file", "args": {"path": "a.txt", "content": "from a\n"}},
              {"call": "done", "args": {"summary": "a.txt"}}],
        "b": [{"call": "write_file", "args": {"path": "README.md", "content": "# project\n\nby b\n"}},
              {"call": "done", "args": {"summary": "readme"}}],
        "c": [{"call": "read_file", "args": {"path": "a.txt"}},
              {"call": "write_file", "args": {"path": "c.txt", "content": "after a\n"}},
              {"call": "done", "args": {"summary": "c.txt"}}],
    },
    "reviewer": {"*": [{"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok", "findings": []}}]},
}

EXPECTED = {"a.txt": "from a\n", "README.md": "# project\n\nby b\n", "c.txt": "after a\n"}


def held(tmp_path: Path, *turns: str) -> Path:
    """SCRIPT, with the named model calls pausing at a marker of the same name in tmp_path until released:
    "planner", "a1" (coder a's first call), "b2", "c1", "review-a", "review-c", "integration" and so on."""
    script = json.loads(json.dumps(SCRIPT))
    review = script["reviewer"].pop("*")
    script["reviewer"] = {name: json.loads(json.dumps(review)) for name in ("a", "b", "c", "integration")}
    for name in turns:
        if name == "planner":
            turns_of, index = script["planner"], 0
        elif name == "integration":
            turns_of, index = script["reviewer"]["integration"], 0
        elif name.startswith("review-"):
            turns_of, index = script["reviewer"][name.removeprefix("review-")], 0
        else:
            turns_of, index = script["coder"][name[0]], int(name[1:]) - 1
        turns_of[index] = paused(turns_of[index], tmp_path / name)
    path = tmp_path / "held.json"
    path.write_text(json.dumps(script))
    return path


def gitteam(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(repo: Path) -> tuple[str, list[str]]:
    runs = repo / ".git" / "gitteam" / "runs"
    if not runs.is_dir():
        return "", []
    for run in runs.iterdir():
        lines = (run / "events.jsonl").read_text().splitlines() if (run / "events.jsonl").exists() else []
        return run.name, [json.loads(line)["event"] for line in lines if line.endswith("}")]
    return "", []


def wait_for_event(proc: subprocess.Popen[str], repo: Path, event: str, count: int) -> None:
    deadline = time.monotonic() + 60
    while journal(repo)[1].count(event) < count and proc.poll() is None:
        assert time.monotonic() < deadline, f"no {event} x{count}: {journal(repo)[1]}"
        time.sleep(0.01)


# Where the run is when it is killed: held inside the named model calls (both coders of the first wave run at
# once, so both are held), then, for a point between two model calls, once the journal has the event.
KILL_POINTS: dict[str, tuple[tuple[str, ...], tuple[str, int] | None]] = {
    "planning": (("planner",), None),
    "both coders' first calls": (("a1", "b1"), None),
    "both coders with files written": (("a2", "b2"), None),  # in their worktrees, not committed yet
    "both reviews": (("review-a", "review-b"), None),
    "a reviewed, b in review": (("review-b",), ("review", 1)),
    "merging the first wave": (("c1",), ("merged", 1)),  # somewhere from the first merge to c's first call
    "second wave": (("c1",), None),  # a and b merged, c started
    "c in review": (("review-c",), None),
    "integration review": (("integration",), None),
    "approved": ((), ("approved", 1)),  # nothing holds it after the approval: killed as soon as it is seen
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_run_resumes_to_the_same_result(repo: Path, tmp_path: Path, point: str) -> None:
    markers, after = KILL_POINTS[point]
    script = held(tmp_path, *markers)
    user_status = git(repo, "status", "--porcelain")
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{script}", "three files")
    try:
        wait_reached(proc, *(tmp_path / marker for marker in markers))
        if after:
            wait_for_event(proc, repo, *after)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    run, events = journal(repo)
    assert run, "the run journaled nothing before the kill"
    if "run_finished" in events:  # "approved" only: nothing held the run, and it got to its end first
        assert point == "approved"
    else:
        assert proc.returncode == -signal.SIGKILL
        path = tmp_path / "script.json"
        path.write_text(json.dumps(SCRIPT))
        resumed = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{path}")
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
    for path_name, content in EXPECTED.items():
        assert git(repo, "show", f"main:{path_name}") + "\n" == content
    assert (repo / "c.txt").read_text() == "after a\n"  # the checked-out main followed the fast-forward
    assert git(repo, "status", "--porcelain") == user_status
    assert git(repo, "for-each-ref", "refs/gitteam/locks/") == ""  # locks released
    worktrees = git(repo, "worktree", "list", "--porcelain").count("worktree ")
    assert worktrees == 1


@pytest.mark.parametrize(("kind", "n"), [
    ("request", 9),  # the second wave's coder, its worktree made
    ("transaction", 3),  # a commit: git holds the worktree's HEAD.lock and its branch's lock
    ("filter", 2),  # inside the checkout of a new worktree: its index.lock, files half written
    ("filter", 12),  # inside the fast-forward of the user's checkout: their index.lock, files half updated
])
@pytest.mark.usefixtures("loopback_env")
def test_killed_inside_git_or_a_model_request_the_run_resumes_to_the_same_tree(tmp_path: Path, kind: str,
                                                                               n: int) -> None:
    tree = expected_tree(make_repo(tmp_path / "base", tmp_path / "base-control"))
    with team(Path.home()) as crew:
        assert kill_and_resume(tmp_path, Path.home(), crew, kind, n, tree), f"the run never reached {kind} {n}"


def test_resume_does_not_redo_an_approved_subtask(repo: Path, tmp_path: Path) -> None:
    """b is refused; a was approved in the same wave. Resume with b fixed merges a as it was."""
    commit_files(repo, {"x.txt": "x\n"})
    script = json.loads(json.dumps(SCRIPT))
    script["reviewer"] = {"a": [{"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok",
                                                                   "findings": []}}],
                          "b": [{"call": "submit_review", "args": {"decision": "BLOCK", "summary": "no",
                                                                   "findings": []}}],
                          "integration": [{"call": "submit_review", "args": {"decision": "APPROVE",
                                                                             "summary": "ok", "findings": []}}]}
    del script["coder"]["c"]
    script["planner"][0]["args"]["subtasks"] = script["planner"][0]["args"]["subtasks"][:2]
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    first = gitteam(repo, "run", "--yes", "--model", f"replay:{path}", "two files")
    first.communicate(timeout=120)
    assert first.returncode == 3
    run = journal(repo)[0]
    a_head = git(repo, "rev-parse", f"gitteam/{run}/a")
    script["reviewer"]["b"][0]["args"]["decision"] = "APPROVE"
    script["coder"]["a"] = []  # a must not be asked again: an empty script would fail it
    path.write_text(json.dumps(script))
    second = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{path}")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert git(repo, "rev-parse", f"gitteam/{run}/a") == a_head
    assert git(repo, "show", "main:a.txt") == "from a"


def test_status_tells_a_killed_run_and_resume_refuses_a_live_one(repo: Path, tmp_path: Path) -> None:
    script = held(tmp_path, "a1")  # held there while the test looks at it
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{script}", "three files")
    wait_reached(proc, tmp_path / "a1")
    run = journal(repo)[0]
    live = subprocess.run([sys.executable, "-m", "gitteam", "resume", run, "--model", f"replay:{script}"],
                          cwd=repo, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert live.returncode == 2 and "still running" in live.stderr
    status = subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)[0]["orphaned"] is False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    status = subprocess.run([sys.executable, "-m", "gitteam", "status", run], cwd=repo,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert f"{run} stopped" in status.stdout and f"gitteam resume {run}" in status.stdout

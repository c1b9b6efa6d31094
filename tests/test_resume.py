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
from loopback import provider_env

DELAY = 0.15


def slow(turn: dict[str, object]) -> dict[str, object]:
    return {**turn, "delay": DELAY}


SCRIPT = {
    "gitteam_replay": 1,
    "planner": [slow({"call": "submit_plan", "args": {"subtasks": [
        {"id": "a", "title": "A", "instructions": "Create a.txt.", "files": ["a.txt"]},
        {"id": "b", "title": "B", "instructions": "Change README.md.", "files": ["README.md"]},
        {"id": "c", "title": "C", "instructions": "Create c.txt from a.txt.", "files": ["c.txt"], "depends_on": ["a"]},
    ]}})],
    "coder": {
        "a": [slow({"call": "write_file", "args": {"path": "a.txt", "content": "from a\n"}}),
              slow({"call": "done", "args": {"summary": "a.txt"}})],
        "b": [slow({"call": "write_file", "args": {"path": "README.md", "content": "# project\n\nby b\n"}}),
              slow({"call": "done", "args": {"summary": "readme"}})],
        "c": [slow({"call": "read_file", "args": {"path": "a.txt"}}),
              slow({"call": "write_file", "args": {"path": "c.txt", "content": "after a\n"}}),
              slow({"call": "done", "args": {"summary": "c.txt"}})],
    },
    "reviewer": {"*": [slow({"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok",
                                                                "findings": []}})]},
}

EXPECTED = {"a.txt": "from a\n", "README.md": "# project\n\nby b\n", "c.txt": "after a\n"}


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


def kill_after(proc: subprocess.Popen[str], repo: Path, event: str, count: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run, events = journal(repo)
        if events.count(event) >= count or proc.poll() is not None:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return journal(repo)[0]


@pytest.mark.parametrize(("event", "count"), [
    ("run_started", 1), ("plan", 1), ("agent_started", 1), ("agent_committed", 2), ("review", 1),
    ("merged", 1), ("merged", 2), ("agent_started", 3), ("merged", 3), ("approved", 1),
])
def test_killed_run_resumes_to_the_same_result(repo: Path, tmp_path: Path, event: str, count: int) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    user_status = git(repo, "status", "--porcelain")
    run = kill_after(gitteam(repo, "run", "--yes", "--model", f"replay:{script}", "three files"), repo, event, count)
    assert run, "the run journaled nothing before the kill"
    resumed = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{script}")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    for path, content in EXPECTED.items():
        assert git(repo, "show", f"main:{path}") + "\n" == content
    assert (repo / "c.txt").read_text() == "after a\n"  # the checked-out main followed the fast-forward
    assert git(repo, "status", "--porcelain") == user_status
    assert git(repo, "for-each-ref", "refs/gitteam/locks/") == ""  # locks released
    worktrees = git(repo, "worktree", "list", "--porcelain").count("worktree ")
    assert worktrees == 1


@pytest.mark.parametrize(("kind", "n"), [
    ("request", 9),  # the second wave's coder, its worktree made
    ("transaction", 3),  # a commit: git holds the worktree's HEAD.lock and its branch's lock
    ("filter", 2),  # inside the checkout of a new worktree: its index.lock, files half written
    ("filter", 17),  # inside the fast-forward of the user's checkout: their index.lock, files half updated
])
def test_killed_inside_git_or_a_model_request_the_run_resumes_to_the_same_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, n: int) -> None:
    provider_env(monkeypatch)
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
    script = tmp_path / "script.json"
    slow_script = json.loads(json.dumps(SCRIPT))
    slow_script["coder"]["a"][0]["delay"] = 30  # long enough to look at it while it runs
    script.write_text(json.dumps(slow_script))
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{script}", "three files")
    deadline = time.monotonic() + 30
    while "agent_started" not in journal(repo)[1] and time.monotonic() < deadline:
        time.sleep(0.02)
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

"""A wave's approved subtasks merge into the integration branch while its slower ones are still in review: in
plan order (a subtask merges only after every one before it in the plan), so the result is a sequential run's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import git
from pausing import paused, release, wait_reached
from scripts import approve, coder_writes, done, plan_turn, script, subtask, turn, write_script


def run_events(repo: Path) -> list[dict[str, Any]]:
    runs = repo / ".git" / "gitteam" / "runs"
    for run in runs.iterdir() if runs.is_dir() else []:
        path = run / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line.endswith("}")]
    return []


def wait_for(proc: subprocess.Popen[str], repo: Path, kind: str, agent: str) -> None:
    """Until the journal has `kind` for `agent`; fails at once if the run ends first."""
    deadline = time.monotonic() + 60
    while not any(e["event"] == kind and e.get("agent") == agent for e in run_events(repo)):
        assert proc.poll() is None, f"the run ended before {kind} {agent}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {kind} for {agent}: {[e['event'] for e in run_events(repo)]}"
        time.sleep(0.01)


def merged(repo: Path) -> list[str]:
    return [e["agent"] for e in run_events(repo) if e["event"] == "merged"]


def test_approved_subtasks_merge_in_plan_order_while_a_slower_one_is_in_review(repo: Path, tmp_path: Path) -> None:
    held = tmp_path / "review-b"
    ids = ("a", "b", "c")
    data = script([plan_turn([subtask(i, [f"{i}.txt"]) for i in ids])],
                  {i: [turn(coder_writes(f"{i}.txt", f"from {i}\n")), done()] for i in ids},
                  {"b": [paused(approve(), held)], "*": [approve()]})
    path = write_script(tmp_path / "script.json", data)
    proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "--yes", "--max-agents", "3", "--model",
                             f"replay:{path}", "three files"], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_reached(proc, held)
        wait_for(proc, repo, "merged", "a")  # b is still in review: a did not wait for it
        wait_for(proc, repo, "review", "c")  # c is approved too, but b comes before it in the plan
        assert merged(repo) == ["a"]
        run = next(e["run"] for e in run_events(repo) if e["event"] == "run_started")
        integration = f"gitteam/{run}/integration"
        assert git(repo, "ls-tree", "--name-only", integration, "a.txt", "c.txt") == "a.txt"
    finally:
        release(held)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert merged(repo) == ["a", "b", "c"]
    log = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert log[:2] == ["gitteam: merge c", "gitteam: merge b"]  # a's came first: a fast-forward of the start
    assert [git(repo, "show", f"main:{i}.txt") for i in ids] == ["from a", "from b", "from c"]

"""Robustness with people's repositories: interrupts, concurrent runs, odd checkouts, bad input, cleanup.

Every test drives the real CLI as a subprocess (stdin is /dev/null) on a real temporary repository.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from pausing import interrupt, paused, reached, release, wait_reached
from scripts import approve, call, done, journal_so_far, plan_turn, script, subtask, write_script


def start(repo: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gitteam", *args], cwd=cwd or repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def gitteam(repo: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=cwd or repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def three_writers(second_turn: Callable[[str], Path] | None = None) -> dict[str, Any]:
    """Three independent subtasks; each coder writes its file, writes it again, then finishes. With
    `second_turn`, each coder's second turn pauses at the marker it names for that subtask."""
    def second(x: str) -> dict[str, Any]:
        turn = call("write_file", path=f"{x}.txt", content=f"{x}{x}\n")
        return paused(turn, second_turn(x)) if second_turn else turn

    return script(
        [plan_turn([subtask(x, [f"{x}.txt"]) for x in "abc"])],
        {x: [call("write_file", path=f"{x}.txt", content=f"{x}\n"), second(x), done(x)] for x in "abc"},
        {"*": [approve()]},
    )


def resume_lands_three_writers(repo: Path, tmp_path: Path, run: str) -> None:
    """`gitteam resume` of an interrupted three_writers() run lands all three files, each written twice, and
    leaves no worktree of its own behind."""
    path = write_script(tmp_path / "resume.json", three_writers())
    resumed = gitteam(repo, "resume", run, "--yes", "--model", f"replay:{path}")
    assert resumed.returncode == 0, resumed.stderr
    for x in "abc":
        assert git(repo, "show", f"main:{x}.txt") == x * 2
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


# --- Ctrl-C ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_agents", [2, 1])
def test_ctrl_c_commits_every_agents_work_then_resume_finishes(repo: Path, tmp_path: Path, max_agents: int) -> None:
    """Ctrl-C while the running coders are inside their second model call. One coder runs on the main thread,
    where the interrupt ends the call; two run on worker threads, whose calls finish (the test lets them once
    the process has the interrupt) before each agent stops at its next limit check."""
    markers = {x: tmp_path / f"second-{x}" for x in "abc"}
    path = write_script(tmp_path / "script.json", three_writers(markers.__getitem__))
    before = git(repo, "status", "--porcelain")
    proc = start(repo, "run", "--yes", "--max-agents", str(max_agents), "--model", f"replay:{path}", "three")
    running = "ab"[:max_agents]
    wait_reached(proc, *(markers[x] for x in running))  # each running coder wrote once, and is asking again
    interrupt(proc)
    release(*markers.values())
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 10
    assert "Traceback" not in err
    run, found = journal_so_far(repo)
    assert sorted(e["agent"] for e in found if e["event"] == "agent_started") == list(running)
    for agent in running:  # what each agent wrote before the interrupt is committed on its branch
        content = git(repo, "show", f"gitteam/{run}/{agent}:{agent}.txt")
        assert content == (agent if max_agents == 1 else agent * 2)
    assert not any(reached(markers[x]) for x in "abc" if x not in running)  # no other coder was started
    assert found[-1]["state"] == "interrupted"
    resume_lands_three_writers(repo, tmp_path, run)
    assert git(repo, "status", "--porcelain") == before


@pytest.mark.parametrize("stage", ["planning", "integration review"])
def test_ctrl_c_while_planning_or_reviewing_the_result_resumes(repo: Path, tmp_path: Path, stage: str) -> None:
    held = tmp_path / "held"
    data = three_writers()
    if stage == "planning":
        data["planner"][0] = paused(data["planner"][0], held)
    else:
        data["reviewer"]["integration"] = [paused(approve(), held)]
    path = write_script(tmp_path / "script.json", data)
    proc = start(repo, "run", "--yes", "--model", f"replay:{path}", "three")
    wait_reached(proc, held)
    interrupt(proc)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run, found = journal_so_far(repo)
    assert found[-1]["state"] == "interrupted"
    assert git(repo, "log", "-1", "--format=%s", "main") == "initial"
    resume_lands_three_writers(repo, tmp_path, run)


# --- two gitteam processes at once -------------------------------------------------------------------------

def one_writer(path: str, content: str, held: Path | None = None) -> dict[str, Any]:
    """One subtask writing one file; with `held`, its write waits there until the test releases it."""
    write = call("write_file", path=path, content=content)
    return script([plan_turn([subtask("x", [path])])], {"x": [paused(write, held) if held else write, done("x")]})


def test_two_runs_on_disjoint_files_both_merge_without_force(repo: Path, tmp_path: Path) -> None:
    held = tmp_path / "first-write"
    slow_one = write_script(tmp_path / "a.json", one_writer("a.txt", "A\n", held))
    fast_one = write_script(tmp_path / "b.json", one_writer("b.txt", "B\n"))
    first = start(repo, "run", "--yes", "--model", f"replay:{slow_one}", "task a")
    wait_reached(first, held)  # its files claimed, its coder working: the second run starts and ends meanwhile
    second = gitteam(repo, "run", "--yes", "--model", f"replay:{fast_one}", "task b")
    assert second.returncode == 0, second.stderr
    after_second = git(repo, "rev-parse", "main")
    release(held)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert git(repo, "merge-base", "--is-ancestor", after_second, "main") == ""  # exit 0: main only moved on
    assert git(repo, "show", "main:a.txt") == "A" and git(repo, "show", "main:b.txt") == "B"
    assert git(repo, "status", "--porcelain") == ""


def test_two_approvals_of_one_pending_run_merge_it_once(repo: Path, tmp_path: Path) -> None:
    two = script([plan_turn([subtask("a", ["a.txt"]), subtask("b", ["b.txt"])])],
                 {x: [call("write_file", path=f"{x}.txt", content=x), done(x)] for x in "ab"})
    path = write_script(tmp_path / "s.json", two)
    assert gitteam(repo, "run", "--no-merge", "--model", f"replay:{path}", "two").returncode == 0
    run = journal_so_far(repo)[0]
    git(repo, "commit", "-q", "--allow-empty", "-m", "the user's own commit")  # approve has to catch up
    procs = [start(repo, "approve", run) for _ in range(2)]
    results = sorted((p.wait(timeout=60), p.communicate()[1]) for p in procs)
    assert [code for code, _ in results] == [0, 2], results
    assert "Traceback" not in results[1][1] and len(results[1][1].strip().splitlines()) == 1
    assert [e["state"] for e in journal_so_far(repo)[1] if e["event"] == "run_finished"] == ["pending", "merged"]
    assert git(repo, "show", "main:a.txt") == "a" and git(repo, "show", "main:b.txt") == "b"


def test_abort_refuses_a_run_that_is_still_running(repo: Path, tmp_path: Path) -> None:
    held = tmp_path / "done"
    path = write_script(tmp_path / "s.json", script(
        [plan_turn([subtask("x", ["a.txt"])])],
        {"x": [call("write_file", path="a.txt", content="A\n"), paused(done("x"), held)]}))
    proc = start(repo, "run", "--yes", "--model", f"replay:{path}", "task")
    wait_reached(proc, held)
    run = journal_so_far(repo)[0]
    aborted = gitteam(repo, "abort", run)
    assert aborted.returncode == 2 and "still running" in aborted.stderr, aborted.stderr
    release(held)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert git(repo, "show", "main:a.txt") == "A"


# --- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("turn", "problem"), [
    (["not", "a", "turn"], "is not an object"),
    ({"call": "write_file", "args": ["a.txt", "x"]}, "neither an object nor a string"),
    ({"tool_calls": [{"name": "write_file", "arguments": [1, 2]}]}, "neither an object nor a string"),
    ({"tool_calls": "write_file"}, '"tool_calls" must be a list'),
    ({"tool_calls": [{"arguments": {}}]}, 'not an object with a "name" string'),
    ({"tool_calls": [7]}, 'not an object with a "name" string'),
    ({"call": "done", "args": {"summary": "s"}, "delay": "slow"}, '"delay" must be a number'),
    ({"call": "done", "args": {"summary": "s"}, "usage": {"input_tokens": "many"}}, '"usage" must be'),
])
def test_a_malformed_replay_turn_fails_the_agent_with_a_message(repo: Path, tmp_path: Path, turn: Any,
                                                                 problem: str) -> None:
    path = write_script(tmp_path / "s.json", script(
        [plan_turn([subtask("x", ["a.txt"])])],
        {"x": [call("write_file", path="a.txt", content="kept\n"), turn]}))
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{path}", "task")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stdout.strip().splitlines()[-1]  # the result line (progress is on stderr)
    assert "coder turn 2 " in last and problem in last, last
    run = journal_so_far(repo)[0]
    assert git(repo, "show", f"gitteam/{run}/x:a.txt") == "kept"  # the work before it is committed


@pytest.mark.parametrize("prices", [{"input": "cheap", "output": 1}, [1, 2]])
def test_malformed_replay_prices_are_a_usage_error(repo: Path, tmp_path: Path, prices: Any) -> None:
    data = one_writer("a.txt", "x")
    data["prices"] = prices
    proc = gitteam(repo, "run", "--yes", "--model", f"replay:{write_script(tmp_path / 's.json', data)}", "task")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and '"prices" must be' in proc.stderr


DAMAGED_LINES = [b"[]\n", b"{}\n", b'"text"\n', b'{"event": "note \xff"}\n', b"\x00\x00\n",
                 b'{"event": "usage", "usage": 3}\n', b'{"event": "usage", "usage": {}}\n',
                 b'{"event": "agent_started", "agent": "x"}\n']


def test_damaged_journal_lines_are_skipped_and_the_run_can_still_be_approved(repo: Path, tmp_path: Path) -> None:
    """Every kind of damage, one kind after each event of a pending run (so the run's whole state lies after
    some damage): each command reads the run as it was, and it can be approved. The reader's rules, one damaged
    line at a time, are test_journal_reader's."""
    path = write_script(tmp_path / "s.json", one_writer("a.txt", "A\n"))
    assert gitteam(repo, "run", "--no-merge", "--model", f"replay:{path}", "task").returncode == 0
    run = journal_so_far(repo)[0]
    events = repo / ".git" / "gitteam" / "runs" / run / "events.jsonl"
    readers = (["status", run, "--json"], ["show", run, "x"], ["cost", run, "--json"])
    intact = [gitteam(repo, *command).stdout for command in readers]
    lines = events.read_bytes().splitlines(keepends=True)
    assert len(lines) >= len(DAMAGED_LINES)
    events.write_bytes(b"".join(DAMAGED_LINES[n % len(DAMAGED_LINES)] + line for n, line in enumerate(lines)))
    for command, before in zip(readers, intact, strict=True):
        proc = gitteam(repo, *command)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (command, proc.stderr)
        if command[0] == "status":  # the same, and it says which lines it skipped
            [now], [then] = json.loads(proc.stdout), json.loads(before)
            assert [d["line"] for d in now.pop("damaged")] == list(range(1, 2 * len(lines), 2))
            assert then.pop("damaged") == [] and now == then
            continue
        assert proc.stdout == before, command
    assert gitteam(repo, "status").returncode == 0
    approved = gitteam(repo, "approve", run)
    assert approved.returncode == 0, approved.stderr
    assert git(repo, "show", "main:a.txt") == "A"


# --- disk state --------------------------------------------------------------------------------------------

def test_abort_saves_what_agents_left_removes_every_worktree_and_keeps_every_branch(repo: Path,
                                                                                     tmp_path: Path) -> None:
    path = write_script(tmp_path / "s.json", script(  # both coders run out of turns: the run fails
        [plan_turn([subtask("x", ["x.txt"]), subtask("y", ["y.txt"])])],
        {x: [call("write_file", path=f"{x}.txt", content="A\n")] for x in "xy"}))
    assert gitteam(repo, "run", "--yes", "--model", f"replay:{path}", "task").returncode == 1
    run, found = journal_so_far(repo)
    where = {e["agent"]: Path(e["worktree"]) for e in found if e["event"] == "agent_started"}
    assert all(Path.home() / ".local/share/gitteam/worktrees" in p.parents for p in where.values())
    (where["x"] / "x.txt").write_text("edited after the run\n")  # the agent's file: committed by abort
    (where["x"] / "notes.txt").write_text("precious\n")  # not the agent's: saved on the run's leftovers ref
    (where["x"] / "__pycache__").mkdir()
    (where["x"] / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"build output")  # not work: goes
    aborted = gitteam(repo, "abort", run)
    assert aborted.returncode == 0, aborted.stderr
    assert f"refs/gitteam/leftovers/{run}/x" in aborted.stdout.replace("\n", "")
    assert not where["x"].exists() and not where["y"].exists()
    leftovers = f"refs/gitteam/leftovers/{run}/x"
    assert git(repo, "show", f"{leftovers}:notes.txt") == "precious"
    assert git(repo, "rev-parse", f"{leftovers}^") == git(repo, "rev-parse", f"gitteam/{run}/x")
    assert git(repo, "diff", "--name-only", f"{leftovers}^", leftovers) == "notes.txt"
    assert git(repo, "show", f"gitteam/{run}/x:x.txt") == "edited after the run"
    note = json.loads(git(repo, "notes", "--ref=gitteam", "show", f"gitteam/{run}/x"))
    assert (note["run"], note["agent"], note["model"], note["review"]) == (run, "x", f"replay:{path}", None)
    events = [json.loads(line) for line in (repo / ".git/gitteam/runs" / run / "events.jsonl").read_text().splitlines()]
    saved = [e for e in events if e["event"] == "agent_committed" and e["agent"] == "x"]
    assert saved[-1]["head"] == git(repo, "rev-parse", f"gitteam/{run}/x")
    [kept] = [e for e in events if e["event"] == "leftovers_saved"]
    assert (kept["agent"], kept["ref"], kept["paths"]) == ("x", leftovers, ["notes.txt"])
    assert "leftover" in gitteam(repo, "status", run).stdout
    cleaned = gitteam(repo, "clean")
    assert cleaned.returncode == 0 and "removed 0 worktree(s)" in cleaned.stdout
    assert {b.strip("+* ") for b in git(repo, "branch").splitlines()} == {
        "main", f"gitteam/{run}/x", f"gitteam/{run}/y", f"gitteam/{run}/integration"}
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert not any((Path.home() / ".local/share/gitteam/worktrees").glob("*/*"))  # no empty run directory

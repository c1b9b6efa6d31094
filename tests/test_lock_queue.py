"""Runs that need the same files queue for them (run/waiting.py, locks/refs.py tickets), across processes.

Each run is its own `gitteam` process on one real repository; the first run is held inside its coder's write
(tests/pausing.py) so the test decides when its files come free.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gitteam.git import Repository, find_repository
from gitteam.locks.refs import (
    WAIT_PREFIX,
    claim_files,
    claim_subtasks,
    deadlocked,
    post_ticket,
    read_tickets,
    release_files,
)
from pausing import paused, release, wait_reached
from scripts import call, done, plan_turn, script, subtask, write_script


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def events(repo: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run's events so far, by the task it was started with (a line being written is left out)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((repo / ".git" / "gitteam" / "runs").glob("*/events.jsonl")):
        lines = []
        for line in path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        task = next((e["task"] for e in lines if e.get("event") == "run_started"), "")
        found[task] = lines
    return found


def wait_for_event(repo: Path, task: str, proc: subprocess.Popen[str], predicate: Any,
                   seconds: float = 60.0) -> dict[str, Any]:
    """The first event of run `task` that satisfies `predicate`; fails if `proc` ends first."""
    deadline = time.monotonic() + seconds
    while True:
        match = next((e for e in events(repo).get(task, []) if predicate(e)), None)
        if match is not None:
            return match
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run {task!r} ended (exit {proc.returncode}) first:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"run {task!r}: no such event in {seconds:.0f} s"
        time.sleep(0.02)


def kinds(run_events: list[dict[str, Any]], kind: str, agent: str | None = None) -> list[dict[str, Any]]:
    return [e for e in run_events if e.get("event") == kind and (agent is None or e.get("agent") == agent)]


def writer(held: Path | None, *files: tuple[str, str]) -> dict[str, Any]:
    """One subtask per (path, content); with `held`, the first subtask's write waits there."""
    plan = plan_turn([subtask(f"s{n}", [path]) for n, (path, _) in enumerate(files)])
    coders = {}
    for n, (path, content) in enumerate(files):
        write = call("write_file", path=path, content=content)
        coders[f"s{n}"] = [paused(write, held) if held and n == 0 else write, done(f"s{n}")]
    return script([plan], coders)


def set_lock_wait(seconds: float) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[run]\nlock_wait = {seconds}\n")


def test_two_runs_needing_one_file_both_land_one_after_the_other(repo: Path, tmp_path: Path) -> None:
    held = tmp_path / "first-write"
    first_script = write_script(tmp_path / "first.json", writer(held, ("a.txt", "A\n")))
    second_script = write_script(tmp_path / "second.json", writer(None, ("a.txt", "A\nB\n"), ("b.txt", "B\n")))
    first = start(repo, "run", "--yes", "--model", f"replay:{first_script}", "first task")
    wait_reached(first, held)  # it holds a.txt and its coder is at work
    second = start(repo, "run", "--yes", "--model", f"replay:{second_script}", "second task")
    waiting = wait_for_event(repo, "second task", second, lambda e: e.get("event") == "lock_waiting")
    assert (waiting["agent"], waiting["path"], waiting["holder_subtask"]) == ("s0", "a.txt", "s0")
    # the subtask that needs nothing the first run holds goes on meanwhile
    wait_for_event(repo, "second task", second,
                   lambda e: e.get("event") == "agent_committed" and e.get("agent") == "s1")
    assert not kinds(events(repo)["second task"], "agent_started", "s0")  # the waiting one has not begun
    status = subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo, text=True,
                            capture_output=True, timeout=60)
    rows = {a["id"]: a for r in json.loads(status.stdout) if r["task"] == "second task" for a in r["agents"]}
    assert "a.txt" in rows["s0"]["waiting_for"]

    release(held)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    first_landed = git(repo, "rev-parse", "main")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err

    assert git(repo, "show", "main:a.txt") == "A\nB" and git(repo, "show", "main:b.txt") == "B"
    assert git(repo, "merge-base", "--is-ancestor", first_landed, "main") == ""  # fast-forwarded, never forced
    log = events(repo)["second task"]
    started = kinds(log, "agent_started", "s0")
    assert len(started) == 1  # coded once, after the wait
    assert git(repo, "merge-base", "--is-ancestor", first_landed, started[0]["base"]) == ""  # on the first's work
    assert len(kinds(log, "plan")) == 1  # planned once: nothing paid twice
    assert [e["agent"] for e in kinds(log, "lock_granted")] == ["s0"]
    assert git(repo, "for-each-ref", WAIT_PREFIX) == ""  # no ticket left behind


def first_holding_a(repo: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A first run holding a.txt, its coder held inside its write until the test releases it."""
    held = tmp_path / "first-write"
    first = start(repo, "run", "--yes", "--model",
                  f"replay:{write_script(tmp_path / 'a.json', writer(held, ('a.txt', 'A')))}", "first task")
    wait_reached(first, held)
    return first, held


def second_on_a(repo: Path, tmp_path: Path, *more: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    """A second run that needs a.txt too (and the `more` files, one subtask each), to its end."""
    return subprocess.run([sys.executable, "-m", "gitteam", "run", "--yes", "--model",
                           f"replay:{write_script(tmp_path / 'b.json', writer(None, ('a.txt', 'B'), *more))}",
                           "second task"], cwd=repo, capture_output=True, text=True, timeout=60)


def test_with_no_wait_allowed_the_second_run_fails_before_coding(repo: Path, tmp_path: Path) -> None:
    set_lock_wait(0)
    first, held = first_holding_a(repo, tmp_path)
    second = second_on_a(repo, tmp_path)
    assert second.returncode == 1
    assert "cannot claim a.txt" in second.stdout + second.stderr and "Traceback" not in second.stderr
    assert not kinds(events(repo)["second task"], "agent_started")
    release(held)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert git(repo, "show", "main:a.txt") == "A"


def test_a_wait_that_outlasts_its_limit_fails_the_subtask_with_whom_it_waited_for(repo: Path,
                                                                                   tmp_path: Path) -> None:
    set_lock_wait(0.5)
    first, held = first_holding_a(repo, tmp_path)
    second = second_on_a(repo, tmp_path)
    assert second.returncode == 1, second.stderr
    finished = kinds(events(repo)["second task"], "agent_finished", "s0")
    assert "waited 0.5 s for a.txt, held by run" in finished[0]["reason"] and "lock_wait" in finished[0]["reason"]
    assert not kinds(events(repo)["second task"], "agent_started")
    assert git(repo, "for-each-ref", WAIT_PREFIX) == ""
    release(held)
    assert first.wait(timeout=60) == 0


def test_a_holder_that_was_killed_is_not_waited_for(repo: Path, tmp_path: Path) -> None:
    first, held = first_holding_a(repo, tmp_path)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = second_on_a(repo, tmp_path)
    assert second.returncode == 1
    said = second.stdout + second.stderr
    assert "cannot claim a.txt" in said and "gitteam abort" in said
    assert not kinds(events(repo)["second task"], "agent_started")


# The queue itself, on lock refs and tickets of one real repository.

@pytest.fixture
def gateway(repo: Path) -> Repository:
    return find_repository(repo)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_newcomer_does_not_jump_an_older_waiter(gateway: Repository) -> None:
    claim_files(gateway, "run1", {"f.py": "a"})
    post_ticket(gateway, "run2", "b", ["f.py"])  # run2 waits for f.py (this process: alive)
    release_files(gateway, "run1")
    blocked = claim_subtasks(gateway, "run3", {"c": ["f.py"], "d": ["g.py"]})
    assert [c.lock.run for c in blocked["c"]] == ["run2"] and blocked["c"][0].waiting
    assert "d" not in blocked  # what nobody waits for is claimed at once
    assert claim_subtasks(gateway, "run2", {"b": ["f.py"]}) == {}  # the older waiter is served


def test_a_dead_processs_ticket_blocks_nobody(gateway: Repository) -> None:
    ticket = post_ticket(gateway, "run2", "b", ["f.py"])
    gateway.update_refs([(ticket.ref, gateway.write_blob(json.dumps({
        "run": "run2", "subtask": "b", "paths": ["f.py"], "since": ticket.since, "host": ticket.host,
        "pid": dead_pid()}).encode()), ticket.oid)])
    assert claim_subtasks(gateway, "run3", {"c": ["f.py"]}) == {}


def test_a_waiting_cycle_is_found_and_only_its_youngest_run_gives_up(gateway: Repository) -> None:
    claim_files(gateway, "older", {"one.py": "a"})
    claim_files(gateway, "younger", {"two.py": "b"})
    post_ticket(gateway, "older", "c", ["two.py"])
    assert deadlocked(gateway, "older") is None  # waiting, but not in a cycle
    post_ticket(gateway, "younger", "d", ["one.py"])
    assert deadlocked(gateway, "younger") == ["younger", "older"]
    assert deadlocked(gateway, "older") is None  # the younger one gives up; the older waits on
    release_files(gateway, "younger")  # and with it, its ticket
    assert [t.run for t in read_tickets(gateway)] == ["older"]
    assert claim_subtasks(gateway, "older", {"c": ["two.py"]}) == {}


def test_a_pending_run_keeps_its_files_and_status_says_which(repo: Path, tmp_path: Path) -> None:
    pending = subprocess.run([sys.executable, "-m", "gitteam", "run", "--no-merge", "--json", "--model",
                              f"replay:{write_script(tmp_path / 'a.json', writer(None, ('a.txt', 'A')))}",
                              "first task"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert pending.returncode == 0, pending.stderr
    run = json.loads(pending.stdout)["run"]
    status = subprocess.run([sys.executable, "-m", "gitteam", "status", run], cwd=repo, capture_output=True,
                            text=True, timeout=60)
    assert "holds 1 file(s) until it is decided or aborted: a.txt" in status.stdout
    listed = subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo, capture_output=True,
                            text=True, timeout=60)
    assert [r["locks"] for r in json.loads(listed.stdout)] == [["a.txt"]]
    # no one waits for a run that waits for a person: the second run says who holds the file, before coding
    second = second_on_a(repo, tmp_path, ("c.txt", "C"))  # c.txt is free: still not taken by a run that stops
    assert second.returncode == 1 and f"gitteam approve {run}" in second.stdout + second.stderr
    states = json.loads(subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo,
                                       capture_output=True, text=True, timeout=60).stdout)
    assert [r["locks"] for r in states if r["task"] == "second task"] == [[]]  # refused: it took nothing
    assert subprocess.run([sys.executable, "-m", "gitteam", "abort", run], cwd=repo, capture_output=True,
                          timeout=60).returncode == 0
    assert json.loads(subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo,
                                     capture_output=True, text=True, timeout=60).stdout)[0]["locks"] == []

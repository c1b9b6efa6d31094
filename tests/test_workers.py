"""Distributed runs end to end: an owner and workers in separate clones, separate HOMEs and separate processes,
meeting only through a bare repository served by `git daemon` on loopback (a real network transport: the
workers get nothing but its git:// URL).

The owner (`gitteam run --remote origin`) plans, publishes, reviews, integrates and fast-forwards; the workers
(`gitteam worker --remote origin`) claim jobs by compare-and-swap pushes and code them with their own (scripted)
models. What is asserted is what lands: the trees, the refs on the remote, who claimed what.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitdaemon import Daemon, git_daemon
from pausing import paused, release, wait_reached
from scripts import approve, call, done, plan_turn, script, subtask, write_script

LEASE = 2.0  # seconds: short, so a dead worker is taken over quickly
CLAIM = re.compile(r"gitteam worker: (claimed|took over from \S+ pid \d+) (\S+)/(\S+) \(turn (\d+)")
PRICES = {"input": 3.0, "output": 15.0}


@dataclass
class Team:
    daemon: Daemon
    url: str
    root: Path
    owner: Path

    def env(self, name: str) -> dict[str, str]:
        """A process of its own machine, as far as files go: its own HOME (config, worktrees, memory writer)."""
        home = self.root / "homes" / name
        if not home.exists():
            (home / ".config").mkdir(parents=True)
            (home / ".gitconfig").write_text("[user]\n\tname = T\n\temail = t@example.com\n")
        return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}

    def clone(self, name: str) -> Path:
        path = self.root / name
        subprocess.run(["git", "clone", "-q", self.url, str(path)], check=True, env=self.env(name),
                       capture_output=True, timeout=60)
        return path

    def worker(self, name: str, script_file: Path, *args: str) -> subprocess.Popen[str]:
        clone = self.root / name if (self.root / name).exists() else self.clone(name)
        return subprocess.Popen(
            [sys.executable, "-m", "gitteam", "worker", "--remote", "origin", "--coder", f"replay:{script_file}",
             *args], cwd=clone, env=self.env(name), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, script_file: Path, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "gitteam", "run", "--remote", "origin", "--yes", "--planner",
             f"replay:{script_file}", "--reviewer", f"replay:{script_file}", *args, "build the six parts"],
            cwd=self.owner, env=self.env("owner"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def remote_refs(self, prefix: str = "refs/") -> dict[str, str]:
        out = git(self.owner, "ls-remote", self.url, f"{prefix}*")
        return {ref: oid for oid, ref in (line.split("\t") for line in out.splitlines() if line)}


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    """A seeded bare repository behind `git daemon`, and the owner's clone of it."""
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_files(seed, {"README.md": "parts\n", ".gitteam.toml": f"[remote]\nlease = {LEASE}\npoll = 0.2\n"},
                 "seed")
    with git_daemon(tmp_path / "served") as daemon:
        url = daemon.bare("origin.git", seed)
        team = Team(daemon, url, tmp_path, tmp_path / "owner")
        team.clone("owner")
        yield team


def six_parts(pause: Path | None = None) -> dict[str, object]:
    """Two waves: a, b, c write one file each; d, e, f each build on one of them. With `pause`, the coder of
    `a` writes its first file, then is held inside its next model call (its work so far is on disk)."""
    first = [subtask(n, [f"{n}.txt"]) for n in "abc"]
    second = [subtask(n, [f"{n}.txt"], depends_on=[dep]) for n, dep in zip("def", "abc", strict=True)]
    coders: dict[str, list[dict[str, object]]] = {
        n: [call("write_file", path=f"{n}.txt", content=f"part {n}\n"), done(f"wrote {n}")] for n in "bcdef"}
    coders["a"] = [call("write_file", path="a.txt", content="part a, first half\n"),
                   call("write_file", path="a2.txt", content="unused"),  # refused: not its file; no harm
                   call("write_file", path="a.txt", content="part a, first half\npart a, second half\n"),
                   done("wrote a")]
    if pause is not None:
        coders["a"][1] = paused(coders["a"][1], pause)
    return script([plan_turn([*first, *second])], coders, {"*": [approve()]}, prices=PRICES)


def local_tree(tmp_path: Path, team: Team, script_file: Path) -> str:
    """The same task run by one gitteam on one machine: the tree the distributed run must reach."""
    alone = team.clone("alone")
    result = subprocess.run([sys.executable, "-m", "gitteam", "run", "--yes", "--model", f"replay:{script_file}",
                             "build the six parts"], cwd=alone, env=team.env("alone"), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return git(alone, "rev-parse", "main^{tree}")


def finish(proc: subprocess.Popen[str], seconds: float = 240) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running after {seconds} s:\n{out}\n{err}") from None


def claims(output: str) -> list[tuple[str, str]]:
    """(agent, how) of every claim a worker's output reports."""
    return [(m.group(3), m.group(1).split()[0]) for m in CLAIM.finditer(output)]


def owner_events(team: Team) -> list[dict[str, object]]:
    (journal,) = (team.owner / ".git" / "gitteam" / "runs").glob("*/events.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines()]


def test_three_workers_land_a_two_wave_run_exactly_as_one_machine_would(team: Team, tmp_path: Path) -> None:
    script_file = write_script(tmp_path / "six.json", six_parts())
    expected = local_tree(tmp_path, team, script_file)
    workers = [team.worker(f"worker{n}", script_file, "--idle", "1") for n in range(3)]
    owner = team.run(script_file)
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    outputs = [finish(w)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs

    git(team.owner, "fetch", "-q", "origin")
    assert git(team.owner, "rev-parse", "main^{tree}") == expected
    assert git(team.owner, "rev-parse", "origin/main") == git(team.owner, "rev-parse", "main")  # pushed, no force
    every = [claim for output in outputs for claim in claims(output)]
    assert Counter(agent for agent, _ in every) == Counter("abcdef")  # each claimed exactly once
    assert sum(1 for output in outputs if claims(output)) >= 2  # the work was shared
    assert not team.remote_refs("refs/gitteam/runs/")  # the run's namespace is gone from the remote

    events = owner_events(team)
    reported = [e for e in events if e["event"] == "worker_reported"]
    assert sorted(str(e["agent"]) for e in reported) == list("abcdef")
    assert all(e["status"] == "done" for e in reported)
    (traffic,) = [e for e in events if e["event"] == "remote_traffic"]  # the owner's side, as the run stopped
    assert traffic["pushes"] >= 9  # the plan, six jobs, the target, the close
    assert traffic["fetches"] >= 1 and traffic["push_seconds"] > 0
    assert (f"origin: protocol: {traffic['fetches']} fetches ({traffic['fetch_seconds']:.2f} s), "
            f"{traffic['pushes']} pushes ({traffic['push_seconds']:.2f} s), {traffic['rejected']} rejected") in err
    assert all(re.search(r"^gitteam worker: protocol: \d+ fetches \(", output, re.M) for output in outputs)
    cost = subprocess.run([sys.executable, "-m", "gitteam", "cost", "--json"], cwd=team.owner,
                          env=team.env("owner"), capture_output=True, text=True, timeout=60)
    coders = {row["agent"]: row for row in json.loads(cost.stdout) if row["role"] == "coder"}
    assert sorted(coders) == list("abcdef")  # what the workers reported they spent is the run's
    assert all(row["cost"] > 0 and row["output_tokens"] > 0 for row in coders.values())


def test_a_killed_worker_is_taken_over_from_its_last_checkpoint(team: Team, tmp_path: Path) -> None:
    held = tmp_path / "a-held"
    script_file = write_script(tmp_path / "six.json", six_parts(pause=held))
    expected_script = write_script(tmp_path / "plain.json", six_parts())
    expected = local_tree(tmp_path, team, expected_script)
    first = team.worker("worker0", script_file)
    owner = team.run(script_file)
    wait_reached(first, held)  # worker0 holds `a`, its first half written, its coder inside a model call
    run = next(iter(owner_run_ids(team)))
    deadline = time.monotonic() + 60
    while f"refs/gitteam/runs/{run}/work/a" not in team.remote_refs("refs/gitteam/runs/"):
        assert time.monotonic() < deadline, "worker0 never pushed a checkpoint of a"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # mid-subtask, with no chance to give anything back
    dead, _ = first.communicate()
    release(held)  # the next worker's replay of `a` passes the pause at once
    others = [team.worker(f"worker{n}", script_file, "--idle", "1") for n in (1, 2)]
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    outputs = [finish(w)[0] for w in others]
    assert git(team.owner, "rev-parse", "main^{tree}") == expected  # nothing lost, nothing done twice
    every = [claim for output in (dead, *outputs) for claim in claims(output)]
    assert ("a", "took") in every  # taken over after the dead worker's lease ran out
    assert Counter(agent for agent, _ in every) == Counter("aabcdef")  # a: its claim, and the takeover


def owner_run_ids(team: Team) -> list[str]:
    deadline = time.monotonic() + 60
    while True:
        runs = [p.name for p in (team.owner / ".git" / "gitteam" / "runs").glob("*") if p.is_dir()]
        if runs:
            return runs
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_two_workers_racing_for_one_subtask_one_wins(team: Team, tmp_path: Path) -> None:
    one = script([plan_turn([subtask("only", ["only.txt"])])],
                 {"only": [call("write_file", path="only.txt", content="one\n"), done()]}, prices=PRICES)
    script_file = write_script(tmp_path / "one.json", one)
    for name in ("racer0", "racer1"):
        team.clone(name)
    owner = team.run(script_file)
    racers = [team.worker(name, script_file, "--once", "--idle", "1") for name in ("racer0", "racer1")]
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    outputs = [finish(r)[0] for r in racers]
    every = [claim for output in outputs for claim in claims(output)]
    assert [agent for agent, _ in every] == ["only"], outputs
    assert git(team.owner, "show", "main:only.txt") == "one"

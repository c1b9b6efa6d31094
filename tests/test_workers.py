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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitdaemon import Daemon, git_daemon
from gitteam.git import find_repository
from gitteam.remote.protocol import Remote, RunInfo
from pausing import interrupt, paused, release, wait_reached
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
    started: list[subprocess.Popen[str]] = field(default_factory=list)  # ended by the fixture, failed or not

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
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitteam", "worker", "--remote", "origin", "--coder", f"replay:{script_file}",
             *args], cwd=clone, env=self.env(name), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.started.append(proc)
        return proc

    def run(self, script_file: Path, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitteam", "run", "--remote", "origin", "--yes", "--planner",
             f"replay:{script_file}", "--reviewer", f"replay:{script_file}", *args, "build the six parts"],
            cwd=self.owner, env=self.env("owner"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.started.append(proc)
        return proc

    def end_all(self) -> None:
        """What a failed test left running (an owner polling the remote, a worker waiting for work) goes with
        it (a worker with its whole process group): nothing of one test outlives it."""
        for proc in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # a worker leads a session of its own
                except ProcessLookupError:
                    proc.kill()
                proc.communicate()

    def wait_published(self, owner: subprocess.Popen[str], seconds: float = 120) -> None:
        """Until the owner's run is on the remote."""
        deadline = time.monotonic() + seconds
        while not any(ref.endswith("/plan") for ref in self.remote_refs("refs/gitteam/runs/")):
            if owner.poll() is not None:
                raise AssertionError(f"the owner ended first: {owner.communicate()}")
            assert time.monotonic() < deadline, "the run was never published"
            time.sleep(0.05)

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
        try:
            yield team
        finally:
            team.end_all()


def six_parts(pause: Path | None = None, hold_wave: Path | None = None) -> dict[str, object]:
    """Two waves: a, b, c write one file each; d, e, f each build on one of them. With `pause`, the coder of
    `a` writes its first file, then is held inside its next model call (its work so far is on disk). With
    `hold_wave`, each of a, b and c is held at its first call until the test releases `<hold_wave>-<id>`."""
    first = [subtask(n, [f"{n}.txt"]) for n in "abc"]
    second = [subtask(n, [f"{n}.txt"], depends_on=[dep]) for n, dep in zip("def", "abc", strict=True)]
    coders: dict[str, list[dict[str, object]]] = {
        n: [call("write_file", path=f"{n}.txt", content=f"part {n}\n"), done(f"wrote {n}")] for n in "bcdef"}
    coders["e"].insert(1, call("remember", content="parts end with a newline", tags=["convention"]))
    coders["a"] = [call("write_file", path="a.txt", content="part a, first half\n"),
                   call("write_file", path="a2.txt", content="unused"),  # refused: not its file; no harm
                   call("write_file", path="a.txt", content="part a, first half\npart a, second half\n"),
                   done("wrote a")]
    if pause is not None:
        coders["a"][1] = paused(coders["a"][1], pause)
    if hold_wave is not None:
        for n in "abc":
            coders[n][0] = paused(coders[n][0], hold_wave.with_name(f"{hold_wave.name}-{n}"))
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
    expected = local_tree(tmp_path, team, write_script(tmp_path / "plain.json", six_parts()))
    hold = tmp_path / "wave"
    script_file = write_script(tmp_path / "six.json", six_parts(hold_wave=hold))
    configs = {name: git(team.clone(name) if name != "owner" else team.owner, "config", "--local", "--list")
               for name in ("owner", "worker0", "worker1", "worker2")}
    owner = team.run(script_file)
    team.wait_published(owner)  # workers that find no run at all stop after --idle
    workers = [team.worker(f"worker{n}", script_file, "--idle", "1") for n in range(3)]
    marks = [hold.with_name(f"wave-{n}") for n in "abc"]
    wait_held(workers, *marks)  # a, b and c at work at once: one on each worker (one job at a time each)
    release(*marks)
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    assert err.count("claimed by a worker on") == 6  # the owner's progress says who took each subtask
    outputs = [finish(w)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs

    git(team.owner, "fetch", "-q", "origin")
    assert git(team.owner, "rev-parse", "main^{tree}") == expected
    assert git(team.owner, "rev-parse", "origin/main") == git(team.owner, "rev-parse", "main")  # pushed, no force
    every = [claim for output in outputs for claim in claims(output)]
    assert Counter(agent for agent, _ in every) == Counter("abcdef")  # each claimed exactly once
    assert all(claims(output) for output in outputs)  # the work was shared
    assert not team.remote_refs("refs/gitteam/runs/")  # the run's namespace is gone from the remote
    for name, config in configs.items():  # nobody's git config was touched (refspecs, remotes, ...)
        assert git(team.root / name, "config", "--local", "--list") == config, name
    memory = subprocess.run([sys.executable, "-m", "gitteam", "memory", "list", "--json"], cwd=team.owner,
                            env=team.env("owner"), capture_output=True, text=True, timeout=60)
    assert "parts end with a newline" in memory.stdout  # what a worker's agent remembered reached the owner

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
    wait_reached(first, held, seconds=180)  # worker0 holds `a`, its first half written, its coder in a model call
    run = next(iter(owner_run_ids(team)))
    deadline = time.monotonic() + 180
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

    dead_clone = team.root / "worker0"
    assert git(dead_clone, "branch", "--list", "gitteam/*")  # what the kill left in its clone
    again = team.worker("worker0", script_file, "--idle", "0")
    finish(again)
    assert not git(dead_clone, "branch", "--list", "gitteam/*")  # swept by the next worker there
    assert len(git(dead_clone, "worktree", "list").splitlines()) == 1


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
    team.wait_published(owner)
    racers = [team.worker(name, script_file, "--once", "--idle", "1") for name in ("racer0", "racer1")]
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    outputs = [finish(r)[0] for r in racers]
    every = [claim for output in outputs for claim in claims(output)]
    assert [agent for agent, _ in every] == ["only"], outputs
    assert git(team.owner, "show", "main:only.txt") == "one"


def held_run(team: Team, tmp_path: Path) -> tuple[Path, Path, str, subprocess.Popen[str]]:
    """The six parts, `a` held at its second call; the tree a local run reaches; the owner, its run published."""
    held = tmp_path / "a-held"
    script_file = write_script(tmp_path / "six.json", six_parts(pause=held))
    expected = local_tree(tmp_path, team, write_script(tmp_path / "plain.json", six_parts()))
    owner = team.run(script_file)
    team.wait_published(owner)
    return held, script_file, expected, owner


def owner_sees(team: Team, agent: str, wanted: str, seconds: float = 60.0) -> str:
    """What `gitteam status` says of `agent`'s worker, once it says `wanted` (the owner journals a claim at its
    next look at the remote, which may come after the worker is already at work), or when time is up."""
    deadline = time.monotonic() + seconds
    while True:
        status = subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=team.owner,
                                env=team.env("owner"), capture_output=True, text=True, timeout=60)
        (row,) = [a for r in json.loads(status.stdout) for a in r["agents"] if a["id"] == agent]
        if wanted in row["worker"] or time.monotonic() > deadline:
            return str(row["worker"])
        time.sleep(0.05)


def test_a_paused_worker_that_wakes_up_after_a_takeover_lands_nothing(team: Team, tmp_path: Path) -> None:
    held, script_file, expected, owner = held_run(team, tmp_path)
    sleeper = team.worker("sleeper", script_file, "--idle", "1")
    wait_reached(sleeper, held)  # it holds `a`
    assert f"pid {sleeper.pid}" in owner_sees(team, "a", f"pid {sleeper.pid}")  # the owner sees who holds it
    os.killpg(sleeper.pid, signal.SIGSTOP)  # paused (a laptop lid, a stalled VM): its lease runs out
    release(held)
    others = [team.worker(f"worker{n}", script_file, "--idle", "1") for n in (1, 2)]
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    landed = git(team.owner, "rev-parse", "main")
    os.killpg(sleeper.pid, signal.SIGCONT)  # it wakes up and carries on where it was
    woke, _ = finish(sleeper)
    assert "fenced" in woke
    for other in others:
        finish(other)
    assert git(team.owner, "rev-parse", "main^{tree}") == expected
    assert team.remote_refs("refs/heads/") == {"refs/heads/main": landed}  # nothing of the sleeper's landed
    assert not team.remote_refs("refs/gitteam/")


def test_an_owner_killed_while_workers_work_resumes_with_their_results(team: Team, tmp_path: Path) -> None:
    held = tmp_path / "a-held"
    script_file = write_script(tmp_path / "six.json", six_parts(pause=held))
    expected = local_tree(tmp_path, team, write_script(tmp_path / "plain.json", six_parts()))
    workers = [team.worker(f"worker{n}", script_file) for n in range(3)]
    owner = team.run(script_file)
    wait_held(workers, held)
    owner.kill()  # the owner dies while its first wave is out with the workers
    owner.communicate()
    release(held)
    (run,) = owner_run_ids(team)
    deadline = time.monotonic() + 60  # the workers finish the published jobs and push their results anyway
    while sum(1 for ref in team.remote_refs(f"refs/gitteam/runs/{run}/results/")) < 3:
        assert time.monotonic() < deadline, "the workers did not finish the first wave without the owner"
        time.sleep(0.05)
    resumed = subprocess.run([sys.executable, "-m", "gitteam", "resume", run, "--yes"], cwd=team.owner,
                             env=team.env("owner"), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    for worker in workers:
        worker.terminate()
    outputs = [finish(w)[0] for w in workers]
    assert git(team.owner, "rev-parse", "main^{tree}") == expected
    every = [claim for output in outputs for claim in claims(output)]
    assert Counter(agent for agent, _ in every) == Counter("abcdef")  # the first wave was not done again


def wait_held(workers: list[subprocess.Popen[str]], *held: Path, seconds: float = 60) -> None:
    """Until workers are held at every one of `held` (they keep running: a pause is a model call)."""
    deadline = time.monotonic() + seconds
    while not all(mark.with_name(mark.name + ".reached").exists() for mark in held):
        assert time.monotonic() < deadline, f"not every pause was reached: {[w.poll() for w in workers]}"
        time.sleep(0.02)


def test_an_interrupted_worker_gives_its_job_back_with_its_work_at_once(team: Team, tmp_path: Path) -> None:
    held, script_file, expected, owner = held_run(team, tmp_path)
    quitter = team.worker("quitter", script_file)
    wait_reached(quitter, held)  # it holds `a`, whose first half is on its disk
    (run,) = owner_run_ids(team)
    interrupt(quitter)  # Ctrl-C
    release(held)
    out, _ = finish(quitter)
    assert quitter.returncode == 130, out
    refs = team.remote_refs(f"refs/gitteam/runs/{run}/")
    assert f"refs/gitteam/runs/{run}/leases/a" not in refs  # given back, not left to expire
    checkpoint = refs[f"refs/gitteam/runs/{run}/work/a"]
    git(team.owner, "fetch", "-q", team.url, checkpoint)
    assert git(team.owner, "show", f"{checkpoint}:a.txt") == "part a, first half"  # its work went with it
    helpers = [team.worker(f"worker{n}", script_file, "--idle", "1") for n in (1, 2)]
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    outputs = [finish(w)[0] for w in helpers]
    assert ("a", "claimed") in [c for output in outputs for c in claims(output)]  # free at once: no takeover
    assert git(team.owner, "rev-parse", "main^{tree}") == expected


@pytest.mark.parametrize("files", [["../escaped.txt"], [".git/hooks/post-commit"], ["/tmp/absolute.txt"]])
def test_a_job_whose_files_leave_the_repository_fails_and_touches_nothing(team: Team, tmp_path: Path,
                                                                          files: list[str]) -> None:
    """Whoever can push to the remote can publish a job: a worker trusts it no further than a planner's plan."""
    attacker = find_repository(team.clone("attacker"))
    remote = Remote(attacker, "origin")
    base = git(team.owner, "rev-parse", "main")
    remote.publish_run(RunInfo("evil-000000", "t", "main", base, "elsewhere", 1, LEASE, {"subtasks": []}))
    remote.publish_job("evil-000000", "x", 1, 1, "write the file", {"id": "x", "title": "x", "instructions": "x",
                       "files": files}, files, base, base, "t")
    coder = script([], {"x": [call("write_file", path=files[0], content="pwned\n"), done()]})
    worker = team.worker("victim", write_script(tmp_path / "evil.json", coder), "--once", "--idle", "1")
    out, _ = finish(worker)
    assert "x: failed" in out
    results = remote.fetch("evil-000000")["evil-000000"].results
    assert results["x"].status == "failed"
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/absolute.txt").exists()
    assert not (team.root / "victim" / ".git" / "hooks" / "post-commit").exists()


def test_a_worker_at_its_budget_fails_its_job_and_stops_claiming(team: Team, tmp_path: Path) -> None:
    one = script([plan_turn([subtask("only", ["only.txt"])])],
                 {"only": [call("write_file", path="only.txt", content="one\n"), done()]}, prices=PRICES)
    script_file = write_script(tmp_path / "one.json", one)
    owner = team.run(script_file)
    team.wait_published(owner)
    thrifty = team.worker("thrifty", script_file, "--budget", "0.0001")
    out, _ = finish(thrifty)
    assert thrifty.returncode == 4, out  # out of budget: the exit code says so, and it claimed nothing more
    assert "only: failed: the worker's budget" in out
    finish(owner)
    assert owner.returncode == 1
    reported = [e for e in owner_events(team) if e["event"] == "worker_reported"]
    assert [(e["status"], "budget" in str(e["reason"])) for e in reported] == [("failed", True)]
    assert git(team.owner, "rev-parse", "main") == git(team.owner, "rev-parse", "origin/main")  # nothing landed


def test_a_worker_without_a_usable_remote_says_so_in_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit_files(repo, {"a.txt": "a\n"})
    git(repo, "remote", "add", "origin", "git://127.0.0.1:1/nothing.git")  # nothing listens on port 1
    for args, code in ((["--remote", "nope"], 2), ([], 1)):
        result = subprocess.run([sys.executable, "-m", "gitteam", "worker", "--coder", "replay:demo", *args],
                                cwd=repo, capture_output=True, text=True, timeout=60)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_one_worker_with_max_agents_works_a_wave_at_once(team: Team, tmp_path: Path) -> None:
    expected = local_tree(tmp_path, team, write_script(tmp_path / "plain.json", six_parts()))
    hold = tmp_path / "wave"
    script_file = write_script(tmp_path / "six.json", six_parts(hold_wave=hold))
    owner = team.run(script_file)
    team.wait_published(owner)
    big = team.worker("big", script_file, "--max-agents", "3", "--idle", "1")
    marks = [hold.with_name(f"wave-{n}") for n in "abc"]
    wait_held([big], *marks)  # a, b and c held at once, all in this one worker
    release(*marks)
    out, err = finish(owner)
    assert owner.returncode == 0, f"{out}\n{err}"
    done_out, _ = finish(big)
    assert Counter(agent for agent, _ in claims(done_out)) == Counter("abcdef")
    assert git(team.owner, "rev-parse", "main^{tree}") == expected

"""The distributed mode's speed-up, and what its ref protocol costs per subtask.

A bare repository behind `git daemon` on loopback (tests/gitdaemon.py); per measurement a fresh copy of it, an
owner clone and N worker clones, each in its own directory with its own HOME, each a process of its own. A replay
script of independent one-file subtasks (`--waves 2`: the second half each depends on one of the first) in
which every model call takes `--delay` seconds: the planner 1 call, each coder 2 (write the file, done), each
review 1, the integration review 1. Measured, interleaved and repeated (median of --repeat):

- the owner's wall time for `gitteam run --remote origin --yes --max-agents <subtasks>` (the owner never limits:
  the workers do) with 1, 2 and 4 workers (`gitteam worker --max-agents 1` each), started together with the
  owner and interrupted once it has exited; the speed-up against 1 worker; the model time alone (the ideal:
  the longest chain of model calls when each worker codes one subtask at a time);
- the protocol's own cost per subtask: fetches and pushes, their count and seconds, of the owner (its closing
  "protocol: ..." progress line) and of all the workers together (each prints one as it exits; a worker polls
  every `poll` seconds whether or not there is work, so its count includes the waits before the run is
  published and between jobs);
- one `git fetch` (nothing new) and one `git push` (one new commit) over the same daemon, bare, for the ratios;
- the same script run locally (`gitteam run --yes`, no remote) with --max-agents 1 and 4, for comparison;
- the CPU seconds of each run's processes (and their git) and of the daemon's git in that time: what of the
  machine the run itself used.

`[remote]` in the seed's .gitteam.toml: `lease` (default 6 s: a worker renews every lease/3 = 2 s, so a 2 s
subtask pays about one renewal push, as a real subtask of minutes pays several at the default 60 s) and `poll`
(default 0.5 s: the wait between an owner's or an idle worker's fetches, scaled down with the model latency as
the default 2 s is to calls of tens of seconds).

    python benchmarks/workers.py [--delay 1.0] [--subtasks 8] [--waves 1] [--workers 1,2,4] [--local 1,4]
                                 [--repeat 3] [--lease 6] [--poll 0.5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitdaemon import Daemon

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # the checkout's gitteam and test helpers, installed or not
from gitteam.remote.protocol import Stats as Traffic  # noqa: E402 - the path above first

GITTEAM = [sys.executable, "-m", "gitteam"]
TASK = "write the parts"
CLAIM = re.compile(r"gitteam worker: (?:claimed|took over from \S+ pid \d+) \S+/(\S+) \(turn")
RUN_SECONDS = 600  # a measurement that takes longer than this is stuck: the benchmark stops with its output


@dataclass
class Measure:
    seconds: float
    cpu: float = 0.0  # user + system seconds of the run's gitteam processes and their git
    server: float = 0.0  # the same of the daemon's upload-pack and receive-pack processes in that time
    owner: Traffic = field(default_factory=Traffic)
    workers: Traffic = field(default_factory=Traffic)
    shares: list[int] = field(default_factory=list)  # subtasks each worker claimed


def traffic(output: str, who: str) -> Traffic:
    found = Traffic.read(output)
    if found is None:
        raise SystemExit(f"{who} printed no protocol line:\n{output}")
    return found


def replay_script(subtasks: int, waves: int, delay: float) -> dict[str, object]:
    """`subtasks` one-file subtasks in `waves` waves (each of a later wave depends on one of the wave before);
    every model call answers after `delay` seconds."""
    per_wave = math.ceil(subtasks / waves)
    plan = []
    for i in range(subtasks):
        item: dict[str, object] = {"id": f"t{i}", "title": f"part {i}", "instructions": f"Write parts/p{i}.txt.",
                                   "files": [f"parts/p{i}.txt"]}
        if i >= per_wave:
            item["depends_on"] = [f"t{i - per_wave}"]
        plan.append(item)
    coder = {f"t{i}": [{"call": "write_file", "args": {"path": f"parts/p{i}.txt", "content": f"part {i}\n"},
                        "delay": delay},
                       {"call": "done", "args": {"summary": f"wrote part {i}"}, "delay": delay}]
             for i in range(subtasks)}
    approve = {"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok", "findings": []},
               "delay": delay}
    return {"gitteam_replay": 1, "prices": {"input": 3.0, "output": 15.0},
            "planner": [{"call": "submit_plan", "args": {"subtasks": plan, "summary": "parts"}, "delay": delay}],
            "coder": coder, "reviewer": {"*": [approve]}}


def ideal(subtasks: int, waves: int, coders: int, delay: float, local: bool) -> float:
    """The model time alone: the longest chain of model calls. A worker is free again once it pushed its
    result, so the owner's review of a subtask overlaps the next subtask's coding; a local agent slot holds its
    subtask through its review."""
    calls = 1  # the planner
    per_wave = math.ceil(subtasks / waves)
    for wave in range(waves):
        size = min(per_wave, subtasks - wave * per_wave)
        if size <= 0:
            break
        rounds = math.ceil(size / coders)
        calls += rounds * (3 if local else 2) + (0 if local else 1)  # the last review of the wave
    return (calls + 1) * delay  # + the integration review


def clean_env(home: Path) -> dict[str, str]:
    from gitdaemon import home_env

    env = {k: v for k, v in home_env(home).items() if not k.startswith("GITTEAM_")}
    return {**env, "PYTHONPATH": str(ROOT / "src")}


def clone(url: str, path: Path) -> tuple[Path, dict[str, str]]:
    from gitdaemon import clone as git_clone

    home = path.parent / f"{path.name}-home"
    git_clone(url, path, home)
    return path, clean_env(home)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def daemon_cpu(daemon: Daemon) -> float:
    """CPU seconds of the git processes the daemon served and reaped so far (its connections' upload-pack and
    receive-pack: `git daemon` runs git-daemon, whose reaped children's times are in its /proc stat)."""
    children = Path(f"/proc/{daemon.process.pid}/task/{daemon.process.pid}/children").read_text().split()
    total = 0.0
    for pid in [str(daemon.process.pid), *children]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    return total


def interruptible() -> None:
    """In the child before exec: Ctrl-C as a person's terminal delivers it, even when this benchmark runs in the
    background (where SIGINT is inherited ignored and Python would keep ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(proc: subprocess.Popen[str], who: str) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=RUN_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise SystemExit(f"{who} still running after {RUN_SECONDS} s:\n{out}\n{err}") from None


def landed(repo: Path, env: dict[str, str], ref: str, subtasks: int) -> None:
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "parts/"], cwd=repo, env=env, text=True,
                           capture_output=True, check=True).stdout.split()
    if len(files) != subtasks:
        raise SystemExit(f"{ref} has {len(files)} of the {subtasks} parts: {files}")


def distributed(daemon: Daemon, seed: Path, work: Path, script: Path, workers: int, subtasks: int) -> Measure:
    """One distributed run: a fresh remote, an owner and `workers` workers; the owner's wall time."""
    url = daemon.bare(f"{work.name}.git", seed)
    owner, owner_env = clone(url, work / "owner")
    clones = [clone(url, work / f"worker{n}") for n in range(workers)]
    procs = [subprocess.Popen([*GITTEAM, "worker", "--remote", "origin", "--max-agents", "1", "--coder",
                               f"replay:{script}"], cwd=path, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=interruptible)
             for path, env in clones]
    started, cpu, server = time.perf_counter(), children_cpu(), daemon_cpu(daemon)
    run = subprocess.Popen([*GITTEAM, "run", "--remote", "origin", "--yes", "--max-agents", str(subtasks),
                            "--planner", f"replay:{script}", "--reviewer", f"replay:{script}", TASK],
                           cwd=owner, env=owner_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    out, err = finish(run, "the owner")
    seconds = time.perf_counter() - started
    for proc in procs:  # idle now: Ctrl-C, and each prints its protocol line as it exits
        proc.send_signal(signal.SIGINT)
    outputs = [finish(proc, "a worker")[0] for proc in procs]
    cpu, server = children_cpu() - cpu, daemon_cpu(daemon) - server
    if run.returncode != 0:
        raise SystemExit(f"the owner failed ({run.returncode}):\n{out}\n{err}\n" + "\n".join(outputs))
    subprocess.run(["git", "fetch", "-q", "origin"], cwd=owner, env=owner_env, check=True)
    landed(owner, owner_env, "origin/main", subtasks)
    total = Traffic()
    for output in outputs:
        total += traffic(output, "a worker")
    return Measure(seconds, cpu, server, traffic(err, "the owner"), total,
                   sorted((len(CLAIM.findall(output)) for output in outputs), reverse=True))


def local(seed: Path, work: Path, script: Path, agents: int, subtasks: int) -> Measure:
    """The same script on one machine, no remote."""
    repo, env = clone(str(seed), work / "alone")
    started, cpu = time.perf_counter(), children_cpu()
    run = subprocess.run([*GITTEAM, "run", "--yes", "--max-agents", str(agents), "--model", f"replay:{script}",
                          TASK], cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=RUN_SECONDS)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(f"the local run failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    landed(repo, env, "main", subtasks)
    return Measure(seconds, children_cpu() - cpu)


def bare_costs(daemon: Daemon, seed: Path, work: Path, times: int) -> tuple[float, float]:
    """Median seconds of one `git fetch` with nothing new, and of one `git push` of one new commit."""
    url = daemon.bare(f"{work.name}.git", seed)
    repo, env = clone(url, work / "bare")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, text=True, capture_output=True,
                              check=True).stdout.strip()

    def timed(action: Callable[[], object]) -> float:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started

    fetches = [timed(lambda: git("fetch", "-q", "origin")) for _ in range(times)]
    pushes = []
    for n in range(times):
        commit = git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"probe {n}")
        pushes.append(timed(lambda c=commit, i=n: git("push", "-q", "--atomic", "origin", f"{c}:refs/probe/{i}")))
    return statistics.median(fetches), statistics.median(pushes)


def seed_repository(path: Path, lease: float, poll: float) -> None:
    env = clean_env(path.parent / "seed-home")
    (path.parent / "seed-home").mkdir(exist_ok=True)
    (path.parent / "seed-home" / ".gitconfig").write_text("[user]\n\tname = seed\n\temail = seed@example.com\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "README.md").write_text("parts\n")
    (path / ".gitteam.toml").write_text(f"[remote]\nlease = {lease}\npoll = {poll}\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "seed"], cwd=path, check=True, env=env)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each model call takes")
    parser.add_argument("--subtasks", type=int, default=8)
    parser.add_argument("--waves", type=int, default=1, choices=(1, 2))
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (the first is the base)")
    parser.add_argument("--local", default="1,4", help="--max-agents of the local runs (empty: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lease", type=float, default=6.0)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    agents = [int(n) for n in args.local.split(",") if n]
    from gitdaemon import git_daemon

    kinds = [f"local-{a}" for a in agents] + [f"remote-{n}" for n in counts]
    results: dict[str, list[Measure]] = {kind: [] for kind in kinds}
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="gitteam-bench-workers-") as tmp:
        root = Path(tmp)
        seed = root / "seed"
        seed_repository(seed, args.lease, args.poll)
        script = root / "script.json"
        script.write_text(json.dumps(replay_script(args.subtasks, args.waves, args.delay)))
        with git_daemon(root / "served") as daemon:
            fetch_bare, push_bare = bare_costs(daemon, seed, root / "probe", 10)
            for n in range(args.repeat):
                for kind in kinds:  # interleaved, so a slow moment of the machine hits every kind alike
                    work = root / f"{kind}-{n}"
                    work.mkdir()
                    size = int(kind.split("-")[1])
                    measure = (local(seed, work, script, size, args.subtasks) if kind.startswith("local") else
                               distributed(daemon, seed, work, script, size, args.subtasks))
                    results[kind].append(measure)
                    print(f"  {kind} #{n + 1}: {measure.seconds:.2f} s", file=sys.stderr, flush=True)
            fetch_after, push_after = bare_costs(daemon, seed, root / "probe-after", 10)
    report(args, results, counts, agents, (fetch_bare + fetch_after) / 2, (push_bare + push_after) / 2,
           load_before)


def median_run(measures: list[Measure]) -> Measure:
    """The run of median wall time (its protocol counts go with it)."""
    return sorted(measures, key=lambda m: m.seconds)[len(measures) // 2]


def report(args: argparse.Namespace, results: dict[str, list[Measure]], counts: list[int], agents: list[int],
           fetch_bare: float, push_bare: float, load_before: str) -> None:
    s = args.subtasks
    print(f"machine: {os.cpu_count()} cores; load average (1, 5, 15 min) before {load_before}, after {load()}")
    print(f"{s} one-file subtasks in {args.waves} wave(s); every model call {args.delay:g} s; [remote] lease "
          f"{args.lease:g} s, poll {args.poll:g} s; median of {args.repeat}")
    print(f"bare over git daemon: git fetch (nothing new) {fetch_bare * 1000:.0f} ms, git push (one commit) "
          f"{push_bare * 1000:.0f} ms")
    print()
    base = statistics.median(m.seconds for m in results[f"remote-{counts[0]}"])
    base_ideal = ideal(s, args.waves, counts[0], args.delay, local=False)
    print(f"{'run':<28}{'wall s':>8}{'speed-up':>10}{'ideal s':>9}{'ideal x':>9}{'wall-ideal s':>14}{'cpu s':>8}"
          f"{'daemon cpu s':>14}  shares")
    rows = [(f"local, --max-agents {a}", f"local-{a}", ideal(s, args.waves, a, args.delay, local=True))
            for a in agents]
    rows += [(f"{n} worker{'s' if n > 1 else ''}", f"remote-{n}", ideal(s, args.waves, n, args.delay, local=False))
             for n in counts]
    for label, kind, best in rows:
        wall = statistics.median(m.seconds for m in results[kind])
        cpu = statistics.median(m.cpu for m in results[kind])
        server = statistics.median(m.server for m in results[kind])
        shares = "+".join(str(x) for x in median_run(results[kind]).shares)
        print(f"{label:<28}{wall:>8.2f}{base / wall:>10.2f}{best:>9.1f}{base_ideal / best:>9.2f}{wall - best:>14.2f}"
              f"{cpu:>8.1f}{server:>14.1f}  {shares}")
    print()
    print(f"protocol per subtask (the median run's totals / {s})")
    print(f"{'side':<20}{'fetches':>9}{'fetch s':>9}{'ms/fetch':>10}{'x bare':>8}{'pushes':>8}{'push s':>8}"
          f"{'ms/push':>9}{'x bare':>8}{'CAS lost':>10}")
    for n in counts:
        run = median_run(results[f"remote-{n}"])
        for side, t in (("owner", run.owner), ("workers", run.workers)):
            per_fetch = t.fetch_seconds / t.fetches if t.fetches else 0.0
            per_push = t.push_seconds / t.pushes if t.pushes else 0.0
            print(f"{f'{n}w {side}':<20}{t.fetches / s:>9.2f}{t.fetch_seconds / s:>9.3f}{per_fetch * 1000:>10.0f}"
                  f"{per_fetch / fetch_bare:>8.2f}{t.pushes / s:>8.2f}{t.push_seconds / s:>8.3f}"
                  f"{per_push * 1000:>9.0f}{per_push / push_bare:>8.2f}{t.rejected / s:>10.2f}")


if __name__ == "__main__":
    main()

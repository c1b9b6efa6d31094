"""What agents' worktrees cost as the repository grows, full against sparse, and what parallel agents gain.

Four parts, each printing a table (the ratios are the numbers that matter: the machine is shared and noisy):

- setup: one agent's worktree made through gitteam's gateway (`Repository.create_worktree`), full or sparse
  (the cone of one directory of PER_DIR files), 8 and 64 agents, at 10,000 and 100,000 files: seconds per
  agent (median), the disk the worktrees and their admin dirs take, one worktree's index; and git alone doing
  the same sparse setup (`worktree add --no-checkout`, `sparse-checkout set --cone --sparse-index`,
  `read-tree -mu HEAD`).
- run: `gitteam run --yes` (a fresh process, an instant replay model, 8 one-file subtasks in 8 directories of
  PER_DIR files, 8 agents) at 10,000 and 100,000 files, full and sparse, interleaved and repeated: wall time
  (median), the disk peak above the repository's own size (worktrees and git dir, sampled with `du` while it
  runs), and in one more run each, through a `git` on PATH that logs its calls, the git processes per subtask.
- gate: a whole tree for a sparse subtask's test command, fresh (`worktree add`) against one of the run's
  checkouts switched to the commit (`Repository.switch_detached`), after a one-file change.
- parallel: 8 independent one-file subtasks on a 200-file repository, every model call taking 0.4 s, with
  --max-agents 1 and 8, in the same run: the speed-up.

Generated repositories are built once with fast-import into a cache dir (default /tmp/gitteam-bench-cache) and
reused; every run starts from the repository as it was built (`pristine`) and targets a branch of its own, so
the cached checkout is never changed. `--cache /dev/shm/...` measures on tmpfs, without the disk's cost of
creating files. Not run in CI.

    python benchmarks/worktrees.py [--parts setup,gate,run,parallel] [--sizes 10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}
SUBTASKS = 8
PER_DIR = 20  # files per directory of a generated repository: directories stay this size as it grows
MODULES = 25  # directories per top-level package (so 10,000 files make 20 packages, 100,000 make 200)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV_KEYS}).stdout


def load() -> str:
    """The machine's load average, printed above each table: the machine is shared, and it says how much."""
    one, five, fifteen = os.getloadavg()
    return f"(load average {one:.2f} {five:.2f} {fifteen:.2f})\n"


def du(paths: list[Path]) -> int:
    """Bytes on disk under `paths` (du -s -B1: blocks, hard links once)."""
    there = [str(p) for p in paths if p.exists()]
    if not there:
        return 0
    out = subprocess.run(["du", "-s", "-c", "-B1", *there], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def cached_repository(cache: Path, files: int) -> Path:
    """A repository of `files` small Python files, PER_DIR to a directory `pkg<p>/mod<m>/`, built once: a
    bigger repository has more directories, not bigger ones, as real ones grow."""
    path = cache / f"repo-tree-{files}"
    if (path / ".git" / "bench-ready").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    stream = ["commit refs/heads/main", "committer bench <bench@example.com> 1700000000 +0000", "data 7", "initial"]
    for n in range(files):
        content = f"def function_{n}(value):\n    return value + {n}\n"
        leaf = n // PER_DIR
        stream += [f"M 100644 inline pkg{leaf // MODULES}/mod{leaf % MODULES}/module_{n}.py", f"data {len(content)}",
                   content]
    stream += ["M 100644 inline README.md", "data 8", "# bench\n"]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream) + "\n", text=True,
                   check=True, env={**os.environ, **ENV_KEYS})
    git(path, "reset", "-q", "--hard", "main")
    git(path, "gc", "-q")
    (path / ".git" / "bench-ready").write_text("")
    return path


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} KB"


# --- setup ------------------------------------------------------------------------------------------------------

def setup_part(cache: Path, sizes: list[int], agents_list: list[int], full_64_max: int, full_max: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gitteam.cone import Cone
    from gitteam.git import find_repository

    print(f"\n{load()}## setup: one worktree per agent")
    print(f"{'files':>8} {'agents':>6} {'how':<16}{'s/agent (median)':>18}{'total s':>9}{'disk':>12}"
          f"{'index':>11}")
    for files in sizes:
        source = cached_repository(cache, files)
        for agents in agents_list:
            for how in ("full", "sparse", "git sparse"):
                if how == "full" and (files > full_max or agents == 64 and files > full_64_max):
                    print(f"{files:>8,} {agents:>6} {how:<16}{'skipped':>18}")
                    continue
                with tempfile.TemporaryDirectory(prefix="gitteam-bench-setup-", dir=cache) as tmp:
                    repo_path = Path(tmp) / "repo"
                    git(cache, "clone", "-q", "--shared", "--no-checkout", str(source), str(repo_path))
                    repo = find_repository(repo_path)
                    places = Path(tmp) / "worktrees"
                    places.mkdir()
                    times = []
                    for n in range(agents):
                        path = places / f"a{n}"
                        directory = f"pkg{n % 8}/mod{n // 8 % MODULES}"
                        start = time.perf_counter()
                        if how == "git sparse":
                            git(repo_path, "worktree", "add", "-q", "--no-checkout", "-b", f"b{n}", str(path), "main")
                            git(path, "sparse-checkout", "set", "--cone", "--sparse-index", directory)
                            git(path, "read-tree", "-mu", "HEAD")
                        else:
                            cone = Cone.around([f"{directory}/new.py"]) if how == "sparse" else None
                            repo.create_worktree(path, f"b{n}", "main", cone)
                        times.append(time.perf_counter() - start)
                    admin = repo_path / ".git" / "worktrees"
                    disk = du([places, admin])
                    index = (admin / "a0" / "index").stat().st_size
                    print(f"{files:>8,} {agents:>6} {how:<16}{statistics.median(times):>18.4f}{sum(times):>9.2f}"
                          f"{fmt_bytes(disk):>12}{fmt_bytes(index):>11}", flush=True)


# --- gate -------------------------------------------------------------------------------------------------------

def gate_part(cache: Path, sizes: list[int], repeat: int) -> None:
    """Where the test command of a sparse subtask gets its whole tree: a fresh full checkout each time, or one of
    the run's checkouts switched to the commit under test (run/checkouts.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gitteam.git import find_repository

    print(f"\n{load()}## gate: a whole tree for the test command of a one-file change; median of {repeat}")
    print(f"{'files':>8} {'fresh full checkout':>21}{'switch a kept one':>19}{'ratio':>8}")
    for files in sizes:
        source = cached_repository(cache, files)
        with tempfile.TemporaryDirectory(prefix="gitteam-bench-gate-", dir=cache) as tmp:
            repo_path = Path(tmp) / "repo"
            git(cache, "clone", "-q", "--shared", "--no-checkout", str(source), str(repo_path))
            repo = find_repository(repo_path)
            base = git(repo_path, "rev-parse", "main").strip()
            commits = []
            for n in range(repeat):  # one-file changes, as a subtask makes
                blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo_path, input=f"{n}\n",
                                      capture_output=True, text=True, check=True).stdout.strip()
                tree = subprocess.run(["git", "mktree"], cwd=repo_path, capture_output=True, text=True, check=True,
                                      input=git(repo_path, "ls-tree", base) + f"100644 blob {blob}\tchange.txt\n"
                                      ).stdout.strip()
                commits.append(git(repo_path, "commit-tree", tree, "-p", base, "-m", f"change {n}").strip())
            fresh, switch = [], []
            kept = Path(tmp) / "kept"
            repo.add_detached_worktree(kept, base)
            for n, commit in enumerate(commits):
                path = Path(tmp) / f"fresh-{n}"
                start = time.perf_counter()
                repo.add_detached_worktree(path, commit)
                fresh.append(time.perf_counter() - start)
                repo.remove_worktree(path, force=True)
                start = time.perf_counter()
                repo.switch_detached(kept, commit)
                switch.append(time.perf_counter() - start)
        one, other = statistics.median(fresh), statistics.median(switch)
        print(f"{files:>8,} {one:>21.3f}{other:>19.3f}{one / other:>8.1f}", flush=True)


# --- run --------------------------------------------------------------------------------------------------------

def replay_script(subtasks: int, delay: float = 0.0) -> dict[str, object]:
    def turn(call: dict[str, object]) -> dict[str, object]:
        return {**call, **({"delay": delay} if delay else {})}

    plan = [{"id": f"t{i}", "title": f"feature {i}", "instructions": f"Create pkg{i}/mod{i}/feature_{i}.py.",
             "files": [f"pkg{i}/mod{i}/feature_{i}.py"]} for i in range(1, subtasks + 1)]
    coder = {f"t{i}": [turn({"tool_calls": [
        {"name": "write_file", "arguments": {"path": f"pkg{i}/mod{i}/feature_{i}.py",
                                             "content": f"def feature_{i}():\n    return {i}\n"}}]}),
        turn({"call": "done", "args": {"summary": "done"}})] for i in range(1, subtasks + 1)}
    review = {"*": [turn({"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok",
                                                            "findings": []}})]}
    return {"gitteam_replay": 1, "planner": [turn({"call": "submit_plan", "args": {"subtasks": plan}})],
            "coder": coder, "reviewer": review}


def pristine(repo: Path) -> None:
    """The cached repository as it was built: every run leaves its branches, notes, state and objects, and a
    repository that had kept 90 runs' (850 refs, 5,000 loose objects) made git's own processes several times
    costlier, so that a measurement depended on how often the benchmark had run before."""
    refs = [ref for ref in git(repo, "for-each-ref", "--format=%(refname)").splitlines() if ref != "refs/heads/main"]
    if refs:
        subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, check=True, capture_output=True,
                       input="".join(f"delete {ref}\n" for ref in refs), text=True, env={**os.environ, **ENV_KEYS})
    shutil.rmtree(repo / ".git" / "gitteam", ignore_errors=True)
    git(repo, "worktree", "prune")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "prune", "--expire=now")


class Bench:
    """A home of its own (user config, worktrees root) for gitteam runs against cached repositories."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.config = root / "config"
        self.shim = root / "shim"
        self.log = root / "git-calls.log"
        self.count = 0
        self.shim.mkdir(parents=True, exist_ok=True)
        real = shutil.which("git")
        (self.shim / "git").write_text(f'#!/bin/sh\necho "$*" >> {self.log}\nexec {real} "$@"\n')
        (self.shim / "git").chmod(0o755)

    def env(self, mode: str, counted: bool) -> dict[str, str]:
        (self.config / "gitteam").mkdir(parents=True, exist_ok=True)
        (self.config / "gitteam" / "config.toml").write_text(f'[worktrees]\nmode = "{mode}"\n')
        env = {**os.environ, **ENV_KEYS, "XDG_DATA_HOME": str(self.data), "XDG_CONFIG_HOME": str(self.config)}
        if counted:
            env["PATH"] = f"{self.shim}:{env['PATH']}"
        return env

    def run(self, repo: Path, script: Path, mode: str, agents: int, counted: bool = False,
            watched_disk: bool = True) -> tuple[float, int]:
        """One `gitteam run --yes` on a new target branch: (seconds, disk peak above the start in bytes; sampled
        with `du` every 0.2 s unless not `watched_disk`, where those processes would only take CPU from it)."""
        self.count += 1
        target = f"bench-{os.getpid()}-{self.count}"
        pristine(repo)
        git(repo, "branch", target, "main")
        watched = [self.data, repo / ".git"]
        before = du(watched)
        peak = [before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                peak[0] = max(peak[0], du(watched))

        sampler = threading.Thread(target=sample, daemon=True)
        if watched_disk and not counted:
            sampler.start()
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gitteam", "run", "--yes", "--model", f"replay:{script}",
                               "--max-agents", str(agents), "--target", target, "benchmark task"],
                              cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=self.env(mode, counted))
        elapsed = time.perf_counter() - start
        stop.set()
        if sampler.is_alive():
            sampler.join()
        peak[0] = max(peak[0], du(watched))
        if proc.returncode != 0:
            raise SystemExit(f"gitteam run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        landed = git(repo, "ls-tree", "-r", "--name-only", target, "--", *(f"pkg{i}" for i in range(1, 9)))
        assert sum("feature_" in line for line in landed.splitlines()) == SUBTASKS, landed
        return elapsed, peak[0] - before

    def git_calls(self, repo: Path, script: Path, mode: str) -> Counter[str]:
        self.log.unlink(missing_ok=True)
        self.run(repo, script, mode, SUBTASKS, counted=True)
        calls: Counter[str] = Counter()
        for line in self.log.read_text().splitlines():
            words = [w for w in line.split() if not w.startswith("-") and "=" not in w]
            calls[words[0] if words else "?"] += 1
        return calls


def run_part(cache: Path, sizes: list[int], repeat: int, full_max: int) -> None:
    bench = Bench(cache / f"home-{os.getpid()}")
    script = bench.root / "instant.json"
    script.write_text(json.dumps(replay_script(SUBTASKS)))
    repos = {files: cached_repository(cache, files) for files in sizes}
    own = {files: du([repo]) for files, repo in repos.items()}
    times: dict[tuple[int, str], list[float]] = {}
    peaks: dict[tuple[int, str], list[int]] = {}
    for _ in range(repeat):
        for files in sizes:
            for mode in modes(files, full_max):  # interleaved: a slow moment of the machine hits every kind alike
                seconds, peak = bench.run(repos[files], script, mode, SUBTASKS)
                times.setdefault((files, mode), []).append(seconds)
                peaks.setdefault((files, mode), []).append(peak)
                print(f"  ({files:,} files, {mode}: {seconds:.2f} s, peak +{fmt_bytes(peak)})", flush=True)
    print(f"\n{load()}## run: gitteam run --yes, {SUBTASKS} one-file subtasks, {SUBTASKS} agents, instant model; "
          f"median of {repeat}")
    print(f"{'files':>8} {'mode':<8}{'seconds':>9}{'vs 10k':>8}{'disk peak above repo':>22}{'repo':>11}")
    smallest = min(sizes)
    for files in sizes:
        for mode in modes(files, full_max):
            median = statistics.median(times[(files, mode)])
            ratio = median / statistics.median(times[(smallest, mode)]) if (smallest, mode) in times else 0.0
            print(f"{files:>8,} {mode:<8}{median:>9.2f}{ratio:>8.2f}{fmt_bytes(max(peaks[(files, mode)])):>22}"
                  f"{fmt_bytes(own[files]):>11}")
    print(f"\n{load()}## git processes per subtask (one run each, through a logging git on PATH)")
    for mode in modes(smallest, full_max):
        calls = bench.git_calls(repos[smallest], script, mode)
        top = ", ".join(f"{name} {n}" for name, n in calls.most_common(8))
        print(f"{mode:<8}{sum(calls.values()) / SUBTASKS:>7.1f} per subtask ({sum(calls.values())} in all): {top}")
    shutil.rmtree(bench.root, ignore_errors=True)


def modes(files: int, full_max: int) -> tuple[str, ...]:
    return ("full", "sparse") if files <= full_max else ("sparse",)


def parallel_part(cache: Path, repeat: int) -> None:
    bench = Bench(cache / f"home-parallel-{os.getpid()}")
    script = bench.root / "slow.json"
    script.write_text(json.dumps(replay_script(SUBTASKS, delay=0.4)))
    repo = cached_repository(cache, 200)
    times: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(repeat):
        for agents in times:
            times[agents].append(bench.run(repo, script, "auto", agents, watched_disk=False)[0])
    one, eight = statistics.median(times[1]), statistics.median(times[8])
    calls = 1 + SUBTASKS * 3 + 1  # the planner; each subtask's two coder calls and its review; the integration review
    chain = 5  # what one subtask waits for: the planner, its coder's two calls, its review, the integration review
    print(f"\n{load()}## parallel: {SUBTASKS} one-file subtasks, 200 files, 0.4 s a model call ({calls} calls); "
          f"median of {repeat}; under {cache}")
    print(f"1 agent {one:.2f} s; 8 agents {eight:.2f} s: {one / eight:.2f}x "
          f"(model time alone: {calls * 0.4:.1f} s against {chain * 0.4:.1f} s, {calls / chain:.1f}x; "
          f"gitteam's own time: {one - calls * 0.4:.2f} s against {eight - chain * 0.4:.2f} s)")
    shutil.rmtree(bench.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="setup,gate,run,parallel")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--agents", default="8,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full-64-max", type=int, default=10_000,
                        help="largest repository 64 full worktrees are made of (64 x 100,000 files fill a disk)")
    parser.add_argument("--full-max", type=int, default=100_000,
                        help="largest repository full worktrees are measured on (they take minutes there)")
    parser.add_argument("--cache", default="/tmp/gitteam-bench-cache")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    parts = args.parts.split(",")
    print(f"git {git(cache, 'version').split()[-1]}; {os.cpu_count()} cores")
    if "setup" in parts:
        setup_part(cache, sizes, [int(a) for a in args.agents.split(",")], args.full_64_max, args.full_max)
    if "gate" in parts:
        gate_part(cache, sizes, args.repeat)
    if "run" in parts:
        run_part(cache, sizes, args.repeat, args.full_max)
    if "parallel" in parts:
        parallel_part(cache, args.repeat)


if __name__ == "__main__":
    main()

"""What containment costs per command: bubblewrap and gitteam's runner against starting the same process bare.

A small repository with one linked worktree, as a run has them; each row starts `true` (or a Python that prints
one line) N times and reports the median wall time per command and the difference from the bare start, which is
the number that matters (the issue's bound: under 10 ms).

    python benchmarks/sandbox.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitteam.config import SandboxConfig
from gitteam.git import find_repository
from gitteam.sandbox import bwrap
from gitteam.sandbox.environ import safe_env
from gitteam.sandbox.process import run_command
from gitteam.sandbox.runner import Bubblewrap, from_config, make_sandbox

ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "b@example.com"}


def make_repo(root: Path) -> tuple[Path, Path]:
    env = {**os.environ, **ENV}

    def git(*args: str, cwd: Path = root) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    root.mkdir()
    git("init", "-q", "-b", "main")
    (root / "app.py").write_text("print('hello')\n")
    git("add", "-A")
    git("commit", "-qm", "initial")
    worktree = root / ".git" / "gitteam" / "worktrees" / "bench" / "a"
    worktree.parent.mkdir(parents=True)
    git("worktree", "add", "-q", "-b", "bench/a", str(worktree))
    return root, worktree


def timed(repeat: int, call: Callable[[], object]) -> float:
    call()  # warm: caches, page cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    path = bwrap.find_bwrap()
    if path is None:
        sys.exit("bubblewrap is not installed (apt-get install bubblewrap)")
    make_sandbox("bwrap")  # the one-time probe, outside the measurements
    with tempfile.TemporaryDirectory(prefix="gitteam-bench-") as tmp:
        root, worktree = make_repo(Path(tmp) / "repo")
        repo = find_repository(root)
        env = safe_env(worktree, {}, ())
        spec = bwrap.Containment(worktree=worktree, git_dir=repo.common_dir, git_config=repo.contained_config(),
                                 hidden=(repo.state_dir,))
        shared_net = bwrap.Containment(**{**{f: getattr(spec, f) for f in spec.__slots__}, "network": True})
        contained = Bubblewrap(path, bwrap.probe(path))
        runner = from_config(SandboxConfig(), repo.common_dir, repo.contained_config, hidden=(repo.state_dir,))
        networked = from_config(SandboxConfig(network="host"), repo.common_dir, repo.contained_config,
                                hidden=(repo.state_dir,))
        rows: list[tuple[str, Callable[[], object]]] = [
            ("bare: true", lambda: run_command(["true"], worktree, env, 30, 1000)),
            ("bwrap, host network: true", lambda: contained.run(["true"], shared_net, env, 30, 1000, None, None)),
            ("bwrap, all namespaces: true", lambda: contained.run(["true"], spec, env, 30, 1000, None, None)),
            ("runner (watch, config), host network: true",
             lambda: networked.run(["true"], worktree, env, 30, 1000, purpose="test")),
            ("runner (watch, config), all namespaces: true",
             lambda: runner.run(["true"], worktree, env, 30, 1000, purpose="test")),
        ]
        python = [sys.executable, "-c", "print('hi')"]
        rows += [
            ("bare: python -c print", lambda: run_command(python, worktree, env, 30, 1000)),
            ("runner, all namespaces: python -c print",
             lambda: runner.run(python, worktree, env, 30, 1000, purpose="test")),
        ]
        results = [(name, timed(args.repeat if "python" not in name else max(args.repeat // 5, 10), call))
                   for name, call in rows]
    bare = dict(results)
    print(f"bubblewrap {subprocess.run([path, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"uid {os.getuid()}, {os.cpu_count()} CPUs, median of {args.repeat} (python rows: fewer)")
    print(f"| {'command':<46} | {'ms':>7} | {'over bare':>9} |")
    print(f"|{'-' * 48}|{'-' * 9}|{'-' * 11}|")
    for name, seconds in results:
        base = bare["bare: python -c print"] if "python" in name else bare["bare: true"]
        print(f"| {name:<46} | {seconds * 1000:7.2f} | {(seconds - base) * 1000:+8.2f} |")


if __name__ == "__main__":
    if shutil.which("git") is None:
        sys.exit("git is not installed")
    main()

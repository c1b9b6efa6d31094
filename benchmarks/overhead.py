"""gitteam's overhead over the bare git operations a run needs.

8 one-file subtasks on a generated 10,000-file repository with an instant replay model: gitteam's
wall time (`gitteam run --yes`, a fresh process, as a user would run it) against a plain shell script
doing the same git work (worktree per subtask, write, commit, merge into an integration branch,
fast-forward, remove worktrees). Median of several runs; the ratio is the number that matters.

    python benchmarks/overhead.py [--files 10000] [--subtasks 8] [--repeat 5]
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
import time
from pathlib import Path

ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}

SHELL_BASELINE = r"""
set -eu
cd "$1"; n="$2"
base=$(git rev-parse HEAD)
git branch integration "$base"
for i in $(seq 1 "$n"); do
    wt=".git/bench-worktrees/t$i"
    git worktree add -q -b "bench/t$i" "$wt" "$base"
    printf 'def feature_%s():\n    return %s\n' "$i" "$i" > "$wt/src/feature_$i.py"
    git -C "$wt" add "src/feature_$i.py"
    git -C "$wt" commit -q -m "subtask t$i"
done
for i in $(seq 1 "$n"); do
    ours=$(git rev-parse integration)
    tree=$(git merge-tree --write-tree "$ours" "bench/t$i")
    merge=$(git commit-tree "$tree" -p "$ours" -p "bench/t$i" -m "merge t$i")
    git update-ref refs/heads/integration "$merge" "$ours"
done
git merge -q --ff-only integration
for i in $(seq 1 "$n"); do git worktree remove ".git/bench-worktrees/t$i"; done
"""


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def environment() -> dict[str, str]:
    return {**os.environ, **ENV_KEYS}


def generate_repository(path: Path, files: int) -> None:
    """A repository of `files` small Python files in nested directories, made with one fast-import."""
    git(path.parent, "init", "-q", "-b", "main", str(path))
    stream = ["commit refs/heads/main", "committer bench <bench@example.com> 1700000000 +0000",
              "data 7", "initial"]
    for n in range(files):
        content = f"def function_{n}(value):\n    return value + {n}\n"
        stream += [f"M 100644 inline src/pkg{n % 50}/sub{n % 7}/module_{n}.py", f"data {len(content)}", content]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream) + "\n", text=True,
                   check=True, env=environment())
    git(path, "reset", "-q", "--hard", "main")


def replay_script(subtasks: int) -> dict[str, object]:
    plan = [{"id": f"t{i}", "title": f"feature {i}", "instructions": f"Create src/feature_{i}.py.",
             "files": [f"src/feature_{i}.py"]} for i in range(1, subtasks + 1)]
    coder = {f"t{i}": [{"tool_calls": [
        {"name": "write_file", "arguments": {"path": f"src/feature_{i}.py",
                                             "content": f"def feature_{i}():\n    return {i}\n"}},
        {"name": "done", "arguments": {"summary": "done"}}]}] for i in range(1, subtasks + 1)}
    review = {"*": [{"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok", "findings": []}}]}
    return {"gitteam_replay": 1, "planner": [{"call": "submit_plan", "args": {"subtasks": plan}}],
            "coder": coder, "reviewer": review}


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment(),
                            stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--subtasks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    gitteam = [sys.executable, "-m", "gitteam"]
    with tempfile.TemporaryDirectory(prefix="gitteam-bench-") as tmp:
        root = Path(tmp)
        template = root / "template"
        generate_repository(template, args.files)
        script = root / "script.json"
        script.write_text(json.dumps(replay_script(args.subtasks)))
        shell = root / "baseline.sh"
        shell.write_text(SHELL_BASELINE)
        times: dict[str, list[float]] = {"git": [], "gitteam-1": [], "gitteam-4": []}
        for n in range(args.repeat):
            for kind in times:  # interleaved, so a slow moment of the machine hits every kind alike
                work = root / f"{kind}-{n}"
                shutil.copytree(template, work, symlinks=True)
                os.sync()
                if kind == "git":
                    times[kind].append(timed(["bash", str(shell), str(work), str(args.subtasks)], work))
                else:
                    agents = kind.split("-")[1]
                    times[kind].append(timed([*gitteam, "run", "--yes", "--model", f"replay:{script}",
                                              "--max-agents", agents, "benchmark task"], work))
                    assert len(git(work, "ls-files", "src/feature_*").split()) == args.subtasks
                shutil.rmtree(work)
        help_times = [timed([*gitteam, "--help"], root) for _ in range(5)]
    median = {kind: statistics.median(values) for kind, values in times.items()}
    print(f"repository: {args.files:,} files; {args.subtasks} one-file subtasks; median of {args.repeat} runs")
    print(f"{'measure':<40}{'seconds':>9}{'ratio':>8}")
    rows = [("plain git, sequential (shell script)", "git"), ("gitteam run --yes --max-agents 1", "gitteam-1"),
            ("gitteam run --yes --max-agents 4", "gitteam-4")]
    for label, kind in rows:
        print(f"{label:<40}{median[kind]:>9.3f}{median[kind] / median['git']:>8.2f}")
    print("ratio must be <= 2.0 (aim 1.3)")
    print(f"{'gitteam --help':<40}{statistics.median(help_times):>9.3f}   (must be < 0.3 s)")


if __name__ == "__main__":
    main()

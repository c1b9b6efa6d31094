"""What the planner's overview and a coder's map cost, against a bare `git ls-tree -r` of the same tree.

A generated Sphinx-like repository (tests/sphinxlike.py: hundreds of .rst documents, a package with an
`ext/autodoc` subpackage, test roots, themes, translations; 2,000 files by default) is written once; then, best
of --repeat, interleaved:
- `git ls-tree -r --name-only` of the commit, as a process (the least any map of the tree costs);
- the planner's overview at its default budget (6,000 tokens), for the task "fix autodoc's handling of X", and
  without a task; each with a new `Repository`, so its `git cat-file` process start is counted;
- a coder's map of `sphinx/ext/autodoc/directive.py`: cold (a new `Repository`, nothing kept of the commit) and
  warm (the same commit again in the same process: a later subtask of the same wave).

    python benchmarks/maps.py [--files 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "fix autodoc's handling of X"
OWNED = ["sphinx/ext/autodoc/directive.py"]
ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}


def best(repeat: int, runs: list[Callable[[], object]]) -> list[float]:
    """The best time of each, the runs interleaved (a load burst from elsewhere hits them all alike)."""
    times = [float("inf")] * len(runs)
    for _ in range(repeat):
        for index, run in enumerate(runs):
            start = time.perf_counter()
            run()
            times[index] = min(times[index], time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="files in the generated repository (>= 1,500)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(ENV_KEYS)
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    import sphinxlike
    from gitteam import maps
    from gitteam.git import find_repository
    from gitteam.maps import coder_map
    from gitteam.memory.recall import mentioned_paths
    from gitteam.overview import repository_overview
    from gitteam.tokens import estimate_tokens

    with tempfile.TemporaryDirectory(prefix="gitteam-bench-maps-") as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
        rev = sphinxlike.commit(root, args.files)

        def ls_tree() -> None:
            subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", rev], cwd=root, capture_output=True,
                           check=True)

        def overview(task: str) -> Callable[[], str]:
            def make() -> str:
                repo = find_repository(root)
                try:
                    return repository_overview(repo, rev, 6000, task, mentioned_paths(task))
                finally:
                    repo.close()
            return make

        def cold_map() -> str:
            maps._SNAPSHOTS.clear()  # nothing kept of the commit: the first subtask of a wave
            repo = find_repository(root)
            try:
                return coder_map(repo, rev, OWNED)
            finally:
                repo.close()

        warm_repo = find_repository(root)
        coder_map(warm_repo, rev, OWNED)

        def warm_map() -> str:
            return coder_map(warm_repo, rev, OWNED)

        sizes = {"overview, the task": estimate_tokens(overview(TASK)()),
                 "overview, no task": estimate_tokens(overview("")()), "map": estimate_tokens(cold_map())}
        bare, task, plain, cold, warm = best(args.repeat, [ls_tree, overview(TASK), overview(""), cold_map, warm_map])
        rows = [
            ("`git ls-tree -r --name-only` (a process)", bare, ""),
            (f"planner's overview, task {TASK!r}", task, f"{sizes['overview, the task']:,} tokens"),
            ("planner's overview, no task", plain, f"{sizes['overview, no task']:,} tokens"),
            (f"coder's map of {OWNED[0]}, cold", cold, f"{sizes['map']:,} tokens"),
            ("the same map, commit already read (warm)", warm, f"{sizes['map']:,} tokens"),
        ]
        warm_repo.close()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1]
    print(f"{args.files:,} files; Python {platform.python_version()}, git {git_version}, {os.cpu_count()} CPUs; "
          f"best of {args.repeat}\n")
    print("| measure | milliseconds | ratio to `ls-tree` | output |")
    print("|---|---|---|---|")
    for name, seconds, output in rows:
        print(f"| {name} | {seconds * 1000:.1f} | {seconds / bare:.1f}× | {output} |")


if __name__ == "__main__":
    main()

"""The team memory's cost as it grows: append latency and recall time at 1,000 and 10,000 entries, against the
bare git operations it is built from.

For each size, a fresh repository is filled with that many entries through gitteam itself (25 per commit, so
the objects stay loose, as they are in a repository that has not been gc'ed), then:
- append: `Blackboard.remember` one entry at a time, as an agent does (median, p95);
- the floor: the one `git fast-import` an append runs, and what plain `git notes add` costs on a ref of the same
  size (it rewrites the same tree path, but moves the ref without compare-and-swap);
- recall by tag: the first read of a clone (no cache file yet: list refs, list notes, read every blob, parse),
  a new process (the cache file holds the parsed entries), and warm (an agent's later calls in one run),
  against `git ls-tree -r` + `git cat-file --batch` of the same notes.

    python benchmarks/memory.py [--sizes 1000 10000] [--appends 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}
TAGS = ("api", "build", "ci", "db", "docs", "parser", "release", "security", "tests", "ui")
BATCH = 25


def git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True).stdout


def entry_text(n: int) -> str:
    return (f"Finding {n}: module_{n % 97} keeps its cache per request; callers in src/pkg{n % 13}/ must not "
            f"share it across threads (seen while working on ticket {n}).")


def fill(root: Path, count: int) -> None:
    from gitteam.git import find_repository
    from gitteam.memory import Blackboard, Note

    board = Blackboard(find_repository(root), run="bench", role="agent")
    for start in range(0, count, BATCH):
        notes = [Note(entry_text(n), tags=[TAGS[n % len(TAGS)]], files=[f"src/pkg{n % 13}/module_{n % 97}.py"])
                 for n in range(start, min(start + BATCH, count))]
        board.remember_many(notes, agent="filler")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(times: int, action: Callable[[int], object]) -> list[float]:
    found = []
    for n in range(times):
        start = time.perf_counter()
        action(n)
        found.append((time.perf_counter() - start) * 1000)
    return found


def bench_size(root: Path, size: int, appends: int) -> list[tuple[str, list[float]]]:
    from gitteam.git import find_repository
    from gitteam.memory import Blackboard
    from gitteam.memory.store import CACHE_FILE

    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "commit", "-q", "--allow-empty", "-m", "initial")
    fill(root, size)
    repo = find_repository(root)
    board = Blackboard(repo, run="bench", role="agent")
    ref = board.store.writer_ref
    rows: list[tuple[str, list[float]]] = []

    raw, plain = "refs/notes/bench-raw", "refs/notes/bench-plain"  # copies of the writer ref: the same size
    git(root, "update-ref", raw, ref)
    git(root, "update-ref", plain, ref)
    ours: list[float] = []
    floor: list[float] = []
    notes_add: list[float] = []
    for n in range(appends):  # interleaved, so background noise hits all three alike
        start = time.perf_counter()
        board.remember(f"appended {n} " + entry_text(n), tags=["bench"], files=["src/bench.py"])
        ours.append((time.perf_counter() - start) * 1000)

        old = git(root, "rev-parse", raw).decode().strip()
        data = f'{{"content": "raw {n} {time.time()}"}}\n'.encode()
        oid = git(root, "hash-object", "--stdin", data=data).decode().strip()
        stream = (f"commit {raw}\ncommitter b <b@example.com> 1700000000 +0000\ndata 3\nraw\nfrom {old}\n"
                  f"M 100644 inline {oid[:2]}/{oid[2:]}\ndata {len(data)}\n").encode() + data + b"\ndone\n"
        start = time.perf_counter()
        git(root, "fast-import", "--quiet", "--done", data=stream)
        floor.append((time.perf_counter() - start) * 1000)

        blob = git(root, "hash-object", "-w", "--stdin", data=f"plain {n} {time.time()}\n".encode()).decode().strip()
        start = time.perf_counter()
        git(root, "notes", f"--ref={plain}", "add", "-C", blob, blob)
        notes_add.append((time.perf_counter() - start) * 1000)
    rows.append(("append (Blackboard.remember)", ours))
    rows.append(("  git fast-import, one note (floor)", floor))
    rows.append(("  git notes add (no CAS)", notes_add))

    def cold_recall(_: int) -> None:
        assert Blackboard(find_repository(root)).recall(tags=["security"], limit=50)

    def first_recall(_: int) -> None:
        (repo.state_dir / CACHE_FILE).unlink(missing_ok=True)
        cold_recall(0)

    rows.append(("recall by tag, first read of a clone", measure(3, first_recall)))
    rows.append(("recall by tag, new process", measure(5, cold_recall)))
    board.recall(tags=["security"])
    rows.append(("recall by tag, warm", measure(20, lambda _: board.recall(tags=["security"], limit=50))))
    rows.append(("recall by words+file, warm", measure(20, lambda _: board.recall(
        "cache threads", files=["src/pkg3/module_3.py"], limit=20))))

    def bare_read(_: int) -> None:
        listing = git(root, "ls-tree", "-r", "-z", ref).split(b"\0")
        names = b"\n".join(item.split()[2] for item in listing if item) + b"\n"
        git(root, "cat-file", "--batch", data=names)

    rows.append(("  git ls-tree -r + cat-file --batch", measure(5, bare_read)))
    rows.append(("  git notes list", measure(5, lambda _: git(root, "notes", f"--ref={ref}", "list"))))
    git(root, "repack", "-a", "-d", "-q")  # as a clone has them after a fetch, or anyone after git gc
    rows.append(("recall by tag, first read, packed", measure(3, first_recall)))
    rows.append(("  git ls-tree -r + cat-file, packed", measure(5, bare_read)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--appends", type=int, default=100)
    args = parser.parse_args()
    os.environ.update(ENV_KEYS)
    results: dict[int, list[tuple[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="gitteam-memory-bench-") as tmp:
        for size in args.sizes:
            with tempfile.TemporaryDirectory(dir=tmp) as home:
                os.environ["HOME"] = home
                results[size] = bench_size(Path(home) / "repo", size, args.appends)
    print(f"git {git(Path.cwd(), '--version').decode().split()[-1]}, python {sys.version.split()[0]}; "
          f"milliseconds; {args.appends} appends per size")
    header = f"{'operation':<40}" + "".join(f"{f'{size:,} median':>14}{'p95':>8}" for size in args.sizes)
    print(header)
    print("-" * len(header))
    for index, (name, _) in enumerate(results[args.sizes[0]]):
        cells = ""
        for size in args.sizes:
            values = results[size][index][1]
            cells += f"{statistics.median(values):>14.1f}{percentile(values, 0.95):>8.1f}"
        print(f"{name:<40}{cells}")
    first, last = args.sizes[0], args.sizes[-1]
    ratio = statistics.median(results[last][0][1]) / statistics.median(results[first][0][1])
    print(f"\nappend median at {last:,} / at {first:,}: {ratio:.2f} (flat: the cost does not grow with entries)")
    print("targets: append < 50 ms, not growing; recall by tag < 300 ms at 10,000 entries")


if __name__ == "__main__":
    main()

"""The review gate's diff handling at scale: parse and chunk a generated 2,000-file, 100,000-line diff.

A repository of `--files` Python files gets one commit changing every one of them (most get new lines in
several hunks, some are added, deleted or renamed), so the diff has about `--lines` lines. Timed, best of
`--repeat`: the bare `git diff` producing it (a fresh process, as CI would run it), gitteam's
`Repository.diff`, `parse_diff` (unidiff), and `chunk_diff` under the budget. The target: parsing and
chunking together under 2 s. The table also reports the chunks and the largest one against the budget.

    python benchmarks/review.py [--files 2000] [--lines 100000] [--budget 24000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gitteam.git import find_repository
from gitteam.review.chunks import chunk_diff
from gitteam.review.diff import parse_diff

T = TypeVar("T")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
TARGET_SECONDS = 2.0


def module(n: int, functions: int) -> str:
    return "".join(f"def function_{n}_{i}(value: int) -> int:\n    return value + {i}\n\n\n" for i in range(functions))


def changed(n: int, functions: int, per_hunk: int) -> str:
    """The module with `per_hunk` new lines after every fourth function: several hunks per file."""
    parts = []
    for i in range(functions):
        parts.append(f"def function_{n}_{i}(value: int) -> int:\n    return value + {i}\n\n\n")
        if i % 4 == 0:
            parts.append("".join(f"CONSTANT_{n}_{i}_{k} = {k}  # added by the change\n" for k in range(per_hunk)))
    return "".join(parts)


def fast_import(path: Path, commits: list[tuple[str, dict[str, str | None]]]) -> None:
    """Commits on main, each a {path: content, or None to delete} map, in one `git fast-import`."""
    stream: list[str] = []
    for number, (message, files) in enumerate(commits):
        # commits to one branch in one stream follow each other: no `from` needed
        stream += ["commit refs/heads/main", f"committer bench <bench@example.com> {1700000000 + number} +0000",
                   f"data {len(message)}", message]
        for name, content in files.items():
            if content is None:
                stream.append(f"D {name}")
            else:
                data = content.encode()
                stream += [f"M 100644 inline {name}", f"data {len(data)}", content]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream) + "\n", text=True,
                   check=True, env=ENV)


def generate(path: Path, files: int, lines: int) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=ENV)
    functions = 16
    # a file's diff: 5 header lines, then 4 hunks of a header, 6 lines of context and the added lines
    per_hunk = max(1, math.ceil(((lines / files) - 5) / (functions // 4) - 7))
    before = {f"src/pkg{n % 40}/module_{n}.py": module(n, functions) for n in range(files)}
    after: dict[str, str | None] = {}
    for n in range(files):
        name = f"src/pkg{n % 40}/module_{n}.py"
        if n % 50 == 1:
            after[name] = None  # deleted
        elif n % 50 == 2:
            after[name] = None
            after[f"src/moved/module_{n}.py"] = before[name] + "# moved\n"  # renamed, with an edit
        else:
            after[name] = changed(n, functions, per_hunk)
    fast_import(path, [("base", dict(before)), ("the change", after)])


def best(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--budget", type=int, default=24_000, help="review.chunk_tokens")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitteam-bench-review-") as tmp:
        path = Path(tmp) / "repo"
        generate(path, args.files, args.lines)
        bare, text = best(args.repeat, lambda: subprocess.run(
            ["git", "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", "--full-index", "main^", "main"],
            cwd=path, check=True, capture_output=True, text=True, env=ENV).stdout)
        repo = find_repository(path)
        gateway, text = best(args.repeat, lambda: repo.diff("main^", "main"))
        parse, changes = best(args.repeat, lambda: parse_diff(text))
        chunking, chunks = best(args.repeat, lambda: chunk_diff(text, args.budget))
    diff_lines = text.count("\n")
    largest = max(chunk.tokens for chunk in chunks)
    rows = [
        ("diff", f"{len(changes):,} files, {diff_lines:,} lines, {len(text) / 1e6:.1f} MB"),
        ("bare `git diff` (process)", f"{bare:.3f} s"),
        ("Repository.diff (gateway)", f"{gateway:.3f} s"),
        ("parse_diff (unidiff)", f"{parse:.3f} s"),
        ("chunk_diff", f"{chunking:.3f} s"),
        ("parse + chunk", f"{parse + chunking:.3f} s (target < {TARGET_SECONDS:g} s; "
                          f"{(parse + chunking) / bare:.1f}x the bare git diff)"),
        ("chunks", f"{len(chunks):,} under a budget of {args.budget:,} tokens"),
        ("largest chunk", f"{largest:,} tokens ({largest / args.budget:.0%} of the budget)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    ok = parse + chunking < TARGET_SECONDS and largest <= args.budget
    print("ok" if ok else "TOO SLOW or OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Reading notes and blobs one at a time: a long-lived `git cat-file --batch-command` lent to each read (what
`Repository.read_note`, `read_blob` and `read_objects` use) against a git process per read, in the same run.

A temporary repository gets N commits (commit i adds file i, 1-3 KB) and a note on each commit (one notes commit,
at the 2/38 fanout gitteam writes), then, best of --repeat:
- notes: every commit's note read one by one, as `runs.show_agent` does: `Repository.read_note` (a new
  `Repository` each time, so its one process start is counted) against `git notes list` + `git cat-file -p` per
  note (what `read_note` used to start) and a single `git cat-file -p <notes ref>:<path>` per note (the least any
  process-per-read can do, the fanout path known in advance);
- blobs: every file at HEAD read one by one, as the coders' tools do: `Repository.read_blob` against
  `git cat-file -p HEAD:<path>` per file; and all of them in one `read_blobs` call.

    python benchmarks/git_reads.py [--count 200] [--repeat 5]
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

ENV_KEYS = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1",
}
NOTES = "refs/notes/gitteam"


def git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=True).stdout


def build(root: Path, count: int) -> tuple[list[str], list[str]]:
    """`count` commits, each adding one file, and a note on each; returns (commits, paths)."""
    from gitteam.git import find_repository

    git(root, "init", "-q", "-b", "main")
    stream = []
    paths = [f"src/module_{i:04d}.py" for i in range(count)]
    for i, path in enumerate(paths):
        body = "".join(f"def f{i}_{k}(x):\n    return x * {k} + {i}\n\n" for k in range(20 + i % 40)).encode()
        stream.append(f"commit refs/heads/main\nmark :{i + 1}\ncommitter bench <b@b> {1_700_000_000 + i} +0000\n"
                      f"data 8\ncommit {i % 10}\n".encode())
        stream.append(f"M 100644 inline {path}\ndata {len(body)}\n".encode() + body + b"\n")
    stream.append(b"done\n")
    git(root, "fast-import", "--quiet", "--done", data=b"".join(stream))
    git(root, "reset", "-q", "--hard", "main")
    commits = git(root, "rev-list", "--reverse", "main").decode().split()
    repo = find_repository(root)
    notes = {commit: f'{{"commit": "{commit}", "status": "done", "index": {i}}}'.encode()
             for i, commit in enumerate(commits)}
    assert repo.commit_notes(NOTES, None, notes, message="bench notes")
    repo.close()
    return commits, paths


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="commits (each with a note) and files")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(ENV_KEYS)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gitteam.git import find_repository

    with tempfile.TemporaryDirectory(prefix="gitteam-bench-reads-") as tmp:
        root = Path(tmp)
        commits, paths = build(root, args.count)
        expected_note = {c: git(root, "notes", f"--ref={NOTES}", "show", c).rstrip(b"\n") for c in commits[:3]}

        def batch_notes() -> None:
            repo = find_repository(root)
            for commit in commits:
                assert repo.read_note(NOTES, commit) is not None
            repo.close()

        def process_notes() -> None:  # what read_note started per note before: two processes
            for commit in commits:
                blob = git(root, "notes", f"--ref={NOTES}", "list", commit).strip().decode()
                git(root, "cat-file", "-p", blob)

        def process_notes_by_path() -> None:  # one process per note, the fanout path known in advance
            for commit in commits:
                git(root, "cat-file", "-p", f"{NOTES}:{commit[:2]}/{commit[2:]}")

        def batch_blobs() -> None:
            repo = find_repository(root)
            for path in paths:
                assert repo.read_blob("HEAD", path) is not None
            repo.close()

        def process_blobs() -> None:
            for path in paths:
                git(root, "cat-file", "-p", f"HEAD:{path}")

        def batch_blobs_at_once() -> None:
            repo = find_repository(root)
            assert len(repo.read_blobs("HEAD", paths)) == len(paths)
            repo.close()

        check = find_repository(root)  # the two ways agree before anything is timed
        for commit, text in expected_note.items():
            assert check.read_note(NOTES, commit) == text.decode()
        assert check.read_blob("HEAD", paths[7]) == git(root, "cat-file", "-p", f"HEAD:{paths[7]}")
        check.close()

        notes_batch, blobs_process = best(args.repeat, batch_notes), best(args.repeat, process_blobs)
        rows = [
            (f"{args.count} notes, one at a time", best(args.repeat, process_notes), notes_batch,
             "`git notes list` + `git cat-file -p` each (gitteam before)"),
            (f"{args.count} notes, one at a time", best(args.repeat, process_notes_by_path), notes_batch,
             "`git cat-file -p REF:ab/cdef...` each"),
            (f"{args.count} blobs, one at a time", blobs_process, best(args.repeat, batch_blobs),
             "`git cat-file -p HEAD:path` each"),
            (f"{args.count} blobs, one `read_blobs` call", blobs_process, best(args.repeat, batch_blobs_at_once),
             "`git cat-file -p HEAD:path` each"),
        ]
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.split()[-1]
    print(f"Python {platform.python_version()}, git {git_version}, {os.cpu_count()} CPUs; "
          f"best of {args.repeat}, milliseconds (the batch reader's include starting its process)\n")
    print("| reads | process per read | batch reader | ratio | process per read is |")
    print("|---|---|---|---|---|")
    for name, process, batch, what in rows:
        print(f"| {name} | {process * 1000:.1f} | {batch * 1000:.1f} | {process / batch:.0f}× | {what} |")


if __name__ == "__main__":
    main()

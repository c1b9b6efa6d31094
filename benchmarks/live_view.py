"""What watching a run costs: the journal events the live view reads, and the time to fold and draw them.

Runs `gitteam demo` (the bundled replay script: 3 subtasks, a request for changes, the integration review) in a
throwaway directory, then takes its journal: how many events of each kind a run writes (`model_called` and
`tool_started` are the live view's), what one `Journal.append` (a redacted, fsynced line) costs on this disk,
and what the view does per event (`Board.apply`) and per redraw (rendering the table to a 120-column terminal,
which rich does four times a second).

    python benchmarks/live_view.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from gitteam import terminal
from gitteam.events import ModelCalled, ToolStarted
from gitteam.git import find_repository
from gitteam.journal import Journal, list_runs
from gitteam.ui.board import Board
from gitteam.ui.live import render


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitteam-live-bench-") as tmp:
        root = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "gitteam", "demo", "--dir", str(root)], check=True,
                       capture_output=True)
        repo = find_repository(root)
        (state,) = list_runs(repo.state_dir)
        events = Journal(repo.state_dir, state.run).events()
        kinds = Counter(type(e).__name__ for e in events)
        live = kinds[ModelCalled.__name__] + kinds[ToolStarted.__name__]

        journal = Journal(Path(tmp) / "state", "bench")
        started = time.perf_counter()
        for n in range(args.repeat // 10):
            journal.append(ToolStarted(agent="a", role="coder", tool="write_file", detail=f"src/file_{n}.py"))
        append = (time.perf_counter() - started) / (args.repeat // 10)

        board = Board()
        started = time.perf_counter()
        for _ in range(args.repeat // len(events) + 1):
            for event in events:
                board.apply(event)
        apply = (time.perf_counter() - started) / ((args.repeat // len(events) + 1) * len(events))

        out = terminal.console(file=io.StringIO(), width=120, force_terminal=True)
        header, rows, now = board.snapshot()
        started = time.perf_counter()
        for _ in range(args.repeat // 10):
            out.print(render(header, rows, now, 2, 2))
        draw = (time.perf_counter() - started) / (args.repeat // 10)

    print(f"{'measure':<48} {'value':>12}")
    print(f"{'journal events of the demo run':<48} {len(events):>12}")
    print(f"{'  of them model_called + tool_started':<48} {live:>12}")
    print(f"{'Journal.append, one event (fsync)':<48} {append * 1e3:>9.3f} ms")
    print(f"{'Board.apply, one event':<48} {apply * 1e6:>9.1f} us")
    print(f"{'one redraw of the table (5 rows, 120 columns)':<48} {draw * 1e3:>9.3f} ms")


if __name__ == "__main__":
    main()

"""The test's side of the replay model's "pause" turns (gitteam.models.replay): hold a run inside a model call,
act on it (interrupt it, kill it, start another command beside it), then let it go on.

A turn with {"pause": MARKER} creates MARKER.reached when the model gets to it and answers once MARKER.go
exists. A test waits for what it controls, never for a fixed time.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

Turn = dict[str, Any]


def paused(turn: Turn, marker: Path) -> Turn:
    """The same turn, answered only once the test releases `marker`."""
    return {**turn, "pause": str(marker)}


def reached(marker: Path) -> bool:
    return marker.with_name(marker.name + ".reached").exists()


def release(*markers: Path) -> None:
    for marker in markers:
        marker.with_name(marker.name + ".go").touch()


def wait_reached(proc: subprocess.Popen[str], *markers: Path, seconds: float = 60.0) -> None:
    """Until the run is held at every marker; fails at once if the process ends before that."""
    deadline = time.monotonic() + seconds
    while not all(reached(marker) for marker in markers):
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (exit {proc.returncode}) before reaching "
                                 f"{[m.name for m in markers if not reached(m)]}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"not reached in {seconds:.0f} s: {[m.name for m in markers]}"
        time.sleep(0.01)


def interrupt(proc: subprocess.Popen[str], seconds: float = 30.0) -> None:
    """Ctrl-C: SIGINT, then wait until the process has taken it (Linux: no longer pending in /proc).

    Agents paused on worker threads are released only after this: the signal has then woken the main thread,
    which raises KeyboardInterrupt and halts the agents at its next instruction, long before a released agent
    (which first has to see MARKER.go, answer and run its tool calls) gets to its next limit check.
    """
    proc.send_signal(signal.SIGINT)
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            return  # gone, or no /proc: nothing more to wait for
        pending = int(fields.get("SigPnd", "0"), 16) | int(fields.get("ShdPnd", "0"), 16)
        if not pending & (1 << (signal.SIGINT - 1)):
            return
        time.sleep(0.001)

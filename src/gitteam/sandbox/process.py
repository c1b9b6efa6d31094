"""Starting one process and living with it: no shell, no stdin, a time limit that kills the whole process
group, and bounded output. The sandbox wraps its argv; this module knows nothing of containment.

Output is returned as the command wrote it; callers that show it to a model or store it pass it through
`gitteam.secrets.redact` first.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

EXIT_NOT_FOUND = 127
EXIT_CANNOT_RUN = 126
_READ_SIZE = 65536
_DRAIN_SECONDS = 1.0  # after the command ends, how long to wait for output from processes outside its group


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int | None  # None when timed out; negative when killed by a signal (-N)
    output: str  # stdout and stderr interleaved, capped
    timed_out: bool
    duration: float  # seconds
    truncated: bool


def run_command(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float,
                max_output: int, *, stdin: Path | None = None,
                cancel: Callable[[], bool] | None = None, pass_fds: Sequence[int] = ()) -> CommandResult:
    """Run argv in cwd without a shell. Never raises for the command's sake: a missing program is exit 127.

    `stdin`: a file the command reads as its standard input (default: none). `cancel`: polled while the
    command runs; when it returns True the command is stopped like a timeout (a run's budget ran out).
    `pass_fds`: descriptors the command inherits (bubblewrap reads data from them).
    """
    start = time.monotonic()
    if not argv:
        return CommandResult(EXIT_NOT_FOUND, "no command given", False, 0.0, False)
    try:
        with open(stdin, "rb") if stdin is not None else contextlib.nullcontext() as source:
            proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env),
                                    stdin=source if source is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                    pass_fds=tuple(pass_fds))
    except OSError as exc:
        return _not_started(argv, cwd, exc)
    capture = _Capture(max_output)
    assert proc.stdout is not None
    with proc.stdout:
        timed_out = _pump(proc, proc.stdout.fileno(), capture, start + timeout, cancel)
    duration = time.monotonic() - start
    code = proc.wait()
    output, truncated = capture.text()
    return CommandResult(None if timed_out else code, output, timed_out, duration, truncated)


def _not_started(argv: Sequence[str], cwd: Path, exc: OSError) -> CommandResult:
    if not cwd.is_dir():
        return CommandResult(EXIT_CANNOT_RUN, f"cannot run {argv[0]}: no such directory: {cwd}", False, 0.0,
                             False)
    if isinstance(exc, FileNotFoundError):
        return CommandResult(EXIT_NOT_FOUND, f"command not found: {argv[0]}", False, 0.0, False)
    return CommandResult(EXIT_CANNOT_RUN, f"cannot run {argv[0]}: {exc.strerror or exc}", False, 0.0, False)


def _pump(proc: subprocess.Popen[bytes], fd: int, capture: _Capture, deadline: float,
          cancel: Callable[[], bool] | None = None) -> bool:
    """Read output until the command ends (or the deadline or `cancel` kills it), then drain; True when it
    was killed."""
    timed_out = False
    ended_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            exited = ended_at is None and _exited(proc)
            cancelled = ended_at is None and not exited and cancel is not None and cancel()
            if ended_at is None and (exited or now >= deadline or cancelled):
                timed_out = not exited
                # the leader is still unreaped (pid and group id cannot be reused): kill what it left behind
                _kill_group(proc.pid)
                ended_at = now
            if ended_at is not None and now - ended_at > _DRAIN_SECONDS:
                return timed_out  # something outside the group holds the pipe open; stop listening
            limit = deadline - now if ended_at is None else _DRAIN_SECONDS - (now - ended_at)
            if selector.select(timeout=max(0.0, min(limit, 0.05))):
                data = os.read(fd, _READ_SIZE)
                if not data:
                    return timed_out
                capture.write(data)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, without reaping it (so its group id stays reserved)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True
    except AttributeError:  # no waitid on this platform
        return proc.poll() is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _Capture:
    """Keeps the first and last `limit` bytes of a stream of any length, and how much went by."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > 2 * self.limit:  # trim in batches, not on every write
            del self.tail[:-self.limit]

    def text(self) -> tuple[str, bool]:
        """The output as text of at most `limit` characters (marker included), and whether it was cut."""
        dropped = self.total - len(self.head) - len(self.tail)
        if dropped == 0:
            whole = (self.head + self.tail).decode("utf-8", "replace")
            if len(whole) <= self.limit:
                return whole, False
            return cut_middle(whole, self.limit, len(whole)), True
        head = self.head.decode("utf-8", "replace")
        tail = self.tail[-self.limit:].decode("utf-8", "replace")
        seen = len(head) + dropped + len(tail)
        return cut_middle(head + tail, self.limit, seen, skipped_at=len(head), skipped=dropped), True


def cut_middle(text: str, limit: int, total: int, skipped_at: int | None = None, skipped: int = 0) -> str:
    """Keep a head and a (larger) tail of `text` with a `[... N characters cut ...]` marker between them.

    `text` may already miss `skipped` characters at offset `skipped_at`; `total` counts them.
    """
    reserve = len(_marker(total))
    budget = max(limit - reserve, 0)
    keep_head = budget // 3  # the end of a command's output (errors, summaries) matters most
    keep_tail = budget - keep_head
    split = keep_head if skipped_at is None else min(keep_head, skipped_at)
    head = text[:split]
    tail = text[max(len(text) - keep_tail, split if skipped_at is None else skipped_at):]
    return f"{head}{_marker(total - len(head) - len(tail))}{tail}"


def _marker(cut: int) -> str:
    return f"\n[... {cut} characters cut ...]\n"

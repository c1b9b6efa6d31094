"""Reading `git grep -z -n` while it runs: a time limit, a cap on matches and on the length of a line kept.

A regular expression can cost exponential time on one line (`(x+x+)+y`), and a minified file can have a line
of megabytes. git grep bounds neither, so the gateway (`Repository.grep`) runs it through `stream_grep`: the
process is killed at its deadline or as soon as enough matches are read, and of each matching line only the
first `max_line` bytes are kept, whatever git writes.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_READ_SIZE = 65536
_STDERR_KEPT = 4096


@dataclass(frozen=True, slots=True)
class GrepMatch:
    path: str
    line: int
    text: str  # the line, at most `max_line` bytes of it
    cut: bool = False  # the line was longer


@dataclass(slots=True)
class GrepOutcome:
    """What one `git grep` process gave before it ended or was stopped."""

    matches: list[GrepMatch] = field(default_factory=list)
    stopped: str = ""  # "" it ended by itself; "time" killed at the deadline; "matches" killed at the cap
    returncode: int | None = None
    stderr: str = ""


class _Records:
    """`path NUL number NUL text LF` records from chunks of any size; keeps at most `max_line` bytes of a text
    and only the records whose path `keep` accepts."""

    def __init__(self, prefix: str, max_line: int, limit: int, keep: Callable[[str], bool] | None,
                 into: list[GrepMatch]) -> None:
        self.prefix = prefix  # "REV:" before each path when searching a commit
        self.max_line = max_line
        self.limit = limit
        self.keep = keep
        self.matches = into
        self.fields: list[bytes] = []
        self.current = bytearray()
        self.cut = False

    def feed(self, data: bytes) -> bool:
        """Parse `data`; True once `limit` matches are held."""
        pos = 0
        while pos < len(data):
            if len(self.fields) < 2:  # the path, then the line number: both end with NUL
                end = data.find(b"\0", pos)
                if end < 0:
                    self.current += data[pos:]
                    return False
                self.current += data[pos:end]
                self.fields.append(bytes(self.current))
                self.current.clear()
                pos = end + 1
                continue
            end = data.find(b"\n", pos)
            stop = len(data) if end < 0 else end
            room = self.max_line - len(self.current)
            self.current += data[pos:pos + max(room, 0)] if stop - pos > room else data[pos:stop]
            self.cut = self.cut or stop - pos > room
            if end < 0:
                return False
            pos = end + 1
            self._emit()
            if len(self.matches) >= self.limit:
                return True
        return False

    def _emit(self) -> None:
        raw_path, raw_number = self.fields
        path = raw_path.decode("utf-8", "replace").removeprefix(self.prefix)
        if self.keep is None or self.keep(path):
            number = int(raw_number) if raw_number.isdigit() else 0
            text = bytes(self.current).decode("utf-8", "replace")
            self.matches.append(GrepMatch(path, number, text, self.cut))
        self.fields.clear()
        self.current.clear()
        self.cut = False


def stream_grep(argv: Sequence[str], cwd: Path, env: Mapping[str, str], deadline: float, *, prefix: str,
                max_line: int, limit: int, keep: Callable[[str], bool] | None,
                into: list[GrepMatch]) -> GrepOutcome:
    """Run `argv` (a `git grep -z -n`) until it ends, `deadline` (time.monotonic()) passes or `limit` matches
    are in `into`; then kill it. Matches are appended to `into` as they are read."""
    outcome = GrepOutcome(into)
    records = _Records(prefix, max_line, limit, keep, into)
    if len(into) >= limit:
        outcome.stopped = "matches"
        return outcome
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stderr = bytearray()
    with proc.stdout, proc.stderr, selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        while selector.get_map() and not outcome.stopped:
            left = deadline - time.monotonic()
            if left <= 0:
                outcome.stopped = "time"
                break
            for key, _ in selector.select(timeout=left):
                data = os.read(key.fd, _READ_SIZE)
                if not data:
                    selector.unregister(key.fileobj)
                elif key.fileobj is proc.stderr:
                    stderr += data[:max(0, _STDERR_KEPT - len(stderr))]
                elif records.feed(data):
                    outcome.stopped = "matches"
                    break
        if outcome.stopped:
            proc.kill()  # git grep is one process (threads, no children): this ends all of it
        outcome.returncode = proc.wait()
    outcome.stderr = stderr.decode("utf-8", "replace")
    return outcome

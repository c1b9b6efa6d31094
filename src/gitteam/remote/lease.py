"""When a lease has expired, judged on this process's own monotonic clock.

Workers and owner may run on machines whose clocks disagree, so a lease's own time ("at", the holder's wall
clock) is never compared with anything. An observer remembers, per lease ref, the oid it sees and when (on its
own clock) it first saw it; the lease has expired once the same oid has stayed for more than `seconds`. Every
renewal is a new commit, so a live holder renewing well within `seconds` never looks expired.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LeaseClock:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._seen: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def observe(self, ref: str, oid: str | None) -> None:
        """`ref` is at `oid` now (None: the ref is gone); a new oid starts its own count."""
        with self._lock:
            self._note(ref, oid)

    def expired(self, ref: str, oid: str) -> bool:
        """Whether `ref` has been at `oid` unchanged for more than `seconds` (an oid not seen before starts its
        count now, so it is not expired)."""
        with self._lock:
            first = self._note(ref, oid)
            return first is not None and self._clock() - first > self.seconds

    def age(self, ref: str, oid: str) -> float | None:
        """Seconds since `ref` was first seen at `oid`; None when that is not what it was last seen at."""
        with self._lock:
            seen = self._seen.get(ref)
            return self._clock() - seen[1] if seen is not None and seen[0] == oid else None

    def _note(self, ref: str, oid: str | None) -> float | None:
        if oid is None:
            self._seen.pop(ref, None)
            return None
        seen = self._seen.get(ref)
        if seen is None or seen[0] != oid:
            self._seen[ref] = (oid, self._clock())
            return self._seen[ref][1]
        return seen[1]

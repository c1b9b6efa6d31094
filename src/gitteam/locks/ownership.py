"""The one ownership predicate: which repository paths a subtask may change.

Agent tools ask it before touching a file, the diff check asks it of every changed path, and plans and
cross-run locks use `entries_overlap` to find subtasks that must not run side by side. Protected paths
(locks/protected.py) are owned by nobody unless allowed, even below an owned directory.
"""

from __future__ import annotations

from collections.abc import Iterable

from gitteam.config import ProtectConfig
from gitteam.locks.paths import PathRefused, normalize_entry, normalize_repo_path
from gitteam.locks.protected import DEFAULT, Protection, protection_for


def entries_overlap(a: str, b: str) -> str | None:
    """The shared part of two normalized ownership entries, or None if disjoint.

    Entries ending with `/` own a whole directory. Equal entries share themselves; a directory and an
    entry below it share the more specific one (`src/` and `src/api.py` share `src/api.py`).
    """
    if a == b:
        return a
    if a.endswith("/") and b.startswith(a):
        return b
    if b.endswith("/") and a.startswith(b):
        return a
    return None


class Ownership:
    """The files and directories one subtask owns.

    An entry ending with `/` owns everything below that directory; any other entry owns exactly that
    file. Entries are normalized on the way in (PathRefused for a bad one). `protection` is the run's
    [protect] section (or a Protection); the default protects the built-in paths, so an ownership built
    without the run's settings errs on the safe side.
    """

    __slots__ = ("_dirs", "_entries", "_files", "protection")

    def __init__(self, entries: Iterable[str], protection: Protection | ProtectConfig = DEFAULT) -> None:
        self.protection = protection_for(protection) if isinstance(protection, ProtectConfig) else protection
        normalized = [normalize_entry(entry) for entry in entries]
        self._entries = tuple(dict.fromkeys(normalized))
        self._files = frozenset(entry for entry in self._entries if not entry.endswith("/"))
        self._dirs = tuple(entry for entry in self._entries if entry.endswith("/"))

    @property
    def files(self) -> tuple[str, ...]:
        """The normalized entries in the order given, duplicates dropped; directories end with `/`."""
        return self._entries

    def owns(self, path: str) -> bool:
        """True when `path` (any spelling; normalized here) is an owned file or lies below an owned directory,
        and is not a protected path that was not allowed (not even when listed: the plan check refuses
        such a plan before any coder starts, and this keeps the guard where the files are written).

        A path that cannot be normalized is owned by nobody.
        """
        try:
            normalized = normalize_repo_path(path)
        except PathRefused:
            return False
        listed = normalized in self._files or normalized.startswith(self._dirs)
        return listed and not self.protection.blocks(normalized)

    def violations(self, paths: Iterable[str]) -> list[str]:
        """The paths (as given, sorted, without duplicates) this ownership does not cover."""
        return sorted({path for path in paths if not self.owns(path)})

    def overlap(self, other: Ownership) -> list[str]:
        """Sorted shared parts of the two ownerships (see `entries_overlap`); empty when disjoint."""
        shared = {
            common
            for mine in self._entries
            for theirs in other._entries
            if (common := entries_overlap(mine, theirs)) is not None
        }
        return sorted(shared)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ownership) and set(self._entries) == set(other._entries)

    def __hash__(self) -> int:
        return hash(frozenset(self._entries))

    def __repr__(self) -> str:
        return f"Ownership({list(self._entries)!r})"

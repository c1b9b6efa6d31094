"""The one ownership predicate: which repository paths a subtask may change.

Agent tools ask it before touching a file, the diff check asks it of every changed path, and plans and
cross-run locks use `entries_overlap` to find subtasks that must not run side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

from gitteam.locks.paths import PathRefused, normalize_entry, normalize_repo_path


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
    file. Entries are normalized on the way in (PathRefused for a bad one).
    """

    __slots__ = ("_dirs", "_entries", "_files")

    def __init__(self, entries: Iterable[str]) -> None:
        normalized = [normalize_entry(entry) for entry in entries]
        self._entries = tuple(dict.fromkeys(normalized))
        self._files = frozenset(entry for entry in self._entries if not entry.endswith("/"))
        self._dirs = tuple(entry for entry in self._entries if entry.endswith("/"))

    @property
    def files(self) -> tuple[str, ...]:
        """The normalized entries in the order given, duplicates dropped; directories end with `/`."""
        return self._entries

    def owns(self, path: str) -> bool:
        """True when `path` (any spelling; normalized here) is an owned file or lies below an owned directory.

        A path that cannot be normalized is owned by nobody.
        """
        try:
            normalized = normalize_repo_path(path)
        except PathRefused:
            return False
        return normalized in self._files or normalized.startswith(self._dirs)

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

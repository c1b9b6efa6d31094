"""File ownership and locks: path resolution, the ownership predicate, cross-run claims (plans: gitteam.plan)."""

from __future__ import annotations

from gitteam.locks.ownership import Ownership, entries_overlap
from gitteam.locks.paths import PathRefused, normalize_entry, normalize_repo_path, resolve_path
from gitteam.locks.refs import LockConflict, claim_files, held_locks, release_files

__all__ = [
    "LockConflict",
    "Ownership",
    "PathRefused",
    "claim_files",
    "entries_overlap",
    "held_locks",
    "normalize_entry",
    "normalize_repo_path",
    "release_files",
    "resolve_path",
]

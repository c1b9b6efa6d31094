"""File ownership and locks: path resolution, the ownership predicate, plans, cross-run claims."""

from __future__ import annotations

from gitteam.locks.ownership import Ownership, entries_overlap
from gitteam.locks.paths import PathRefused, normalize_entry, normalize_repo_path, resolve_path
from gitteam.locks.plan import (
    Plan,
    PlanError,
    Subtask,
    parse_plan,
    ref_component_problem,
    serialize_overlaps,
    topological_order,
    waves,
)
from gitteam.locks.refs import LockConflict, claim_files, held_locks, release_files

__all__ = [
    "LockConflict",
    "Ownership",
    "PathRefused",
    "Plan",
    "PlanError",
    "Subtask",
    "claim_files",
    "entries_overlap",
    "held_locks",
    "normalize_entry",
    "normalize_repo_path",
    "parse_plan",
    "ref_component_problem",
    "release_files",
    "resolve_path",
    "serialize_overlaps",
    "topological_order",
    "waves",
]

"""Cross-run file claims: no two live subtasks in different runs own the same file.

One ref per claimed path, `refs/gitteam/locks/<sha1 of the path>`, pointing at a blob with
`{"path": ..., "run": ..., "subtask": ...}`. A claim is one `update-ref --stdin` transaction: every missing
lock is created (must be absent) or nothing is.

Directory entries (`src/`) overlap paths whose lock refs have other names, so the absence checks alone
cannot stop two runs claiming `src/` and `src/api.py` at the same moment. Every claim therefore also moves
one epoch ref by compare-and-swap from the value it read *before* reading the locks: of two concurrent
claims one loses, re-reads and sees the other's locks. git's files backend renames a transaction's refs
into place one by one, in the order given (older versions: sorted by name), so the epoch comes last both in
the transaction and by name: once a new epoch is visible, so are the locks written with it. Releasing does
not move the epoch: a stale view can only make a claim refuse.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitteam.errors import GitteamError
from gitteam.locks.ownership import entries_overlap
from gitteam.locks.paths import normalize_entry
from gitteam.names import ref_component_problem

if TYPE_CHECKING:
    from gitteam.git import Repository

LOCK_PREFIX = "refs/gitteam/locks/"
EPOCH_REF = "refs/gitteam/locks_epoch"  # "_" sorts after "/": after every lock ref
CLAIM_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class Lock:
    """One lock ref as read; path, run and subtask are None when its blob is not a gitteam lock."""

    ref: str
    oid: str
    path: str | None
    run: str | None
    subtask: str | None


@dataclass(frozen=True, slots=True)
class Conflict:
    wanted: str  # the path the claim asked for
    lock: Lock  # the lock of another run that overlaps it


class LockConflict(GitteamError):
    """Files another run holds; nothing was claimed. The message names the file, the run and the way out."""

    def __init__(self, run: str, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = list(conflicts)
        first = self.conflicts[0]
        held = first.lock
        if held.run is None:
            message = (
                f"{first.wanted} is locked by {held.ref}, which is not a gitteam lock; "
                f"delete it with `git update-ref -d {held.ref}` if nothing uses it"
            )
        else:
            via = f" through {held.path}" if held.path != first.wanted else ""
            message = (
                f"run {run} cannot claim {first.wanted}: run {held.run} (subtask {held.subtask}) "
                f"holds it{via}; wait for that run, or free it with `gitteam abort {held.run}`, or "
                f"`gitteam approve {held.run}` / `gitteam reject {held.run}` if it is pending"
            )
        if len(self.conflicts) > 1:
            message += f" (and {len(self.conflicts) - 1} more locked files)"
        super().__init__(message)


def lock_ref(path: str) -> str:
    """The lock ref of a normalized path (directories keep their trailing `/`)."""
    return LOCK_PREFIX + hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()


def _encode(path: str, run: str, subtask: str) -> bytes:
    return (json.dumps({"path": path, "run": run, "subtask": subtask}) + "\n").encode()


def _decode(ref: str, oid: str, data: bytes | None) -> Lock:
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        fields = [value.get(key) for key in ("path", "run", "subtask")]
        if all(isinstance(field, str) for field in fields):
            return Lock(ref, oid, *fields)
    return Lock(ref, oid, None, None, None)


def read_locks(repo: Repository) -> list[Lock]:
    """Every lock ref, sorted by ref name."""
    refs = repo.refs(LOCK_PREFIX)
    contents = repo.read_objects(sorted(set(refs.values())))
    return [_decode(ref, oid, contents.get(oid)) for ref, oid in sorted(refs.items())]


def held_locks(repo: Repository) -> dict[str, tuple[str, str]]:
    """Locked path -> (run, subtask), for every readable lock."""
    return {
        lock.path: (lock.run, lock.subtask)
        for lock in read_locks(repo)
        if lock.path is not None and lock.run is not None and lock.subtask is not None
    }


def claim_files(repo: Repository, run: str, owners: Mapping[str, str]) -> None:
    """Lock every path of `owners` (path -> subtask id) for `run`, all in one transaction, or none.

    Locks `run` already holds are kept (resume); one it holds for another subtask is handed over. A path
    that overlaps a lock of another run (same file, or a directory entry containing the other) raises
    LockConflict and nothing is claimed. A transaction that lost a race is retried a bounded number of times.
    """
    problem = ref_component_problem(run)
    if problem:
        raise GitteamError(f"invalid run id {run!r}: it {problem}")
    wanted = {normalize_entry(path): subtask for path, subtask in owners.items()}
    if not wanted:
        return
    for attempt in range(CLAIM_ATTEMPTS):
        epoch = repo.rev_parse(EPOCH_REF)  # before the locks: see the module docstring
        locks = read_locks(repo)
        _refuse_conflicts(run, wanted, locks)
        updates = _claim_updates(repo, run, wanted, {lock.ref: lock for lock in locks})
        if not updates:
            return
        stamp = repo.write_blob(f"gitteam lock epoch: run {run}, {uuid.uuid4().hex}\n".encode())
        if repo.update_refs([*updates, (EPOCH_REF, stamp, epoch)]):
            return
        time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # let the winner finish, then re-read
    raise GitteamError(
        f"could not claim the files of run {run}: the locks kept changing under {CLAIM_ATTEMPTS} attempts "
        f"(other runs claiming at the same time); try `gitteam resume {run}`"
    )


def _refuse_conflicts(run: str, wanted: Mapping[str, str], locks: Sequence[Lock]) -> None:
    conflicts: list[Conflict] = []
    for path in sorted(wanted):
        ref = lock_ref(path)
        for lock in locks:
            if lock.run == run:
                continue
            # The ref where our lock must go is taken (even by an unreadable blob), or a lock overlaps.
            if lock.ref == ref or (lock.path is not None and entries_overlap(path, lock.path) is not None):
                conflicts.append(Conflict(path, lock))
    if conflicts:
        raise LockConflict(run, conflicts)


def _claim_updates(
    repo: Repository, run: str, wanted: Mapping[str, str], current: Mapping[str, Lock]
) -> list[tuple[str, str | None, str | None]]:
    updates: list[tuple[str, str | None, str | None]] = []
    for path, subtask in sorted(wanted.items()):
        ref = lock_ref(path)
        held = current.get(ref)
        if held is not None and held.path == path and held.subtask == subtask:
            continue  # already ours: a resumed run claims again
        old = held.oid if held is not None else None
        updates.append((ref, repo.write_blob(_encode(path, run, subtask)), old))
    return updates


def release_files(repo: Repository, run: str) -> int:
    """Delete every lock `run` holds (compare-and-swap on each value); returns how many were deleted."""
    return sum(
        1 for lock in read_locks(repo) if lock.run == run and repo.delete_ref(lock.ref, lock.oid)
    )

"""Cross-run file claims: no two live subtasks in different runs own the same file.

One ref per claimed path, `refs/gitteam/locks/<sha1 of the path>`, pointing at a blob with
`{"path": ..., "run": ..., "subtask": ...}`. A claim is one `update-ref --stdin` transaction: every missing
lock is created (must be absent) or nothing is.

A run claims its subtasks' files right after planning, each subtask's all or none: a subtask whose files
another live run holds waits for them behind a *ticket*, `refs/gitteam/waits/<run>/<subtask>` (its paths, when
it began waiting, and its process), while the run's other subtasks go on. Tickets make the queue fair: a claim
never takes a path an older ticket of another run is waiting for, so the first to wait is the first served.

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
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gitteam.errors import GitteamError
from gitteam.journal import process_alive
from gitteam.locks.ownership import entries_overlap
from gitteam.locks.paths import normalize_entry
from gitteam.names import ref_component_problem

if TYPE_CHECKING:
    from gitteam.git import Repository

LOCK_PREFIX = "refs/gitteam/locks/"
EPOCH_REF = "refs/gitteam/locks_epoch"  # "_" sorts after "/": after every lock ref
WAIT_PREFIX = "refs/gitteam/waits/"
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
    lock: Lock  # the lock of another run that overlaps it (or, `waiting`, the older ticket that waits for it)
    waiting: bool = False


@dataclass(frozen=True, slots=True)
class Ticket:
    """A subtask waiting for files: its place in the queue (`since`) and the process that waits."""

    ref: str
    oid: str
    run: str
    subtask: str
    paths: tuple[str, ...]
    since: float
    host: str
    pid: int

    @property
    def alive(self) -> bool:
        """Its process still waits (one on another machine is taken to)."""
        return self.host != socket.gethostname() or process_alive(self.pid)


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
    return _read(repo, LOCK_PREFIX)[0]


@dataclass(frozen=True)
class Claims:
    """What a claim decides on: the epoch (read first: see the module docstring), then every lock and ticket."""

    epoch: str | None
    locks: list[Lock]
    tickets: list[Ticket]


def read_claims(repo: Repository) -> Claims:
    epoch = repo.rev_parse(EPOCH_REF)
    return Claims(epoch, *_read(repo, LOCK_PREFIX, WAIT_PREFIX))


def _read(repo: Repository, *prefixes: str) -> tuple[list[Lock], list[Ticket]]:
    """The locks and tickets under `prefixes`, in one listing of the refs and one read of their blobs."""
    refs = repo.refs(*prefixes)
    contents = repo.read_objects(sorted(set(refs.values())))
    locks = [_decode(ref, oid, contents.get(oid)) for ref, oid in sorted(refs.items()) if ref.startswith(LOCK_PREFIX)]
    tickets = [ticket for ref, oid in refs.items() if ref.startswith(WAIT_PREFIX)
               if (ticket := _ticket(ref, oid, contents.get(oid))) is not None]
    return locks, sorted(tickets, key=lambda t: (t.since, t.ref))


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
    subtasks: dict[str, list[str]] = {}
    for path, subtask in owners.items():
        subtasks.setdefault(subtask, []).append(path)
    blocked = claim_subtasks(repo, run, subtasks, every=True)
    if blocked:
        raise LockConflict(run, [conflict for conflicts in blocked.values() for conflict in conflicts])


def claim_subtasks(repo: Repository, run: str, subtasks: Mapping[str, Sequence[str]], *, every: bool = False,
                   dry_run: bool = False, seen: Claims | None = None) -> dict[str, list[Conflict]]:
    """Lock the files of each subtask of `subtasks` (id -> paths) that nothing blocks, in one transaction;
    returns the others' conflicts (nothing claimed for them). With `every`, one blocked subtask claims nothing;
    with `dry_run`, nothing is claimed at all (what a claim would meet now).

    A path is blocked by another run's lock that overlaps it, and by another run's ticket that waits for an
    overlapping path and is older than this run's own ticket for the subtask (first come, first served).
    A path two subtasks of `run` own (serialized in its plan) is locked for the one listed last, as before.
    `seen`: the claims as read just before (the first attempt decides on them; the epoch still guards it).
    """
    problem = ref_component_problem(run)
    if problem:
        raise GitteamError(f"invalid run id {run!r}: it {problem}")
    wanted = {sub: sorted({normalize_entry(path) for path in paths}) for sub, paths in subtasks.items()}
    if not any(wanted.values()):
        return {}
    for attempt in range(CLAIM_ATTEMPTS):
        claims = seen if attempt == 0 and seen is not None else read_claims(repo)
        blocked = {sub: found for sub, paths in wanted.items()
                   if (found := conflicts_of(run, sub, paths, claims.locks, claims.tickets))}
        if dry_run or (blocked and every):
            return blocked
        free = {path: sub for sub, paths in wanted.items() if sub not in blocked for path in paths}
        updates = _claim_updates(repo, run, free, {lock.ref: lock for lock in claims.locks}, claims.epoch)
        if not updates:
            return blocked
        if repo.update_refs(updates):
            return blocked
        time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # let the winner finish, then re-read
    raise GitteamError(
        f"could not claim the files of run {run}: the locks kept changing under {CLAIM_ATTEMPTS} attempts "
        f"(other runs claiming at the same time); try `gitteam resume {run}`"
    )


def conflicts_of(run: str, subtask: str, paths: Sequence[str], locks: Sequence[Lock],
                 tickets: Sequence[Ticket]) -> list[Conflict]:
    """What keeps `subtask` of `run` from locking `paths`: other runs' overlapping locks, then the older
    tickets of other runs' subtasks that wait for an overlapping path (a dead process's ticket waits no more)."""
    conflicts: list[Conflict] = []
    for path in paths:
        ref = lock_ref(path)
        for lock in locks:
            if lock.run == run:
                continue
            # The ref where our lock must go is taken (even by an unreadable blob), or a lock overlaps.
            if lock.ref == ref or (lock.path is not None and entries_overlap(path, lock.path) is not None):
                conflicts.append(Conflict(path, lock))
    mine = next((t for t in tickets if t.run == run and t.subtask == subtask), None)
    for ticket in tickets:
        if ticket.run == run or not ticket.alive or (mine is not None and ticket.since >= mine.since):
            continue
        for path in paths:
            other = next((p for p in ticket.paths if entries_overlap(path, p) is not None), None)
            if other is not None:
                conflicts.append(Conflict(path, Lock(ticket.ref, ticket.oid, other, ticket.run, ticket.subtask),
                                          waiting=True))
                break
    return conflicts


def _claim_updates(repo: Repository, run: str, wanted: Mapping[str, str], current: Mapping[str, Lock],
                   epoch: str | None) -> list[tuple[str, str | None, str | None]]:
    """The transaction that claims `wanted` (path -> subtask): each lock not already held, then the epoch moved
    from `epoch`; empty when every lock is held already."""
    refs: list[tuple[str, str | None]] = []
    contents: list[bytes] = []
    for path, subtask in sorted(wanted.items()):
        ref = lock_ref(path)
        held = current.get(ref)
        if held is not None and held.path == path and held.subtask == subtask:
            continue  # already ours: a resumed run claims again
        refs.append((ref, held.oid if held is not None else None))
        contents.append(_encode(path, run, subtask))
    if not refs:
        return []
    stamp = f"gitteam lock epoch: run {run}, {uuid.uuid4().hex}\n".encode()
    *blobs, new_epoch = repo.write_blobs([*contents, stamp])  # one git process for the run's locks and the epoch
    return [*((ref, blob, old) for (ref, old), blob in zip(refs, blobs, strict=True)), (EPOCH_REF, new_epoch, epoch)]


def release_files(repo: Repository, run: str) -> int:
    """Delete every lock `run` holds and its tickets (compare-and-swap on each value); returns how many locks
    were deleted."""
    every_lock, every_ticket = _read(repo, LOCK_PREFIX, WAIT_PREFIX)
    tickets = [ticket for ticket in every_ticket if ticket.run == run]
    locks = [lock for lock in every_lock if lock.run == run]
    held: list[tuple[str, str | None, str | None]] = [(t.ref, None, t.oid) for t in tickets]
    held += [(lock.ref, None, lock.oid) for lock in locks]
    if len(held) > 1 and repo.update_refs(held):
        return len(locks)  # one transaction; when one of them changed meanwhile, each goes on its own below
    for ticket in tickets:
        repo.delete_ref(ticket.ref, ticket.oid)
    return sum(1 for lock in locks if repo.delete_ref(lock.ref, lock.oid))


def ticket_ref(run: str, subtask: str) -> str:
    return f"{WAIT_PREFIX}{run}/{subtask}"


def post_ticket(repo: Repository, run: str, subtask: str, paths: Iterable[str]) -> Ticket:
    """Queue `subtask` of `run` for `paths`; a ticket it already has keeps its place (a resumed run waits
    where it waited), with this process as the one waiting."""
    ref = ticket_ref(run, subtask)
    old = next((t for t in read_tickets(repo) if t.ref == ref), None)
    ticket = Ticket("", "", run, subtask, tuple(sorted({normalize_entry(p) for p in paths})),
                    old.since if old is not None else time.time(), socket.gethostname(), os.getpid())
    body = {"run": run, "subtask": subtask, "paths": list(ticket.paths), "since": ticket.since, "host": ticket.host,
            "pid": ticket.pid}
    oid = repo.write_blob((json.dumps(body) + "\n").encode())
    if not repo.update_refs([(ref, oid, old.oid if old is not None else None)]):
        raise GitteamError(f"the queue entry of subtask {subtask} of run {run} changed under it; "
                           f"is another gitteam resuming {run}?")
    return replace(ticket, ref=ref, oid=oid)


def drop_ticket(repo: Repository, run: str, subtask: str) -> None:
    for ticket in read_tickets(repo):
        if ticket.run == run and ticket.subtask == subtask:
            repo.delete_ref(ticket.ref, ticket.oid)


def read_tickets(repo: Repository) -> list[Ticket]:
    """Every readable ticket, oldest first (an unreadable one is skipped: it blocks nobody)."""
    return _read(repo, WAIT_PREFIX)[1]


def _ticket(ref: str, oid: str, data: bytes | None) -> Ticket | None:
    try:
        value = json.loads(data or b"")
        return Ticket(ref, oid, str(value["run"]), str(value["subtask"]), tuple(str(p) for p in value["paths"]),
                      float(value["since"]), str(value["host"]), int(value["pid"]))
    except (ValueError, KeyError, TypeError):
        return None


def deadlocked(repo: Repository, run: str) -> list[str] | None:
    """The runs of a waiting cycle through `run` (each waits for files the next holds), when `run` is the
    youngest of them: the one to give up so the others can go on. None when there is no such cycle or
    another run of it is younger (that one gives up)."""
    locks, every_ticket = _read(repo, LOCK_PREFIX, WAIT_PREFIX)
    tickets = [t for t in every_ticket if t.alive]
    waits: dict[str, set[str]] = {}
    for ticket in tickets:
        for conflict in conflicts_of(ticket.run, ticket.subtask, ticket.paths, locks, []):
            if conflict.lock.run is not None:
                waits.setdefault(ticket.run, set()).add(conflict.lock.run)
    cycle = _cycle_through(run, waits)
    if cycle is None:
        return None
    first_wait = {t.run: t.since for t in reversed(tickets)}  # each run's oldest ticket
    youngest = max(cycle, key=lambda r: (first_wait.get(r, 0.0), r))
    return cycle if youngest == run else None


def _cycle_through(start: str, waits: Mapping[str, set[str]]) -> list[str] | None:
    path, seen = [start], {start}

    def visit(node: str) -> list[str] | None:
        for nxt in sorted(waits.get(node, ())):
            if nxt == start:
                return list(path)
            if nxt not in seen:
                seen.add(nxt)
                path.append(nxt)
                found = visit(nxt)
                if found:
                    return found
                path.pop()
        return None

    return visit(start)


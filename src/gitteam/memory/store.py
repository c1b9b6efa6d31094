"""Where the blackboard lives: one notes ref per writer (clone), read as a union.

Layout: `refs/notes/gitteam-memory/<writer>`, one ref per clone of the repository. A note's annotated
object is the entry's own blob and the note is that same blob, so `git notes --ref=gitteam-memory/<writer>
list` lists the entries and `git notes ... show ID` prints one. A tombstone is a different note on the
entry's id: it hides that entry in every ref.

Writes: `Repository.commit_notes` (one `git fast-import` per commit) moves the writer's ref by
compare-and-swap and fast-forward only; a lost race is retried. Threads of one process share a group
commit: whoever finds the ref idle writes everything queued so far in one commit, so eight agents
remembering at once cost a few commits, not a queue of retries. Processes of one clone race by CAS;
clones never share a ref, so `git fetch` of other clones' refs is always a fast-forward.

Reads: list every memory ref's notes (`git ls-tree -r`), take the entries already known from the cache
file (`<git common dir>/gitteam/memory-cache.jsonl`: entries are immutable, so a blob id is parsed once
per clone, not once per process), read the others in one `git cat-file --batch`, and resolve: an object
with a tombstone in any ref is hidden.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitteam.errors import GitteamError
from gitteam.git import Repository
from gitteam.memory.entries import Entry, Record, Tombstone, decode, from_body, object_id

PREFIX = "refs/notes/gitteam-memory/"
LEGACY_REF = "refs/notes/gitteam-memory"  # gitteam's first layout: one shared ref, now read and migrated
PARKED_LEGACY = "refs/gitteam/memory-legacy"  # the legacy ref between the two steps of its migration
WRITER_FILE = "memory-writer"
CACHE_FILE = "memory-cache.jsonl"  # parsed entries by blob id, so a new process need not read every blob
ATTEMPTS = 200
GATHER_SECONDS = 0.002  # how long a commit waits for more writers when several wrote at once


@dataclass
class Snapshot:
    """Every entry and tombstone the memory refs hold, resolved."""

    entries: dict[str, Entry] = field(default_factory=dict)  # id -> entry, hidden ones included
    tombstones: dict[str, list[Tombstone]] = field(default_factory=dict)  # hidden id -> why

    def visible(self) -> list[Entry]:
        """Entries not hidden by a tombstone, oldest first."""
        shown = [e for e in self.entries.values() if e.id not in self.tombstones]
        return sorted(shown, key=lambda e: (e.created, e.id))


def writer_id(repo: Repository) -> str:
    """This clone's writer id: random, made once, renewed if the repository was copied or moved.

    Kept in the common git dir, so linked worktrees share it; `git clone` does not copy it. A copied
    directory keeps the file but not the path recorded in it, so the copy gets its own ref.
    """
    path = repo.state_dir / WRITER_FILE
    here = str(repo.common_dir.resolve())
    try:
        recorded, _, where = path.read_text(encoding="utf-8").partition("\n")
        if where.strip() == here and recorded.isalnum():
            return recorded
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    fresh = secrets.token_hex(6)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{WRITER_FILE}.{fresh}")
    tmp.write_text(f"{fresh}\n{here}\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # first writer wins; others read its id
    except FileExistsError:
        recorded, _, where = path.read_text(encoding="utf-8").partition("\n")
        if where.strip() == here and recorded.isalnum():
            return recorded
        os.replace(tmp, path)  # a copied repository's stale file: replace it
        return fresh
    finally:
        tmp.unlink(missing_ok=True)
    return fresh


@dataclass
class _Ticket:
    notes: Mapping[str, bytes]
    done: bool = False
    error: BaseException | None = None
    result: tuple[str | None, str, dict[str, bytes]] | None = None  # (old tip, new tip, all notes committed)


class _GroupWriter:
    """One per writer ref in a process: threads' writes queue up and go in as few commits as possible."""

    def __init__(self, repo: Repository, ref: str) -> None:
        self.repo = repo
        self.ref = ref
        self.cond = threading.Condition()
        self.queue: list[_Ticket] = []
        self.busy = False
        self.tip: str | None = None
        self.tip_known = False
        self.crowded = False

    def write(self, notes: Mapping[str, bytes], message: str) -> tuple[str | None, str, dict[str, bytes]]:
        ticket = _Ticket(notes)
        with self.cond:
            self.queue.append(ticket)
            while self.busy and not ticket.done:
                self.cond.wait()
            if not ticket.done:
                self.busy = True
                if self.crowded:  # the last commit carried several writers: let this round's others join in
                    self.cond.wait(GATHER_SECONDS)
                batch, self.queue = self.queue, []
                self.crowded = len(batch) > 1
        if not ticket.done:
            try:
                result = self._commit(batch, message if len(batch) == 1 else f"memory: {len(batch)} writes")
                for t in batch:
                    t.result = result
            except BaseException as exc:  # every waiter of the batch gets the failure
                for t in batch:
                    t.error = exc
            finally:
                with self.cond:
                    for t in batch:
                        t.done = True
                    self.busy = False
                    self.cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def _commit(self, batch: Sequence[_Ticket], message: str) -> tuple[str | None, str, dict[str, bytes]]:
        notes: dict[str, bytes] = {}
        for t in batch:
            notes.update(t.notes)
        for attempt in range(ATTEMPTS):
            if not self.tip_known:
                self.tip, self.tip_known = self.repo.rev_parse(self.ref), True
            old = self.tip
            new = self.repo.commit_notes(self.ref, old, notes, message=message)
            if new is not None:
                self.tip = new
                return old, new, notes
            self.tip_known = False  # another process wrote first: read the ref again
            time.sleep(random.uniform(0, 0.003 * min(attempt + 1, 20)))  # jitter breaks lockstep retries
        raise GitteamError(f"could not write to {self.ref}: too many concurrent writers; retry")


_WRITERS: dict[tuple[Path, str], _GroupWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _group_writer(repo: Repository, ref: str) -> _GroupWriter:
    key = (repo.common_dir, ref)
    with _WRITERS_LOCK:
        if key not in _WRITERS:
            _WRITERS[key] = _GroupWriter(repo, ref)
        return _WRITERS[key]


class Store:
    """The memory refs of one repository: cached reads, group-committed writes. Thread-safe."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._lock = threading.Lock()
        self._listed: dict[str, tuple[str, dict[str, str]]] = {}  # ref -> (tip, annotated object -> note blob)
        self._records: dict[str, Record | None] = {}  # blob id -> what it holds (immutable, so never stale)
        self._snapshot: tuple[tuple[tuple[str, str], ...], Snapshot] | None = None
        self._algorithm: str | None = None
        self._writer: str | None = None
        self._migrated = False
        self._cache_loaded = False

    @property
    def algorithm(self) -> str:
        if self._algorithm is None:
            self._algorithm = self.repo.object_format()
        return self._algorithm

    @property
    def writer_ref(self) -> str:
        if self._writer is None:
            self._writer = PREFIX + writer_id(self.repo)
        return self._writer

    def refs(self) -> dict[str, str]:
        """Every memory ref (this clone's, other clones', a legacy one) and its tip."""
        return {ref: tip for ref, tip in self.repo.refs(LEGACY_REF).items()
                if ref == LEGACY_REF or ref.startswith(PREFIX)}

    def snapshot(self) -> Snapshot:
        tips = self.refs()
        key = tuple(sorted(tips.items()))
        with self._lock:
            if self._snapshot is not None and self._snapshot[0] == key:
                return self._snapshot[1]
            for ref in set(self._listed) - set(tips):
                del self._listed[ref]
            for ref, tip in tips.items():
                if self._listed.get(ref, ("", {}))[0] != tip:
                    self._listed[ref] = (tip, {obj: blob for blob, obj in self.repo.note_pairs(tip)})
            unseen = {blob for _, notes in self._listed.values() for blob in notes.values()} - set(self._records)
            self._read(unseen)
            snapshot = self._resolve()
            # entries hidden where they were written (compacted in this ref) stay readable from its history
            self._read(set(snapshot.tombstones) - set(snapshot.entries) - set(self._records))
            for target in set(snapshot.tombstones) - set(snapshot.entries):
                record = self._records.get(target)
                if isinstance(record, Entry):
                    snapshot.entries[target] = record
            self._snapshot = (key, snapshot)
            return snapshot

    def _read(self, blobs: set[str]) -> None:
        """Entries by blob id: from the cache file first (one read, one parse), then from git."""
        if not self._cache_loaded:
            self._cache_loaded = True
            self._records.update(_load_cache(self.repo.state_dir / CACHE_FILE))
            blobs = blobs - set(self._records)
        if not blobs:
            return
        fresh = {}
        for blob, data in self.repo.read_objects(sorted(blobs)).items():
            fresh[blob] = self._records[blob] = decode(blob, data)  # a blob this clone lacks: asked again next time
        self._save(fresh)

    def _save(self, records: Mapping[str, Record | None]) -> None:
        """Append records to the cache file: one write with O_APPEND, so concurrent processes never mix lines
        (a torn last line, after a crash, is skipped when read)."""
        lines = "".join(json.dumps({"id": oid, "body": record.body()}, ensure_ascii=False, sort_keys=True) + "\n"
                        for oid, record in records.items() if record is not None)
        if not lines:
            return
        path = self.repo.state_dir / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)

    def _resolve(self) -> Snapshot:
        snapshot = Snapshot()
        for _, notes in self._listed.values():
            for obj, blob in notes.items():
                record = self._records.get(blob)
                if isinstance(record, Entry) and blob == obj:
                    snapshot.entries[obj] = record
                elif isinstance(record, Tombstone) and record.target == obj:
                    known = snapshot.tombstones.setdefault(obj, [])
                    if record not in known:
                        known.append(record)
        return snapshot

    def write(self, records: Mapping[str, bytes], tombstones: Mapping[str, bytes] | None = None,
              message: str = "memory") -> None:
        """Add entries (id -> JSON) and tombstones (hidden id -> tombstone JSON) in one commit of this clone's ref.

        Entries are notes on themselves; a tombstone is the note on the id it hides.
        """
        tombstones = tombstones or {}
        if not self._migrated:
            self.migrate_legacy()
            self._migrated = True
        notes = {**records, **tombstones}
        old, new, committed = _group_writer(self.repo, self.writer_ref).write(notes, message)
        with self._lock:
            written = {}
            for data in [*records.values(), *tombstones.values()]:
                blob = self.object_id(data)
                written[blob] = self._records[blob] = decode(blob, data)
            self._save(written)
            cached = self._listed.get(self.writer_ref)
            if (cached[0] if cached else None) == old:  # the cache saw the commit's parent: extend it
                listing = dict(cached[1]) if cached else {}
                listing.update({obj: self.object_id(data) for obj, data in committed.items()})
                self._listed[self.writer_ref] = (new, listing)

    def object_id(self, data: bytes) -> str:
        return object_id(data, self.algorithm)

    def merge_ref(self, ref: str, theirs: str, message: str) -> str:
        """Bring `theirs` (a fetched copy of `ref`) into `ref`: create, fast-forward, or commit the union.

        Returns what happened: "new", "updated", "up to date" or "merged".
        """
        for attempt in range(ATTEMPTS):
            ours = self.repo.rev_parse(ref)
            if ours == theirs or (ours is not None and self.repo.is_ancestor(theirs, ours)):
                return "up to date"
            if ours is None or self.repo.is_ancestor(ours, theirs):
                if self.repo.update_ref(ref, theirs, ours):
                    return "new" if ours is None else "updated"
            else:
                changes = self._union_changes(ours, theirs)
                if self.repo.commit_notes(ref, ours, changes, message=message, merge=[theirs]) is not None:
                    return "merged"
            time.sleep(random.uniform(0, 0.003 * min(attempt + 1, 20)))
        raise GitteamError(f"could not merge into {ref}: it keeps moving; retry")

    def _union_changes(self, ours: str, theirs: str) -> dict[str, bytes]:
        """Notes of `theirs` that `ours` lacks, or that win over ours: a tombstone beats an entry."""
        mine = {obj: blob for blob, obj in self.repo.note_pairs(ours)}
        other = {obj: blob for blob, obj in self.repo.note_pairs(theirs)}
        wanted = {obj: blob for obj, blob in other.items() if mine.get(obj) != blob}
        data = self.repo.read_objects(sorted(set(wanted.values()) | {mine[o] for o in wanted if o in mine}))
        changes = {}
        for obj, blob in wanted.items():
            if obj not in mine or _rank(obj, blob, data) > _rank(obj, mine[obj], data):
                changes[obj] = data[blob]
        return changes

    def migrate_legacy(self) -> None:
        """Move gitteam's first layout (one ref at refs/notes/gitteam-memory) to a writer ref of its own.

        A ref cannot be both a file and a directory, and git cannot swap one for the other in a single
        transaction, so the legacy ref is parked under refs/gitteam/ first. Both steps are compare-and-swap,
        and a migration stopped halfway is finished by the next write.
        """
        legacy = self.refs().get(LEGACY_REF)
        if legacy is not None:
            self.repo.update_refs([(PARKED_LEGACY, legacy, None), (LEGACY_REF, None, legacy)])
        parked = self.repo.refs(PARKED_LEGACY).get(PARKED_LEGACY)
        if parked is not None:
            self.repo.update_refs([(f"{PREFIX}legacy-{parked[:12]}", parked, None), (PARKED_LEGACY, None, parked)])


def _load_cache(path: Path) -> dict[str, Record | None]:
    """The records the cache file holds; entries are immutable, so a cached one is never stale."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    lines = [line for line in text.split("\n") if line]
    try:
        items = json.loads("[" + ",".join(lines) + "]")  # one parse for the whole file
    except json.JSONDecodeError:  # a torn line: parse line by line and skip it
        items = []
        for line in lines:
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    found: dict[str, Record | None] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            record = from_body(item["id"], item.get("body"))
            if record is not None:
                found[item["id"]] = record
    return found


def _rank(obj: str, blob: str, data: Mapping[str, bytes]) -> tuple[int, str]:
    """Which of two notes on one object a union keeps: a tombstone, then an entry, then anything; ties by id."""
    record = decode(blob, data[blob]) if blob in data else None
    kind = 2 if isinstance(record, Tombstone) else 1 if blob == obj else 0
    return kind, blob

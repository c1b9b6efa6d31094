"""The blackboard: remember, recall, look up, forget and compact entries of the team's memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gitteam.errors import UsageError
from gitteam.git import Repository
from gitteam.memory import recall as ranking
from gitteam.memory.entries import (
    BACKLOG,
    SUMMARY,
    Entry,
    Tombstone,
    decode,
    encode,
    new_entry_body,
    normalize_tags,
    now,
)
from gitteam.memory.store import Snapshot, Store

COMPACT_GROUP = 40  # entries per summary at most
COMPACT_CHARS = 8000  # characters of content per summary at most


@dataclass(frozen=True, slots=True)
class Note:
    """One thing to remember, for `remember_many`."""

    content: str
    tags: Sequence[str] = ()
    files: Sequence[str] = ()
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """An entry looked up by id, and the tombstones that hide it (empty when it is visible)."""

    entry: Entry
    hidden_by: tuple[Tombstone, ...]


@dataclass(frozen=True, slots=True)
class Compaction:
    summaries: tuple[Entry, ...]
    compacted: tuple[Entry, ...]


class Blackboard:
    """One run's (or the CLI's) handle on the shared memory; thread-safe, shared by a run's agents."""

    def __init__(self, repo: Repository, run: str = "", role: str = "user") -> None:
        self.repo = repo
        self.run = run
        self.role = role
        self.store = Store(repo)

    # -- reading ------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    def entries(self, *, hidden: bool = False) -> list[Entry]:
        """Visible entries, oldest first; `hidden=True` adds the compacted and closed ones."""
        snapshot = self.store.snapshot()
        if not hidden:
            return snapshot.visible()
        return sorted(snapshot.entries.values(), key=lambda e: (e.created, e.id))

    def recall(self, query: str = "", *, tags: Sequence[str] = (), files: Sequence[str] = (), limit: int = 20,
               run: str | None = None) -> list[Entry]:
        """Entries ranked by shared tags, then files, then query words; newest first among equals."""
        pool = [e for e in self.entries() if run is None or e.run == run]
        return ranking.rank(pool, query, tags=tags, files=files, limit=limit)

    def digest(self, query: str = "", *, files: Sequence[str] = (), tags: Sequence[str] = (),
               budget_tokens: int = ranking.CODER_TOKENS) -> str:
        """The most relevant entries as prompt lines, within a token budget ("" when nothing matches)."""
        return ranking.digest(self.recall(query, tags=tags, files=files, limit=60), budget_tokens)

    def get(self, prefix: str) -> Found:
        """The entry whose id starts with `prefix` (4+ hex digits), hidden or not."""
        wanted = prefix.strip().lower()
        if len(wanted) < 4 or any(c not in "0123456789abcdef" for c in wanted):
            raise UsageError(f"{prefix!r} is not an entry id: give 4 or more hex digits (gitteam memory list)")
        snapshot = self.store.snapshot()
        matches = [e for i, e in snapshot.entries.items() if i.startswith(wanted)]
        if not matches:
            raise UsageError(f"no memory entry {prefix} (gitteam memory list shows the entries)")
        if len(matches) > 1:
            raise UsageError(f"{prefix} names {len(matches)} entries ({', '.join(e.id[:12] for e in matches[:5])}):"
                             " give more digits")
        entry = matches[0]
        return Found(entry, tuple(snapshot.tombstones.get(entry.id, ())))

    # -- writing ------------------------------------------------------------------------------------------

    def remember(self, content: str, *, tags: Sequence[str] = (), files: Sequence[str] = (), agent: str = "",
                 role: str = "", meta: Mapping[str, Any] | None = None) -> Entry:
        """Append one entry (redacted) to this clone's memory ref."""
        return self.remember_many([Note(content, tags, files, meta)], agent=agent, role=role)[0]

    def remember_many(self, notes: Sequence[Note], *, agent: str = "", role: str = "") -> list[Entry]:
        """Append several entries in one commit; all or none."""
        records: dict[str, bytes] = {}
        made = []
        for note in notes:
            if not note.content.strip():
                raise UsageError("nothing to remember: the content is empty")
            body = new_entry_body(note.content, run=self.run, agent=agent, role=role or self.role, tags=note.tags,
                                  files=note.files, meta=note.meta)
            data = encode(body)
            entry_id = self.store.object_id(data)
            records[entry_id] = data
            made.append(entry_id)
        if not records:
            return []
        entries = [decoded(entry_id, records[entry_id]) for entry_id in made]
        first = entries[0].content.splitlines()[0][:72]
        self.store.write(records, message=f"remember: {first}" if len(entries) == 1
                         else f"remember {len(entries)} entries")
        return entries

    def forget(self, ids: Sequence[str], *, reason: str, agent: str = "", by: Sequence[str] = ()) -> list[Tombstone]:
        """Hide entries everywhere, for good: a tombstone per entry, which travels with the memory refs."""
        tombstones: dict[str, bytes] = {}
        made = []
        for entry_id in ids:
            created = now()
            data = encode({"tombstone": entry_id, "by": list(by), "reason": reason, "agent": agent, "created": created})
            tombstones[entry_id] = data
            made.append(Tombstone(self.store.object_id(data), entry_id, tuple(by), reason, agent, created))
        if tombstones:
            self.store.write({}, tombstones, message=f"forget {len(tombstones)} entries: {reason}")
        return made

    def compact(self, *, older_than: timedelta, tags: Sequence[str] = (), run: str | None = None,
                dry_run: bool = False) -> Compaction:
        """Summarize visible entries older than `older_than` into fewer ones and hide the originals.

        Entries with the same tags are summarized together (at most COMPACT_GROUP per summary); backlog
        items and earlier summaries are left alone. Each original gets a tombstone pointing at its summary,
        so a clone that still has it hides it too; the ref's history keeps it. Deterministic: a summary's
        id depends only on what it summarizes, so two clones compacting the same entries agree.
        """
        cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="milliseconds")
        wanted = set(normalize_tags(tags))
        groups: dict[tuple[str, ...], list[Entry]] = {}
        for entry in self.entries():
            if entry.created >= cutoff or BACKLOG in entry.tags or SUMMARY in entry.tags:
                continue
            if (wanted and not wanted & set(entry.tags)) or (run is not None and entry.run != run):
                continue
            groups.setdefault(entry.tags, []).append(entry)
        records: dict[str, bytes] = {}
        tombstones: dict[str, bytes] = {}
        summaries, compacted = [], []
        for group_tags, group in sorted(groups.items()):
            for chunk in _chunks(group):
                if len(chunk) < 2:
                    continue  # nothing to gain
                data = encode(_summary_body(group_tags, chunk))
                summary_id = self.store.object_id(data)
                records[summary_id] = data
                summaries.append(decoded(summary_id, data))
                for entry in chunk:
                    tombstones[entry.id] = encode({"tombstone": entry.id, "by": [summary_id], "reason": "compact",
                                                   "agent": "compact", "created": chunk[-1].created})
                    compacted.append(entry)
        if records and not dry_run:
            self.store.write(records, tombstones, message=f"compact {len(compacted)} entries into {len(records)}")
        return Compaction(tuple(summaries), tuple(compacted))


def decoded(entry_id: str, data: bytes) -> Entry:
    record = decode(entry_id, data)
    assert isinstance(record, Entry)
    return record


def _chunks(group: list[Entry]) -> list[list[Entry]]:
    chunks: list[list[Entry]] = [[]]
    size = 0
    for entry in group:
        if chunks[-1] and (len(chunks[-1]) >= COMPACT_GROUP or size + len(entry.content) > COMPACT_CHARS):
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += len(entry.content)
    return chunks


def _summary_body(tags: tuple[str, ...], chunk: list[Entry]) -> dict[str, Any]:
    seen: set[str] = set()
    lines = []
    for entry in chunk:
        text = " ".join(entry.content.split())
        if text.lower() not in seen:
            seen.add(text.lower())
            lines.append(f"- {text}")
    first, last = chunk[0].created[:10], chunk[-1].created[:10]
    span = first if first == last else f"{first} to {last}"
    return {
        "run": "",
        "agent": "compact",
        "role": "compact",
        "content": f"Summary of {len(chunk)} entries ({span}):\n" + "\n".join(lines),
        "tags": sorted({*tags, SUMMARY}),
        "files": sorted({f for entry in chunk for f in entry.files}),
        "created": chunk[-1].created,  # no clock: the same entries give the same summary anywhere
        "meta": {"compacts": [entry.id for entry in chunk]},
    }

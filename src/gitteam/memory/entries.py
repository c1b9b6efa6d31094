"""What the blackboard holds: entries and tombstones, their JSON form, and their content-addressed ids.

An entry's id is the git blob id of its JSON (computed here, so it is known before git writes anything):
the same entry has the same id on every machine, which is what makes a union of two clones' memories
free of duplicates. A tombstone is a note that hides an entry (compaction, a closed backlog item); it is
content-addressed the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gitteam.secrets import redact

BACKLOG = "backlog"
SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    run: str
    agent: str
    role: str
    content: str
    tags: tuple[str, ...]
    files: tuple[str, ...]
    created: str
    # kind-specific details, e.g. a backlog item's line, severity and suggestion; absent from plain entries
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "run": self.run,
            "agent": self.agent,
            "role": self.role,
            "content": self.content,
            "tags": list(self.tags),
            "files": list(self.files),
            "created": self.created,
        }
        if self.meta:
            data["meta"] = dict(self.meta)
        return data

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.body()}


@dataclass(frozen=True, slots=True)
class Tombstone:
    id: str
    target: str  # the entry it hides
    by: tuple[str, ...]  # entries that replace it (a compaction's summary), if any
    reason: str
    agent: str
    created: str

    def body(self) -> dict[str, Any]:
        return {"tombstone": self.target, "by": list(self.by), "reason": self.reason, "agent": self.agent,
                "created": self.created}


Record = Entry | Tombstone


def now() -> str:
    """UTC, to the millisecond: entries added one after another still sort in order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def encode(body: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys), one line and a newline, as `git notes show` prints it."""
    return (json.dumps(body, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def object_id(data: bytes, algorithm: str) -> str:
    """The id git gives a blob holding `data` (`git hash-object`), for sha1 and sha256 repositories."""
    digest = hashlib.new(algorithm)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def normalize_tags(tags: Sequence[str]) -> list[str]:
    return sorted({t.strip().lower() for t in tags if t.strip()})


def new_entry_body(content: str, *, run: str, agent: str, role: str, tags: Sequence[str], files: Sequence[str],
                   meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A new entry's JSON body with every string redacted: nothing secret-shaped reaches git."""
    body: dict[str, Any] = {
        "run": run,
        "agent": redact(agent),
        "role": role,
        "content": redact(content.strip()),
        "tags": [redact(t) for t in normalize_tags(tags)],
        "files": sorted({redact(f) for f in files if f}),
        "created": now(),
    }
    if meta:
        body["meta"] = {key: redact(value) if isinstance(value, str) else value for key, value in meta.items()}
    return body


def decode(oid: str, data: bytes) -> Record | None:
    """The entry or tombstone stored in blob `oid`; None for a note that is not gitteam's."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return from_body(oid, raw)


def from_body(oid: str, raw: object) -> Record | None:
    """An entry or tombstone from its parsed JSON (as `body()` gives it); None for anything else."""
    if not isinstance(raw, dict):
        return None
    if "tombstone" in raw:
        return Tombstone(id=oid, target=str(raw["tombstone"]), by=tuple(str(b) for b in raw.get("by") or []),
                         reason=str(raw.get("reason", "")), agent=str(raw.get("agent", "")),
                         created=str(raw.get("created", "")))
    if "content" not in raw:
        return None
    meta = raw.get("meta")
    return Entry(
        id=oid,
        run=str(raw.get("run", "")),
        agent=str(raw.get("agent", "")),
        role=str(raw.get("role", "")),
        content=str(raw.get("content", "")),
        tags=tuple(str(t) for t in raw.get("tags") or []),
        files=tuple(str(f) for f in raw.get("files") or []),
        created=str(raw.get("created", "")),
        meta=dict(meta) if isinstance(meta, dict) else {},
    )

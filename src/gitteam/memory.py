"""The team's shared memory: an append-only, tagged blackboard kept in git notes.

Each entry is a JSON blob in the object database; the notes ref `refs/notes/gitteam-memory` attaches
the entry's JSON to that blob, so `git notes --ref=gitteam-memory list` shows every entry, the id is the
blob's hash (the same on every machine), and `git push origin 'refs/notes/*'` shares it. Writes go
through the gateway's compare-and-swap note update, so concurrent writers never lose an entry.
Secrets are redacted before anything is written.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gitteam.errors import UsageError
from gitteam.git import Repository
from gitteam.secrets import redact

MEMORY_REF = "refs/notes/gitteam-memory"
WORD = re.compile(r"[A-Za-z0-9_]{3,}")


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

    def body(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "agent": self.agent,
            "role": self.role,
            "content": self.content,
            "tags": list(self.tags),
            "files": list(self.files),
            "created": self.created,
        }


def _entry(entry_id: str, data: dict[str, Any]) -> Entry:
    return Entry(
        id=entry_id,
        run=str(data.get("run", "")),
        agent=str(data.get("agent", "")),
        role=str(data.get("role", "")),
        content=str(data.get("content", "")),
        tags=tuple(str(t) for t in data.get("tags", [])),
        files=tuple(str(f) for f in data.get("files", [])),
        created=str(data.get("created", "")),
    )


class Blackboard:
    """One run's (or the CLI's) handle on the shared memory."""

    def __init__(self, repo: Repository, run: str = "", role: str = "user") -> None:
        self.repo = repo
        self.run = run
        self.role = role
        self._lock = threading.Lock()
        self._cache: list[Entry] | None = None

    def entries(self) -> list[Entry]:
        with self._lock:
            if self._cache is None:
                loaded = []
                for obj, text in self.repo.notes(MEMORY_REF).items():
                    try:
                        loaded.append(_entry(obj, json.loads(text)))
                    except (json.JSONDecodeError, AttributeError):
                        continue  # a hand-written note that is not ours: ignore it
                self._cache = sorted(loaded, key=lambda e: (e.created, e.id))
            return list(self._cache)

    def remember(
        self, content: str, *, tags: Sequence[str] = (), files: Sequence[str] = (), agent: str = "", role: str = ""
    ) -> Entry:
        if not content.strip():
            raise UsageError("nothing to remember: the content is empty")
        body = {
            "run": self.run,
            "agent": agent,
            "role": role or self.role,
            "content": redact(content.strip()),
            "tags": sorted({t.strip().lower() for t in tags if t.strip()}),
            "files": sorted(set(files)),
            # milliseconds: entries added one after another in the same second still list in order
            "created": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        text = json.dumps(body, sort_keys=True, ensure_ascii=False)
        entry_id = self.repo.write_blob(text.encode("utf-8"))
        self.repo.set_note(MEMORY_REF, entry_id, text)
        entry = _entry(entry_id, body)
        with self._lock:
            if self._cache is not None:
                self._cache.append(entry)
        return entry

    def recall(
        self, query: str = "", *, tags: Sequence[str] = (), files: Sequence[str] = (), limit: int = 20
    ) -> list[Entry]:
        """Entries ranked by shared tags, then files, then query words; newest first among equals."""
        wanted_tags = {t.lower() for t in tags}
        wanted_words = {w.lower() for w in WORD.findall(query)}
        wanted_files = set(files)
        scored = []
        for entry in self.entries():
            tag_hits = len(wanted_tags & set(entry.tags))
            if wanted_tags and not tag_hits:
                continue
            file_hits = len(wanted_files & set(entry.files))
            word_hits = len(wanted_words & {w.lower() for w in WORD.findall(entry.content)})
            if wanted_words and not word_hits and not file_hits:
                continue
            scored.append(((tag_hits, file_hits, word_hits, entry.created), entry))
        scored.sort(key=lambda item: item[0], reverse=True)
        return [entry for _, entry in scored[:limit]]

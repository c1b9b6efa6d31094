"""The backlog: review findings an approved subtask left unfixed (minor, info), kept as memory entries.

The orchestrator records them after merging an approved subtask, from the verdict that approved it;
`gitteam backlog` lists the open ones, `gitteam run --from-backlog ID...` turns them into a task, and a
merged run closes them (a tombstone, so they stay closed in every clone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitteam.errors import UsageError
from gitteam.memory.board import Blackboard, Note
from gitteam.memory.entries import BACKLOG, Entry

KEPT_SEVERITIES = ("minor", "info")


def record_findings(board: Blackboard, agent: str, verdict: Mapping[str, Any], commit: str) -> list[Entry]:
    """One backlog entry per minor or info finding of an approved verdict (as `Verdict.to_json` wrote it)."""
    notes = []
    for finding in verdict.get("findings") or []:
        severity = str(finding.get("severity", ""))
        message = str(finding.get("message") or "").strip()
        if severity not in KEPT_SEVERITIES or not message:
            continue
        suggestion = str(finding.get("suggestion") or "").strip()
        meta = {"severity": severity, "line": finding.get("line"), "suggestion": suggestion or None,
                "source": finding.get("source"), "commit": commit, "subtask": agent}
        content = message + (f"\nSuggestion: {suggestion}" if suggestion else "")
        path = str(finding.get("file") or "")
        notes.append(Note(content, tags=[BACKLOG, severity], files=[path] if path else [],
                          meta={k: v for k, v in meta.items() if v is not None}))
    return board.remember_many(notes, agent=agent, role="reviewer")



def open_items(board: Blackboard, run: str | None = None) -> list[Entry]:
    return [e for e in board.entries() if BACKLOG in e.tags and (run is None or e.run == run)]


def resolve(board: Blackboard, ids: Sequence[str]) -> list[Entry]:
    """The open backlog items named by (prefixes of) ids."""
    items = []
    for prefix in ids:
        found = board.get(prefix)
        if BACKLOG not in found.entry.tags:
            raise UsageError(f"{prefix} is a memory entry, not a backlog item (gitteam backlog lists them)")
        if found.hidden_by:
            raise UsageError(f"backlog item {prefix} is closed ({found.hidden_by[0].reason})")
        if found.entry not in items:
            items.append(found.entry)
    return items


def split_arguments(board: Blackboard, ids: Sequence[str], task: str | None) -> tuple[list[str], str]:
    """`run --from-backlog A B`: B arrives as the TASK; a task made only of backlog ids is more ids."""
    words = (task or "").split()
    if words and all(_is_item(board, word) for word in words):
        return [*ids, *words], ""
    return [i for raw in ids for i in raw.replace(",", " ").split()], task or ""


def _is_item(board: Blackboard, word: str) -> bool:
    try:
        return BACKLOG in board.get(word).entry.tags
    except UsageError:
        return False


def task_text(items: Sequence[Entry], task: str = "") -> str:
    """The task a run gets for backlog items: each finding with its place and suggestion, verbatim."""
    lines = []
    for item in items:
        line = item.meta.get("line")
        where = ", ".join(item.files) + (f":{line}" if line and len(item.files) == 1 else "")
        severity = item.meta.get("severity", "")
        lines.append(f"- [{item.id[:10]}] {where or '(whole change)'} ({severity}): {' '.join(item.content.split())}")
    intro = "Address these review findings left open by earlier runs (gitteam backlog):"
    return (f"{task.strip()}\n\n" if task.strip() else "") + intro + "\n" + "\n".join(lines)


def close(board: Blackboard, items: Sequence[Entry], reason: str) -> None:
    board.forget([item.id for item in items], reason=reason, agent="gitteam")

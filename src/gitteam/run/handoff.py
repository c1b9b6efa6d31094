"""What a merged subtask hands the subtasks that wait for it: a structured summary read from git.

A dependent's coder starts from the merged code, so what it needs first is where to look and what to call:
the interfaces its dependency declared, their signatures as merged (which may differ from the plan's), the
files it changed, and its coder's own summary. Everything here is read from the commits, never from memory,
so a resumed run hands over exactly what a fresh one would.
"""

from __future__ import annotations

import re

from gitteam.git import Repository
from gitteam.outline import signatures
from gitteam.plan import Handoff, Subtask, interface_key


def handoff(repo: Repository, subtask: Subtask, base: str, head: str, summary: str) -> Handoff:
    """`subtask`'s handoff, its work being base..head (its worktree's start and its approved commit)."""
    files = tuple(repo.changed_paths(base, head)) if base and head and base != head else ()
    return Handoff(subtask.id, subtask.title, subtask.provides, merged_interfaces(repo, head, subtask.provides),
                   files, summary)


def merged_interfaces(repo: Repository, head: str, provides: tuple[str, ...]) -> tuple[str, ...]:
    """The signature line of each provided name in the file at `head`, as `path: signature`."""
    found: list[str] = []
    sources: dict[str, list[str]] = {}
    for text in provides:
        key = interface_key(text)
        if key is None or key[0] is None or not head:
            continue
        path, name = key[0], key[1]
        if path not in sources:
            blob = repo.read_blob(head, path)
            sources[path] = signatures(path, blob.decode("utf-8", errors="replace")) if blob is not None else []
        word = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
        line = next((line.strip() for line in sources[path] if word.search(line)), None)
        if line is not None:
            found.append(f"{path}: {line}")
    return tuple(dict.fromkeys(found))

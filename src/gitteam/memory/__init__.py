"""The team's shared memory: an append-only, tagged blackboard in git notes, across runs and machines.

- `entries`: entries and tombstones, their JSON and content-addressed ids (the same on every machine);
- `store`: one notes ref per clone (`refs/notes/gitteam-memory/<writer>`), read as a union, written by
  compare-and-swap with a group commit; plain `git notes` commands list and show the entries;
- `recall`: ranking by tags, files and words, and prompt digests within a token budget;
- `board`: the `Blackboard` the roles, the orchestrator and the CLI use (remember, recall, forget, compact);
- `sync`: refspecs for plain `git push`/`git fetch`, and `gitteam memory push|pull`;
- `backlog`: unfixed review findings of approved subtasks.
Secrets are redacted before anything is written. See docs/memory.md.
"""

from gitteam.memory.board import Blackboard, Compaction, Found, Note
from gitteam.memory.entries import BACKLOG, SUMMARY, Entry, Tombstone
from gitteam.memory.store import PREFIX as MEMORY_PREFIX
from gitteam.memory.store import writer_id

__all__ = ["BACKLOG", "MEMORY_PREFIX", "SUMMARY", "Blackboard", "Compaction", "Entry", "Found", "Note", "Tombstone",
           "writer_id"]

"""What `gitteam memory ...`, `gitteam backlog` and `run --from-backlog` do; cli.py only parses options.

Queries and changes live in `gitteam.memory`; rendering in `ui.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from gitteam import ui
from gitteam.errors import Exit, UsageError
from gitteam.git import Repository
from gitteam.memory import Blackboard, Entry, backlog, sync
from gitteam.memory.entries import normalize_tags
from gitteam.memory.store import PREFIX as MEMORY_REFS


def _filtered(entries: Sequence[Entry], tags: Sequence[str], run: str | None) -> list[Entry]:
    wanted = set(normalize_tags(tags))
    return [e for e in entries if (not wanted or wanted & set(e.tags)) and (run is None or e.run == run)]


def list_entries(repo: Repository, tags: Sequence[str], run: str | None, hidden: bool, json_out: bool) -> int:
    ui.print_memory(_filtered(Blackboard(repo).entries(hidden=hidden), tags, run), json_out)
    return Exit.OK


def show_entry(repo: Repository, entry_id: str, json_out: bool) -> int:
    ui.print_memory_entry(Blackboard(repo).get(entry_id), json_out)
    return Exit.OK


def add_entry(repo: Repository, content: str, tags: Sequence[str], files: Sequence[str], run: str | None) -> int:
    entry = Blackboard(repo, run=run or "", role="user").remember(content, tags=tags, files=files, agent="user")
    print(entry.id)
    return Exit.OK


def search(repo: Repository, query: str, tags: Sequence[str], files: Sequence[str], run: str | None, limit: int,
           json_out: bool) -> int:
    ui.print_memory(Blackboard(repo).recall(query, tags=tags, files=files, run=run, limit=limit), json_out)
    return Exit.OK


def compact(repo: Repository, older_than_days: float, tags: Sequence[str], run: str | None, dry_run: bool,
            json_out: bool) -> int:
    result = Blackboard(repo).compact(older_than=timedelta(days=older_than_days), tags=tags, run=run,
                                      dry_run=dry_run)
    ui.print_compaction(result, dry_run, json_out)
    return Exit.OK


def push(repo: Repository, remote: str | None, json_out: bool) -> int:
    ui.print_sync(sync.push(repo, remote), "push", json_out)
    return Exit.OK


def pull(repo: Repository, remote: str | None, json_out: bool) -> int:
    ui.print_sync(sync.pull(repo, remote), "pull", json_out)
    return Exit.OK


def init_remotes(repo: Repository) -> list[str]:
    """`gitteam init`: every remote's fetch and push carry the memory refs from now on; what changed in what a
    plain `git fetch` and `git push` do is said, with the way back (nothing of it is silent)."""
    remotes = repo.remote_names()
    if not remotes:
        return ["no git remote yet, so git fetch and git push are unchanged. The team's memory lives in "
                f"{MEMORY_REFS}* (git notes refs); once you add a remote, gitteam init again or gitteam memory "
                "push REMOTE sets it up to carry them"]
    lines = []
    for remote in remotes:
        added = sync.configure_remote(repo, remote)
        if not added:
            continue
        lines += [f"git config {line}" for line in added]
        if any(".fetch = " in line for line in added):
            lines.append(f"  git fetch {remote} now also brings the other clones' memory ({MEMORY_REFS}*)")
        if any(line.endswith(".push = HEAD") for line in added):
            lines.append(f"  git push {remote} now also sends this clone's memory; a push refspec replaces "
                         f"push.default, so HEAD was added: a plain git push pushes the current branch to the same "
                         f"name (undo: git config --unset-all remote.{remote}.push)")
        elif any(".push = " in line for line in added):
            lines.append(f"  git push {remote} now also sends this clone's memory, besides the push refspecs it "
                         "had")
    return lines


def list_backlog(repo: Repository, run: str | None, close: Sequence[str], json_out: bool) -> int:
    board = Blackboard(repo)
    if close:
        items = backlog.resolve(board, close)
        backlog.close(board, items, "closed by hand (gitteam backlog --close)")
        print(f"closed {len(items)} backlog item(s)")
        return Exit.OK
    ui.print_backlog(backlog.open_items(board, run), json_out)
    return Exit.OK


def backlog_task(repo: Repository, ids: Sequence[str], task: str | None) -> tuple[str, list[Entry]]:
    """`run --from-backlog ID...`: the task text for those items (and TASK, if one was given)."""
    board = Blackboard(repo)
    wanted, rest = backlog.split_arguments(board, ids, task)
    if not wanted:
        raise UsageError("--from-backlog needs backlog ids (gitteam backlog lists them)")
    items = backlog.resolve(board, wanted)
    return backlog.task_text(items, rest), items


def backlog_items(repo: Repository, options: Mapping[str, Any]) -> list[Entry]:
    """The backlog items a saved plan was made to fix (`plan --from-backlog`), for `run --plan` to close."""
    ids = [str(i) for i in options.get("from_backlog", [])]
    return backlog.resolve(Blackboard(repo), ids) if ids else []


def close_resolved(repo: Repository, items: Sequence[Entry], run: str, state: str) -> None:
    """After a run from the backlog: merged closes its items; anything else leaves them open."""
    if items and state == "merged":
        backlog.close(Blackboard(repo), items, f"resolved by run {run}")

"""Files granted at run time: a coder's `request_files` asks the dispatcher for files its plan did not give it.

Granted at once when no other subtask of any live run owns or waits for them: a compare-and-swap on the lock
refs (locks/refs.py, the same claim a run makes after planning), journaled (`files_requested`), shown to the
reviewers and by `show`. A granted file is the subtask's for the rest of its life: its coder's tools may
change it, its commits take it and the gate's ownership check accepts it. Later subtasks of the run that
planned the file come after it anyway (a later wave starts from what this one merged). Otherwise the answer
names the holder, and the coder finishes without the file or asks again later.
"""

from __future__ import annotations

from collections.abc import Sequence

from gitteam.events import FilesRequested
from gitteam.locks.ownership import entries_overlap
from gitteam.locks.refs import claim_subtasks
from gitteam.plan import Subtask
from gitteam.roles.coder import Grant
from gitteam.run.context import RunContext


def grant_files(ctx: RunContext, subtask: Subtask, siblings: Sequence[Subtask], paths: tuple[str, ...],
                reason: str) -> Grant:
    """The dispatcher's answer to `subtask`'s request for `paths` (normalized, not yet its own)."""
    grant = _decide(ctx, subtask, siblings, paths)
    if grant.granted:
        ctx.granted.setdefault(subtask.id, []).extend(grant.granted)
        ctx.grant_notes.setdefault(subtask.id, []).append(f"{', '.join(grant.granted)} ({reason})")
    ctx.journal.append(FilesRequested(agent=subtask.id, paths=list(paths), reason=reason,
                                      granted=list(grant.granted), answer=grant.answer))
    return grant


def _decide(ctx: RunContext, subtask: Subtask, siblings: Sequence[Subtask], paths: tuple[str, ...]) -> Grant:
    limit, before = ctx.config.limits.granted_files, len(ctx.granted.get(subtask.id, ()))
    if before + len(paths) > limit:
        return Grant((), f"refused: a subtask may be given {limit} file(s) beyond its plan ([limits] "
                         f"granted_files) and this one has {before}; finish without them and say in your summary "
                         "what they would need")
    for sibling in siblings:  # at work beside it in this wave: their files are theirs until they merge
        for path in paths:
            if any(entries_overlap(path, theirs) is not None for theirs in ctx.owned_files(sibling)):
                return Grant((), f"refused: {path} belongs to subtask {sibling.id} of this run, at work now; "
                                 "finish without it and say in your summary what it needs (its reviewers and the "
                                 "subtasks after you read it)")
    blocked = claim_subtasks(ctx.repo, ctx.run, {subtask.id: list(paths)}).get(subtask.id)
    if blocked:
        first = blocked[0]
        whose = (f"waited for by subtask {first.lock.subtask} of run {first.lock.run}" if first.waiting else
                 f"held by run {first.lock.run} (subtask {first.lock.subtask})" if first.lock.run else
                 f"locked by {first.lock.ref}, which is not gitteam's")
        return Grant((), f"not granted: {first.wanted} is {whose}; nothing was claimed. Finish without it (say in "
                         "your summary what it needs), or ask again later")
    return Grant(paths, f"granted: {', '.join(paths)} now belong to this subtask; change them like your other "
                        "files (the reviewers see why you asked)")

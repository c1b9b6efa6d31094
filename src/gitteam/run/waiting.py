"""Queueing on files other runs hold: claim what is free once the plan is known, wait for the rest.

A subtask whose files another *live* run holds waits behind a ticket (locks/refs.py) while the run's other
subtasks go on; it starts once the files are free, on top of whatever the target gained meanwhile. A holder
that will not release on its own (a run that failed, was interrupted or is pending a person's decision) is
not waited for: the run says who holds what and how to free it, before any coder is paid where that is known.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from gitteam.errors import GitteamError
from gitteam.events import LockGranted, LockWaiting
from gitteam.journal import load_run
from gitteam.locks.refs import (
    Conflict,
    LockConflict,
    claim_subtasks,
    deadlocked,
    drop_ticket,
    post_ticket,
    read_claims,
)
from gitteam.plan import Plan, Subtask
from gitteam.run.context import RunContext

POLL_FIRST, POLL_MOST = 0.1, 2.0  # seconds between looks at the locks: soon at first, then backing off
CATCH_UP_ATTEMPTS = 5


def claim_or_queue(ctx: RunContext, plan: Plan, done: Sequence[str] = ()) -> frozenset[str]:
    """Lock the files of every subtask not yet `done` that nothing blocks; queue the others; returns the queued.

    Fails the run (LockConflict, before any coder) when a blocked file's holder is not a live run, or when the
    run may not wait (`[run] lock_wait = 0`)."""
    todo = {sub.id: sub.files for sub in plan.subtasks if sub.id not in done}
    # looked at first, claimed after: a run that cannot go on leaves no new lock behind to block others
    seen = read_claims(ctx.repo)
    ahead = claim_subtasks(ctx.repo, ctx.run, todo, dry_run=True, seen=seen)
    hopeless = [c for conflicts in ahead.values() for c in conflicts if not holder_will_release(ctx, c)]
    if hopeless or (ahead and ctx.config.run.lock_wait <= 0):
        raise LockConflict(ctx.run, hopeless or [c for conflicts in ahead.values() for c in conflicts])
    blocked = claim_subtasks(ctx.repo, ctx.run, todo, seen=seen)
    if not blocked:
        return frozenset()
    for sub in plan.subtasks:
        if sub.id in blocked:
            post_ticket(ctx.repo, ctx.run, sub.id, sub.files)
            announce(ctx, sub.id, blocked[sub.id][0])
    return frozenset(blocked)


def wait_for_files(ctx: RunContext, subtask: Subtask) -> None:
    """Until `subtask`'s files are locked for it; GitteamError (the subtask fails) when the wait is over: its
    limit passed, the holder stopped for good, or waiting would deadlock and this run is the youngest waiter."""
    began = time.monotonic()
    deadline = began + ctx.config.run.lock_wait
    post_ticket(ctx.repo, ctx.run, subtask.id, subtask.files)
    announced: Conflict | None = None
    pause = POLL_FIRST
    while True:
        blocked = claim_subtasks(ctx.repo, ctx.run, {subtask.id: subtask.files}).get(subtask.id)
        if not blocked:
            drop_ticket(ctx.repo, ctx.run, subtask.id)
            ctx.journal.append(LockGranted(agent=subtask.id, waited=round(time.monotonic() - began, 3)))
            return
        first = blocked[0]
        if not holder_will_release(ctx, first):
            drop_ticket(ctx.repo, ctx.run, subtask.id)
            raise LockConflict(ctx.run, blocked)
        cycle = deadlocked(ctx.repo, ctx.run)
        if cycle is not None:
            drop_ticket(ctx.repo, ctx.run, subtask.id)
            raise GitteamError(
                f"subtask {subtask.id} would wait forever: runs {' -> '.join([*cycle, cycle[0]])} each wait for "
                f"files the next one holds; this run is the youngest of them, so it gives up "
                f"(gitteam resume {ctx.run} once they are done)")
        if time.monotonic() >= deadline:
            drop_ticket(ctx.repo, ctx.run, subtask.id)
            raise GitteamError(
                f"subtask {subtask.id} waited {ctx.config.run.lock_wait:g} s for {first.wanted}, "
                f"{_whose(first)}; it did not come free ([run] lock_wait); gitteam resume {ctx.run} tries again")
        if announced is None or (announced.wanted, announced.lock.ref) != (first.wanted, first.lock.ref):
            announce(ctx, subtask.id, first)
            announced = first
        ctx.meter.check()  # Ctrl-C or the budget stops a waiting subtask like a working one
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, POLL_MOST)


def holder_will_release(ctx: RunContext, conflict: Conflict) -> bool:
    """The holder is a run at work now, so its files come free without anyone's help: its process is alive
    (or on another machine), or it is finishing (merged, rejected or aborted: its locks are going)."""
    holder = conflict.lock.run
    if holder is None:
        return False  # not a gitteam lock: only a person can remove it
    if conflict.waiting:
        return True  # a ticket of a live waiter (dead ones block nobody): the queue moves
    try:
        state = load_run(ctx.repo.state_dir, holder)
    except GitteamError:
        return True  # a run this clone has no journal of (another worktree of the repository): assume at work
    if state.state in ("merged", "rejected", "aborted"):
        return True
    return state.running_elsewhere


def announce(ctx: RunContext, agent: str, conflict: Conflict) -> None:
    ctx.journal.append(LockWaiting(agent=agent, path=conflict.wanted, holder_run=conflict.lock.run or "?",
                                   holder_subtask=conflict.lock.subtask or "?", queued=conflict.waiting))


def _whose(conflict: Conflict) -> str:
    lock = conflict.lock
    if conflict.waiting:
        return f"which subtask {lock.subtask} of run {lock.run} waits for ahead of it"
    return f"held by run {lock.run} (subtask {lock.subtask})"


def fresh_start(ctx: RunContext, start: str) -> str:
    """Where a subtask that waited starts: the integration branch with what the target gained meanwhile (the
    holder's work, typically) merged in, so it builds on it; `start` when that merge conflicts (the approval
    finds the conflict, as for any moved target)."""
    # here, not at the top: integration -> rework -> subtask -> this module, so importing the subtask first
    # (as a worker does) would find integration half-made
    from gitteam.run import integration

    for _ in range(CATCH_UP_ATTEMPTS):
        target = ctx.repo.rev_parse(f"refs/heads/{ctx.target}")
        if target is None:
            return start
        try:
            return integration.catch_up(ctx, target) or start
        except GitteamError:  # a sibling that waited too caught up first: look again
            continue
    return start

"""Full checkouts of a new run's start, made while the planner answers, for the first wave's coders to take.

A coder's worktree is a checkout of the run's start; made after the plan, every coder of the wave waits for its
own (`git worktree add`, one at a time under the admin lock, then a checkout of the whole tree), and the
slowest of them holds up the wave. The plan is not known yet while the planner answers, so neither are the
subtasks' names: a run whose worktrees are full checkouts makes `max_agents` (at most 8) detached ones then,
from the planner's first request on (`<run>/.spare-<n>`: a subtask id cannot start with "."), and a subtask
starting from that commit takes one (`Repository.adopt_worktree`: its branch made there, the checkout moved to
its place; nothing checked out again). A subtask that finds none left, or starts elsewhere, makes its own as
before. What is not taken is deleted when the run's first wave has started (`close`): it never held anyone's
work.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from threading import Lock, Thread
from typing import TYPE_CHECKING

from gitteam.errors import GitteamError
from gitteam.events import Event, ModelCalled
from gitteam.git import GitError
from gitteam.run import worktrees

if TYPE_CHECKING:
    from gitteam.run.context import RunContext

PREFIX = ".spare-"
MOST = 8  # spares a run makes at most: more checkouts at once only compete for the disk while the planner answers


class SpareWorktrees:
    """One RunContext's spares; its threads share it."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._start = ""
        self._made: list[Future[Path | None]] = []  # in the order they were asked for; taken from the front
        self._pool: ThreadPoolExecutor | None = None
        self._starter: Thread | None = None  # begins them (make_when_planner_asks)

    def make_when_planner_asks(self, ctx: RunContext, start: str, count: int) -> None:
        """`make` them once the planner's first request is out: begun before it, the checkouts take the CPU
        and the disk its prompt is built with."""

        def heard(event: Event) -> None:
            if isinstance(event, ModelCalled) and event.role == "planner" and self._starter is None:
                # from a thread of its own: the pool's eight thread starts would hold up the request itself
                self._starter = Thread(target=self.make, args=(ctx, start, count), name="spares", daemon=True)
                self._starter.start()

        ctx.journal.subscribe(heard)

    def _begun(self) -> None:
        """Wait until the spares asked for are begun (their futures are there to take, trim or close)."""
        if self._starter is not None:
            self._starter.join()

    def make(self, ctx: RunContext, start: str, count: int) -> None:
        """Begin `count` (at most MOST) full checkouts of `start` side by side, in the background; once."""
        count = min(count, MOST)
        if count < 1 or self._pool is not None:
            return
        self._start = start
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="spare")
        self._made = [self._pool.submit(_make, ctx, start, n) for n in range(1, count + 1)]

    def take(self, ctx: RunContext, path: Path, branch: str, start: str) -> Path | None:
        """A spare made the worktree of the new branch `branch` at `start`: where it is (`path`, or where it was
        made if git would not move it). None, with nothing done, when none is left or `start` is not the commit
        they hold: the caller then makes its own."""
        self._begun()
        if start != self._start:
            return None
        with self._lock:
            future = self._made.pop(0) if self._made else None
        spare = future.result() if future is not None else None  # one still being made is nearer done than a new one
        if spare is None:
            return None
        try:
            ctx.repo.adopt_worktree(spare, path, branch, start)
        except GitError:
            if ctx.repo.worktree_of_branch(f"refs/heads/{branch}") == spare:
                return spare  # on its branch, but not moved: it works where it is
            if ctx.repo.rev_parse(f"refs/heads/{branch}") is not None:
                raise  # the branch was there before: making a worktree of its own would fail alike
            _delete(ctx, spare)  # it could not be used: the subtask makes its own
            return None
        return path

    def trim(self, ctx: RunContext, wanted: int) -> None:
        """The plan is known: `wanted` subtasks can take a spare; the others are deleted once made, in the
        background."""
        self._begun()
        with self._lock:
            extra, self._made = self._made[wanted:], self._made[:wanted]
        if extra and self._pool is not None:
            self._pool.submit(_delete_when_made, ctx, extra)

    def close(self, ctx: RunContext) -> None:
        """Delete the spares no one took (waiting for those still being made)."""
        self.trim(ctx, 0)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _make(ctx: RunContext, start: str, number: int) -> Path | None:
    """A detached full checkout of `start`, or None when it could not be made (the subtask then makes its own)."""
    path = worktrees.new_path(ctx.repo, ctx.config, ctx.run, f"{PREFIX}{number}")
    try:
        if os.path.lexists(path):
            worktrees.discard(ctx.repo, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx.repo.add_detached_worktree(path, start)
    except (GitteamError, OSError):
        return None
    return path


def _delete_when_made(ctx: RunContext, made: list[Future[Path | None]]) -> None:
    for future in made:
        spare = future.result()
        if spare is not None:
            _delete(ctx, spare)
    with suppress(GitteamError):  # else their admin dirs go with the run's worktrees at its end
        ctx.repo.prune_worktrees()


def _delete(ctx: RunContext, spare: Path) -> None:
    with suppress(GitteamError):  # else it goes with the run's worktrees at its end
        ctx.repo.delete_worktree_files(spare)

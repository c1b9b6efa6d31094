"""Whole trees for the merge gate's test command when the agents' worktrees are sparse.

A sparse worktree holds only its agent's directories; the test command needs the whole tree. Each run keeps
full detached checkouts of its own (`<run>/.gate-<n>`: a subtask id cannot start with "."), made on first
need with the setup command run once, lent to one review at a time and switched to the commit under test:
the switch rewrites only the files that differ, so after the first, a test costs what the test costs, not
a checkout of the repository (docs/benchmarks.md has the numbers). There are never more than the reviews
that wanted one at the same moment; they go with the run's worktrees (`worktrees.remove_run`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gitteam.errors import GitteamError
from gitteam.run import worktrees

if TYPE_CHECKING:
    from gitteam.run.context import RunContext

PREFIX = ".gate-"


class GateCheckouts:
    """A run's pool of full checkouts for the test command (one RunContext's; its threads share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Path] = []
        self._made = 0

    @contextmanager
    def lease(self, ctx: RunContext, commit: str, prepare: Callable[[Path], str | None]) -> Iterator[Path]:
        """A full checkout of `commit`, this caller's until the block ends; a new one is made ready by `prepare`
        (the setup command), which says why it could not be: then GitteamError."""
        with self._lock:
            path = self._free.pop() if self._free else None
            if path is None:
                self._made += 1
                number = self._made
        if path is None:
            path = self._make(ctx, number, commit, prepare)
        else:
            ctx.repo.switch_detached(path, commit)
        try:
            yield path
        finally:
            with self._lock:
                self._free.append(path)

    @staticmethod
    def _make(ctx: RunContext, number: int, commit: str, prepare: Callable[[Path], str | None]) -> Path:
        path = worktrees.new_path(ctx.repo, ctx.config, ctx.run, f"{PREFIX}{number}")
        if os.path.lexists(path):  # an earlier process's (a kill, or resume): a copy of committed work
            worktrees.discard(ctx.repo, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ctx.repo.add_detached_worktree(path, commit)
        problem = prepare(path)
        if problem is not None:
            raise GitteamError(f"{problem} (in the full checkout the test command runs in)")
        return path

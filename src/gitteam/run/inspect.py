"""What `status` and `show` read of runs: queries that return data for ui.py to render; they change nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitteam import transcripts
from gitteam.errors import UsageError
from gitteam.git import Repository
from gitteam.journal import (
    Journal,
    RunState,
    list_runs,
    load_run,
)
from gitteam.locks.refs import held_locks
from gitteam.names import INTEGRATION, agent_branch
from gitteam.run import worktrees
from gitteam.run.notes import read_notes


@dataclass(frozen=True)
class AgentView:
    run: RunState
    agent: str
    diff: str
    notes: list[dict[str, Any]]
    commits: list[str]
    uncommitted: Uncommitted | None = None  # what is in its worktree now and on no commit (a coder at work)


@dataclass(frozen=True)
class Uncommitted:
    """Files an agent changed in its worktree since its last commit, and their diff (against that commit)."""

    worktree: str
    files: list[str]
    deleted: list[str]
    diff: str


def all_runs(repo: Repository) -> list[RunState]:
    return with_locks(repo, with_disk(repo, [with_turns(repo, state) for state in list_runs(repo.state_dir)]))


def one_run(repo: Repository, run: str) -> RunState:
    return with_locks(repo, with_disk(repo, [with_turns(repo, load_run(repo.state_dir, run))]))[0]


def with_locks(repo: Repository, states: list[RunState]) -> list[RunState]:
    """The files each run holds now: a pending or failed run keeps them until it is decided or aborted."""
    held: dict[str, list[str]] = {}
    for path, (run, _) in held_locks(repo).items():
        held.setdefault(run, []).append(path)
    for state in states:
        state.locks = sorted(held.get(state.run, []))
    return states


def with_disk(repo: Repository, states: list[RunState]) -> list[RunState]:
    """What each run's worktrees take on disk now (status shows it; clean frees it)."""
    recorded = {state.run: [agent.worktree for agent in state.agents.values()] for state in states}
    disk = worktrees.disk_by_run(repo, recorded)
    for state in states:
        state.disk = disk.get(state.run, 0)
    return states


def with_turns(repo: Repository, state: RunState) -> RunState:
    """The model calls each agent made, counted in its transcripts (status and show print them)."""
    state.turns = transcripts.turns(Journal(repo.state_dir, state.run).dir)
    return state


def show_agent(repo: Repository, run: str, agent: str | None) -> AgentView:
    state = one_run(repo, run)
    name = agent or INTEGRATION
    if name != INTEGRATION and name not in state.agents:
        known = ", ".join([*state.agents, INTEGRATION])
        raise UsageError(f"run {run} has no agent {name!r} (agents: {known})")
    head = repo.rev_parse(f"refs/heads/{agent_branch(run, name)}")
    base = state.base if name == INTEGRATION else state.agents[name].base or state.base
    worktree = state.agents[name].worktree if name in state.agents else ""
    uncommitted = worktree_work(repo, Path(worktree)) if worktree else None
    if head is None:
        return AgentView(state, name, "", [], [], uncommitted)
    commits = repo.commits_between(base, head) if base else []
    notes = read_notes(repo, commits)
    return AgentView(state, name, repo.diff(base, head) if base else "", notes, commits, uncommitted)


def worktree_work(repo: Repository, worktree: Path) -> Uncommitted | None:
    """What the agent has written and not committed: a snapshot commit of its files (it moves no ref and
    touches neither the worktree nor its index) diffed against the worktree's HEAD. None when there is none."""
    if not worktree.is_dir() or not repo.has_index(worktree):
        return None
    changed = sorted(repo.worktree_changes(worktree, exclude=worktrees.BUILD_OUTPUT))
    present = [path for path in changed if os.path.lexists(worktree / path)]
    deleted = [path for path in changed if path not in present]
    if not changed:
        return None
    snapshot = repo.snapshot(worktree, present, "gitteam show: uncommitted work", worktrees.AUTHOR) if present \
        else None
    diff = repo.diff(f"{snapshot}^", snapshot) if snapshot else ""
    return Uncommitted(str(worktree), present, deleted, diff)


def show_transcripts(repo: Repository, run: str, agent: str | None) -> tuple[RunState, str, list[transcripts.Read]]:
    """One agent's transcripts (a subtask's coder and reviewers, "planner", or "integration": its reviewers)."""
    state = one_run(repo, run)
    name = agent or INTEGRATION
    known = ["planner", *state.agents, INTEGRATION]
    if name not in known:
        raise UsageError(f"run {run} has no agent {name!r} (agents: {', '.join(known)})")
    found = transcripts.agent_transcripts(Journal(repo.state_dir, run).dir, name)
    if not found:
        raise UsageError(f"no transcript of {name!r} in run {run}: it has not called a model yet, or the run "
                         "was made by a gitteam that kept none")
    return state, name, found

"""Runs after the fact: what `status`, `show`, `approve`, `reject`, `abort` and `clean` do.

Queries return data; ui.py renders it. Nothing here deletes a branch, and no worktree holding work
that is not committed on its branch is removed without --force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitteam import integration, transcripts
from gitteam.config import Config
from gitteam.context import INTEGRATION, Approver, RunOptions, RunResult, agent_branch
from gitteam.errors import Exit, UsageError
from gitteam.git import Repository
from gitteam.integration import remove_worktrees
from gitteam.journal import (
    ABORTED,
    FINISHED_STATES,
    PENDING,
    Journal,
    RunState,
    exclusive,
    list_runs,
    load_run,
)
from gitteam.locks.plan import Plan
from gitteam.locks.protected import check_patterns
from gitteam.locks.refs import release_files
from gitteam.orchestrator import existing_context
from gitteam.worker import NOTES_REF, commit_work, write_note


@dataclass(frozen=True)
class AgentView:
    run: RunState
    agent: str
    diff: str
    notes: list[dict[str, Any]]
    commits: list[str]


def all_runs(repo: Repository) -> list[RunState]:
    return list_runs(repo.state_dir)


def one_run(repo: Repository, run: str) -> RunState:
    return load_run(repo.state_dir, run)


def latest_run(repo: Repository) -> RunState:
    runs = all_runs(repo)
    if not runs:
        raise UsageError("no runs yet in this repository (gitteam run TASK, or gitteam demo)")
    return runs[-1]


def show_agent(repo: Repository, run: str, agent: str | None) -> AgentView:
    state = one_run(repo, run)
    name = agent or INTEGRATION
    if name != INTEGRATION and name not in state.agents:
        known = ", ".join([*state.agents, INTEGRATION])
        raise UsageError(f"run {run} has no agent {name!r} (agents: {known})")
    head = repo.rev_parse(f"refs/heads/{agent_branch(run, name)}")
    base = state.base if name == INTEGRATION else state.agents[name].base or state.base
    if head is None:
        return AgentView(state, name, "", [], [])
    commits = repo.commits_between(base, head) if base else []
    notes = []
    for commit in commits:
        text = repo.read_note(NOTES_REF, commit)
        if text:
            try:
                notes.append({"commit": commit, **json.loads(text)})
            except json.JSONDecodeError:
                notes.append({"commit": commit, "text": text})
    return AgentView(state, name, repo.diff(base, head) if base else "", notes, commits)


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


def decide(repo: Repository, config: Config, run: str, decision: str, keep: bool = False,
           allow_protected: tuple[str, ...] = (), approver: Approver | None = None) -> RunResult:
    """`gitteam approve RUN` / `gitteam reject RUN` for a run left pending.

    Approving is like `--yes`, except for changed protected paths: those need `allow_protected` naming
    them, or the `approver` (a person at a terminal) saying yes.
    """
    allow_protected = check_patterns(allow_protected, "--allow-protected")
    with exclusive(repo.state_dir, run):  # two approvals at once: the second is refused, not run twice
        ctx, state = existing_context(repo, config, run)
        if state.state != PENDING:
            raise UsageError(f"run {run} is {state.state}, not pending; only a pending run can be approved or "
                             "rejected")
        if decision == "reject":
            return integration.reject(ctx)
        return integration.conclude(ctx, RunOptions(yes=True, keep=keep, allow_protected=allow_protected,
                                                    approver=approver))


def abort(repo: Repository, config: Config, run: str, force: bool = False) -> RunResult:
    """Undo a run that has not merged: its worktrees go (work is committed first), its locks are freed.

    Branches stay: they are the record of what the agents did, and deleting them is the user's call.
    """
    with exclusive(repo.state_dir, run):
        return _abort(repo, config, run, force)


def _abort(repo: Repository, config: Config, run: str, force: bool) -> RunResult:
    ctx, state = existing_context(repo, config, run)
    if state.state in FINISHED_STATES:
        raise UsageError(f"run {run} is already {state.state}")
    if state.running_elsewhere:  # its agents are at work in those worktrees, and it could still merge
        where = f"process {state.owner.get('pid')} on {state.owner.get('host')}"
        raise UsageError(f"run {run} is still running ({where}); stop it first (Ctrl-C), then gitteam abort {run}")
    subtasks = Plan.from_json(state.plan).by_id() if state.plan else {}
    for agent in state.agents.values():
        path = Path(agent.worktree) if agent.worktree else None
        if path and path.is_dir() and agent.id in subtasks:
            # the agent's own uncommitted work goes on its branch, journaled and noted like any commit of it
            saved = commit_work(ctx, subtasks[agent.id], path, 0, "work saved by gitteam abort", agent.base or None)
            if saved:
                coder = str(state.options.get("models", {}).get("coder", ""))  # as the run recorded it
                write_note(ctx, agent.id, saved, coder, 0, None)
    kept = remove_worktrees(repo, run, ctx.journal, force=force)
    release_files(repo, run)
    left = (f"; kept {len(kept)} worktree(s) holding files that are not the agents' ({', '.join(kept)}): "
            f"look at them, then gitteam clean --force removes them") if kept else ""
    return ctx.finish(ABORTED, Exit.OK, f"run {run} aborted; its branches gitteam/{run}/* are kept "
                      f"(delete them with: git branch -D $(git for-each-ref --format='%(refname:short)' "
                      f"refs/heads/gitteam/{run}/)){left}")


def clean(repo: Repository, force: bool = False) -> tuple[list[str], list[str]]:
    """`gitteam clean`: remove finished runs' worktrees. Returns (runs cleaned, worktrees kept)."""
    cleaned, kept = [], []
    for state in all_runs(repo):
        if state.state not in FINISHED_STATES:
            continue  # a failed or pending run's worktrees serve resume and inspection
        root = repo.state_dir / "worktrees" / state.run
        if not root.exists() and state.worktrees_removed:
            continue
        left = remove_worktrees(repo, state.run, Journal(repo.state_dir, state.run), force)
        kept.extend(left)
        if not left:
            cleaned.append(state.run)
    repo.prune_worktrees()
    return cleaned, kept

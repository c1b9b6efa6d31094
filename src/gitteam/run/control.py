"""What a person does to a run after the fact: approve or reject it, abort it, clean finished runs up.

Nothing here deletes a branch, and no worktree holding work that is not committed on its branch is removed
without --force.
"""

from __future__ import annotations

from pathlib import Path

from gitteam.config import Config
from gitteam.errors import Exit, UsageError
from gitteam.git import Repository
from gitteam.journal import ABORTED, FINISHED_STATES, PENDING, Journal, exclusive, list_runs
from gitteam.locks.protected import check_patterns
from gitteam.locks.refs import release_files
from gitteam.plan import Plan
from gitteam.run import integration
from gitteam.run.context import Approver, Progress, RunOptions, RunResult
from gitteam.run.integration import remove_worktrees
from gitteam.run.notes import note_commit
from gitteam.run.orchestrator import existing_context
from gitteam.run.subtask import commit_work


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
        plan = Plan.from_json(state.plan) if state.plan else Plan(())
        return integration.conclude(ctx, RunOptions(yes=True, keep=keep, allow_protected=allow_protected,
                                                    approver=approver), Progress.from_state(state, plan))


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
                note_commit(ctx, agent.id, saved, coder, 0, None)
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
    for state in list_runs(repo.state_dir):
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

"""What a person does to a run after the fact: approve or reject it, abort it, clean finished runs up.

Nothing here deletes a branch, and no worktree goes before what its agent left uncommitted is saved on the
run's leftovers refs (--force: even when that fails).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitteam.config import Config
from gitteam.errors import Exit, UsageError
from gitteam.events import Resumed
from gitteam.git import Repository
from gitteam.journal import ABORTED, FINISHED_STATES, PENDING, Journal, exclusive, list_runs, owner
from gitteam.locks.protected import check_patterns
from gitteam.locks.refs import release_files
from gitteam.plan import Plan
from gitteam.run import integration, worktrees
from gitteam.run.context import Approver, Progress, RunOptions, RunResult
from gitteam.run.notes import note_commit
from gitteam.run.orchestrator import check_ready, existing_context
from gitteam.run.rework import check_feedback
from gitteam.run.subtask import commit_work


def decide(repo: Repository, config: Config, run: str, decision: str, keep: bool = False,
           allow_protected: tuple[str, ...] = (), approver: Approver | None = None,
           changes: dict[str, str] | None = None) -> RunResult:
    """`gitteam approve RUN` / `gitteam reject RUN` for a run left pending.

    Approving is like `--yes`, except for changed protected paths: those need `allow_protected` naming
    them, or the `approver` (a person at a terminal) saying yes. `changes` (`approve --request-changes`):
    instead of approving, those merged subtasks get another round with that feedback (run/rework.py), and
    the run, reviewed again, is left pending for the next decision.
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
        progress = Progress.from_state(state, plan, repo)
        if changes:
            check_feedback(plan, progress.summaries, changes)  # before anything is journaled
            check_ready(repo, ctx.config, ctx.registry)  # the coders' and reviewers' models, the sandbox
            ctx.journal.append(Resumed(owner=owner(), budget=ctx.config.run.budget, spent=state.cost,
                                       tokens=state.tokens))  # the agents' spend counts, and this process owns it
            note = integration.rework_person(ctx, progress, changes)
            if isinstance(note, RunResult):
                return note
            return integration.conclude(ctx, RunOptions(no_merge=True, keep=keep), progress, note)
        return integration.conclude(ctx, RunOptions(yes=True, keep=keep, allow_protected=allow_protected,
                                                    approver=approver), progress)


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
        path = worktrees.find(repo, config, run, agent.id)
        if path and path.is_dir() and agent.id in subtasks:
            # the agent's own uncommitted work goes on its branch, journaled and noted like any commit of it
            saved = commit_work(ctx, subtasks[agent.id], path, 0, "work saved by gitteam abort", agent.base or None)
            if saved:
                coder = str(state.options.get("models", {}).get("coder", ""))  # as the run recorded it
                note_commit(ctx, agent.id, saved, coder, 0, None)
    removal = worktrees.remove_run(repo, config, run, ctx.journal, force=force)
    release_files(repo, run)
    return ctx.finish(ABORTED, Exit.OK, f"run {run} aborted; its branches gitteam/{run}/* are kept "
                      f"(delete them with: git branch -D $(git for-each-ref --format='%(refname:short)' "
                      f"refs/heads/gitteam/{run}/)){integration.removal_note(removal, run)}")


@dataclass
class Cleaning:
    """What `gitteam clean` did: per finished run, its worktrees removed (leftovers saved) or kept; orphans."""

    runs: dict[str, worktrees.Removal] = field(default_factory=dict)
    orphans: list[worktrees.Orphan] = field(default_factory=list)
    orphans_removed: bool = False

    @property
    def freed(self) -> int:
        return sum(removal.freed for removal in self.runs.values()) + \
            (sum(orphan.size for orphan in self.orphans) if self.orphans_removed else 0)

    @property
    def kept(self) -> list[tuple[Path, str]]:
        return [kept for removal in self.runs.values() for kept in removal.kept]


def clean(repo: Repository, config: Config, force: bool = False, orphans: bool = False) -> Cleaning:
    """`gitteam clean`: remove finished runs' worktrees (each agent's leftovers saved first); list the orphaned
    worktrees of repositories that are gone, and remove them with `orphans`."""
    worktrees.recover(repo)  # a moved repository's worktrees are reconnected first: never taken for orphans
    cleaning = Cleaning()
    for state in list_runs(repo.state_dir):
        if state.state not in FINISHED_STATES:
            continue  # a failed or pending run's worktrees serve resume and inspection
        if state.worktrees_removed and not worktrees.of_run(repo, config, state.run) and not \
                worktrees.legacy_run_dir(repo, state.run).exists():
            continue
        removal = worktrees.remove_run(repo, config, state.run, Journal(repo.state_dir, state.run), force)
        if removal.removed or removal.kept or removal.saved:
            cleaning.runs[state.run] = removal
    repo.prune_worktrees()
    cleaning.orphans = worktrees.orphans(repo, config)
    if orphans and cleaning.orphans:
        worktrees.remove_orphans(config, cleaning.orphans)
        cleaning.orphans_removed = True
    return cleaning

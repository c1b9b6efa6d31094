"""The gate once more, on the integrated result, before anyone is asked to approve it.

Each subtask was reviewed on its own diff, in its own worktree. What they make together gets one review
of the combined diff (cross-file problems: a renamed function still called by its old name elsewhere, two
halves of a protocol that disagree) under the agent name "integration", and the deterministic checks with
the test command run on the integrated tree, in a temporary detached worktree removed afterwards. Anything
but APPROVE refuses the run (exit 3): nothing reaches the target, every branch is kept, and `gitteam resume`
reviews the result again.

Skipped when `review.integration` is off, and when fewer than two subtasks merged: the result is then one
subtask's commit, already reviewed and tested as it is.
"""

from __future__ import annotations

import os

from gitteam.events import IntegrationReviewed, IntegrationReviewStarted
from gitteam.names import INTEGRATION
from gitteam.review.checks import CheckContext, run_checks
from gitteam.review.diff import FileChange, parse_diff
from gitteam.review.policy import decide
from gitteam.review.verdict import Finding, Verdict
from gitteam.roles.review_agents import Subject, review_with_agents
from gitteam.run import worktrees
from gitteam.run.context import Progress, RunContext
from gitteam.run.environment import integration_env, learn_secret_files, setup_problem
from gitteam.run.notes import note_integration_review


def needed(ctx: RunContext, progress: Progress, head: str) -> bool:
    """Whether the result at `head` still has to pass the integration review."""
    if not ctx.config.review.integration:
        return False
    if len(progress.summaries) < 2:
        return False
    return progress.integration_review != (head, "APPROVE")


def review_result(ctx: RunContext, progress: Progress, head: str) -> Verdict:
    """Checks and tests on the integrated tree, then the reviewers on the combined diff; journaled and noted."""
    ctx.journal.append(IntegrationReviewStarted(head=head))
    diff_text = ctx.repo.diff(progress.base, head)
    changes = parse_diff(diff_text)
    checks = checked_in_worktree(ctx, progress.base, head, changes)
    about = {"run": ctx.run, "what": "the combined result of every subtask, merged; each was reviewed alone",
             "subtasks": "; ".join(f"{s.id}: {s.title} ({', '.join(s.files)})" for s in progress.plan.subtasks)}
    subject = Subject(progress.base, head, diff_text, changes, ctx.task, about=about, checks=checks)
    verdict = decide(checks, lambda: review_with_agents(ctx.review_session(INTEGRATION, 1), subject))
    ctx.journal.append(IntegrationReviewed(head=head, verdict=verdict.to_json()))
    progress.integration_review = (head, verdict.decision)
    note_integration_review(ctx, head, verdict)
    return verdict


def checked_in_worktree(ctx: RunContext, base: str, head: str, changes: list[FileChange]) -> list[Finding]:
    """The deterministic checks, the test command included, on a throwaway checkout of `head`; without a test
    or setup command nothing runs in a tree, so none is made (a whole checkout of a big repository takes
    seconds)."""
    if not ctx.config.commands.test.strip() and not ctx.config.run.setup:
        return run_checks(CheckContext(repo=ctx.repo, base=base, head=head, changes=changes, ownership=None,
                                       max_file_bytes=ctx.config.review.max_file_bytes))
    path = worktrees.new_path(ctx.repo, ctx.config, ctx.run, INTEGRATION)
    if os.path.lexists(path):  # left by a crash: its files are a copy of committed work
        worktrees.discard(ctx.repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.repo.add_detached_worktree(path, head)
    try:
        learn_secret_files(ctx, path, ctx.repo.copy_included_files(path))
        env = integration_env(ctx, path)
        problem = setup_problem(ctx, path, env)
        if problem is not None:  # the setup every agent's worktree had fails on the integrated tree
            return [Finding("", None, "major", f"{problem} (on the integrated tree)",
                            "fix the setup, then gitteam resume", "check:setup")]
        return run_checks(CheckContext(
            repo=ctx.repo, base=base, head=head, changes=changes, ownership=None, worktree=path,
            test_command=ctx.config.commands.test, command_env=env, command_timeout=ctx.config.commands.timeout,
            max_file_bytes=ctx.config.review.max_file_bytes, commands=ctx.commands))
    finally:
        ctx.repo.remove_worktree(path, force=True)



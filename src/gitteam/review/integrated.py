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

import json
import shutil
from pathlib import Path

from gitteam.context import INTEGRATION, RunContext, worktree_path
from gitteam.git import GitError
from gitteam.journal import RunState
from gitteam.review.agents import Subject
from gitteam.review.checks import CheckContext, run_checks
from gitteam.review.diff import FileChange, parse_diff
from gitteam.review.gate import decide
from gitteam.review.verdict import Finding, Verdict
from gitteam.sandbox import parse_command, safe_env
from gitteam.secrets import redact, redact_data
from gitteam.worker import BASE_PORT, NOTES_REF, learn_secret_files, review_diff

EVENT = "integration_review"


def needed(ctx: RunContext, state: RunState, head: str) -> bool:
    """Whether the result at `head` still has to pass the integration review."""
    if not ctx.config.review.integration:
        return False
    if sum(agent.status == "merged" for agent in state.agents.values()) < 2:
        return False
    last = state.integration_review
    return not (last and last["head"] == head and last["verdict"]["decision"] == "APPROVE")


def review_result(ctx: RunContext, state: RunState, head: str) -> Verdict:
    """Checks and tests on the integrated tree, then the reviewers on the combined diff; journaled and noted."""
    ctx.journal.append("integration_review_started", head=head)
    diff_text = ctx.repo.diff(state.base, head)
    changes = parse_diff(diff_text)
    checks = checked_in_worktree(ctx, state.base, head, changes)
    plan = state.plan or {"subtasks": []}
    about = {"run": ctx.run, "what": "the combined result of every subtask, merged; each was reviewed alone",
             "subtasks": "; ".join(f"{s['id']}: {s['title']} ({', '.join(s['files'])})" for s in plan["subtasks"])}
    subject = Subject(state.base, head, diff_text, changes, ctx.task, about=about, checks=checks)
    verdict = decide(checks, lambda: review_diff(ctx, INTEGRATION, subject, 1))
    ctx.journal.append(EVENT, head=head, verdict=verdict.to_json())
    write_note(ctx, head, verdict)
    return verdict


def checked_in_worktree(ctx: RunContext, base: str, head: str, changes: list[FileChange]) -> list[Finding]:
    """The deterministic checks, the test command included, on a throwaway checkout of `head`."""
    path = worktree_path(ctx.repo, ctx.run, INTEGRATION)
    if path.exists():  # left by a crash: its files are a copy of committed work
        try:
            ctx.repo.remove_worktree(path, force=True)
        except GitError:  # no longer registered: only a directory
            shutil.rmtree(path)
            ctx.repo.prune_worktrees()
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.repo.add_detached_worktree(path, head)
    try:
        learn_secret_files(ctx, path, ctx.repo.copy_included_files(path))
        env = _env(ctx, path)
        problem = _setup(ctx, path, env)
        if problem is not None:
            return [problem]
        return run_checks(CheckContext(
            repo=ctx.repo, base=base, head=head, changes=changes, ownership=None, worktree=path,
            test_command=ctx.config.commands.test, command_env=env, command_timeout=ctx.config.commands.timeout,
            max_file_bytes=ctx.config.review.max_file_bytes, commands=ctx.commands))
    finally:
        ctx.repo.remove_worktree(path, force=True)


def _env(ctx: RunContext, path: Path) -> dict[str, str]:
    extra = {"GITTEAM_RUN": ctx.run, "GITTEAM_AGENT": INTEGRATION, "GITTEAM_WORKTREE": str(path),
             "GITTEAM_PORT": str(BASE_PORT - 10)}
    return safe_env(path, extra, ctx.config.commands.pass_env)


def _setup(ctx: RunContext, path: Path, env: dict[str, str]) -> Finding | None:
    """The setup command, as every agent's worktree had it; its failure is the finding."""
    setup = ctx.config.run.setup
    if not setup:
        return None
    result = ctx.commands.run(parse_command(setup), path, env, ctx.config.run.setup_timeout, 4000,
                              purpose="setup")
    if not result.timed_out and result.exit_code == 0:
        return None
    status = "timed out" if result.timed_out else f"exited {result.exit_code}"
    return Finding("", None, "major", f"the setup command {setup!r} {status} on the integrated tree: "
                   f"{redact(result.output).strip()[-300:]}", "fix the setup, then gitteam resume", "check:setup")


def write_note(ctx: RunContext, head: str, verdict: Verdict) -> None:
    """The review on the integrated commit: a note of its own, or added to the agent's when head is its commit."""
    tally = ctx.meter.agent(f"reviewer/{INTEGRATION}")
    review = {"agent": INTEGRATION, "decision": verdict.decision, "summary": verdict.summary,
              "findings": [f.to_json() for f in verdict.findings], "tokens": tally.usage.total,
              "cost": round(tally.cost, 6) if tally.cost_known else None}
    existing = ctx.repo.read_note(NOTES_REF, head)
    try:
        note = json.loads(existing) if existing else None
    except json.JSONDecodeError:
        note = None
    if not isinstance(note, dict):
        note = {"run": ctx.run, "agent": INTEGRATION, "role": "reviewer"}
        if existing:
            note["previous_note"] = existing
    note["integration_review"] = redact_data(review)
    ctx.repo.set_note(NOTES_REF, head, json.dumps(note, indent=1, ensure_ascii=False))

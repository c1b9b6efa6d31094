"""Return to the dispatcher: a subtask that failed goes back to the planner, which rewrites it or gives it up.

The planner sees the plan, the failed subtask, why it failed, the last review's findings and the work its coder
committed. Its answer is one subtask (rewritten instructions, other files if it needed them) or none. The next
attempt gets a new id, `<id>-<attempt>` (so a fresh branch, `gitteam/<run>/<id>-2`, from the same start; the
failed branch is kept), keeps the failed one's dependencies and interfaces, and takes its place in the plan:
its dependents wait for it. `[run] replans` bounds the attempts; the run's budget holds across them; the run is
still all or nothing.
"""

from __future__ import annotations

import json
import re

from gitteam.errors import GitteamError
from gitteam.events import Replanned
from gitteam.locks.ownership import entries_overlap
from gitteam.locks.refs import claim_subtasks
from gitteam.plan import Plan, Subtask
from gitteam.review.verdict import format_findings
from gitteam.roles import planner as planner_role
from gitteam.roles.agent import Agent
from gitteam.roles.tools import CommitView
from gitteam.run.context import Outcome, Progress, RunContext

WORK_MAX_CHARS = 20_000  # of the failed attempt's diff shown to the planner
ATTEMPT = re.compile(r"^(?P<base>.+)-(?P<n>\d+)$")


def attempt_of(agent: str, attempts: dict[str, int]) -> tuple[str, int]:
    """The first attempt's id and this attempt's number (1 for a subtask as the planner first made it)."""
    number = attempts.get(agent, 1)
    if number > 1:
        found = ATTEMPT.match(agent)
        if found is not None:
            return found["base"], number
    return agent, number


def next_attempt(ctx: RunContext, progress: Progress, failed: Outcome, start: str,
                 attempts: dict[str, int]) -> Subtask | None:
    """The failed subtask's next attempt, journaled and in `progress.plan`, its files claimed; None when no
    attempts are left, the failure is the run's (budget, interrupt), or the planner gave it up."""
    if failed.status not in ("failed", "refused"):
        return None
    base, number = attempt_of(failed.agent, attempts)
    if number > ctx.config.run.replans:
        return None
    old = progress.plan.by_id().get(failed.agent)
    if old is None:
        return None
    new_id = f"{base}-{number + 1}"
    others = [s for s in progress.plan.subtasks if s.id != old.id]
    try:
        answer = ask_planner(ctx, progress, old, failed, start, others)
    except GitteamError as exc:  # the planner could not answer (its model, a limit): the failure stands as it was
        ctx.journal.append(Replanned(agent=old.id, attempt=number + 1, reason=failed.reason,
                                     error=f"the planner could not replan it: {exc}"))
        return None
    if answer is None:
        ctx.journal.append(Replanned(agent=old.id, attempt=number + 1, reason=failed.reason))
        return None
    new = Subtask(new_id, answer.title, answer.instructions, answer.files, old.depends_on, old.provides,
                  old.consumes, old.priority)
    if claim_subtasks(ctx.repo, ctx.run, {new.id: list(new.files)}).get(new.id):
        raise GitteamError(f"the next attempt of {old.id} needs files another run holds: "
                           f"{', '.join(new.files)}; gitteam resume {ctx.run} tries again")
    ctx.journal.append(Replanned(agent=old.id, attempt=number + 1, reason=failed.reason, subtask=new.to_json()))
    progress.plan = progress.plan.replacing(old.id, new)
    attempts[new.id] = number + 1
    return new


def ask_planner(ctx: RunContext, progress: Progress, old: Subtask, failed: Outcome, start: str,
                others: list[Subtask]) -> Subtask | None:
    """The planner's rewrite of `old` (one subtask, none of the other subtasks' files), or None."""

    def check(plan: Plan) -> list[str]:
        if len(plan.subtasks) != 1:
            return [f"submit exactly one subtask, the next attempt of {old.id} (or none to give it up)."]
        taken = [f"{path} (subtask {s.id})" for path in plan.subtasks[0].files for s in others
                 if any(entries_overlap(path, theirs) is not None for theirs in s.files)]
        return [f"these files belong to other subtasks: {', '.join(taken)}."] if taken else []

    context = ctx.call_context("planner", "planner")
    view = CommitView(ctx.repo, start, ctx.config.secret_files())
    toolbox = planner_role.planner_tools(view, ctx.board, ctx.config.limits.plan_attempts, check=check,
                                         may_give_up=True)
    agent = Agent(ctx.model("planner"), planner_role.SYSTEM, toolbox, context, ctx.limits, ctx.meter,
                  terminal="submit_plan", on_tool=ctx.on_tool, transcript=ctx.transcript(context))
    work = ctx.repo.diff(start, failed.head) if failed.head and failed.head != start else ""
    if len(work) > WORK_MAX_CHARS:
        work = work[:WORK_MAX_CHARS] + f"\n[... cut by gitteam: {len(work):,} characters in all]"
    findings = format_findings(failed.verdict.findings) if failed.verdict is not None else ""
    message = planner_role.replan_brief(ctx.task, json.dumps(progress.plan.to_json(), indent=1),
                                        json.dumps(old.to_json(), indent=1), failed.reason, findings,
                                        work or "(nothing committed)")
    result = agent.run(message)
    assert isinstance(result, planner_role.PlanResult)
    return result.plan.subtasks[0] if result.plan.subtasks else None

"""Another round for merged subtasks, with given feedback: re-coded, re-reviewed, merged again.

One mechanism for two callers: the integration review's findings, sent to the subtasks that own the files
they name (`repair_feedback`; `[review] integration_repairs` rounds), and the person's "request changes" at
the approval prompt or `gitteam approve RUN --request-changes AGENT=TEXT`. Each chosen subtask's coder
starts again in its worktree, on its branch (its approved work committed there), with its brief and the
feedback; its whole change since its start goes through the merge gate again, and an approved head is merged
into the integration branch on top of what is there. A refused rework changes nothing of the integration
branch: the subtask's earlier, merged work stands, and its new commits stay on its branch. A round stopped by
an error, the budget or an interrupt (or a kill: the journal holds the feedback until the subtask merges again)
is run again by `gitteam resume`, with its feedback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gitteam.errors import UsageError
from gitteam.events import AgentFinished, ReworkRequested
from gitteam.plan import Plan
from gitteam.review.verdict import Finding, Verdict, format_findings
from gitteam.run.context import Outcome, Progress, RunContext
from gitteam.run.subtask import Assignment, run_subtask

Merge = Callable[[Outcome], str]  # integration.merge_agent: the approved head into the integration branch


def rework(ctx: RunContext, progress: Progress, feedback: Mapping[str, str], origin: str,
           merge: Merge) -> list[Outcome]:
    """One more round for each subtask in `feedback` (subtask id -> what to change), one after another in plan
    order; approved ones are merged. Returns every outcome; the refused ones' merged work is left as it was."""
    plan = progress.plan
    ctx.journal.append(ReworkRequested(origin=origin, feedback=dict(feedback)))
    outcomes: list[Outcome] = []
    for index, subtask in enumerate(plan.subtasks):
        if subtask.id not in feedback:
            continue
        start = progress.starts.get(subtask.id) or progress.base
        dependencies = tuple(progress.handoffs[d] for d in subtask.depends_on if d in progress.handoffs)
        outcome = run_subtask(ctx, Assignment(subtask, start, index, dependencies, resume=True, plan=plan,
                                              feedback=feedback[subtask.id]))
        if outcome.status == "approved":
            ctx.journal.append(AgentFinished(agent=outcome.agent, status="approved", head=outcome.head))
            merge(outcome)
            progress.merged_agent(ctx.repo, outcome, start)
        elif outcome.status == "refused":  # the integration branch holds its earlier work: merged, as before
            ctx.journal.append(AgentFinished(agent=outcome.agent, status="merged", head=outcome.head,
                                             reason=f"rework refused: {outcome.reason}; its merged work stands"))
        else:  # stopped (an error, the budget, an interrupt): `resume` runs the round again, feedback and all
            ctx.journal.append(AgentFinished(agent=outcome.agent, status=outcome.status, head=outcome.head,
                                             reason=f"rework {outcome.status}: {outcome.reason}"))
        outcomes.append(outcome)
    return outcomes


def check_feedback(plan: Plan, merged: Mapping[str, object], feedback: Mapping[str, str]) -> None:
    """UsageError unless every subtask named is a merged subtask of the run and every feedback says something."""
    for agent, text in feedback.items():
        if agent not in plan.by_id():
            known = ", ".join(s.id for s in plan.subtasks) or "none"
            raise UsageError(f"{agent!r} is not a subtask of this run (its subtasks: {known})")
        if agent not in merged:
            raise UsageError(f"subtask {agent!r} has not merged into the run's result; only merged subtasks can "
                             "be asked for changes")
        if not text.strip():
            raise UsageError(f"say what {agent!r} should change: --request-changes {agent}=\"what to change\"")


def parse_requests(values: list[str]) -> dict[str, str]:
    """`AGENT=TEXT` arguments (repeatable; the same agent twice: its texts joined) -> {agent: text}."""
    found: dict[str, str] = {}
    for value in values:
        agent, sep, text = value.partition("=")
        if not sep or not agent.strip():
            raise UsageError(f"--request-changes takes AGENT=\"what to change\", not {value!r}")
        agent = agent.strip()
        found[agent] = f"{found[agent]}\n{text}" if agent in found else text
    return found


def repair_feedback(plan: Plan, merged: Mapping[str, object], verdict: Verdict) -> dict[str, str]:
    """The integration review's findings, each to the merged subtasks owning the file it names; a finding that
    names no file of a merged subtask (the change as a whole, a failing test run) goes to every one of them."""
    owners = [s for s in plan.subtasks if s.id in merged]
    routed: dict[str, list[Finding]] = {}
    for finding in verdict.findings:
        owning = [s.id for s in owners if finding.file and s.ownership.owns(finding.file)]
        for agent in owning or [s.id for s in owners]:
            routed.setdefault(agent, []).append(finding)
    header = ("The review of the integrated result (every subtask merged together) requested changes: "
              f"{verdict.summary.strip() or 'no summary'}\nIts findings on your files or on the whole change:\n")
    return {agent: header + format_findings(found) for agent, found in routed.items()}

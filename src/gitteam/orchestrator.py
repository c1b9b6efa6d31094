"""A run from task to fast-forward: plan, waves of coders in parallel, merge gate, integration, approval.

The orchestrator never prints: it journals events, which the UI subscribes to, and returns a
`RunResult` whose exit code the CLI passes on. Every step is journaled before and after it changes git,
so `resume` can carry on from what reached the disk.
"""

from __future__ import annotations

import re
import secrets as random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gitteam import integration
from gitteam.config import Config, settings_of
from gitteam.context import RunContext, RunOptions, RunResult, command_runner, run_meter
from gitteam.errors import Exit, GitteamError, UsageError
from gitteam.git import Repository
from gitteam.journal import (
    BUDGET,
    FAILED,
    INTERRUPTED,
    REFUSED,
    Journal,
    RunState,
    exclusive,
    load_run,
    owner,
)
from gitteam.locks.plan import Plan, serialize_overlaps, waves
from gitteam.locks.protected import allowing, check_patterns, plan_refusals, planner_note, protection_for, refusal_error
from gitteam.locks.refs import claim_files
from gitteam.memory import Blackboard, backlog
from gitteam.memory.recall import PLANNER_TOKENS, mentioned_paths
from gitteam.metering import Meter
from gitteam.models.base import CallContext
from gitteam.models.registry import COMMAND, Registry
from gitteam.overview import repository_overview
from gitteam.review.agents import check_models as check_reviewer_models
from gitteam.roles import planner as planner_role
from gitteam.roles.agent import Agent, Limits
from gitteam.roles.tools import CommitView
from gitteam.sandbox.runner import describe as describe_sandbox
from gitteam.worker import Assignment, Outcome, run_subtask


def new_run_id(task: str) -> str:
    words = re.findall(r"[a-z0-9]+", task.lower())[:4]
    slug = "-".join(words)[:32].strip("-") or "run"
    return f"{slug}-{random.token_hex(3)}"


def open_context(repo: Repository, config: Config, run: str, task: str, target: str, spent: float = 0.0,
                 listener: Callable[[dict[str, Any]], None] | None = None, tokens: int = 0,
                 registry: Registry | None = None) -> RunContext:
    journal = Journal(repo.state_dir, run)
    if listener is not None:
        journal.subscribe(listener)
    meter = run_meter(config, journal, spent=spent, tokens=tokens)
    return RunContext(
        repo=repo, config=config, journal=journal, registry=registry or Registry(config, repo.root), meter=meter,
        board=Blackboard(repo, run=run, role="agent"), run=run, task=task, target=target,
        commands=command_runner(repo, config),
    )


def resolve_target(repo: Repository, config: Config) -> tuple[str, str]:
    target = config.run.target or repo.head_branch() or ""
    if not target:
        raise UsageError("HEAD is detached: check out a branch or pass --target BRANCH")
    base = repo.rev_parse(f"refs/heads/{target}")
    if base is None and target == repo.head_branch() and repo.rev_parse("HEAD") is None:
        raise UsageError(f"{target} has no commits yet: commit something first (the team works from a commit)")
    if base is None:
        raise UsageError(f"no branch named {target!r} (pass --target BRANCH)")
    return target, base


def start_run(repo: Repository, config: Config, task: str, options: RunOptions,
              listener: Callable[[dict[str, Any]], None] | None = None, run: str | None = None,
              registry: Registry | None = None) -> RunResult:
    """A new run. `run` and `registry` are given by `gitteam replay`: the recorded run's id, and models that
    answer from its transcripts."""
    if not task.strip():
        raise UsageError("the task is empty: say what the team should do")
    flags = check_patterns(options.allow_protected, "--allow-protected")
    config = allowing(config, flags)  # the run's allowance; journaled below, so resume and approve see it
    target, base = resolve_target(repo, config)
    registry = registry or Registry(config, repo.root)
    registry.check_roles(economy=has_budget(config))  # a missing key or model fails before any work
    check_reviewer_models(config, registry.resolve)
    check_commands(repo, config, registry)
    run = run or new_run_id(task)
    ctx = open_context(repo, config, run, task, target, listener=listener, registry=registry)
    ctx.journal.append("run_started", run=run, task=task, target=target, base=base, owner=owner(), options={
        "yes": options.yes, "no_merge": options.no_merge, "keep": options.keep, **registry.specs(),
        "budget": budget_json(config), "allow_protected": list(flags),
    }, sandbox=describe_sandbox(config.sandbox), ignored_settings=list(config.ignored),
                       settings=settings_of(config))
    try:
        plan = make_plan(ctx, base)
        claim_files(repo, run, {path: sub.id for sub in plan.subtasks for path in sub.files})
        integration.create_branch(ctx, base)
        return execute(ctx, plan, options, resumed=frozenset())
    except KeyboardInterrupt:
        return ctx.finish(INTERRUPTED, Exit.INTERRUPTED, "interrupted; carry on with: gitteam resume " + run)
    except GitteamError as exc:
        return ctx.finish(FAILED if exc.exit_code != Exit.BUDGET else BUDGET, exc.exit_code, str(exc))


def check_commands(repo: Repository, config: Config, registry: Registry) -> None:
    """A run that will execute commands (tests, setup, the run tool, a command: coder) needs its sandbox:
    when it cannot run here, say so now (exit 2), before any model is paid."""
    coder = registry.spec_for("coder")
    if config.allowed_commands() or config.run.setup or coder.startswith(COMMAND):
        command_runner(repo, config).check()


def make_plan(ctx: RunContext, base: str) -> Plan:
    overview = repository_overview(ctx.repo, base, ctx.config.planner.overview_tokens)
    memory = memory_digest(ctx.board, ctx.task)
    view = CommitView(ctx.repo, base, ctx.config.secret_files())
    toolbox = planner_role.planner_tools(view, ctx.board, ctx.config.limits.plan_attempts)
    context = ctx.call_context("planner", "planner")
    agent = Agent(ctx.model("planner"), planner_role.SYSTEM, toolbox, context, ctx.limits, ctx.meter,
                  terminal="submit_plan", on_tool=ctx.on_tool, transcript=ctx.transcript(context))
    result = planner_role.run_planner(agent, ctx.task, overview, memory, planner_note(protection_for(
        ctx.config.protect)))
    plan, notes = serialize_overlaps(result.plan)
    ctx.journal.append("plan", plan=plan.to_json(), summary=result.summary, serialized=notes,
                       waves=[[s.id for s in wave] for wave in waves(plan)])
    # Journaled first: `gitteam resume RUN --allow-protected PATH` carries on with this plan, no new planner call.
    refuse_protected(plan, ctx.config, ctx.run)
    return plan


def refuse_protected(plan: Plan, config: Config, run: str | None) -> None:
    """UsageError (exit 2) when a subtask lists protected paths the run does not allow; before any coder."""
    refusals = plan_refusals(((sub.id, sub.files) for sub in plan.subtasks), protection_for(config.protect))
    if refusals:
        raise refusal_error(refusals, run)


def plan_only(repo: Repository, config: Config, task: str,
              allow_protected: tuple[str, ...] = ()) -> tuple[Plan, list[str], str]:
    """`gitteam plan`: the planner's plan, validated and serialized; changes nothing in git or in run state."""
    if not task.strip():
        raise UsageError("the task is empty: say what the team should do")
    config = allowing(config, check_patterns(allow_protected, "--allow-protected"))
    _, base = resolve_target(repo, config)
    registry = Registry(config, repo.root)
    limits = Limits(config.limits.max_steps, config.limits.max_tokens, config.limits.reminders,
                    max_seconds=config.limits.max_seconds, search_seconds=config.limits.search_seconds)
    context = CallContext(run="plan", role="planner", agent="planner")
    overview = repository_overview(repo, base, config.planner.overview_tokens)
    view = CommitView(repo, base, config.secret_files())
    toolbox = planner_role.planner_tools(view, None, config.limits.plan_attempts)
    agent = Agent(registry.for_role("planner"), planner_role.SYSTEM, toolbox, context, limits,
                  Meter(config.run.budget), terminal="submit_plan")
    result = planner_role.run_planner(agent, task, overview, memory_digest(Blackboard(repo), task),
                                      planner_note(protection_for(config.protect)))
    plan, notes = serialize_overlaps(result.plan)
    refuse_protected(plan, config, None)
    return plan, notes, result.summary


def memory_digest(board: Blackboard, query: str) -> str:
    """The planner's team memory: entries on the task's words and the paths it names, within a token budget."""
    return board.digest(query, files=mentioned_paths(query), budget_tokens=PLANNER_TOKENS)


def record_backlog(ctx: RunContext, outcome: Outcome) -> None:
    """The merged subtask's unfixed minor and info findings become backlog entries (`gitteam backlog`)."""
    try:
        entries = backlog.record_from_journal(ctx.board, ctx.journal.events(), outcome.agent, outcome.head)
    except GitteamError as exc:  # the memory is a by-product: its failure must not undo a merged subtask
        ctx.journal.append("backlog", agent=outcome.agent, entries=[], error=str(exc))
        return
    if entries:
        ctx.journal.append("backlog", agent=outcome.agent, entries=[e.id for e in entries])


def execute(ctx: RunContext, plan: Plan, options: RunOptions, resumed: frozenset[str]) -> RunResult:
    """Run the waves not yet merged, then integrate and ask; all or nothing."""
    state = load_run(ctx.repo.state_dir, ctx.run)
    summaries = {a.id: a.summary for a in state.agents.values() if a.status == "merged"}
    # approved before a crash or a sibling's failure, not merged yet: merge it as it is, do not redo it
    approved = {a.id: Outcome(a.id, "approved", a.head, summary=a.summary)
                for a in state.agents.values() if a.status == "approved" and a.head}
    failed: list[Outcome] = []
    max_agents = options.max_agents or ctx.config.run.max_agents
    index = {sub.id: n for n, sub in enumerate(plan.subtasks)}
    for wave in waves(plan):
        todo = [sub for sub in wave if sub.id not in summaries]
        if failed:
            for sub in todo:
                ctx.journal.append("agent_finished", agent=sub.id, status="skipped",
                                   reason="not started: an earlier subtask failed")
            continue
        start = integration.head(ctx)
        jobs = [Assignment(sub, start, index[sub.id], tuple((d, summaries.get(d, "")) for d in sub.depends_on),
                           resume=sub.id in resumed) for sub in todo if sub.id not in approved]
        outcomes = run_wave(ctx, jobs, max_agents)
        for outcome in outcomes:
            ctx.journal.append("agent_finished", agent=outcome.agent, status=outcome.status, reason=outcome.reason,
                               head=outcome.head)
            if outcome.status != "approved":
                failed.append(outcome)
        outcomes = [approved[sub.id] for sub in todo if sub.id in approved] + outcomes
        if not failed:
            for outcome in outcomes:
                integration.merge_agent(ctx, outcome)
                record_backlog(ctx, outcome)
                summaries[outcome.agent] = outcome.summary
    if failed:
        return finish_failed(ctx, failed)
    return integration.conclude(ctx, options)


def run_wave(ctx: RunContext, jobs: list[Assignment], max_agents: int) -> list[Outcome]:
    if len(jobs) <= 1 or max_agents == 1:
        return [run_subtask(ctx, job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(max_agents, len(jobs)), thread_name_prefix="agent") as pool:
        futures = [pool.submit(run_subtask, ctx, job) for job in jobs]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            ctx.meter.halt("interrupted")  # agents commit what they have and stop before their next call
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True)
            raise


def finish_failed(ctx: RunContext, failed: list[Outcome]) -> RunResult:
    statuses = {o.status for o in failed}
    if "interrupted" in statuses:
        state, code = INTERRUPTED, Exit.INTERRUPTED
    elif "budget" in statuses:
        state, code = BUDGET, Exit.BUDGET
    elif "failed" in statuses:
        state, code = FAILED, Exit.FAILED
    else:
        state, code = REFUSED, Exit.REFUSED
    first = failed[0]
    lines = [f"{o.agent}: {o.status}: {o.reason}" for o in failed]
    message = (f"nothing merged into {ctx.target}: " + "; ".join(lines) +
               f". Branches are kept (gitteam show {ctx.run} {first.agent}); retry with gitteam resume {ctx.run}")
    return ctx.finish(state, code, message)


def resume_run(repo: Repository, config: Config, run: str, options: RunOptions,
               listener: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    with exclusive(repo.state_dir, run):  # two resumes (or a resume and an approve) at once: one is refused
        return _resume(repo, config, run, options, listener)


def _resume(repo: Repository, config: Config, run: str, options: RunOptions,
            listener: Callable[[dict[str, Any]], None] | None) -> RunResult:
    state = load_run(repo.state_dir, run)
    if state.state in ("merged", "rejected", "aborted"):
        raise UsageError(f"run {run} is {state.state}; there is nothing to resume")
    flags = check_patterns(options.allow_protected, "--allow-protected")
    config = allowing(config, [*state.allow_protected, *flags])
    if state.running_elsewhere:
        where = f"process {state.owner.get('pid')} on {state.owner.get('host')}"
        raise UsageError(f"run {run} is still running ({where}); wait for it, or stop it first (Ctrl-C)")
    ctx = open_context(repo, config, run, state.task, state.target, spent=state.cost, listener=listener,
                       tokens=state.tokens)
    ctx.registry.check_roles(economy=has_budget(config))
    check_reviewer_models(config, ctx.registry.resolve)
    check_commands(repo, config, ctx.registry)
    # The budget is the run's new total: what was spent before counts against it.
    ctx.journal.append("resumed", owner=owner(), budget=config.run.budget, limits=budget_json(config),
                       spent=state.cost, tokens=state.tokens, allow_protected=list(flags), **ctx.registry.specs(),
                       sandbox=describe_sandbox(config.sandbox))
    try:
        plan = make_plan(ctx, state.base) if state.plan is None else Plan.from_json(state.plan)
        refuse_protected(plan, ctx.config, run)  # a stored plan, too: the allowance may have changed since
        claim_files(repo, run, {path: sub.id for sub in plan.subtasks for path in sub.files})  # idempotent
        if not state.integration:
            integration.create_branch(ctx, state.base)
        if state.state == "pending":
            return integration.conclude(ctx, options)
        retried = frozenset(a.id for a in state.agents.values() if a.status not in ("merged", "waiting"))
        return execute(ctx, plan, options, resumed=retried)
    except KeyboardInterrupt:
        return ctx.finish(INTERRUPTED, Exit.INTERRUPTED, "interrupted; carry on with: gitteam resume " + run)
    except GitteamError as exc:
        return ctx.finish(FAILED if exc.exit_code != Exit.BUDGET else BUDGET, exc.exit_code, str(exc))


def has_budget(config: Config) -> bool:
    """Economy mode can only start under a budget of money or tokens."""
    return config.run.budget is not None or config.run.max_tokens is not None


def budget_json(config: Config) -> dict[str, Any]:
    run, limits = config.run, config.limits
    return {"money": run.budget, "tokens": run.max_tokens, "seconds": run.max_seconds, "economy_at": run.economy_at,
            "agent_money": limits.agent_budget, "agent_tokens": limits.max_tokens,
            "agent_seconds": limits.max_seconds}


def existing_context(repo: Repository, config: Config, run: str,
                     listener: Callable[[dict[str, Any]], None] | None = None) -> tuple[RunContext, RunState]:
    state = load_run(repo.state_dir, run)
    config = allowing(config, state.allow_protected)
    return open_context(repo, config, run, state.task, state.target, state.cost, listener), state

"""A run from task to fast-forward: plan, waves of coders in parallel, merge gate, integration, approval.

The orchestrator never prints: it journals events, which the UI subscribes to, and returns a
`RunResult` whose exit code the CLI passes on. Every step is journaled before and after it changes git,
so `resume` can carry on from what reached the disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitteam.config import Config, settings_of
from gitteam.errors import Exit, GitteamError, UsageError
from gitteam.events import AgentFinished, BacklogRecorded, Event, Planned, Resumed, RunStarted
from gitteam.git import Repository
from gitteam.journal import (
    BUDGET,
    FAILED,
    FINISHED_STATES,
    INTERRUPTED,
    PLANNED,
    Journal,
    RunState,
    exclusive,
    load_run,
    owner,
)
from gitteam.locks.protected import allowing, check_patterns, plan_refusals, planner_note, protection_for, refusal_error
from gitteam.memory import Blackboard, backlog
from gitteam.memory.recall import PLANNER_TOKENS, mentioned_paths
from gitteam.metering import Meter
from gitteam.models.base import CallContext, Model
from gitteam.models.registry import Registry, check_command
from gitteam.modelspec import COMMAND, ROLES
from gitteam.names import agent_ref
from gitteam.overview import repository_overview
from gitteam.plan import PRIORITIES, Plan, Subtask, serialize_overlaps, waves
from gitteam.roles import planner as planner_role
from gitteam.roles.agent import Agent, Limits
from gitteam.roles.review_agents import OnTool
from gitteam.roles.review_agents import check_models as check_reviewer_models
from gitteam.roles.tools import CommitView
from gitteam.run import integration, worktrees
from gitteam.run.context import (
    Outcome,
    Progress,
    RunContext,
    RunOptions,
    RunResult,
    command_runner,
    failure_state,
    run_meter,
)
from gitteam.run.replan import next_attempt
from gitteam.run.subtask import Assignment, run_subtask
from gitteam.run.waiting import claim_or_queue
from gitteam.sandbox.runner import describe as describe_sandbox
from gitteam.transcripts import Transcript


def new_run_id(task: str) -> str:
    """A few words of the task and six hex digits: readable in a branch name, and new every time."""
    words = re.findall(r"[a-z0-9]+", task.lower())[:4]
    slug = "-".join(words)[:32].strip("-") or "run"
    return f"{slug}-{os.urandom(3).hex()}"


def open_context(repo: Repository, config: Config, run: str, task: str, target: str, spent: float = 0.0,
                 listener: Callable[[Event], None] | None = None, tokens: int = 0,
                 registry: Registry | None = None) -> RunContext:
    worktrees.recover(repo)  # git locks a killed gitteam left, worktrees a moved repository cut off
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
    if base is None:  # given by --target or [run] target: say what exists rather than to pass it again
        names = [name for name in repo.git("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
                 if not name.startswith("gitteam/")]  # the run's own branches are no target
        raise UsageError(f"no branch named {target!r} to fast-forward (branches: {', '.join(names[:8])}"
                         f"{', ...' if len(names) > 8 else ''})")
    return target, base


def check_ready(repo: Repository, config: Config, registry: Registry, remote: bool = False) -> None:
    """Everything a run needs that can fail before any model is paid: each role's model and key, the
    reviewers' models, and the sandbox when the run will execute commands (tests, setup, the run tool, a
    `command:` coder). Exit 2 when something is missing. With `remote`, the coders are workers elsewhere,
    with models and sandboxes of their own."""
    registry.check_roles(economy=has_budget(config), roles=("planner", "reviewer") if remote else ROLES)
    check_reviewer_models(config, registry.resolve)
    if not remote:
        check_routing(config, registry)
    coder_commands = not remote and (config.allowed_commands() or registry.spec_for("coder").startswith(COMMAND))
    if coder_commands or config.commands.test or config.run.setup:
        command_runner(repo, config).check()


def check_routing(config: Config, registry: Registry) -> None:
    """Every [routing] model resolves now (a missing key: exit 2 before anything is paid); `command:` only for
    coders, as in [roles]."""
    for tier in PRIORITIES:
        for role, spec in getattr(config.routing, tier).items():
            if str(spec).startswith(COMMAND):
                if role != "coder":
                    raise UsageError(f"routing.{tier}.{role} = {spec!r}: a command: spec is for coders only")
                check_command(str(spec))
            else:
                registry.resolve(str(spec))


def start_run(repo: Repository, config: Config, task: str, options: RunOptions,
              listener: Callable[[Event], None] | None = None, run: str | None = None,
              registry: Registry | None = None) -> RunResult:
    """A new run. `run` and `registry` are given by `gitteam replay`: the recorded run's id, and models that
    answer from its transcripts."""
    ctx, base = begin(repo, config, task, options, listener, run, registry)

    def go() -> RunResult:
        if ctx.remote is None and worktrees.cone_for(repo, ctx.config, (), base, external=False) is None:
            ctx.spares.make_when_planner_asks(ctx, base, options.max_agents or ctx.config.run.max_agents)
        try:
            plan = make_plan(ctx, base).plan
            ctx.spares.trim(ctx, len(waves(plan)[0]))
            check_checkout(ctx, plan, base)
            queued = claim_or_queue(ctx, plan)
            integration.create_branch(ctx, base)
            if ctx.remote is not None:  # workers can see it from now on; its jobs come as its subtasks start
                ctx.remote.publish(ctx.run, ctx.task, ctx.target, base, plan)
            return execute(ctx, Progress(base, plan), options, resumed=frozenset(), queued=queued)
        finally:
            ctx.spares.close(ctx)

    return stopping_cleanly(ctx, go)


def begin(repo: Repository, config: Config, task: str, options: RunOptions,
          listener: Callable[[Event], None] | None = None, run: str | None = None, registry: Registry | None = None,
          planning_only: bool = False, backlog_ids: tuple[str, ...] = ()) -> tuple[RunContext, str]:
    """A new run's journal, once everything that can fail before a model is paid has been checked: the task,
    the target, the models and keys (only the planner's for `gitteam plan`), the sandbox."""
    if not task.strip():
        raise UsageError("the task is empty: say what the team should do")
    flags = check_patterns(options.allow_protected, "--allow-protected")
    config = allowing(config, flags)  # the run's allowance; journaled below, so resume and approve see it
    target, base = resolve_target(repo, config)
    registry = registry or Registry(config, repo.root)
    if planning_only:
        registry.for_role("planner")  # a missing key or unknown model: exit 2 now, nothing paid
    else:
        check_ready(repo, config, registry, remote=options.remote is not None)
    run = run or new_run_id(task)
    ctx = open_context(repo, config, run, task, target, listener=listener, registry=registry)
    ctx.attach_remote(options.remote)
    ctx.journal.append(RunStarted(run=run, task=task, target=target, base=base, owner=owner(), options={
        "yes": options.yes, "no_merge": options.no_merge, "keep": options.keep, "remote": options.remote,
        "max_agents": options.max_agents or config.run.max_agents, **registry.specs(),
        "budget": budget_json(config), "allow_protected": list(flags), "from_backlog": list(backlog_ids),
    }, sandbox=describe_sandbox(config.sandbox), ignored_settings=list(config.ignored), settings=settings_of(config)))
    return ctx, base


def save_plan(repo: Repository, config: Config, task: str, allow_protected: tuple[str, ...] = (),
              backlog_ids: tuple[str, ...] = (),
              listener: Callable[[Event], None] | None = None) -> tuple[RunResult, PlanResult | None]:
    """`gitteam plan`: the planner's plan, journaled as a run in state "planned" (its spend in `gitteam cost`),
    for `gitteam run --plan RUN` to carry out without planning again. Nothing changes in git."""
    ctx, base = begin(repo, config, task, RunOptions(allow_protected=allow_protected), listener,
                      planning_only=True, backlog_ids=backlog_ids)
    planned: list[PlanResult] = []

    def go() -> RunResult:
        planned.append(make_plan(ctx, base))
        return ctx.finish(PLANNED, Exit.OK, f"plan saved as run {ctx.run}: gitteam run --plan {ctx.run} carries it "
                          f"out (gitteam abort {ctx.run} drops it)")

    return stopping_cleanly(ctx, go), (planned[0] if planned else None)


def run_planned(repo: Repository, config: Config, run: str, options: RunOptions, target: str | None = None,
                listener: Callable[[Event], None] | None = None) -> RunResult:
    """`gitteam run --plan RUN`: carry out a plan `gitteam plan` saved, with this command's models and options."""
    state = load_run(repo.state_dir, run)
    if state.state != PLANNED:
        more = "" if state.state in FINISHED_STATES else f"; gitteam resume {run} continues it"
        raise UsageError(f"run {run} is {state.state}, not a saved plan (gitteam plan TASK saves one){more}")
    if target and target != state.target:
        raise UsageError(f"the plan {run} was made on {state.target}, not {target}: plan again with --target {target}")
    return resume_run(repo, config, run, options, listener)


def check_checkout(ctx: RunContext, plan: Plan, base: str) -> None:
    """Refuse, before any coder is paid, a run whose fast-forward the user's checkout of the target would stop:
    uncommitted changes (untracked files included) at a path the plan changes. Found only at the end, every
    agent and review would have run for a result that cannot land. An ignored file where the run adds one is
    left to the fast-forward's own check: only a plan that also un-ignores it can reach it."""
    checkout = ctx.repo.worktree_of_branch(ctx.target)
    planned = sorted({path for sub in plan.subtasks for path in sub.files})
    if checkout is None or not checkout.is_dir() or not planned:
        return
    if ctx.repo.rev_parse(f"refs/heads/{ctx.target}") != base:
        return  # the target moved: the run merges its new commits at the end, and the check happens then
    changed = ctx.repo.worktree_changes(checkout)
    in_the_way = [path for path in planned
                  if any(name == path or (path.endswith("/") and name.startswith(path)) for name in changed)]
    if in_the_way:
        listed = ", ".join(in_the_way[:5]) + (f" and {len(in_the_way) - 5} more" if len(in_the_way) > 5 else "")
        raise UsageError(f"{ctx.target} is checked out in {checkout} with uncommitted or untracked files the plan "
                         f"changes: {listed}; the run could not land on them, so no coder was started. Commit "
                         f"or stash them, then gitteam resume {ctx.run}")


def stopping_cleanly(ctx: RunContext, body: Callable[[], RunResult]) -> RunResult:
    """Run `body`; an interrupt or an error ends the run with its state journaled and the work kept."""
    try:
        return body()
    except KeyboardInterrupt:
        return ctx.finish(INTERRUPTED, Exit.INTERRUPTED, "interrupted; carry on with: gitteam resume " + ctx.run)
    except GitteamError as exc:
        message = str(exc)
        if exc.exit_code == Exit.FAILED and "gitteam resume" not in message:  # a model gone, git failing: retry
            message += f"; carry on with: gitteam resume {ctx.run}"
        return ctx.finish(FAILED if exc.exit_code != Exit.BUDGET else BUDGET, exc.exit_code, message)


@dataclass(frozen=True)
class Planning:
    """What a planner needs besides the task: the run's (or a one-off) model, account and memory."""

    model: Model
    context: CallContext
    limits: Limits
    meter: Meter
    board: Blackboard | None  # None: the planner reads memory but records nothing (gitteam plan)
    on_tool: OnTool | None = None
    transcript: Transcript | None = None


def plan_task(repo: Repository, config: Config, task: str, base: str, planning: Planning) -> PlanResult:
    """The planner's plan for `task` at `base`, validated, with overlaps serialized; protected paths refused."""
    overview = repository_overview(repo, base, config.planner.overview_tokens, task, mentioned_paths(task))
    memory = (planning.board or Blackboard(repo)).digest(task, files=mentioned_paths(task),
                                                         budget_tokens=PLANNER_TOKENS)
    view = CommitView(repo, base, config.secret_files())
    toolbox = planner_role.planner_tools(view, planning.board, config.limits.plan_attempts)
    agent = Agent(planning.model, planner_role.SYSTEM, toolbox, planning.context, planning.limits, planning.meter,
                  terminal="submit_plan", on_tool=planning.on_tool, transcript=planning.transcript)
    result = planner_role.run_planner(agent, task, overview, memory, planner_note(protection_for(config.protect)))
    plan, notes = serialize_overlaps(result.plan)
    return PlanResult(plan, notes, result.summary)


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    serialized: list[str]  # how overlapping subtasks were ordered
    summary: str


def make_plan(ctx: RunContext, base: str) -> PlanResult:
    context = ctx.call_context("planner", "planner")
    planning = Planning(ctx.model("planner"), context, ctx.limits, ctx.meter, ctx.board, ctx.on_tool,
                        ctx.transcript(context))
    result = plan_task(ctx.repo, ctx.config, ctx.task, base, planning)
    ctx.journal.append(Planned(plan=result.plan.to_json(), summary=result.summary, serialized=result.serialized,
                               waves=[[s.id for s in wave] for wave in waves(result.plan)]))
    # Journaled first: `gitteam resume RUN --allow-protected PATH` carries on with this plan, no new planner call.
    refuse_protected(result.plan, ctx.config, ctx.run)
    return result


def refuse_protected(plan: Plan, config: Config, run: str | None) -> None:
    """UsageError (exit 2) when a subtask lists protected paths the run does not allow; before any coder."""
    refusals = plan_refusals(((sub.id, sub.files) for sub in plan.subtasks), protection_for(config.protect))
    if refusals:
        raise refusal_error(refusals, run)


def record_backlog(ctx: RunContext, outcome: Outcome) -> None:
    """The merged subtask's unfixed minor and info findings become backlog entries (`gitteam backlog`)."""
    if outcome.verdict is None or outcome.verdict.decision != "APPROVE":
        return
    try:
        entries = backlog.record_findings(ctx.board, outcome.agent, outcome.verdict.to_json(), outcome.head)
    except GitteamError as exc:  # the memory is a by-product: its failure must not undo a merged subtask
        ctx.journal.append(BacklogRecorded(agent=outcome.agent, error=str(exc)))
        return
    if entries:
        ctx.journal.append(BacklogRecorded(agent=outcome.agent, entries=[e.id for e in entries]))


def execute(ctx: RunContext, progress: Progress, options: RunOptions, resumed: frozenset[str],
            queued: frozenset[str] = frozenset()) -> RunResult:
    """Run the waves not yet merged, then integrate and ask; all or nothing. The `queued` subtasks wait for
    files another run holds before they start (run/waiting.py)."""
    failed: list[Outcome] = []
    max_agents = options.max_agents or ctx.config.run.max_agents
    index = {sub.id: n for n, sub in enumerate(progress.plan.subtasks)}
    number = 0
    while number < len(layers := waves(progress.plan)):  # a next attempt takes a failed subtask's place
        wave = layers[number]
        number += 1
        todo = [sub for sub in wave if sub.id not in progress.summaries]
        if failed:
            for sub in todo:
                ctx.journal.append(AgentFinished(agent=sub.id, status="skipped",
                                                 reason="not started: an earlier subtask failed"))
            continue
        start = integration.head(ctx)
        jobs = [assignment(progress, sub, began_at(ctx, progress, sub.id, start), index[sub.id], wave,
                           resume=sub.id in resumed, queued=sub.id in queued)
                for sub in todo if sub.id not in progress.approved]
        state = _Wave(ctx, progress, wave, number, start, {job.subtask.id: job.start for job in jobs}, index, failed)
        run_wave(ctx, jobs, max_agents, state.finished, state.merge_ready)
        ctx.spares.close(ctx)  # the first wave took what it could use; the rest go now
        while state.retries and not failed:
            again, state.retries = state.retries, []
            run_wave(ctx, again, max_agents, state.finished, state.merge_ready)
        state.merge_ready()  # the ones approved before a crash, when nothing of this wave ran
        for outcome in state.merged:  # after the wave: its agents' prompts never depend on which merged first
            record_backlog(ctx, outcome)
    if failed:
        return finish_failed(ctx, failed)
    return integration.conclude(ctx, options, progress)


def began_at(ctx: RunContext, progress: Progress, agent: str, head: str) -> str:
    """Where `agent`'s work starts, the integration branch being at `head`: where its branch began, when it has
    one (a resumed subtask, a rework a crash cut short: siblings merged since are not its work), as journaled,
    else (a kill before that was journaled) where it forks from the integration branch; else `head`."""
    recorded = progress.starts.get(agent)
    if recorded:
        return recorded
    tip = ctx.repo.rev_parse(agent_ref(ctx.run, agent))
    return (ctx.repo.merge_base(tip, head) or head) if tip else head


@dataclass
class _Wave:
    """One wave as its outcomes come in (in plan order, `run_wave`): each is journaled; an approved one merges
    as soon as every subtask before it in the plan has, so the result is a sequential run's while the wave's
    slower subtasks are still at work; a failed one gets its next attempt (`retries`) or fails the run."""

    ctx: RunContext
    progress: Progress
    wave: list[Subtask]  # as it was planned when it started (a next attempt's siblings)
    number: int  # the wave's, from 1
    start: str  # the integration head it started from
    began: dict[str, str]  # subtask -> the commit its branch began at
    index: dict[str, int]  # subtask -> its place in the plan
    failed: list[Outcome]  # the run's failures: one stops every merge
    retries: list[Assignment] = field(default_factory=list)
    merged: list[Outcome] = field(default_factory=list)  # in merge order; their backlog is written after the wave

    def finished(self, outcome: Outcome) -> None:
        self.ctx.journal.append(AgentFinished(agent=outcome.agent, status=outcome.status, reason=outcome.reason,
                                              head=outcome.head))
        if outcome.status == "approved":
            self.progress.approved[outcome.agent] = outcome
            return  # merged when the outcomes done by now are all in (run_wave's `settled`)
        self.merge_ready()  # the approved ones before it merge as they would have with it still at work
        first = self.began.get(outcome.agent, self.start)
        new = None if self.failed or self.ctx.meter.stopping() else next_attempt(
            self.ctx, self.progress, outcome, first, self.progress.attempts)
        if new is None:
            self.failed.append(outcome)
            return
        self.index[new.id], self.began[new.id] = self.index[outcome.agent], first  # a fresh branch, same start
        self.retries.append(assignment(self.progress, new, first, self.index[new.id], self.wave))

    def merge_ready(self) -> None:
        """Merge the approved subtasks of the wave that follow, in plan order, the ones merged already: those
        ready together are merged together (integration.merge_agents)."""
        if self.failed:
            return  # a failure stops the run: what is approved stays so, for resume to merge
        ready: list[tuple[Outcome, str]] = []
        for sub in waves(self.progress.plan)[self.number - 1]:  # next attempts in their predecessors' places
            if sub.id in self.progress.summaries:
                continue
            outcome = self.progress.approved.get(sub.id)
            if outcome is None:
                break
            ready.append((outcome, outcome.start or self.began.get(sub.id, self.start)))
        starts = dict((outcome.agent, start) for outcome, start in ready)

        def merged(outcome: Outcome, _: str) -> None:
            del self.progress.approved[outcome.agent]
            self.merged.append(outcome)
            self.progress.merged_agent(self.ctx.repo, outcome, starts[outcome.agent])
            self.progress.feedback.pop(outcome.agent, None)

        if ready:
            integration.merge_agents(self.ctx, ready, merged)


def assignment(progress: Progress, sub: Subtask, start: str, index: int, wave: list[Subtask], resume: bool = False,
               queued: bool = False) -> Assignment:
    """One subtask's job in its wave: where it starts, its dependencies' handoffs, the plan, its siblings."""
    return Assignment(sub, start, index, tuple(progress.handoffs[d] for d in sub.depends_on if d in progress.handoffs),
                      resume=resume, plan=progress.plan, feedback=progress.feedback.get(sub.id, ""), queued=queued,
                      siblings=tuple(other for other in wave if other.id != sub.id))


def run_wave(ctx: RunContext, jobs: list[Assignment], max_agents: int,
             finished: Callable[[Outcome], None], settled: Callable[[], None] = lambda: None) -> None:
    """Run the jobs, `max_agents` at a time; each outcome goes to `finished` (in this thread) as soon as it and
    every job before it are done, so what follows from them (journal, merges, next attempts) keeps the jobs'
    order whatever order they end in; `settled` follows each run of outcomes handed over together (the ones
    done by then), so what is ready at once is merged at once."""
    if len(jobs) <= 1 or max_agents == 1:
        for job in jobs:
            finished(run_subtask(ctx, job))
            settled()
        return
    with ThreadPoolExecutor(max_workers=min(max_agents, len(jobs)), thread_name_prefix="agent") as pool:
        futures = [pool.submit(run_subtask, ctx, job) for job in jobs]
        try:
            for n, future in enumerate(futures):  # in order: a later job that ends first waits for the ones before
                finished(future.result())
                if n + 1 == len(futures) or not futures[n + 1].done():
                    settled()
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                ctx.meter.halt("interrupted")  # agents commit what they have and stop before their next call
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True)
            raise


def finish_failed(ctx: RunContext, failed: list[Outcome]) -> RunResult:
    state, code = failure_state(failed)
    first = failed[0]
    lines = [f"{o.agent}: {o.status}: {o.reason.rstrip('. ')}" for o in failed]  # a model's summary ends in "."
    message = (f"nothing merged into {ctx.target}: " + "; ".join(lines) +
               f". Branches are kept (gitteam show {ctx.run} {first.agent}); retry with gitteam resume {ctx.run}")
    return ctx.finish(state, code, message)


def resume_run(repo: Repository, config: Config, run: str, options: RunOptions,
               listener: Callable[[Event], None] | None = None) -> RunResult:
    with exclusive(repo.state_dir, run):  # two resumes (or a resume and an approve) at once: one is refused
        return _resume(repo, config, run, options, listener)


def _resume(repo: Repository, config: Config, run: str, options: RunOptions,
            listener: Callable[[Event], None] | None) -> RunResult:
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
    ctx.attach_remote(state.options.get("remote"))  # a distributed run stays one
    check_ready(repo, config, ctx.registry, remote=ctx.remote is not None)
    ctx.remember_grants(state)
    specs = ctx.registry.specs()
    # The budget is the run's new total: what was spent before counts against it.
    ctx.journal.append(Resumed(owner=owner(), budget=config.run.budget, limits=budget_json(config),
                               spent=state.cost, tokens=state.tokens, allow_protected=list(flags),
                               models=specs["models"], economy=specs["economy"],
                               sandbox=describe_sandbox(config.sandbox), options={
                                   "yes": options.yes, "no_merge": options.no_merge, "keep": options.keep,
                                   "max_agents": options.max_agents or config.run.max_agents}))

    def go() -> RunResult:
        plan = make_plan(ctx, state.base).plan if state.plan is None else Plan.from_json(state.plan)
        refuse_protected(plan, ctx.config, run)  # a stored plan, too: the allowance may have changed since
        merged = {a.id for a in state.agents.values() if a.status == "merged"}
        if state.state != "pending" and any(sub.id not in merged for sub in plan.subtasks):
            check_checkout(ctx, plan, state.base)  # coders are still to be paid (a half-done fast-forward is not)
        queued = claim_or_queue(ctx, plan)  # what it holds already stays its own
        if not state.integration:
            integration.create_branch(ctx, state.base)
        if ctx.remote is not None:
            ctx.remote.publish(ctx.run, ctx.task, ctx.target, state.base, plan)
        progress = Progress.from_state(state, plan, repo)
        if state.state == "pending":
            return integration.conclude(ctx, options, progress)
        retried = frozenset(a.id for a in state.agents.values() if a.status not in ("merged", "waiting"))
        return execute(ctx, progress, options, resumed=retried, queued=queued)

    return stopping_cleanly(ctx, go)


@dataclass(frozen=True)
class KeptSettings:
    """What `gitteam resume` goes on with: the run's own models, budget and options where no flag overrides
    them (today's config or environment may name others: the run started with these, and is billed on them)."""

    overrides: dict[str, object]  # config overrides: the run's models, budget, max_agents
    yes: bool
    no_merge: bool
    keep: bool
    notes: list[str]  # where a flag or today's settings differ from the run's, said to the person


def kept_settings(repo: Repository, config: Config, state: RunState, flags: dict[str, str | None],
                  budget_given: bool, max_agents_given: bool) -> KeptSettings:
    """`config` is today's, flags applied; `flags` maps each role to the spec a flag gave it (or None)."""
    recorded: dict[str, str] = state.options.get("models", {})
    economy: dict[str, str] = state.options.get("economy", {})
    today = Registry(config, repo.root).specs()["models"]
    overrides: dict[str, object] = {}
    notes: list[str] = []
    for role in ("planner", "coder", "reviewer"):
        was = recorded.get(role)
        if flags.get(role):
            if was and flags[role] != was:
                notes.append(f"the {role} is now {flags[role]} (the run had {was})")
        elif was:
            overrides[f"roles.{role}"] = was
            if economy.get(role):
                overrides[f"roles.economy_{role}"] = economy[role]
            if today.get(role) != was:
                notes.append(f"the {role} stays the run's {was} (your settings now say {today.get(role) or 'none'}; "
                             f"--{role} changes it)")
    limits: dict[str, Any] = state.options.get("budget", {})
    if not budget_given and limits:
        overrides.update({"run.budget": limits.get("money"), "run.max_tokens": limits.get("tokens"),
                          "run.max_seconds": limits.get("seconds")})
    if not max_agents_given and state.options.get("max_agents"):
        overrides["run.max_agents"] = state.options["max_agents"]
    return KeptSettings(overrides, bool(state.options.get("yes")), bool(state.options.get("no_merge")),
                        bool(state.options.get("keep")), notes)


def has_budget(config: Config) -> bool:
    """Economy mode can only start under a budget of money or tokens."""
    return config.run.budget is not None or config.run.max_tokens is not None


def budget_json(config: Config) -> dict[str, Any]:
    run, limits = config.run, config.limits
    return {"money": run.budget, "tokens": run.max_tokens, "seconds": run.max_seconds, "economy_at": run.economy_at,
            "agent_money": limits.agent_budget, "agent_tokens": limits.max_tokens,
            "agent_seconds": limits.max_seconds}


def existing_context(repo: Repository, config: Config, run: str,
                     listener: Callable[[Event], None] | None = None) -> tuple[RunContext, RunState]:
    state = load_run(repo.state_dir, run)
    config = allowing(config, state.allow_protected)
    ctx = open_context(repo, config, run, state.task, state.target, state.cost, listener)
    ctx.attach_remote(state.options.get("remote"))
    return ctx, state

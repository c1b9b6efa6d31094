"""What every part of one run shares (the repository, configuration, journal, models, meter) and the data
the run passes between its steps: options, outcomes, progress, the approval request, the result."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gitteam.config import Config
from gitteam.errors import Exit
from gitteam.events import AgentEvent, Economy, RunFinished, ToolRefused, UsageRecorded
from gitteam.git import Repository
from gitteam.journal import BUDGET, FAILED, FINISHED_STATES, INTERRUPTED, REFUSED, Journal, RunState
from gitteam.memory import Blackboard
from gitteam.metering import Meter, RunBudget
from gitteam.models.base import CallContext, Model, Reply, ToolCall
from gitteam.models.registry import Registry
from gitteam.plan import PRIORITIES, Handoff, Plan, Subtask
from gitteam.review.verdict import ReviewFormatError, Verdict
from gitteam.roles.agent import Limits
from gitteam.roles.review_agents import ReviewSession
from gitteam.roles.tools import ToolResult
from gitteam.run import worktrees
from gitteam.run.checkouts import GateCheckouts
from gitteam.run.escalate import escalate
from gitteam.run.handoff import handoff
from gitteam.run.remote_coder import RemoteRun
from gitteam.run.spares import SpareWorktrees
from gitteam.sandbox.runner import CommandRunner, from_config
from gitteam.transcripts import Transcript, Transcripts


@dataclass(frozen=True)
class AgentResult:
    """One agent's part of the result, as the approval prompt shows it."""

    agent: str
    summary: str  # what its coder said it did
    round: int
    decision: str  # the last verdict on it: APPROVE, or the integration review's decision
    verdict: str  # the reviewers' summary
    findings: list[dict[str, Any]]  # Finding.to_json, every severity
    files: list[str]  # what it changed
    tokens: int
    cost: float
    diff: str


@dataclass(frozen=True)
class ApprovalRequest:
    """What the person decides on, prepared by the run: the UI renders it and touches no git."""

    run: str
    target: str
    files: list[str]
    protected: list[str]  # changed paths that can make git, CI or gitteam run code
    diff: str
    agents: list[AgentResult] = field(default_factory=list)  # the subtasks, then the integration review's verdict
    cost: float = 0.0  # the run's spend so far
    tokens: int = 0
    budget: float | None = None
    reworkable: list[tuple[str, str]] = field(default_factory=list)  # merged subtasks (id, title): changes go to them
    note: str = ""  # what happened since the person was last asked (a rework that was refused)


@dataclass(frozen=True)
class ChangesRequested:
    """The person's "request changes": per merged subtask, what its coder should change (run/rework.py)."""

    feedback: dict[str, str]


# The person's answer: "approve", "reject", "later" (leave it pending), "interrupted" (Ctrl-C at the prompt:
# pending too, and the command exits 130 as any interrupted command does), or changes requested from some of the
# merged subtasks.
Approver = Callable[[ApprovalRequest], "str | ChangesRequested"]


@dataclass(frozen=True)
class RunOptions:
    yes: bool = False
    no_merge: bool = False
    keep: bool = False
    max_agents: int | None = None
    approver: Approver | None = None  # None: no one to ask (no TTY); the run is left pending
    remote: str | None = None  # --remote: the coders are workers that reach this git remote (docs/workers.md)
    allow_protected: tuple[str, ...] = ()  # --allow-protected of this command line: the only allowance --yes trusts


@dataclass
class RunResult:
    run: str
    state: str
    exit_code: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one subtask's coder and gate ended."""

    agent: str
    status: str  # approved, failed, refused, budget, interrupted
    head: str
    reason: str = ""
    summary: str = ""
    verdict: Verdict | None = None  # the gate's last verdict (its minor findings go to the backlog when merged)
    start: str = ""  # where its worktree began, when not where the wave began (it waited for another run's files)


def failure_state(outcomes: list[Outcome]) -> tuple[str, int]:
    """The run's state and exit code when these subtasks did not pass: an interrupt, then the budget, then an
    error outweigh a refusal by the gate."""
    statuses = {o.status for o in outcomes}
    if "interrupted" in statuses:
        return INTERRUPTED, Exit.INTERRUPTED
    if "budget" in statuses:
        return BUDGET, Exit.BUDGET
    if "failed" in statuses:
        return FAILED, Exit.FAILED
    return REFUSED, Exit.REFUSED


@dataclass
class Progress:
    """What the run knows of itself as it goes, in memory; the journal is for recovery and display.

    A new run starts empty; `resume` and `approve` rebuild it once from the journal (`from_state`).
    """

    base: str
    plan: Plan
    summaries: dict[str, str] = field(default_factory=dict)  # merged subtasks: what each coder said it did
    approved: dict[str, Outcome] = field(default_factory=dict)  # approved, not merged yet (a crash, a sibling)
    integration_review: tuple[str, str] | None = None  # (head, decision) of the last review of the result
    handoffs: dict[str, Handoff] = field(default_factory=dict)  # merged subtasks: what their dependents get
    starts: dict[str, str] = field(default_factory=dict)  # subtasks started: the commit their branch began at
    repairs: int = 0  # rounds the integration review's findings went back to the subtasks
    feedback: dict[str, str] = field(default_factory=dict)  # rework rounds a crash cut short: their feedback
    attempts: dict[str, int] = field(default_factory=dict)  # later attempts of failed subtasks: id -> number

    def merged_agent(self, repo: Repository, outcome: Outcome, start: str) -> None:
        """`outcome`'s subtask merged (its worktree started at `start`): its summary and handoff are kept."""
        self.summaries[outcome.agent] = outcome.summary
        self.starts[outcome.agent] = start
        subtask = self.plan.by_id().get(outcome.agent)
        if subtask is not None and subtask.id in _depended_on(self.plan):  # read from git only when needed
            self.handoffs[outcome.agent] = handoff(repo, subtask, start, outcome.head, outcome.summary)

    @classmethod
    def from_state(cls, state: RunState, plan: Plan, repo: Repository | None = None) -> Progress:
        agents = state.agents.values()
        review = state.integration_review
        subtasks = plan.by_id()
        merged = [a for a in agents if a.status == "merged"]
        return cls(
            base=state.base, plan=plan,
            summaries={a.id: a.summary for a in merged},
            handoffs={a.id: handoff(repo, subtasks[a.id], a.base, a.head, a.summary) for a in merged
                      if repo is not None and a.id in subtasks and a.id in _depended_on(plan)},
            starts={a.id: a.base for a in agents if a.base},  # where each one's branch began
            repairs=state.repairs,
            feedback=dict(state.rework),
            attempts=dict(state.attempts),
            approved={a.id: Outcome(a.id, "approved", a.head, summary=a.summary, verdict=_verdict(a.verdict))
                      for a in agents if a.status == "approved" and a.head},
            integration_review=(review["head"], str(review["verdict"].get("decision"))) if review else None,
        )


def _depended_on(plan: Plan) -> set[str]:
    """The subtasks some other one depends on: the only ones whose handoff is ever read (a replanned attempt
    keeps its dependencies, and takes its predecessor's place in its dependents')."""
    return {dep for sub in plan.subtasks for dep in sub.depends_on}


def _verdict(data: dict[str, Any] | None) -> Verdict | None:
    try:
        return Verdict.from_json(data) if data else None
    except ReviewFormatError:  # edited by hand: the verdict is lost, the approval (its event) stands
        return None


@dataclass
class RunContext:
    repo: Repository
    config: Config
    journal: Journal
    registry: Registry
    meter: Meter
    board: Blackboard
    run: str
    task: str
    target: str
    commands: CommandRunner  # every agent or repository command of the run goes through it, contained
    granted: dict[str, list[str]] = field(default_factory=dict)  # agent -> files request_files gave it
    grant_notes: dict[str, list[str]] = field(default_factory=dict)  # agent -> "paths (why it asked)", per grant

    def remember_grants(self, state: RunState) -> None:
        """A resumed run's grants, from its journal: they stay the subtasks' own."""
        for agent in state.agents.values():
            for request in agent.requests:
                if request["granted"]:
                    self.granted.setdefault(agent.id, []).extend(request["granted"])
                    self.grant_notes.setdefault(agent.id, []).append(
                        f"{', '.join(request['granted'])} ({request['reason']})")

    def tier(self, subtask: Subtask) -> str:
        """The priority whose models serve `subtask` now: its own, or the one below once the run has used
        [routing] downgrade_at of its budget (critical -> normal -> low)."""
        if subtask.priority in PRIORITIES[:-1] and self.meter.spent_fraction() >= self.config.routing.downgrade_at:
            return PRIORITIES[PRIORITIES.index(subtask.priority) + 1]
        return subtask.priority

    def routed_spec(self, role: str, subtask: Subtask) -> str | None:
        """The model spec [routing] gives `role` for `subtask`'s tier; None: the role's own (economy mode, which
        switches every role to its cheaper model, wins)."""
        if self.economy:
            return None
        spec = getattr(self.config.routing, self.tier(subtask), {}).get(role)
        return str(spec) if spec else None

    def owned_files(self, subtask: Subtask) -> tuple[str, ...]:
        """The subtask's files: its plan's, and what the dispatcher granted it since (run/grants.py)."""
        return (*subtask.files, *self.granted.get(subtask.id, ()))
    gate_checkouts: GateCheckouts = field(default_factory=GateCheckouts)  # whole trees for tests (sparse mode)
    spares: SpareWorktrees = field(default_factory=SpareWorktrees)  # first-wave worktrees made while planning
    remote: RemoteRun | None = None  # distributed mode: where the subtasks' jobs go (run/remote_coder.py)

    def attach_remote(self, name: str | None) -> None:
        """Distributed mode for this run: its coders are workers on `name` (checked now: exit 2 if unknown)."""
        if name:
            self.remote = RemoteRun.open(self.repo, self.config, name)

    def finish(self, state: str, code: int, message: str, **details: Any) -> RunResult:
        """The run's last event: its state, exit code and the one message the person reads; a run that needs
        the person (failed, refused, out of budget, pending) tells them beyond the terminal too."""
        if self.remote is not None:
            if state in FINISHED_STATES:  # no worker should take its jobs any more
                message += self.remote.close(self.run)
            self.journal.append(self.remote.traffic())
        self.journal.append(RunFinished(state=state, exit_code=int(code), message=message, **details))
        escalate(self.run, state, message, self.config.run.notify)
        return RunResult(self.run, state, int(code), message, dict(details))

    @property
    def limits(self) -> Limits:
        return Limits.of(self.config.limits)

    def model(self, role: str) -> Model:
        """The role's model for a new agent: it moves to the role's economy model when the meter says so."""
        return self.registry.role_model(role, lambda: self.meter.economy)

    @property
    def economy(self) -> bool:
        """Past run.economy_at of the budget: cheaper models, and no optional reviewer pass starts."""
        return self.meter.economy

    def on_tool(self, context: CallContext, call: ToolCall, result: ToolResult) -> None:
        """Refused tool calls are journaled: the person sees the guards at work, and so does `show`."""
        if result.is_error:
            self.journal.append(ToolRefused(agent=context.agent, role=context.role, tool=call.name,
                                            error=result.text.removeprefix("error: ")[:300]))

    def transcript(self, context: CallContext) -> Transcript:
        """The agent's transcript, beside the journal: resume appends to the same file."""
        return Transcripts(self.journal.dir)(context)

    def review_session(self, agent: str, round_number: int, routed: str | None = None) -> ReviewSession:
        """The configured reviewers of `agent`'s diff (a subtask id, or INTEGRATION), on the run's account;
        reviewers without a model of their own get `routed` ([routing]) or roles.reviewer."""
        def model_for(spec: str | None) -> Model:
            chosen = spec or routed
            return self.registry.resolve(chosen) if chosen else self.model("reviewer")

        return ReviewSession(
            repo=self.repo, config=self.config, model_for=model_for,
            meter=self.meter, limits=self.limits, run=self.run, agent=agent, board=self.board, on_tool=self.on_tool,
            round=round_number, economy=lambda: self.meter.economy, transcripts=self.transcript,
        )

    def call_context(self, role: str, agent: str, round_number: int = 1) -> CallContext:
        return CallContext(run=self.run, role=role, agent=agent, round=round_number)  # type: ignore[arg-type]


def command_runner(repo: Repository, config: Config) -> CommandRunner:
    """The run's contained commands: the git dir read-only, gitteam's state in it hidden, and so is every
    worktree but the command's own (the one bound into the sandbox)."""
    return from_config(config.sandbox, repo.common_dir, repo.contained_config,
                       hidden=(repo.state_dir, worktrees.root(config)))


def run_meter(config: Config, journal: Journal, spent: float = 0.0, tokens: int = 0) -> Meter:
    """The run's meter: its budget from config, every call's usage, economy mode and compactions journaled."""

    def on_economy(reason: str) -> None:
        journal.append(Economy(reason=reason, at=config.run.economy_at,
                               message="economy mode: new calls use the roles' economy models and no optional "
                                       f"review pass starts ({reason})"))

    def on_event(context: CallContext, event: AgentEvent) -> None:
        journal.append(dataclasses.replace(event, agent=context.agent, role=context.role))

    budget = RunBudget(money=config.run.budget, tokens=config.run.max_tokens, seconds=config.run.max_seconds,
                       economy_at=config.run.economy_at)
    return Meter(config.run.budget, spent=spent, on_usage=record_usage(journal), limits=budget, tokens=tokens,
                 on_economy=on_economy, on_event=on_event)


def record_usage(journal: Journal) -> Callable[[CallContext, Reply], None]:
    """The meter's hook: every model call's usage goes to the journal (and from there to the UI)."""

    def on_usage(context: CallContext, reply: Reply) -> None:
        journal.append(UsageRecorded(agent=context.agent, role=context.role, model=reply.model,
                                     usage=reply.usage.to_json(), cost=reply.cost,
                                     usage_unknown=None if reply.usage_known else True))

    return on_usage

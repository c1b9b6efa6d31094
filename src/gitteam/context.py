"""What every part of one run shares: the repository, configuration, journal, models and meter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitteam.config import Config
from gitteam.git import Repository
from gitteam.journal import Journal
from gitteam.memory import Blackboard
from gitteam.metering import Meter, RunBudget
from gitteam.models.base import CallContext, Model, Reply, ToolCall
from gitteam.models.registry import Registry
from gitteam.roles.agent import Limits
from gitteam.roles.tools import ToolResult
from gitteam.sandbox.runner import CommandRunner, from_config
from gitteam.transcripts import Transcript, Transcripts

if TYPE_CHECKING:
    from gitteam.journal import RunState

Approver = Callable[["RunContext", "RunState"], str]  # "approve", "reject", or "later" (leave it pending)


@dataclass(frozen=True)
class RunOptions:
    yes: bool = False
    no_merge: bool = False
    keep: bool = False
    max_agents: int | None = None
    approver: Approver | None = None  # None: no one to ask (no TTY); the run is left pending
    allow_protected: tuple[str, ...] = ()  # --allow-protected of this command line: the only allowance --yes trusts


@dataclass
class RunResult:
    run: str
    state: str
    exit_code: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)

BRANCH_PREFIX = "gitteam"
INTEGRATION = "integration"


def agent_branch(run: str, agent: str) -> str:
    return f"{BRANCH_PREFIX}/{run}/{agent}"


def worktree_path(repo: Repository, run: str, agent: str) -> Path:
    """Inside the common git dir: every worktree finds it, and the user's `git status` never sees it."""
    return repo.state_dir / "worktrees" / run / agent


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

    def finish(self, state: str, code: int, message: str, **details: Any) -> RunResult:
        """The run's last event: its state, exit code and the one message the person reads."""
        self.journal.append("run_finished", state=state, exit_code=int(code), message=message, **details)
        return RunResult(self.run, state, int(code), message, dict(details))

    @property
    def limits(self) -> Limits:
        lim = self.config.limits
        return Limits(max_steps=lim.max_steps, max_tokens=lim.max_tokens, reminders=lim.reminders,
                      max_seconds=lim.max_seconds, budget=lim.agent_budget, search_seconds=lim.search_seconds)

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
            self.journal.append("tool_refused", agent=context.agent, role=context.role, tool=call.name,
                                error=result.text.removeprefix("error: ")[:300])

    def transcript(self, context: CallContext) -> Transcript:
        """The agent's transcript, beside the journal: resume appends to the same file."""
        return Transcripts(self.journal.dir)(context)

    def call_context(self, role: str, agent: str, round_number: int = 1) -> CallContext:
        return CallContext(run=self.run, role=role, agent=agent, round=round_number)  # type: ignore[arg-type]


def command_runner(repo: Repository, config: Config) -> CommandRunner:
    """The run's contained commands: the git dir read-only, gitteam's state in it hidden."""
    return from_config(config.sandbox, repo.common_dir, repo.contained_config, hidden=(repo.state_dir,))


def run_meter(config: Config, journal: Journal, spent: float = 0.0, tokens: int = 0) -> Meter:
    """The run's meter: its budget from config, every call's usage, economy mode and compactions journaled."""

    def on_economy(reason: str) -> None:
        journal.append("economy", reason=reason, at=config.run.economy_at,
                       message="economy mode: new calls use the roles' economy models and no optional "
                               f"review pass starts ({reason})")

    def on_event(context: CallContext, kind: str, data: dict[str, Any]) -> None:
        journal.append(kind, agent=context.agent, role=context.role, **data)

    budget = RunBudget(money=config.run.budget, tokens=config.run.max_tokens, seconds=config.run.max_seconds,
                       economy_at=config.run.economy_at)
    return Meter(config.run.budget, spent=spent, on_usage=record_usage(journal), limits=budget, tokens=tokens,
                 on_economy=on_economy, on_event=on_event)


def record_usage(journal: Journal) -> Callable[[CallContext, Reply], None]:
    """The meter's hook: every model call's usage goes to the journal (and from there to the UI)."""

    def on_usage(context: CallContext, reply: Reply) -> None:
        journal.append(
            "usage",
            agent=context.agent,
            role=context.role,
            model=reply.model,
            usage=reply.usage.to_json(),
            cost=reply.cost,
        )

    return on_usage

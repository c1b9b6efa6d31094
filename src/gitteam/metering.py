"""Tokens and money per agent and per run, and the budgets they are held to.

Every model call's usage passes through one `Meter`; agents ask it before each call whether they may
make another, so spend never passes the budget by more than one in-flight call per agent. A run's budget
is money (`run.budget`), tokens (`run.max_tokens`) and wall time (`run.max_seconds`); past `economy_at`
of the money or the tokens the meter turns on economy mode, once, and says so through `on_economy`.

An agent's own token limit (`[limits] max_tokens`) counts something else: `Intake`, the tokens that entered its
conversation, each counted once, however often the provider re-read them (docs/agents.md#limits).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gitteam.errors import Exit, GitteamError
from gitteam.events import AgentEvent
from gitteam.models.base import CallContext, Reply, Usage


def agent_key(context: CallContext) -> str:
    """Coder and reviewer of one subtask share its id; their spend is kept apart."""
    return f"{context.role}/{context.agent}"


class BudgetExhausted(GitteamError):
    exit_code = Exit.BUDGET


class Interrupted(GitteamError):
    exit_code = Exit.INTERRUPTED


@dataclass
class Tally:
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    cost_known: bool = True
    calls: int = 0

    def add(self, reply: Reply) -> None:
        self.usage = self.usage + reply.usage
        self.calls += 1
        if reply.cost is None:
            self.cost_known = False
        else:
            self.cost += reply.cost


@dataclass
class Intake:
    """The tokens that entered one conversation: each call adds how much its prompt grew over the previous
    call's prompt, plus its output.

    A prefix the previous call already sent is not counted again, whether the provider's cache served it (a
    cache read) or not (a provider without caching, an expired cache): an agent's twentieth call re-sends its
    first nineteen turns, and counting them every time made the count grow with the square of the steps. After
    a compaction the prompt is smaller; what is added from there counts again. An answer is counted when it is
    written and again as part of the next prompt: at most the size of the answers, short beside what is read.
    """

    tokens: int = 0
    largest_prompt: int = 0
    last_prompt: int = 0
    calls: int = 0

    def add(self, usage: Usage) -> int:
        """Count one call's usage; returns the tokens it added."""
        prompt = usage.prompt_tokens
        added = max(0, prompt - self.last_prompt) + usage.output_tokens
        self.tokens += added
        self.largest_prompt = max(self.largest_prompt, prompt)
        self.last_prompt = prompt
        self.calls += 1
        return added


@dataclass(frozen=True, slots=True)
class RunBudget:
    """What a whole run may use; None = no limit of that kind."""

    money: float | None = None  # USD
    tokens: int | None = None
    seconds: float | None = None  # wall time of this invocation (a resume starts a new clock)
    economy_at: float = 0.8  # fraction of money or tokens that turns economy mode on


class Meter:
    def __init__(
        self,
        budget: float | None,
        spent: float = 0.0,
        on_usage: Callable[[CallContext, Reply], None] | None = None,
        *,
        limits: RunBudget | None = None,
        tokens: int = 0,
        on_economy: Callable[[str], None] | None = None,
        on_event: Callable[[CallContext, AgentEvent], None] | None = None,
    ) -> None:
        self.limits = limits or RunBudget(money=budget)
        self._lock = threading.Lock()
        self.run_total = Tally(usage=Usage(input_tokens=tokens), cost=spent)
        self.agents: dict[str, Tally] = {}
        self._on_usage = on_usage
        self._on_economy = on_economy
        self._on_event = on_event
        self._halted: str | None = None
        self._started = time.monotonic()
        self.economy = False
        self._update_economy()

    def halt(self, reason: str) -> None:
        """Stop every agent before its next call (Ctrl-C): their work so far is committed."""
        self._halted = reason

    def record(self, context: CallContext, reply: Reply) -> None:
        with self._lock:
            self.run_total.add(reply)
            self.agents.setdefault(agent_key(context), Tally()).add(reply)
        if self._on_usage is not None:
            self._on_usage(context, reply)
        self._update_economy()

    def notify(self, context: CallContext, event: AgentEvent) -> None:
        """Something an agent did to stay within its limits (a compaction, a CLI's run), for the run's journal."""
        if self._on_event is not None:
            self._on_event(context, event)

    def agent(self, name: str) -> Tally:
        with self._lock:
            return self.agents.setdefault(name, Tally())

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def seconds_left(self) -> float | None:
        """Wall time the run has left; None without a time budget."""
        if self.limits.seconds is None:
            return None
        return self.limits.seconds - self.elapsed

    def check(self) -> None:
        """Called before every model call (and while a command: coder runs): raises when the run must stop."""
        if self._halted:
            raise Interrupted(self._halted)
        problem = self.exhausted()
        if problem:
            raise BudgetExhausted(problem)

    def stopping(self) -> bool:
        """True once agents must stop: interrupted, or the run's budget is used up (polled by command coders)."""
        return self._halted is not None or self.exhausted() is not None

    def exhausted(self) -> str | None:
        """Why the run's budget is used up, or None while it is not."""
        with self._lock:
            spent, tokens = self.run_total.cost, self.run_total.usage.total
        money, token_limit, seconds = self.limits.money, self.limits.tokens, self.limits.seconds
        if money is not None and spent >= money:
            return f"budget of ${money:.2f} reached (spent ${spent:.4f})"
        if token_limit is not None and tokens >= token_limit:
            return f"token budget of {token_limit:,} reached (used {tokens:,})"
        if seconds is not None and self.elapsed >= seconds:
            return f"time budget of {seconds:.0f} s reached"
        return None

    def spent_fraction(self) -> float:
        """How much of the run's budget is used: the larger of money and tokens; 0 without a budget."""
        with self._lock:
            spent, tokens = self.run_total.cost, self.run_total.usage.total
        money, token_limit = self.limits.money, self.limits.tokens
        return max(spent / money if money else 0.0, tokens / token_limit if token_limit else 0.0)

    def _update_economy(self) -> None:
        """Turn economy mode on, once, when money or tokens pass economy_at of their budget."""
        with self._lock:
            if self.economy:
                return
            spent, tokens = self.run_total.cost, self.run_total.usage.total
            at = self.limits.economy_at
            reasons = []
            if self.limits.money is not None and spent >= at * self.limits.money:
                reasons.append(f"${spent:.4f} of the ${self.limits.money:.2f} budget spent")
            if self.limits.tokens is not None and tokens >= at * self.limits.tokens:
                reasons.append(f"{tokens:,} of {self.limits.tokens:,} tokens used")
            if not reasons:
                return
            self.economy = True
        if self._on_economy is not None:
            self._on_economy("; ".join(reasons))

"""Tokens and money per agent and per run, and the budget they are held to.

Every model call's usage passes through one `Meter`; agents ask it before each call whether they may
make another, so spend never passes the budget by more than one in-flight call per agent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gitteam.errors import Exit, GitteamError
from gitteam.models.base import CallContext, Reply, Usage


def agent_key(context: CallContext) -> str:
    """Coder and reviewer of one subtask share its id; their spend is kept apart."""
    return f"{context.role}/{context.agent}"


class BudgetExhausted(GitteamError):
    exit_code = Exit.BUDGET


@dataclass
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


class Meter:
    def __init__(
        self,
        budget: float | None,
        spent: float = 0.0,
        on_usage: Callable[[CallContext, Reply], None] | None = None,
    ) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self.run_total = Tally(cost=spent)
        self.agents: dict[str, Tally] = {}
        self._on_usage = on_usage
        self._halted: str | None = None

    def halt(self, reason: str) -> None:
        """Stop every agent before its next call (Ctrl-C): their work so far is committed."""
        self._halted = reason

    def record(self, context: CallContext, reply: Reply) -> None:
        with self._lock:
            self.run_total.add(reply)
            self.agents.setdefault(agent_key(context), Tally()).add(reply)
        if self._on_usage is not None:
            self._on_usage(context, reply)

    def agent(self, name: str) -> Tally:
        with self._lock:
            return self.agents.setdefault(name, Tally())

    def check(self) -> None:
        """Called before every model call."""
        if self._halted:
            raise Interrupted(self._halted)
        with self._lock:
            spent = self.run_total.cost
        if self.budget is not None and spent >= self.budget:
            raise BudgetExhausted(f"budget of ${self.budget:.2f} reached (spent ${spent:.4f})")

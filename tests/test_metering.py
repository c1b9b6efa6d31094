"""Budgets at their exact boundary: spending exactly the budget uses it up.

`metering.Meter` holds the run's money, tokens and wall time; `roles.agent.Agent` holds one agent's money
and tokens against the agent's tally in the same meter. Each comparison is `>=`; a `>` would allow one
more model call once the budget is exactly spent, which is what these tests catch. Amounts are exact binary
fractions (1.0, 0.25, 100 tokens), so "exactly" is exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from gitteam import metering
from gitteam.metering import BudgetExhausted, Interrupted, Meter, RunBudget
from gitteam.models.base import CallContext, Message, Reply, ToolCall, ToolSpec, Usage
from gitteam.roles.agent import Agent, AgentFailed, Limits
from gitteam.roles.tools import Tool, Toolbox, tool

CODER = CallContext(run="r", role="coder", agent="a")


def reply(cost: float | None = 0.0, tokens: int = 0) -> Reply:
    return Reply("", (), Usage(input_tokens=tokens), "m", cost)


# --- the run's budget (Meter) -----------------------------------------------------------------------------


def test_spending_exactly_the_money_budget_exhausts_the_run() -> None:
    meter = Meter(None, limits=RunBudget(money=2.0))
    meter.record(CODER, reply(cost=1.0))
    assert meter.exhausted() is None
    meter.check()
    meter.record(CODER, reply(cost=0.75))
    assert meter.exhausted() is None and not meter.stopping()
    meter.record(CODER, reply(cost=0.25))  # $2.00 of $2.00
    assert meter.exhausted() == "budget of $2.00 reached (spent $2.0000)"
    assert meter.stopping()
    with pytest.raises(BudgetExhausted, match=r"budget of \$2\.00 reached"):
        meter.check()


def test_a_resume_that_starts_with_the_budget_spent_is_exhausted_before_any_call() -> None:
    assert Meter(2.0, spent=2.0).exhausted() == "budget of $2.00 reached (spent $2.0000)"
    assert Meter(2.0, spent=1.75).exhausted() is None
    assert Meter(None, limits=RunBudget(tokens=300), tokens=300).exhausted() == \
        "token budget of 300 reached (used 300)"
    assert Meter(None, limits=RunBudget(tokens=300), tokens=299).exhausted() is None


def test_using_exactly_the_token_budget_exhausts_the_run() -> None:
    meter = Meter(None, limits=RunBudget(tokens=300))
    meter.record(CODER, reply(tokens=100))
    meter.record(CODER, Reply("", (), Usage(output_tokens=150), "m", 0.0))  # output tokens count the same
    assert meter.exhausted() is None
    meter.check()
    meter.record(CODER, reply(tokens=50))  # 300 of 300
    assert meter.exhausted() == "token budget of 300 reached (used 300)"
    with pytest.raises(BudgetExhausted, match="token budget of 300 reached"):
        meter.check()


def test_the_money_budget_counts_every_agent_of_the_run() -> None:
    meter = Meter(None, limits=RunBudget(money=1.0))
    meter.record(CallContext("r", "coder", "a"), reply(cost=0.5))
    meter.record(CallContext("r", "reviewer", "a"), reply(cost=0.25))
    assert meter.exhausted() is None
    meter.record(CallContext("r", "coder", "b"), reply(cost=0.25))
    assert meter.exhausted() is not None
    assert (meter.agent("coder/a").cost, meter.agent("reviewer/a").cost, meter.agent("coder/b").cost) == \
        (0.5, 0.25, 0.25)


def test_no_limits_never_exhaust() -> None:
    meter = Meter(None)
    meter.record(CODER, reply(cost=1e9, tokens=10**12))
    assert meter.exhausted() is None
    meter.check()


def test_reaching_exactly_the_time_budget_exhausts_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"now": 100.0}

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock["now"]

    monkeypatch.setattr(metering, "time", FakeTime)
    meter = Meter(None, limits=RunBudget(seconds=30.0))
    clock["now"] = 129.5
    assert meter.exhausted() is None and meter.seconds_left() == 0.5
    clock["now"] = 130.0
    assert meter.exhausted() == "time budget of 30 s reached"
    assert meter.seconds_left() == 0.0


def test_a_halt_stops_the_next_call_before_any_budget() -> None:
    meter = Meter(None, limits=RunBudget(money=2.0))
    meter.record(CODER, reply(cost=2.0))
    meter.halt("interrupted")
    assert meter.stopping()
    with pytest.raises(Interrupted, match="interrupted"):
        meter.check()


@pytest.mark.parametrize(("limits", "first", "second"), [
    (RunBudget(money=4.0, economy_at=0.5), reply(cost=1.75), reply(cost=0.25)),  # $2 of $4
    (RunBudget(tokens=200, economy_at=0.5), reply(tokens=99), reply(tokens=1)),  # 100 of 200
], ids=["money", "tokens"])
def test_economy_mode_starts_exactly_at_its_threshold_and_is_announced_once(
        limits: RunBudget, first: Reply, second: Reply) -> None:
    said: list[str] = []
    meter = Meter(None, limits=limits, on_economy=said.append)
    meter.record(CODER, first)
    assert not meter.economy and said == []
    meter.record(CODER, second)
    assert meter.economy and len(said) == 1
    meter.record(CODER, second)
    assert len(said) == 1


# --- one agent's budget (Agent, against its tally in the meter) -------------------------------------------


class PricedModel:
    """Every answer calls the `noop` tool and costs `cost` dollars; each prompt is `tokens` tokens longer than the
    one before (what the agent's token limit counts: the tokens that entered its conversation); counts its calls."""

    name = "priced"

    def __init__(self, cost: float, tokens: int) -> None:
        self.cost, self.tokens, self.calls = cost, tokens, 0

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec], *, require_tool: bool,
                 context: CallContext) -> Reply:
        self.calls += 1
        return Reply("", (ToolCall(f"call-{self.calls}", "noop", {}),), Usage(input_tokens=self.tokens * self.calls),
                     self.name, self.cost)


def run_agent(model: PricedModel, limits: Limits, meter: Meter | None = None) -> Exception:
    noop = Tool(tool("noop", "does nothing", {}, []), lambda arguments: "ok")
    agent = Agent(model, "system", Toolbox([noop]), CODER, limits, meter or Meter(None), terminal="done")
    with pytest.raises((AgentFailed, BudgetExhausted)) as raised:
        agent.run("work")
    return raised.value


def agent_limits(**changes: Any) -> Limits:
    return Limits(**{"max_steps": 100, "max_tokens": 10**9, "reminders": 0, **changes})


def test_an_agent_that_spent_exactly_its_budget_makes_no_further_call() -> None:
    model = PricedModel(cost=0.25, tokens=1)
    error = run_agent(model, agent_limits(budget=1.0))
    assert isinstance(error, BudgetExhausted)
    assert model.calls == 4  # $0.25 x 4 = $1.00: spent, so no fifth call
    assert "the agent's budget of $1.00 is spent ($1.0000; [limits] agent_budget)" in str(error)


def test_an_agent_that_used_exactly_its_tokens_makes_no_further_call() -> None:
    model = PricedModel(cost=0.0, tokens=100)
    error = run_agent(model, agent_limits(max_tokens=300))
    assert isinstance(error, AgentFailed)
    assert model.calls == 3
    assert "token limit reached (300 of 300 tokens entered the conversation in 3 calls" in str(error)


def test_an_agents_budget_counts_only_its_own_spending() -> None:
    meter = Meter(None)
    meter.record(CallContext("r", "coder", "other"), reply(cost=5.0))  # another agent's spending
    meter.record(CallContext("r", "reviewer", "a"), reply(cost=5.0))  # this subtask's reviewer: kept apart
    model = PricedModel(cost=0.5, tokens=1)
    run_agent(model, agent_limits(budget=1.0), meter)
    assert model.calls == 2
    assert meter.agent("coder/a").cost == 1.0

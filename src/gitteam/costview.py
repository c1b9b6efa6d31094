"""Rendering of what a run spends: `gitteam cost`, the models line of a run's start, and the progress lines
of budget, economy, context and agent-command events, and the run's containment. Part of the UI; `ui.py`
re-exports `print_cost`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitteam import terminal
from gitteam.events import (
    AgentCommand,
    AgentCommitsUnwrapped,
    Compacted,
    Economy,
    Event,
    Resumed,
    UsageRecorded,
)
from gitteam.terminal import markup_line

if TYPE_CHECKING:
    from rich.table import Table

    from gitteam.journal import RunState

__all__ = ["CostRow", "cost_rows", "describe_spend", "models_line", "print_cost", "sandbox_line"]


def models_line(options: dict[str, Any]) -> str:
    """Which model serves which role, with the economy model where it differs."""
    specs: dict[str, str] = options.get("models", {})
    economy: dict[str, str] = options.get("economy", {})
    parts = []
    for role, spec in specs.items():
        cheaper = economy.get(role, "")
        parts.append(f"{role} {spec or '(unset)'}" + (f" (economy {cheaper})" if cheaper and cheaper != spec else ""))
    return "models: " + ", ".join(parts) if parts else ""


def describe_spend(e: Event) -> str | None:
    """Budget, economy and context events: what the run did to stay within its limits."""
    match e:
        case Economy():
            return f"[yellow]! {markup_line(e.message)}[/yellow]"
        case Compacted():
            return (f"  [dim]{markup_line(e.agent)}: {markup_line(e.role)} conversation compacted to stay "
                    f"within the context window ({e.before:,} -> {e.after:,} tokens of {e.limit:,})[/dim]")
        case AgentCommand():
            status = "timed out" if e.timed_out else f"exit {e.exit_code}"
            return (f"  [dim]{markup_line(e.agent)}: {markup_line(e.command)}: {status} after "
                    f"{e.seconds} s[/dim]")
        case AgentCommitsUnwrapped():
            return (f"  [yellow]![/yellow] {markup_line(e.agent)}: the agent command committed by itself; its "
                    "commits were unwrapped so that only the subtask's files are committed")
        case Resumed():
            models = models_line({"models": e.models, "economy": e.economy})
            budget = f" with a budget of ${e.budget:.2f} (${e.spent:.4f} spent)" if e.budget else ""
            sandbox = sandbox_line(e.sandbox)
            models = f"\n[dim]{markup_line(models)}[/dim]" if models else ""
            return f"[bold]resuming[/bold]{budget}{models}{sandbox}"
    return None


def sandbox_line(sandbox: dict[str, Any] | None) -> str:
    """The run's containment, when it is weaker than the default: uncontained, or with the host's network."""
    if not sandbox:
        return ""
    if sandbox.get("mode") == "none":
        return ('\n[bold yellow]commands run UNCONTAINED[/bold yellow] (\\[sandbox] mode = "none"): tests, setup and '
                "agent commands act with your authority: your files, keys and network")
    if sandbox.get("host_network"):
        return f"\n[yellow]host network for:[/yellow] {markup_line(', '.join(sandbox['host_network']))} (\\[sandbox])"
    return ""


@dataclass
class CostRow:
    calls: int = 0
    input: int = 0  # uncached input tokens
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    cost: float = 0.0
    unknown: int = 0  # calls whose cost is not known (no price for the model, or a CLI that did not say)
    unknown_usage: int = 0  # calls whose server reported no tokens: their tokens are not in the counts

    def add(self, e: UsageRecorded) -> None:
        usage = e.usage
        self.calls += 1
        self.unknown_usage += bool(e.usage_unknown)
        self.input += int(usage.get("input_tokens", 0))
        self.cache_read += int(usage.get("cache_read_tokens", 0))
        self.cache_write += int(usage.get("cache_write_tokens", 0))
        self.output += int(usage.get("output_tokens", 0))
        if e.cost is None:
            self.unknown += 1
        else:
            self.cost += e.cost

    def shown_cost(self) -> str:
        if self.unknown and self.unknown == self.calls:
            return "unknown"
        return f"${self.cost:.4f}" + (" + unknown" if self.unknown else "")

    def shown_tokens(self, count: int) -> str:
        if self.unknown_usage and self.unknown_usage == self.calls:
            return "unknown"
        return f"{count:,}" + (" + unknown" if self.unknown_usage else "")


def cost_rows(states: Sequence[RunState]) -> dict[tuple[str, str, str, str], CostRow]:
    rows: dict[tuple[str, str, str, str], CostRow] = defaultdict(CostRow)
    for state in states:
        for e in state.usage:
            rows[(state.run, e.role, e.agent, e.model)].add(e)
    return rows


def priorities(state: RunState) -> dict[str, str]:
    """Each subtask's priority in the run's plan (the planner, the integration review: none)."""
    subtasks = (state.plan or {}).get("subtasks", [])
    return {str(s.get("id")): str(s.get("priority", "normal")) for s in subtasks if isinstance(s, dict)}


def by_priority(state: RunState) -> dict[str, float]:
    """What the subtasks of each priority cost, coders and reviewers together ([routing] decides their models)."""
    tiers = priorities(state)
    spent: dict[str, float] = {}
    for e in state.usage:
        if e.agent in tiers and e.cost is not None:
            spent[tiers[e.agent]] = spent.get(tiers[e.agent], 0.0) + e.cost
    return spent


def cost_table(rows: dict[tuple[str, str, str], Any]) -> Table:
    """Role, agent, model, tokens, cost; readable at 80 columns: a model's name is never cut (opus and sonnet
    must not both read `anthropic:clau…`), the agent's folds onto a second line when space is short."""
    from rich.table import Table  # rich loads when something is drawn, not with every command's imports

    table = Table(box=None, pad_edge=False)
    table.add_column("role", no_wrap=True)
    table.add_column("agent", overflow="fold")
    table.add_column("model", no_wrap=True, min_width=max((len(m) for _, _, m in rows), default=5))
    for column in ("input", "output", "cost"):  # --json has the cache split
        table.add_column(column, justify="right", no_wrap=True)
    for (role, a, m), v in rows.items():
        table.add_row(markup_line(role), markup_line(a), markup_line(m),
                      v.shown_tokens(v.input + v.cache_read + v.cache_write), v.shown_tokens(v.output), v.shown_cost())
    return table


def print_cost(states: Sequence[RunState], json_out: bool) -> None:
    """Tokens and money per run, role, agent and model; a cost no price or CLI told is "unknown", not $0."""
    rows = cost_rows(states)
    tiers = {state.run: priorities(state) for state in states}
    if json_out:
        print(json.dumps([  # ASCII: nothing in it a terminal obeys
            {"run": r, "role": role, "agent": a, "priority": tiers.get(r, {}).get(a), "model": m, "calls": v.calls,
             "input_tokens": v.input + v.cache_read + v.cache_write, "uncached_input_tokens": v.input,
             "cache_read_tokens": v.cache_read, "cache_write_tokens": v.cache_write, "output_tokens": v.output,
             "cost": None if v.unknown == v.calls else round(v.cost, 6), "cost_known": not v.unknown,
             "usage_known": not v.unknown_usage}
            for (r, role, a, m), v in rows.items()], indent=1))
        return
    out = terminal.console()
    for run in dict.fromkeys(r for r, _, _, _ in rows):  # one table a run: its long id is a heading, not a column
        out.print(f"[bold]{markup_line(run)}[/bold]")
        out.print(cost_table({key[1:]: value for key, value in rows.items() if key[0] == run}))
        state = next(s for s in states if s.run == run)
        spent = by_priority(state)
        if set(spent) - {"normal"}:  # a plan that used priorities: what each tier cost
            out.print("by priority: " + ", ".join(f"{tier} ${spent[tier]:.4f}" for tier in ("critical", "normal",
                                                                                               "low") if tier in spent))
    total = sum(v.cost for v in rows.values())
    unknown = sum(v.unknown for v in rows.values())
    known = f"${total:.4f}" + (" + unknown" if unknown else "")
    if unknown and not any(v.unknown < v.calls for v in rows.values()):
        known = "unknown"
    why = (f" ({unknown} call(s) of models without a price, servers that reported no usage, or agent commands "
           "that did not report their spend)")
    out.print(f"total {known}" + (why if unknown else ""))

"""Terminal output: progress from journal events, the approval prompt, and status/show/cost rendering.

Progress and prompts go to stderr so `--json` leaves stdout with exactly one JSON document.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from gitteam.context import RunContext, RunOptions, RunResult
    from gitteam.journal import Event, RunState
    from gitteam.locks.plan import Plan
    from gitteam.memory import Entry
    from gitteam.runs import AgentView

STATE_STYLE = {"merged": "green", "pending": "yellow", "running": "cyan", "rejected": "magenta",
               "aborted": "dim", "failed": "red", "refused": "red", "budget": "red", "interrupted": "yellow"}


def progress_console(json_out: bool) -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def run_options(yes: bool, no_merge: bool, keep: bool, json_out: bool) -> RunOptions:
    """Ask the person only when there is a terminal to ask on (never wait for input without one)."""
    from gitteam.context import RunOptions

    approver = ask_approval if (is_interactive() and not yes and not no_merge) else None
    return RunOptions(yes=yes, no_merge=no_merge, keep=keep, approver=approver)


class ProgressPrinter:
    """Subscribes to the journal: one line per meaningful event, safe from many agent threads."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: Event) -> None:
        line = self.describe(event)
        if line:
            self.console.print(line)

    @staticmethod
    def describe(e: Event) -> str | None:  # noqa: C901 - a flat table of event kinds
        kind = e["event"]
        if kind == "run_started":  # after the models resolved: a bad spec's error stays the only line
            specs = e.get("options", {}).get("models", {})
            models = ", ".join(f"{role} {spec or '(unset)'}" for role, spec in specs.items())
            return (f"[bold]gitteam run {e['run']}[/bold] on {e['target']} ({e['base'][:10]})"
                    + (f"\n[dim]models: {escape(models)}[/dim]" if models else ""))
        if kind == "plan":
            waves = escape(" -> ".join("[" + ", ".join(w) + "]" for w in e["waves"]))
            notes = "".join(f"\n  [yellow]{escape(n)}[/yellow]" for n in e.get("serialized", []))
            return f"planned {len(e['plan']['subtasks'])} subtask(s) in {len(e['waves'])} wave(s): {waves}{notes}"
        if kind == "agent_started":
            return f"  [cyan]>[/cyan] {e['agent']}: coding on {e['branch']}"
        if kind == "agent_committed" and e.get("stray"):
            return f"  [yellow]![/yellow] {e['agent']}: left files it does not own (not committed): {e['stray']}"
        if kind == "review":
            verdict = e["verdict"]
            summary = escape(verdict["summary"])
            return f"  [blue]?[/blue] {e['agent']}: round {e['round']}: {verdict['decision']} {summary}"
        if kind == "agent_finished":
            style = "green" if e["status"] == "approved" else "red"
            reason = f": {escape(e['reason'])}" if e.get("reason") else ""
            return f"  [{style}]{e['status']}[/{style}] {e['agent']}{reason}"
        if kind == "tool_refused":
            return f"  [yellow]![/yellow] {e['agent']}: {e['role']} tool {e['tool']} refused: {escape(e['error'])}"
        if kind == "merged":
            return f"  [green]+[/green] merged {e['agent']} into the integration branch"
        if kind == "target_moved":
            return f"  {e['target']} moved during the run; merged its new commits into the run"
        if kind == "target_updated":
            return f"[green]fast-forwarded {e['target']}[/green] {e['old'][:10]}..{e['new'][:10]}"
        return None


def ask_approval(ctx: RunContext, state: RunState) -> str:
    import questionary

    console = progress_console(False)
    integration_head = ctx.repo.rev_parse(f"refs/heads/gitteam/{ctx.run}/integration") or state.base
    files = ctx.repo.changed_paths(state.base, integration_head)
    more = " ..." if len(files) > 12 else ""
    console.print(f"\nThe team changed {len(files)} file(s): {', '.join(files[:12])}{more}")
    while True:
        answer = questionary.select(
            f"Fast-forward {ctx.target} to the result?",
            choices=["approve", "reject", "show diff"],
        ).ask()
        if answer is None:  # Ctrl-C at the prompt: leave the run pending, decide later
            raise KeyboardInterrupt
        if answer != "show diff":
            return str(answer)
        console.print(escape(ctx.repo.diff(state.base, integration_head)))


def report(console: Console, result: RunResult, json_out: bool) -> int:
    if json_out:
        print(json.dumps({"run": result.run, "state": result.state, "exit_code": result.exit_code,
                          "message": result.message, **result.details}, indent=1))
    else:
        style = STATE_STYLE.get(result.state, "white")
        console.print(f"[{style}]{result.state}[/{style}]: {escape(result.message)}")
    return result.exit_code


def print_plan(plan: Plan, notes: Sequence[str], summary: str, json_out: bool) -> None:
    from gitteam.locks.plan import waves

    layers = waves(plan)
    if json_out:
        print(json.dumps({"plan": plan.to_json(), "serialized": list(notes),
                          "waves": [[s.id for s in w] for w in layers], "summary": summary}, indent=1))
        return
    out = stdout()
    if summary:
        out.print(escape(summary))
    for number, wave in enumerate(layers, 1):
        out.print(f"[bold]wave {number}[/bold]")
        for sub in wave:
            after = f" (after {', '.join(sub.depends_on)})" if sub.depends_on else ""
            out.print(f"  [cyan]{sub.id}[/cyan]: {escape(sub.title)}{after}")
            out.print(f"    files: {', '.join(sub.files)}")
    for note in notes:
        out.print(f"[yellow]{escape(note)}[/yellow]")


def state_json(state: RunState) -> dict[str, Any]:
    return {
        "run": state.run, "state": state.state, "task": state.task, "target": state.target, "base": state.base,
        "started": state.started, "integration": state.integration, "integration_head": state.integration_head,
        "tokens": state.tokens, "cost": round(state.cost, 6), "message": state.message,
        "agents": [{"id": a.id, "status": a.status, "branch": a.branch, "worktree": a.worktree, "head": a.head,
                    "files": a.files, "round": a.round, "tokens": a.tokens, "cost": round(a.cost, 6),
                    "verdict": (a.verdict or {}).get("decision"), "reason": a.reason, "models": sorted(a.models)}
                   for a in state.agents.values()],
    }


def print_status(states: Sequence[RunState], json_out: bool, detailed: bool) -> None:
    if json_out:
        print(json.dumps([state_json(s) for s in states], indent=1))
        return
    out = stdout()
    if not states:
        out.print("no runs yet (gitteam run TASK, or gitteam demo)")
        return
    for state in states:
        style = STATE_STYLE.get(state.state, "white")
        out.print(f"[bold]{state.run}[/bold] [{style}]{state.state}[/{style}] -> {state.target}  "
                  f"{state.tokens:,} tokens  ${state.cost:.4f}  {escape(state.task[:60])}")
        if detailed or len(states) == 1:
            print_agents(out, state)
            if state.message:
                out.print(escape(state.message))


def print_agents(out: Console, state: RunState) -> None:
    for a in state.agents.values():
        verdict = (a.verdict or {}).get("decision", "")
        style = "green" if a.status in ("merged", "approved") else "red" if a.status in (
            "failed", "refused", "budget") else "white"
        rounds = f" round {a.round}" if a.round else ""
        out.print(f"  [bold]{a.id}[/bold] [{style}]{a.status}[/{style}] {verdict}{rounds}  "
                  f"{a.tokens:,} tokens  ${a.cost:.4f}  {', '.join(sorted(a.models))}")
        if a.reason:
            out.print(f"      reason   {escape(a.reason)}")
        if a.branch:
            out.print(f"      branch   {a.branch} ({a.head[:10]})")
        if a.worktree:
            gone = "" if Path(a.worktree).is_dir() else " (removed)"
            out.print(f"      worktree {a.worktree}{gone}")
        out.print(f"      files    {', '.join(a.files)}")


def print_agent(view: AgentView, json_out: bool) -> None:
    if json_out:
        print(json.dumps({"run": view.run.run, "agent": view.agent, "commits": view.commits, "notes": view.notes,
                          "diff": view.diff}, indent=1))
        return
    out = stdout()
    out.print(f"[bold]{view.run.run} / {view.agent}[/bold]  {len(view.commits)} commit(s)")
    for note in view.notes:
        review = note.get("review") or {}
        out.print(f"  {note['commit'][:10]} round {note.get('round', '?')} model {note.get('model', '?')} "
                  f"tokens {note.get('tokens', 0):,}: {review.get('decision', '')} {escape(review.get('summary', ''))}")
        for f in review.get("findings", []):
            where = f"{f['file']}:{f['line']}" if f.get("line") else f.get("file", "")
            out.print(f"    [{f['severity']}] {escape(where)} {escape(f['message'])}")
    out.print(escape(view.diff) if view.diff else "(no changes)")


def print_cost(states: Sequence[RunState], json_out: bool) -> None:
    rows: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for state in states:
        for e in state.usage:
            key = (state.run, e["role"], e["agent"], e["model"])
            rows[key][0] += e["usage"].get("input_tokens", 0) + e["usage"].get("cache_read_tokens", 0) + \
                e["usage"].get("cache_write_tokens", 0)
            rows[key][1] += e["usage"].get("output_tokens", 0)
            rows[key][2] += float(e.get("cost") or 0.0)
    if json_out:
        print(json.dumps([{"run": r, "role": role, "agent": a, "model": m, "input_tokens": int(v[0]),
                           "output_tokens": int(v[1]), "cost": round(v[2], 6)}
                          for (r, role, a, m), v in rows.items()], indent=1))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("run", "role", "agent", "model", "input", "output", "cost"):
        table.add_column(column)
    for (r, role, a, m), v in rows.items():
        table.add_row(r, role, a, m, f"{int(v[0]):,}", f"{int(v[1]):,}", f"${v[2]:.4f}")
    total = sum(v[2] for v in rows.values())
    out = stdout()
    out.print(table)
    out.print(f"total ${total:.4f}")


def print_clean(cleaned: Sequence[str], kept: Sequence[str]) -> None:
    out = stdout()
    out.print(f"removed the worktrees of {len(cleaned)} finished run(s)")
    for path in kept:
        out.print(f"[yellow]kept {path}: it holds uncommitted files (gitteam clean --force removes it)[/yellow]")


def print_memory(entries: Sequence[Entry], json_out: bool) -> None:
    if json_out:
        print(json.dumps([{"id": e.id, **e.body()} for e in entries], indent=1, ensure_ascii=False))
        return
    out = stdout()
    if not entries:
        out.print("no entries")
    for e in entries:
        tags = f" [{', '.join(e.tags)}]" if e.tags else ""
        out.print(f"{e.id[:10]} {e.created} {e.role}/{e.agent}{escape(tags)}: {escape(e.content)}")

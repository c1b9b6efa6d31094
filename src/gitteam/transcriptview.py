"""Rendering of `gitteam show RUN AGENT --transcript`: an agent's conversation, readable at a terminal.

Part of the UI; `ui.py` re-exports `print_transcripts`. Every record's text is model or repository content, so
it is printed only through `terminal.markup`/`markup_line` (the safe console); `--json` prints the records as
data. Long texts are trimmed to a few lines with a note that `--full` shows them whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gitteam import terminal
from gitteam.terminal import markup, markup_line
from gitteam.transcripts import Read, Record

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_transcripts"]

LINES = 6  # lines of a text shown without --full
ARGS_CHARS = 300  # characters of a tool call's arguments shown without --full


def print_transcripts(run: str, agent: str, reads: Sequence[Read], json_out: bool, full: bool) -> None:
    if json_out:
        print(json.dumps({"run": run, "agent": agent, "transcripts": [
            {"role": r.role, "path": str(r.path), "turns": r.turns, "damaged": r.damaged, "records": r.records}
            for r in reads]}, indent=1))
        return
    out = terminal.console()
    for read in reads:
        out.print(f"[bold]{markup_line(run)} / {markup_line(agent)} / {markup_line(read.role)}[/bold]  "
                  f"{read.turns} turn(s)  {markup_line(str(read.path))}")
        if read.damaged:
            out.print(f"[yellow]{read.damaged} damaged line(s) skipped (a write cut off by a kill)[/yellow]")
        trimmed = False
        for record in read.records:
            trimmed = _record(out, record, full) or trimmed
        if trimmed:
            out.print(f"[dim](texts trimmed to {LINES} lines: gitteam show {markup_line(run)} {markup_line(agent)} "
                      "--transcript --full shows them whole)[/dim]")


def _record(out: Console, r: Record, full: bool) -> bool:  # noqa: C901 - a flat table of record kinds
    """One record; whether any of its text was trimmed."""
    kind = r.get("kind")
    trimmed = False
    if kind == "session":
        tools = ", ".join(str(t.get("name")) for t in r.get("tools", []))
        extra = "".join(f" {k}={v}" for k, v in (r.get("extra") or {}).items())
        out.print(f"[cyan]── session[/cyan] round {r.get('round')} model {markup_line(str(r.get('model')))}"
                  f"{markup_line(extra)}  tools: {markup_line(tools)}")
        trimmed = _text(out, "system", str(r.get("system", "")), full)
    elif kind == "request":
        later = f" (round {r.get('round')})" if r.get("round", 1) != 1 else ""
        out.print(f"[cyan]── request {r.get('step')}[/cyan]{markup_line(later)} to {markup_line(str(r.get('model')))}")
        for message in r.get("messages", []):
            trimmed = _text(out, str(message.get("role")), str(message.get("content", "")), full) or trimmed
    elif kind == "response":
        usage = r.get("usage") or {}
        cost = r.get("cost")
        money = f" ${cost:.4f}" if isinstance(cost, int | float) else ""
        model = str(r.get("model"))
        asked = str(r.get("asked"))
        fallback = f" (asked {markup_line(asked)})" if asked and asked != model else ""
        out.print(f"[green]assistant[/green] {markup_line(model)}{fallback}  {usage.get('input_tokens', 0):,} in "
                  f"{usage.get('output_tokens', 0):,} out{money}  {r.get('seconds', 0)} s")
        if r.get("text"):
            trimmed = _text(out, "text", str(r["text"]), full)
        for call in r.get("tool_calls", []):
            args = json.dumps(call.get("arguments"), ensure_ascii=False)
            if not full and len(args) > ARGS_CHARS:
                args, trimmed = args[:ARGS_CHARS] + " ...", True
            out.print(f"  [bold]-> {markup_line(str(call.get('name')))}[/bold]({markup_line(args)})")
    elif kind == "tool_result":
        error = " [red]error[/red]" if r.get("is_error") else ""
        out.print(f"  [bold]<- {markup_line(str(r.get('name')))}[/bold]{error}  {r.get('seconds', 0)} s")
        trimmed = _text(out, "", str(r.get("text", "")), full, indent="     ")
    elif kind == "compaction":
        out.print(f"[yellow]── compacted[/yellow] {r.get('before', 0):,} -> {r.get('after', 0):,} tokens "
                  f"(limit {r.get('limit', 0):,})")
    elif kind == "end":
        error = f": {markup_line(str(r.get('error')))}" if r.get("error") else ""
        out.print(f"[cyan]── {markup_line(str(r.get('status')))}[/cyan] after {r.get('steps')} step(s){error}")
    elif kind == "command":
        out.print(f"[cyan]── command[/cyan] round {r.get('round')} {markup_line(str(r.get('command')))}")
        trimmed = _text(out, "prompt", str(r.get("prompt", "")), full)
    elif kind == "command_result":
        out.print(f"[green]command[/green] exit {r.get('exit_code')}  {r.get('seconds', 0)} s"
                  f"{'  timed out' if r.get('timed_out') else ''}")
        trimmed = _text(out, "summary", str(r.get("summary", "")), full)
        trimmed = _text(out, "output", str(r.get("output", "")), full) or trimmed
    else:
        out.print(f"[dim]({markup_line(str(kind))} record)[/dim]")
    return trimmed


def _text(out: Console, label: str, text: str, full: bool, indent: str = "  ") -> bool:
    lines = text.splitlines() or [""]
    shown = lines if full else lines[:LINES]
    head = f"{indent}[dim]{markup_line(label)}:[/dim] " if label else indent
    out.print(head + markup(shown[0]))
    for line in shown[1:]:
        out.print(indent + "  " + markup(line))
    if len(shown) < len(lines):
        out.print(f"{indent}  [dim]... {len(lines) - len(shown)} more line(s)[/dim]")
        return True
    return False

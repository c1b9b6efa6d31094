"""The approval prompt: everything the person needs in view, then one decision.

The run prepares an `ApprovalRequest` (run/context.py: the agents' summaries, verdicts, findings, files, diffs
and the spend); this module only renders it and asks. `CHOICES` is the menu: a choice is either a decision the
run acts on (`DECISIONS`) or a view the prompt shows before asking again (`VIEWS`); another choice is one row
in each. Every decision has its flag or command for scripts, and the prompt says which.

Ctrl-C at the prompt leaves the run pending and the command exits 130; end of input leaves it pending too.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitteam import terminal
from gitteam.terminal import markup, markup_line

if TYPE_CHECKING:
    from rich.console import Console

    from gitteam.run.context import AgentResult, ApprovalRequest, ChangesRequested

SEVERITIES = ("critical", "major", "minor", "info")
SEVERITY_STYLE = {"critical": "bold red", "major": "red", "minor": "yellow", "info": "dim"}
SHOWN_FINDINGS = 6  # per agent in the summary; `gitteam show RUN AGENT` has them all


@dataclass(frozen=True)
class Choice:
    value: str
    title: str


CHOICES = (
    Choice("approve", "approve: fast-forward {target} to the result"),
    Choice("reject", "reject: leave {target} as it is (branches are kept)"),
    Choice("diff", "show the combined diff"),
    Choice("agent", "show one agent's diff"),
    Choice("changes", "request changes: send subtasks back with your feedback for another round"),
    Choice("later", "keep it pending: decide later"),
)
DECISIONS = frozenset({"approve", "reject", "later"})
# How a script makes the same decisions (docs/terminal.md has the table, diffs included: gitteam show).
SCRIPTED = ("for scripts: --yes approves, --no-merge keeps the run pending; then gitteam approve or reject RUN, "
            "or gitteam approve RUN --request-changes AGENT=TEXT")


def ask(request: ApprovalRequest, console: Console) -> str | ChangesRequested:
    """The person's decision: "approve", "reject", "later", "interrupted" (Ctrl-C), or changes requested from
    some of the merged subtasks (their coders run another round, then the prompt returns)."""
    import questionary
    from prompt_toolkit.output import create_output

    output = create_output(stdout=sys.stderr)  # the prompt goes where progress goes: stdout is --json's
    print_request(console, request)
    choices = [questionary.Choice(c.title.format(target=terminal.one_line(request.target)), value=c.value)
               for c in CHOICES if (c.value != "agent" or request.agents) and (c.value != "changes" or
                                                                               request.reworkable)]
    while True:
        try:
            answer = questionary.select(f"Fast-forward {terminal.one_line(request.target)} to the result?",
                                        choices=choices, output=output).unsafe_ask()  # ask() prints on stdout
        except KeyboardInterrupt:
            return "interrupted"
        if answer is None:  # end of input: the run waits for approve or reject
            return "later"
        if answer in DECISIONS:
            return str(answer)
        try:
            if answer == "changes":
                changes = ask_changes(request, output)
                if changes is not None:
                    return changes
                continue
            VIEWS[answer](request, console, output)
        except KeyboardInterrupt:  # in the pager or the agent's list: the same as at the prompt
            return "interrupted"


def ask_changes(request: ApprovalRequest, output: Any) -> ChangesRequested | None:
    """Which merged subtasks to send back, and what each should change; None when nothing was said."""
    import questionary

    from gitteam.run.context import ChangesRequested

    chosen = questionary.checkbox(
        "Send which subtasks back for another round?",
        choices=[questionary.Choice(f"{terminal.one_line(agent)}: {terminal.one_line(title)}", value=agent)
                 for agent, title in request.reworkable],
        output=output,
    ).unsafe_ask()
    feedback: dict[str, str] = {}
    for agent in chosen or []:
        text = questionary.text(f"What should {terminal.one_line(agent)} change?", output=output).unsafe_ask()
        if text and text.strip():
            feedback[agent] = text
    return ChangesRequested(feedback) if feedback else None


def print_request(out: Console, request: ApprovalRequest) -> None:
    """The summary above the prompt: each agent's work, verdict, findings, files and spend; the run's total."""
    budget = f" of ${request.budget:.2f}" if request.budget else ""
    out.print(f"\n[bold]Run {markup_line(request.run)} is ready[/bold]: {len(request.files)} file(s) changed, "
              f"${request.cost:.4f}{budget} spent ({request.tokens:,} tokens)")
    for agent in request.agents:
        print_agent(out, agent)
    if request.protected:  # every one of them, however many files there are: these can run code on your next command
        out.print(f"[bold red]Protected files changed[/bold red] (they can make git, CI or gitteam run code; "
                  f"read them before approving): [bold]{markup_line(', '.join(request.protected))}[/bold]")
    if request.note:  # what happened since the person was last asked (a requested rework the gate refused)
        out.print(f"[yellow]{markup_line(request.note)}[/yellow]")
    out.print(f"[dim]{SCRIPTED}[/dim]")


def print_agent(out: Console, agent: AgentResult) -> None:
    style = "green" if agent.decision == "APPROVE" else "red"
    rounds = f"round {agent.round}  " if agent.round else ""
    out.print(f"  [bold]{markup_line(agent.agent)}[/bold]  {rounds}[{style}]{markup_line(agent.decision)}[/{style}] "
              f"{markup_line(agent.verdict)}  ${agent.cost:.4f}  {agent.tokens:,} tokens")
    if agent.summary:
        out.print(f"      did      {markup_line(agent.summary)}")
    if agent.files:
        out.print(f"      files    {markup_line(', '.join(agent.files))}")
    findings = sorted(agent.findings, key=lambda f: rank(str(f.get("severity", ""))))
    if findings:
        counts = [f"{sum(1 for f in findings if f.get('severity') == s)} {s}" for s in SEVERITIES
                  if any(f.get("severity") == s for f in findings)]
        out.print(f"      findings {markup_line(', '.join(counts))}")
    for f in findings[:SHOWN_FINDINGS]:
        severity = str(f.get("severity", ""))
        where = f"{f.get('file')}:{f['line']}" if f.get("line") else str(f.get("file") or "(the change)")
        style = SEVERITY_STYLE.get(severity, "white")
        out.print(f"        [{style}]{markup_line(severity)}[/{style}] {markup_line(where)} "
                  f"{markup_line(str(f.get('message', '')))}")
    if len(findings) > SHOWN_FINDINGS:
        out.print(f"        ... and {len(findings) - SHOWN_FINDINGS} more (gitteam show shows them all)")


def rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def show_combined(request: ApprovalRequest, console: Console, output: Any) -> None:
    page(console, request.diff, f"{request.run}: the combined result ({len(request.files)} file(s))")


def show_agent(request: ApprovalRequest, console: Console, output: Any) -> None:
    import questionary

    names = [a.agent for a in request.agents if a.diff]
    if not names:
        console.print("no agent diff to show")
        return
    name = questionary.select("Which agent's diff?", choices=names, output=output).unsafe_ask()
    for agent in request.agents:
        if agent.agent == name:
            page(console, agent.diff, f"{request.run} / {agent.agent}: {', '.join(agent.files)}")


VIEWS: dict[str, Callable[[ApprovalRequest, Console, Any], None]] = {"diff": show_combined, "agent": show_agent}


def coloured(diff: str, title: str) -> str:
    """The diff as a terminal shows it in colour (through a pager that passes colour on: less -R)."""
    width = shutil.get_terminal_size().columns
    buffer = io.StringIO()
    out = terminal.console(file=buffer, force_terminal=True, color_system="standard", width=width)
    out.print(f"[bold]{markup_line(title)}[/bold]")
    # only \n ends a line (str.splitlines would also break at a CR in content, which is shown as ^M instead)
    for line in diff.removesuffix("\n").split("\n") if diff else ["(no changes)"]:
        out.print(diff_line(line))
    return buffer.getvalue()


def diff_line(line: str) -> str:
    text = markup(line)
    if line.startswith(("diff --git", "+++", "---", "index ", "rename ", "new file", "deleted file")):
        return f"[bold]{text}[/bold]"
    if line.startswith("@@"):
        return f"[cyan]{text}[/cyan]"
    if line.startswith("+"):
        return f"[green]{text}[/green]"
    if line.startswith("-"):
        return f"[red]{text}[/red]"
    return text


def pager_command() -> Sequence[str] | None:
    """GITTEAM_PAGER, then PAGER, then less; None when there is none to run (the diff is printed instead)."""
    command = shlex.split(os.environ.get("GITTEAM_PAGER") or os.environ.get("PAGER") or "less")
    return command if command and shutil.which(command[0]) else None


def page(console: Console, diff: str, title: str) -> None:
    """The diff in colour through the pager, on the terminal the prompt is on (stderr; stdout is --json's).
    As git does: LESS=FRX unless set (colour passed on, one screen or less printed and left)."""
    text = coloured(diff, title) if console.is_terminal and "NO_COLOR" not in os.environ else (
        terminal.visible(f"{title}\n{diff}\n"))
    command = pager_command()
    if command is None or not console.is_terminal:
        console.file.write(text)
        console.file.flush()
        return
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"), "LV": os.environ.get("LV", "-c")}
    try:
        subprocess.run(command, input=text.encode("utf-8", "replace"), stdout=sys.stderr.fileno(), env=env,
                       check=False)
    except OSError:
        console.file.write(text)

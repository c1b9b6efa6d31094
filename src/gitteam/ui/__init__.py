"""Terminal output: progress from journal events, the approval prompt, and status/show/cost rendering.

The run's progress on a terminal is `live.py` (a live table folded from the events by `board.py`, or plain
timestamped lines); the approval prompt is `approval.py`; this module renders the rest and is the UI's front.

Progress and prompts go to stderr so `--json` leaves stdout with exactly one JSON document. Everything an agent,
a model or the repository wrote is shown through `gitteam.terminal` (`markup` keeps newlines, `markup_line` keeps
a field on one line), never as raw terminal control sequences; JSON output stays exact data.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitteam import terminal
from gitteam.costview import describe_spend, models_line, sandbox_line
from gitteam.costview import print_cost as print_cost  # `gitteam cost` renders through ui like every command
from gitteam.events import (
    AgentCommitted,
    AgentFinished,
    AgentStarted,
    Event,
    IntegrationReviewed,
    IntegrationReviewStarted,
    JobPublished,
    LeftoversSaved,
    LockGranted,
    LockWaiting,
    Merged,
    ModelCalled,
    Planned,
    RemoteTraffic,
    Replanned,
    Reviewed,
    ReworkRequested,
    RunStarted,
    TargetMoved,
    TargetUpdated,
    ToolRefused,
    WorkerClaimed,
    WorkerReported,
)
from gitteam.terminal import markup, markup_line
from gitteam.transcriptview import print_transcripts as print_transcripts  # show --transcript

if TYPE_CHECKING:
    from rich.console import Console

    from gitteam.journal import RunState
    from gitteam.memory import Compaction, Entry, Found
    from gitteam.memory.sync import SyncResult
    from gitteam.plan import Plan
    from gitteam.run.context import ApprovalRequest, ChangesRequested, RunOptions, RunResult
    from gitteam.run.control import Cleaning
    from gitteam.run.inspect import AgentView
    from gitteam.ui.live import RunDisplay

STATE_STYLE = {"merged": "green", "pending": "yellow", "running": "cyan", "rejected": "magenta",
               "aborted": "dim", "failed": "red", "refused": "red", "budget": "red", "interrupted": "yellow"}


def progress_console() -> Console:
    """Progress, prompts and messages go to stderr: stdout is for --json and for what a command prints."""
    return terminal.console(stderr=True)


def stdout() -> Console:
    return terminal.console()


def print_json(value: Any, readable: bool = False) -> None:
    """One JSON document on stdout: exact data, nothing a terminal obeys. `readable` keeps non-ASCII text as it
    is (memory notes), except the characters `terminal.json_text` escapes; otherwise the document is ASCII."""
    if readable:
        print(terminal.json_text(json.dumps(value, indent=1, ensure_ascii=False)))
    else:
        print(json.dumps(value, indent=1))


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def run_options(yes: bool, no_merge: bool, keep: bool, json_out: bool,
                allow_protected: Sequence[str] = (), display: RunDisplay | DisplayLater | None = None,
                remote: str | None = None) -> RunOptions:
    """Ask the person only when there is a terminal to ask on (never wait for input without one). The live
    display stops before the prompt starts: the two would fight over the same lines."""
    from gitteam.run.context import RunOptions

    def approver(request: ApprovalRequest) -> str | ChangesRequested:
        if display is not None:
            display.stop()
        return ask_approval(request)

    asking = is_interactive() and not yes and not no_merge
    return RunOptions(yes=yes, no_merge=no_merge, keep=keep, approver=approver if asking else None,
                      allow_protected=tuple(allow_protected), remote=remote)


def run_display(console: Console, quiet: bool = False) -> RunDisplay:
    """The run on the terminal while it works: the live table on a terminal, else plain timestamped lines."""
    from gitteam.ui.live import RunDisplay, wants_live

    return RunDisplay(console, ProgressPrinter(console), live=wants_live(console, quiet))


class DisplayLater:
    """`run_display`, made once the run's first model request is out instead of before the run starts: making it
    loads rich (about 20 ms), which the planner's request has no need to wait for. The events journaled until
    then wait, in order, and are shown as soon as it is made; a run with no model request within `PATIENCE`
    seconds (a saved plan's, one queued behind another run's files) gets it then. `stop`, `seed` and the end of
    the `with` block make it at once when it is not there yet, so nothing is ever left unshown."""

    PATIENCE = 0.25  # seconds: the longest a line waits for the display

    def __init__(self, quiet: bool = False) -> None:
        self._quiet = quiet
        self._lock = threading.Lock()  # the waiting events and the display once made
        self._making = threading.Lock()  # one maker
        self._display: RunDisplay | None = None
        self._waiting: list[Event] = []
        self._asked = threading.Event()  # a model request is out: the display can be made now
        self._maker = threading.Thread(target=self._make_when_asked, name="gitteam-display", daemon=True)

    def __enter__(self) -> DisplayLater:
        self._maker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._asked.set()
        self._made().__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        display = self._display
        if display is None:
            with self._lock:
                display = self._display
                if display is None:
                    self._waiting.append(event)
                    if isinstance(event, ModelCalled):
                        self._asked.set()
                    return
        display(event)

    def stop(self) -> None:
        self._made().stop()

    def seed(self, events: Iterable[Event]) -> None:
        self._made().seed(events)

    def _make_when_asked(self) -> None:
        self._asked.wait(self.PATIENCE)
        self._made()

    def _made(self) -> RunDisplay:
        with self._making:
            if self._display is None:
                display = run_display(progress_console(), self._quiet).__enter__()  # rich loads here
                with self._lock:  # events arriving meanwhile wait, then go to the display after these
                    for event in self._waiting:
                        display(event)
                    self._waiting.clear()
                    self._display = display
            return self._display


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
        spend = describe_spend(e)
        if spend is not None:
            return spend
        match e:
            case RunStarted():  # after the models resolved: a bad spec's error stays the only line
                models = models_line(e.options)
                return (f"[bold]gitteam run {markup_line(e.run)}[/bold] on {markup_line(e.target)} "
                        f"({markup_line(e.base[:10])})" + sandbox_line(e.sandbox)
                        + (f"\n[dim]{markup_line(models)}[/dim]" if models else ""))
            case Planned():
                waves = markup_line(" -> ".join("[" + ", ".join(w) + "]" for w in e.waves))
                notes = "".join(f"\n  [yellow]{markup_line(n)}[/yellow]" for n in e.serialized)
                count = len(e.plan.get("subtasks", []))
                return f"planned {count} subtask(s) in {len(e.waves)} wave(s): {waves}{notes}"
            case LockWaiting():
                whose = "queued behind" if e.queued else "held by"
                return (f"  [yellow]…[/yellow] {markup_line(e.agent)}: waiting for {markup_line(e.path)}, {whose} "
                        f"run {markup_line(e.holder_run)} (subtask {markup_line(e.holder_subtask)})")
            case LockGranted():
                return f"  [cyan]>[/cyan] {markup_line(e.agent)}: its files are free after {e.waited:.0f} s"
            case Replanned():
                if e.subtask is not None:
                    return (f"  [yellow]↻[/yellow] {markup_line(e.agent)}: back to the planner; its next attempt is "
                            f"{markup_line(str(e.subtask.get('id')))}, from the same start")
                why = markup_line(e.error) if e.error else "the planner gave it up"
                return f"  [red]x[/red] {markup_line(e.agent)}: no next attempt: {why}"
            case AgentStarted():
                return f"  [cyan]>[/cyan] {markup_line(e.agent)}: setting up on {markup_line(e.branch)}"
            case JobPublished():
                return (f"  [cyan]>[/cyan] {markup_line(e.agent)}: turn {e.step} published to "
                        f"{markup_line(e.remote)}, waiting for a worker")
            case WorkerClaimed():
                how = "taken over" if e.takeover else "claimed"
                return (f"  [cyan]>[/cyan] {markup_line(e.agent)}: {how} by a worker on {markup_line(e.host)} "
                        f"(pid {e.pid})")
            case WorkerReported() if e.status != "done":
                return f"  [red]x[/red] {markup_line(e.agent)}: the worker on {markup_line(e.host)} failed"
            case AgentCommitted() if e.stray:
                stray = markup_line(", ".join(e.stray))
                return (f"  [yellow]![/yellow] {markup_line(e.agent)}: left files it does not own (not committed): "
                        f"{stray}")
            case Reviewed():
                return (f"  [blue]?[/blue] {markup_line(e.agent)}: round {e.round}: {verdict_line(e.verdict)}")
            case IntegrationReviewStarted():
                return "  [blue]?[/blue] integration: checks, tests and review of the combined result"
            case IntegrationReviewed():
                return f"  [blue]?[/blue] integration: {verdict_line(e.verdict)}"
            case ReworkRequested():
                who = "the integration review's findings" if e.origin == "integration" else "your feedback"
                return f"  [yellow]<[/yellow] another round for {markup_line(', '.join(e.feedback))}, with {who}"
            case AgentFinished():
                style = "green" if e.status == "approved" else "red"
                reason = f": {markup_line(e.reason)}" if e.reason else ""
                return f"  [{style}]{markup_line(e.status)}[/{style}] {markup_line(e.agent)}{reason}"
            case ToolRefused():
                return (f"  [yellow]![/yellow] {markup_line(e.agent)}: {markup_line(e.role)} tool "
                        f"{markup_line(e.tool)} refused: {markup_line(e.error)}")
            case Merged():
                return f"  [green]+[/green] merged {markup_line(e.agent)} into the integration branch"
            case TargetMoved():
                return f"  {markup_line(e.target)} moved during the run; merged its new commits into the run"
            case TargetUpdated():
                return (f"[green]fast-forwarded {markup_line(e.target)}[/green] "
                        f"{markup_line(e.old[:10])}..{markup_line(e.new[:10])}")
            case RemoteTraffic():
                from gitteam.remote.protocol import Stats  # the worker's line, word for word

                stats = Stats(e.fetches, e.fetch_seconds, e.pushes, e.push_seconds, e.rejected)
                return f"  [dim]{markup_line(e.remote)}: {markup_line(stats.line())}[/dim]"
            case LeftoversSaved():
                return (f"  [yellow]![/yellow] {markup_line(e.agent)}: saved what it left uncommitted on "
                        f"{markup_line(e.ref)}: {markup_line(', '.join(e.paths[:8]))}"
                        + (f" and {len(e.paths) - 8} more" if len(e.paths) > 8 else ""))
        return None


def verdict_line(verdict: dict[str, Any]) -> str:
    return f"{markup_line(str(verdict.get('decision', '')))} {markup_line(str(verdict.get('summary', '')))}"


def ask_approval(request: ApprovalRequest) -> str | ChangesRequested:
    """The person's decision on a run's result, at the terminal: "approve", "reject", "later", "interrupted", or
    changes requested from some of the subtasks (ui/approval.py)."""
    from gitteam.ui.approval import ask

    return ask(request, progress_console())


def report(console: Console, result: RunResult, json_out: bool) -> int:
    if json_out:
        print_json({"run": result.run, "state": result.state, "exit_code": result.exit_code,
                    "message": result.message, **result.details})
    else:  # the result on stdout, so `gitteam run ... | tee log` keeps it; the progress stayed on stderr
        out, style = stdout(), STATE_STYLE.get(result.state, "white")
        out.print(f"[{style}]{result.state}[/{style}]: {markup(result.message)}")
        protected = result.details.get("protected")
        if protected:
            out.print(f"[bold red]protected files changed:[/bold red] {markup_line(', '.join(protected))}")
    return result.exit_code


def print_plan(plan: Plan, notes: Sequence[str], summary: str, json_out: bool, run: str = "") -> None:
    from gitteam.plan import waves

    layers = waves(plan)
    if json_out:
        print_json({"run": run, "plan": plan.to_json(), "serialized": list(notes),
                    "waves": [[s.id for s in w] for w in layers], "summary": summary})
        return
    out = stdout()
    if summary:
        out.print(markup(summary))
    for number, wave in enumerate(layers, 1):
        out.print(f"[bold]wave {number}[/bold]")
        for sub in wave:
            after = f" (after {markup_line(', '.join(sub.depends_on))})" if sub.depends_on else ""
            tier = f" [magenta]{sub.priority}[/magenta]" if sub.priority != "normal" else ""
            out.print(f"  [cyan]{markup_line(sub.id)}[/cyan]{tier}: {markup_line(sub.title)}{after}")
            out.print(f"    files: {markup_line(', '.join(sub.files))}")
            for label, interfaces in (("provides", sub.provides), ("consumes", sub.consumes)):
                for interface in interfaces:
                    out.print(f"    {label}: {markup_line(interface)}")
    for note in notes:
        out.print(f"[yellow]{markup_line(note)}[/yellow]")
    if run:
        out.print(f"plan saved as run {run}: gitteam run --plan {run} carries it out")


def state_json(state: RunState) -> dict[str, Any]:
    return {
        "run": state.run, "state": state.state, "orphaned": state.orphaned,
        "task": state.task, "target": state.target, "base": state.base,
        "started": state.started, "integration": state.integration, "integration_head": state.integration_head,
        "tokens": state.tokens, "cost": round(state.cost, 6), "message": state.message, "disk": state.disk,
        "locks": state.locks,
        "agents": [{"id": a.id, "status": a.status, "branch": a.branch, "worktree": a.worktree, "head": a.head,
                    "leftovers": a.leftovers or None,
                    "files": a.files, "round": a.round, "tokens": a.tokens, "cost": round(a.cost, 6),
                    "verdict": (a.verdict or {}).get("decision"), "findings": (a.verdict or {}).get("findings", []),
                    "reason": a.reason, "models": sorted(a.models), "turns": state.turns.get(a.id, {}),
                    "waiting_for": a.waiting_for or None, "worker": a.worker or None, "granted": a.granted,
                    "requests": a.requests}
                   for a in state.agents.values()],
        "turns": state.turns,
        "integration_review": state.integration_review and {
            **state.integration_review, "tokens": state.integration_tokens,
            "cost": round(state.integration_cost, 6)},
        "damaged": [{"line": d.line, "problem": d.problem} for d in state.damaged],
    }


def damaged_line(state: RunState) -> str:
    """A warning about journal lines that were skipped, or "" when there are none."""
    if not state.damaged:
        return ""
    first = state.damaged[0]
    more = f" and {len(state.damaged) - 1} more" if len(state.damaged) > 1 else ""
    return (f"[yellow]its journal has {len(state.damaged)} damaged line(s), skipped[/yellow] (line {first.line}: "
            f"{markup_line(first.problem)}{more}); what they recorded is not shown")


def print_status(states: Sequence[RunState], json_out: bool, detailed: bool) -> None:
    if json_out:
        print_json([state_json(s) for s in states])
        return
    out = stdout()
    if not states:
        out.print("no runs yet (gitteam run TASK, or gitteam demo)")
        return
    for state in states:
        label, style = state.state, STATE_STYLE.get(state.state, "white")
        if state.orphaned:  # its process was killed or crashed: only resume moves it on
            label, style = "stopped", "yellow"
        disk = f"  {size_text(state.disk)} on disk" if state.disk else ""
        out.print(f"[bold]{markup_line(state.run)}[/bold] [{style}]{markup_line(label)}[/{style}] -> "
                  f"{markup_line(state.target)}  {state.tokens:,} tokens  ${state.cost:.4f}{disk}  "
                  f"{markup_line(state.task[:60])}")
        if detailed or len(states) == 1:
            print_agents(out, state)
            if state.message:
                out.print(markup(state.message))
            if state.locks and state.state != "running":  # kept for a decision or a resume: others queue on them
                shown = ", ".join(state.locks[:8]) + (f" and {len(state.locks) - 8} more" if len(state.locks) > 8
                                                      else "")
                out.print(f"  holds {len(state.locks)} file(s) until it is decided or aborted: {markup_line(shown)}")
            if state.orphaned:
                out.print(f"its process is gone (killed or crashed); carry on with: gitteam resume {state.run}")
        if state.damaged:  # even in the short list: what status shows of this run may be incomplete
            out.print("  " + damaged_line(state))


def turns_text(by_role: dict[str, int]) -> str:
    """Model calls per role: "coder 3, reviewer 1"."""
    return ", ".join(f"{markup_line(role)} {count}" for role, count in sorted(by_role.items()))


def print_agents(out: Console, state: RunState) -> None:
    if "planner" in state.turns:
        out.print(f"  [bold]planner[/bold] turns {turns_text(state.turns['planner'])}")
    for a in state.agents.values():
        verdict = (a.verdict or {}).get("decision", "")
        style = "green" if a.status in ("merged", "approved") else "red" if a.status in (
            "failed", "refused", "budget") else "white"
        rounds = f" round {a.round}" if a.round else ""
        # merged into the run's integration branch; only a merged run's reached the target
        shown = "integrated" if a.status == "merged" and state.state != "merged" else a.status
        out.print(f"  [bold]{markup_line(a.id)}[/bold] [{style}]{markup_line(shown)}[/{style}] "
                  f"{markup_line(verdict)}{rounds}  {a.tokens:,} tokens  ${a.cost:.4f}  "
                  f"{markup_line(', '.join(sorted(a.models)))}")
        if a.reason:
            out.print(f"      reason   {markup_line(a.reason)}")
        if a.waiting_for:
            out.print(f"      waiting  for {markup_line(a.waiting_for)}")
        if a.worker:
            out.print(f"      worker   {markup_line(a.worker)}")
        for request in a.requests:  # request_files: what it asked beyond its plan, and the answer
            got = "granted" if request["granted"] else "refused"
            out.print(f"      asked    {markup_line(', '.join(request['paths']))} ({got}): "
                      f"{markup_line(request['reason'])}")
        if a.branch:
            out.print(f"      branch   {markup_line(a.branch)} ({markup_line(a.head[:10])})")
        if a.worktree:
            gone = "" if Path(a.worktree).is_dir() else " (removed)"
            out.print(f"      worktree {markup_line(a.worktree)}{gone}")
        if a.leftovers:
            out.print(f"      leftover {markup_line(a.leftovers)} (what it left uncommitted: git show "
                      f"{markup_line(a.leftovers)})")
        out.print(f"      files    {markup_line(', '.join(a.files))}")
        if a.id in state.turns:
            out.print(f"      turns    {turns_text(state.turns[a.id])}")
        print_findings(out, (a.verdict or {}).get("findings", []), "      finding  ")
    if state.integration_review:
        verdict = state.integration_review["verdict"]
        out.print(f"  [bold]integration review[/bold] {markup_line(verdict['decision'])} "
                  f"({markup_line(state.integration_review['head'][:10])})  {state.integration_tokens:,} tokens  "
                  f"${state.integration_cost:.4f}  {markup_line(verdict['summary'])}")
        print_findings(out, verdict.get("findings", []), "      finding  ")
        if "integration" in state.turns:
            out.print(f"      turns    {turns_text(state.turns['integration'])}")


def print_findings(out: Console, findings: Sequence[dict[str, Any]], prefix: str, limit: int = 12) -> None:
    """Review findings, one line each, the first `limit` of them."""
    for f in findings[:limit]:
        where = f"{f['file']}:{f['line']}" if f.get("line") else f.get("file") or "(the change)"
        out.print(f"{prefix}{markup_line('[' + str(f['severity']) + ']')} {markup_line(where)} "
                  f"{markup_line(f['message'])}")
    if len(findings) > limit:
        out.print(f"{prefix}... and {len(findings) - limit} more (gitteam status --json shows them all)")


def print_agent(view: AgentView, json_out: bool) -> None:
    if json_out:
        work = view.uncommitted
        print_json({"run": view.run.run, "agent": view.agent, "commits": view.commits, "notes": view.notes,
                    "diff": view.diff, "uncommitted": work and {"worktree": work.worktree, "files": work.files,
                                                                "deleted": work.deleted, "diff": work.diff}})
        return
    out = stdout()
    out.print(f"[bold]{markup_line(view.run.run)} / {markup_line(view.agent)}[/bold]  {len(view.commits)} commit(s)")
    so_far = 0  # a note holds the coder's tokens up to its commit: each round shows its own
    for note in view.notes:
        review = note.get("review") or {}
        if "round" in note or review:
            total = note.get("tokens", 0) if isinstance(note.get("tokens"), int) else 0
            this_round, so_far = (total - so_far if total >= so_far else total), total
            out.print(f"  {markup_line(note['commit'][:10])} round {markup_line(str(note.get('round', '?')))} "
                      f"model {markup_line(str(note.get('model', '?')))} tokens {this_round:,}: "
                      f"{markup_line(str(review.get('decision', '')))} {markup_line(str(review.get('summary', '')))}")
            print_findings(out, review.get("findings", []), "    ", limit=1000)
        integrated = note.get("integration_review")
        if integrated:
            out.print(f"  {markup_line(note['commit'][:10])} integration review: "
                      f"{markup_line(str(integrated['decision']))} {markup_line(str(integrated['summary']))}")
            print_findings(out, integrated.get("findings", []), "    ", limit=1000)
    work = view.uncommitted
    if view.diff or not work:
        out.print(markup(view.diff) if view.diff else "(no changes)")
    if work:  # a coder at work (or a kept worktree): what it has written since its last commit, not reviewed yet
        files = ", ".join([*work.files, *(f"{path} (deleted)" for path in work.deleted)])
        out.print(f"[bold]uncommitted[/bold] in {markup_line(work.worktree)} (not reviewed yet): "
                  f"{markup_line(files)}")
        if work.diff:
            out.print(markup(work.diff))


def size_text(size: int) -> str:
    """Bytes as people read them: 0 B, 812 KB, 3.4 MB, 1.2 GB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def print_clean(cleaning: Cleaning) -> None:
    out = stdout()
    removed = [path for removal in cleaning.runs.values() for path, _ in removal.removed]
    runs = len([r for r in cleaning.runs.values() if r.removed])
    out.print(f"removed {len(removed)} worktree(s) of {runs} finished run(s), freed {size_text(cleaning.freed)}")
    for run, removal in cleaning.runs.items():
        for path, size in removal.removed:
            out.print(f"  {markup_line(run)}: {markup_line(str(path))} ({size_text(size)})")
        for saved in removal.saved:
            out.print(f"  {markup_line(run)}: what {markup_line(saved.agent)} left uncommitted is on "
                      f"{markup_line(saved.ref)} ({len(saved.paths)} file(s))")
    for path, why in cleaning.kept:
        out.print(f"[yellow]kept {markup_line(str(path))}: {markup_line(why)} (gitteam clean --force removes it)"
                  "[/yellow]")
    if cleaning.orphans:
        total = size_text(sum(orphan.size for orphan in cleaning.orphans))
        verb = "removed" if cleaning.orphans_removed else "found"
        out.print(f"{verb} {len(cleaning.orphans)} orphaned worktree(s) ({total}) that no repository knows:")
        for orphan in cleaning.orphans:
            out.print(f"  {markup_line(str(orphan.path))} ({size_text(orphan.size)}): {markup_line(orphan.why)}")
        if not cleaning.orphans_removed:
            out.print("their repositories were deleted, or moved without them (gitteam resume or clean in a moved "
                      "repository reconnects its own first); gitteam clean --orphans removes them")


def print_memory(entries: Sequence[Entry], json_out: bool) -> None:
    if json_out:
        print_json([e.to_json() for e in entries], readable=True)
        return
    out = stdout()
    if not entries:
        out.print("no entries")
    for e in entries:
        tags = f" [{', '.join(e.tags)}]" if e.tags else ""
        out.print(f"{markup_line(e.id[:10])} {markup_line(e.created)} {markup_line(e.role)}/{markup_line(e.agent)}"
                  f"{markup_line(tags)}: {markup(e.content)}")


def print_memory_entry(found: Found, json_out: bool) -> None:
    e = found.entry
    hidden = [{"tombstone": t.id, "reason": t.reason, "by": list(t.by), "created": t.created}
              for t in found.hidden_by]
    if json_out:
        print_json({**e.to_json(), "hidden_by": hidden}, readable=True)
        return
    out = stdout()
    out.print(f"[bold]{markup_line(e.id)}[/bold]")
    rows = [("created", e.created), ("by", f"{e.role}/{e.agent}" if e.agent else e.role), ("run", e.run),
            ("tags", ", ".join(e.tags)), ("files", ", ".join(e.files))]
    rows += [(str(key), str(value)) for key, value in e.meta.items() if key != "compacts"]
    if "compacts" in e.meta:
        rows.append(("compacts", f"{len(e.meta['compacts'])} entries (gitteam memory list --all shows them)"))
    for t in found.hidden_by:
        replaced = f"; see {', '.join(b[:10] for b in t.by)}" if t.by else ""
        rows.append(("hidden", f"{t.reason} ({t.created}){replaced}"))
    for key, value in rows:
        if value:
            out.print(f"{markup_line(key):<9} {markup_line(value)}")
    out.print("")
    out.print(markup(e.content))


def print_compaction(result: Compaction, dry_run: bool, json_out: bool) -> None:
    if json_out:
        print_json({"dry_run": dry_run, "summaries": [e.to_json() for e in result.summaries],
                    "compacted": [e.id for e in result.compacted]}, readable=True)
        return
    out = stdout()
    if not result.summaries:
        out.print("nothing to compact (entries older than the cutoff, sharing tags, at least two)")
        return
    verb = "would compact" if dry_run else "compacted"
    out.print(f"{verb} {len(result.compacted)} entries into {len(result.summaries)} summaries")
    for e in result.summaries:
        first = e.content.splitlines()[0]
        tags = f" [{', '.join(e.tags)}]" if e.tags else ""
        out.print(f"  {markup_line(e.id[:10])}{markup_line(tags)} {markup_line(first)}")
    if not dry_run:
        out.print("the originals stay in the memory refs' history (git log -p refs/notes/gitteam-memory/...)")


def print_sync(result: SyncResult, direction: str, json_out: bool) -> None:
    if json_out:
        print_json({"remote": result.remote, "refs": result.refs, "configured": result.configured,
                    "entries_before": result.before, "entries_after": result.after})
        return
    out = stdout()
    for line in result.configured:
        out.print(f"git config {markup_line(line)}")
    for ref, what in result.refs.items():
        out.print(f"  {markup_line(ref)}: {markup_line(what)}")
    if direction == "pull":
        out.print(f"pulled memory from {markup_line(result.remote)}: {result.after - result.before:+d} entries "
                  f"({result.after} now)")
    else:
        out.print(f"pushed memory to {markup_line(result.remote)}" if result.refs else "no memory to push yet")


def print_backlog(items: Sequence[Entry], json_out: bool) -> None:
    if json_out:
        print_json([e.to_json() for e in items], readable=True)
        return
    out = stdout()
    if not items:
        out.print("the backlog is empty")
        return
    for e in items:
        line = e.meta.get("line")
        where = ", ".join(e.files) + (f":{line}" if line and len(e.files) == 1 else "") or "(whole change)"
        severity = e.meta.get("severity", "")
        message = e.content.splitlines()[0] if e.content else ""
        out.print(f"{markup_line(e.id[:10])} {markup_line(f'[{severity}]')} {markup_line(where)}: "
                  f"{markup_line(message)}  (run {markup_line(e.run)}, {markup_line(e.agent)})")
    out.print(f"fix them with: gitteam run --from-backlog {markup_line(items[0].id[:10])} ...")

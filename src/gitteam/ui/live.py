"""How a run shows itself while it works: a live table on a terminal, timestamped lines elsewhere.

Both are journal listeners over the same `Board` (board.py). The live view (rich) keeps a header and one row per
agent in place at the bottom of the screen, and prints the run's milestones (the plan, verdicts, merges) above
it, into the scrollback. Plain output (not a terminal, `--quiet`, `NO_COLOR`, a dumb terminal) prints the
milestones and every change of an agent's state as lines with the time, and a heartbeat line for each agent
that has been silent for a while, so a log never goes quiet for minutes.

The approval prompt must own the terminal: `stop()` ends the live table (its last state stays on screen), and
whatever happens after that prints as plain lines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from gitteam.events import Event
from gitteam.terminal import markup_line, one_line
from gitteam.ui.board import (
    APPROVED,
    CODING,
    FAILED_STATES,
    INTEGRATION,
    MERGED,
    PLANNER,
    PLANNING,
    REVIEWING,
    TESTING,
    THINKING,
    Board,
    Change,
    Header,
    Row,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from gitteam.ui import ProgressPrinter

WORK = frozenset({PLANNING, CODING, TESTING, REVIEWING})  # states plain output announces with a line of their own
HEARTBEAT_SECONDS = 30.0  # plain output: a line for an agent silent this long (GITTEAM_HEARTBEAT overrides)
STATE_STYLE = {APPROVED: "green", MERGED: "green", "coding": "cyan", "testing": "blue", "reviewing": "blue",
               "changes requested": "yellow", "setting up": "cyan", "planning": "cyan", "queued": "dim",
               "planned": "green"}


def heartbeat_seconds() -> float:
    """GITTEAM_HEARTBEAT (seconds, > 0) or the default; an unreadable value is the default, never an error."""
    try:
        value = float(os.environ.get("GITTEAM_HEARTBEAT", ""))
    except ValueError:
        return HEARTBEAT_SECONDS
    return value if value > 0 else HEARTBEAT_SECONDS


def wants_live(console: Console, quiet: bool) -> bool:
    """The live table needs a real terminal and a person who did not ask for plain output."""
    return (console.is_terminal and not console.is_dumb_terminal and not quiet
            and "NO_COLOR" not in os.environ)


class RunDisplay:
    """A journal listener: the run on the terminal. Use it as a context manager around the run."""

    def __init__(self, console: Console, printer: ProgressPrinter, live: bool,
                 heartbeat: float | None = None, board: Board | None = None) -> None:
        self.console = console
        self.printer = printer
        self.board = board or Board()
        self.heartbeat = heartbeat if heartbeat is not None else heartbeat_seconds()
        self._lock = threading.RLock()  # one line or one refresh at a time, whichever thread sends the event
        self._live: Live | None = None
        self._want_live = live
        self._stopped = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> RunDisplay:
        if self._want_live:
            from rich.live import Live

            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        else:
            self._beat = threading.Thread(target=self._heartbeats, name="gitteam-heartbeat", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """End the live table and the heartbeats (a prompt wants the terminal); later events print as lines."""
        self._stopped.set()
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()

    def seed(self, events: Iterable[Event]) -> None:
        """What the journal already holds (a resumed run), folded in without printing it again."""
        for event in events:
            self.board.apply(event)

    def __call__(self, event: Event) -> None:
        change = self.board.apply(event)
        line = self.printer.describe(event)
        with self._lock:
            live = self._live
            if live is not None:  # the table redraws itself four times a second; a milestone goes above it
                if line:
                    live.console.print(line)
                return
            stamp = f"[dim]{timestamp(event)}[/dim] "
            if line:
                self.console.print(stamp + line.replace("\n", "\n" + " " * 9))
            if change is not None and show_change(change):
                self.console.print(stamp + change_line(change.row))

    def __rich__(self) -> Group:
        """What Live draws at each refresh: the header, then the table (rich calls this on its thread)."""
        header, rows, now = self.board.snapshot()
        current, total = self.board.wave()
        return render(header, rows, now, current, total)

    def _heartbeats(self) -> None:
        while not self._stopped.wait(self.heartbeat / 4):
            for row in self.board.silent(self.heartbeat):
                with self._lock:
                    if not self._stopped.is_set():
                        now = self.board.clock()
                        self.console.print(f"[dim]{datetime.now().strftime('%H:%M:%S')}[/dim] "
                                           + heartbeat_line(row, now))


def timestamp(event: Event) -> str:
    """The event's time (journaled in UTC) on the local clock, as HH:MM:SS."""
    try:
        return datetime.fromisoformat(event.t).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return datetime.now().strftime("%H:%M:%S")


def show_change(change: Change) -> bool:
    """A change to work no milestone line announces (those say set up, approved, failed, merged; the
    integration review's line says it starts)."""
    return change.row.state in WORK and change.row.id != INTEGRATION


def change_line(row: Row) -> str:
    where = f" (round {row.round})" if row.round > 1 else ""
    return f"  {markup_line(row.id)}: {markup_line(row.state)}{where}"


def heartbeat_line(row: Row, now: float) -> str:
    """`a: still coding, round 1, step 4, in write_file src/a.py, 1,234 tokens, $0.0123, 2m05s`."""
    parts = [f"still {row.state}"]
    if row.round:
        parts.append(f"round {row.round}")
    if row.steps:
        parts.append(f"step {row.steps}")
    if row.tool:
        parts.append("waiting for its model" if row.tool == THINKING else f"in {row.tool}")
    parts += [f"{row.tokens:,} tokens", f"${row.cost:.4f}", duration(row.elapsed(now))]
    return f"  [dim]{markup_line(row.id)}: {markup_line(', '.join(parts))}[/dim]"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def header_text(header: Header, now: float, wave: int, waves: int) -> Text:
    elapsed = duration((header.ended or now) - header.started) if header.started is not None else "-"
    budget = f" of ${header.budget:.2f}" if header.budget else ""
    where = f"wave {wave}/{waves}" if waves else "planning"
    if header.finished:
        where = header.finished
    text = Text()
    text.append("gitteam run ", style="bold")
    text.append(one_line(header.run), style="bold")
    text.append(f" -> {one_line(header.target)}  {where}  {elapsed}  ${header.spent:.4f}{budget}  "
                f"{header.tokens:,} tokens")
    return text


def render(header: Header, rows: list[Row], now: float, wave: int, waves: int) -> Group:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify in (("agent", "left"), ("state", "left"), ("round", "right"), ("now", "left"),
                          ("steps", "right"), ("tokens", "right"), ("cost", "right"), ("time", "right")):
        table.add_column(name, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         overflow="ellipsis", max_width=36 if name == "now" else None)
    for row in rows:
        style = STATE_STYLE.get(row.state, "red" if row.state in FAILED_STATES else "white")
        name = one_line(row.id) + (f" ({row.priority})" if row.priority else "")  # a critical or low subtask
        table.add_row(Text(name, style="bold" if row.id == PLANNER else ""),
                      Text(one_line(row.state), style=style),
                      str(row.round) if row.round else "",
                      Text(one_line(row.tool), style="dim"),
                      str(row.steps) if row.steps else "",
                      f"{row.tokens:,}" if row.tokens else "",
                      f"${row.cost:.4f}" if row.cost else "",
                      duration(row.elapsed(now)) if row.started is not None else "")
    return Group(header_text(header, now, wave, waves), table)

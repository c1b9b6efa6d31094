"""The run as the live view shows it: the journal's events folded into a header and one row per agent.

Nothing here keeps books of its own: every figure comes from an event the journal also records (the plan, each
agent's start, tool calls, model usage, commits, verdicts, ends). The clock only measures how long ago something
happened. Agents' threads append events while the view's refresh thread reads: one lock around both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gitteam.events import (
    AgentCommitted,
    AgentFinished,
    AgentStarted,
    Event,
    FilesRequested,
    IntegrationReviewed,
    IntegrationReviewStarted,
    JobPublished,
    LockGranted,
    LockWaiting,
    Merged,
    ModelCalled,
    Planned,
    Resumed,
    Reviewed,
    RunFinished,
    RunStarted,
    ToolStarted,
    UsageRecorded,
    WorkerClaimed,
    WorkerReported,
)

PLANNER = "planner"
INTEGRATION = "integration"

# The states a row can be in, as the person reads them.
QUEUED, SETTING_UP, CODING, TESTING, REVIEWING = "queued", "setting up", "coding", "testing", "reviewing"
CHANGES_REQUESTED, APPROVED, MERGED = "changes requested", "approved", "merged"
WAITING_FOR_LOCK = "waiting for a lock"
PLANNING, PLANNED = "planning", "planned"
THINKING = "(thinking)"  # the row's tool while its model call is in flight
ACTIVE = frozenset({SETTING_UP, CODING, TESTING, REVIEWING, CHANGES_REQUESTED, PLANNING})
FAILED_STATES = frozenset({"failed", "refused", "budget", "interrupted", "skipped", "blocked"})


@dataclass(frozen=True)
class Row:
    """One agent (or the planner, or the integration review) as the view shows it."""

    id: str
    state: str = QUEUED
    round: int = 0
    tool: str = ""  # the tool call it is in now ("" between calls)
    steps: int = 0  # model calls of its coder (the planner's for the planner)
    tokens: int = 0  # every role's, the reviewers' included
    cost: float = 0.0
    started: float | None = None  # the clock when it started, None while queued
    ended: float | None = None
    heard: float = 0.0  # the clock at its last event: a heartbeat speaks for a row silent too long
    wave: int = 0
    priority: str = ""  # the plan's, when not normal ([routing] may give it other models)

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started is None else (self.ended or now) - self.started


@dataclass
class Header:
    run: str = ""
    target: str = ""
    budget: float | None = None
    spent: float = 0.0
    tokens: int = 0
    waves: list[list[str]] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    finished: str = ""  # the run's final state, once it has one


@dataclass(frozen=True)
class Change:
    """A row that moved to another state (what plain output prints as a line)."""

    row: Row
    before: str


class Board:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.header = Header()
        self.rows: dict[str, Row] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> tuple[Header, list[Row], float]:
        with self._lock:
            return replace(self.header, waves=list(self.header.waves)), list(self.rows.values()), self.clock()

    def wave(self) -> tuple[int, int]:
        """The wave under way (1-based; the last with a started agent) and how many there are."""
        with self._lock:
            waves = self.header.waves
            started = [row.wave for row in self.rows.values() if row.started is not None and row.wave]
            return (max(started) if started else 0), len(waves)

    def apply(self, event: Event) -> Change | None:  # noqa: C901, PLR0912 - a flat table of event kinds
        """Fold one event in; returns the row whose state it changed, if one did."""
        now = self.clock()
        with self._lock:
            header = self.header
            match event:
                case RunStarted():
                    header.run, header.target = event.run, event.target
                    money = (event.options.get("budget") or {}).get("money")
                    header.budget = float(money) if isinstance(money, int | float) else None
                    header.started = now
                    return self._set(PLANNER, now, state=PLANNING, started=now)
                case Resumed():
                    header.budget = event.budget
                    header.spent, header.tokens = event.spent, event.tokens
                    header.started = now
                case Planned():
                    header.waves = [list(w) for w in event.waves]
                    tiers = {str(s.get("id")): str(s.get("priority", "")) for s in event.plan.get("subtasks", [])
                             if isinstance(s, dict)}
                    for number, wave in enumerate(event.waves, 1):
                        for agent in wave:
                            self.rows.setdefault(agent, Row(agent, heard=now))
                            tier = tiers.get(agent, "")
                            self.rows[agent] = replace(self.rows[agent], wave=number,
                                                       priority="" if tier in ("", "normal") else tier)
                    if PLANNER in self.rows:
                        return self._set(PLANNER, now, state=PLANNED, tool="", ended=now)
                case LockWaiting():  # its tool column says for what and whose
                    return self._set(event.agent, now, state=WAITING_FOR_LOCK,
                                     tool=f"{event.path} ({event.holder_run})")
                case LockGranted():
                    return self._set(event.agent, now, state=QUEUED, tool="")
                case FilesRequested():
                    got = "granted" if event.granted else "not granted"
                    return self._set(event.agent, now, tool=f"request_files: {got}")
                case JobPublished():  # distributed mode: the row's tool column says where its coder is
                    return self._set(event.agent, now, state=CODING, tool=f"waiting for a worker ({event.remote})")
                case WorkerClaimed():
                    return self._set(event.agent, now, state=CODING, tool=f"worker {event.host} pid {event.pid}")
                case WorkerReported():
                    return self._set(event.agent, now, tool=f"worker {event.host}: {event.status}")
                case AgentStarted():
                    return self._set(event.agent, now, state=SETTING_UP, started=now, ended=None, tool="",
                                     round=max(self._row(event.agent).round, 1))
                case UsageRecorded():
                    header.spent += event.cost or 0.0
                    header.tokens += event.tokens
                    row = self._row(event.agent)
                    counts = event.role in ("coder", PLANNER)
                    return self._set(event.agent, now, tokens=row.tokens + event.tokens,
                                     cost=row.cost + (event.cost or 0.0), steps=row.steps + counts,
                                     **self._working(row, event.role, now))
                case ModelCalled():  # waiting for the reply: no tool runs now
                    row = self._row(event.agent)
                    return self._set(event.agent, now, tool=THINKING, **self._working(row, event.role, now))
                case ToolStarted():
                    detail = f" {event.detail}" if event.detail else ""
                    row = self._row(event.agent)
                    return self._set(event.agent, now, tool=event.tool + detail,
                                     **self._working(row, event.role, now))
                case AgentCommitted():
                    return self._set(event.agent, now, state=TESTING, tool="", round=max(event.round, 1))
                case Reviewed():
                    decision = str(event.verdict.get("decision", ""))
                    state = {"REQUEST_CHANGES": CHANGES_REQUESTED, "APPROVE": APPROVED, "BLOCK": "blocked"}.get(
                        decision, REVIEWING)
                    return self._set(event.agent, now, state=state, tool="", round=event.round)
                case AgentFinished():
                    return self._set(event.agent, now, state=event.status, tool="", ended=now)
                case Merged():
                    return self._set(event.agent, now, state=MERGED)
                case IntegrationReviewStarted():
                    return self._set(INTEGRATION, now, state=REVIEWING, started=now, round=1)
                case IntegrationReviewed():
                    decision = str(event.verdict.get("decision", ""))
                    state = APPROVED if decision == "APPROVE" else "refused"
                    return self._set(INTEGRATION, now, state=state, tool="", ended=now)
                case RunFinished():
                    header.finished, header.ended = event.state, now
                    for agent, row in self.rows.items():  # nothing runs after the run's end
                        if row.state in ACTIVE:
                            self.rows[agent] = replace(row, state="interrupted", tool="", ended=now)
        return None

    def silent(self, seconds: float) -> list[Row]:
        """Working rows with no event for `seconds`; each counts as heard again (one heartbeat per silence)."""
        now = self.clock()
        with self._lock:
            quiet = [row for row in self.rows.values() if row.state in ACTIVE and now - row.heard >= seconds]
            for row in quiet:
                self.rows[row.id] = replace(row, heard=now)
            return quiet

    @staticmethod
    def _working(row: Row, role: str, now: float) -> dict[str, object]:
        """The state an agent's model or tool activity puts it in: its coder codes, its reviewers review."""
        if role == "coder" and row.state != CODING:
            fresh = row.state in (CHANGES_REQUESTED, TESTING, REVIEWING)  # a new round begins
            return {"state": CODING, "round": row.round + 1 if fresh else max(row.round, 1),
                    "started": row.started if row.started is not None else now}
        if role == "reviewer" and row.state != REVIEWING:
            return {"state": REVIEWING, "started": row.started if row.started is not None else now}
        if role == PLANNER and row.state != PLANNING:
            return {"state": PLANNING, "started": row.started if row.started is not None else now, "ended": None}
        return {}

    def _row(self, agent: str) -> Row:
        return self.rows.get(agent) or Row(agent)

    def _set(self, agent: str, now: float, **values: object) -> Change | None:
        before = self._row(agent)
        after = replace(before, heard=now, **values)  # type: ignore[arg-type]
        self.rows[agent] = after
        return Change(after, before.state) if after.state != before.state else None

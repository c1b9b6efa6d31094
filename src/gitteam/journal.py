"""The append-only event log of each run, and the run's state derived from it.

`<git common dir>/gitteam/runs/<run>/events.jsonl`: one JSON object a line, appended and fsynced,
never rewritten. Everything `status`, `show`, `approve` and `resume` know comes from folding these
events, so a run killed at any point can be picked up from what reached the disk. Observers (the
terminal UI) subscribe to events as they are appended.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitteam import events
from gitteam.errors import UsageError
from gitteam.events import (
    AgentCommitted,
    AgentFinished,
    AgentStarted,
    Damaged,
    Event,
    FilesRequested,
    IntegrationCreated,
    IntegrationReviewed,
    JobPublished,
    LeftoversSaved,
    LockGranted,
    LockWaiting,
    Merged,
    Planned,
    Replanned,
    Resumed,
    Reviewed,
    ReworkRequested,
    RunFinished,
    RunStarted,
    UsageRecorded,
    WorkerClaimed,
    WorkerReported,
    WorktreesRemoved,
)
from gitteam.names import INTEGRATION
from gitteam.secrets import redact_data

Listener = Callable[[Event], None]

# States of a whole run, as `status` shows them.
RUNNING, PENDING, MERGED, FAILED, REFUSED, BUDGET, REJECTED, ABORTED, INTERRUPTED = (
    "running", "pending", "merged", "failed", "refused", "budget", "rejected", "aborted", "interrupted",
)
PLANNED = "planned"  # `gitteam plan` saved the plan; `gitteam run --plan RUN` carries it out
FINISHED_STATES = {MERGED, REJECTED, ABORTED}


class Journal:
    def __init__(self, state_dir: Path, run: str) -> None:
        self.run = run
        self.dir = state_dir / "runs" / run
        self.path = self.dir / "events.jsonl"
        self._lock = threading.Lock()  # one write at a time: lines stay whole and in order
        self._sync_lock = threading.Lock()  # one fsync at a time, covering every line written before it began
        self._written = 0  # lines this object wrote
        self._synced = 0  # of those, how many an fsync has covered
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def append(self, event: Event) -> Event:
        """Append one event (every string in it redacted: summaries, reasons, command output), then tell the
        listeners; they get it as it was written."""
        data = {"t": datetime.now(UTC).isoformat(timespec="milliseconds"), **redact_data(event.to_json())}
        event = events.from_json(data)
        line = json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            except BaseException:
                os.close(fd)
                raise
            self._written += 1
            mine = self._written
        try:
            self._sync(fd, mine)
        finally:
            os.close(fd)
        for listener in self._listeners:
            listener(event)
        return event

    def _sync(self, fd: int, line: int) -> None:
        """Return once line number `line` is on disk. Agents append side by side: a thread that waited while
        another's fsync ran may find its line covered by it (an fsync flushes the file, whichever descriptor
        asks), so one fsync stands for several lines instead of each holding the write lock through its own."""
        with self._sync_lock:
            if self._synced >= line:
                return
            with self._lock:
                covered = self._written  # every line written so far is in the file the fsync flushes
            os.fsync(fd)
            self._synced = covered

    def events(self) -> list[Event]:
        return list(read_events(self.path))


def read_events(path: Path) -> Iterator[Event]:
    """The journal's events in order; a line that is not one (torn by a crash mid-write, edited by hand) comes
    as `Damaged` and everything around it stands."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            yield Damaged(line=number, problem="not JSON")
            continue
        yield events.from_json(raw, number)


@dataclass
class AgentState:
    id: str
    status: str = "waiting"  # waiting, running, committed, reviewing, approved, merged, failed, refused, skipped
    branch: str = ""
    worktree: str = ""
    base: str = ""
    head: str = ""
    files: list[str] = field(default_factory=list)
    round: int = 0
    verdict: dict[str, Any] | None = None
    reason: str = ""
    summary: str = ""
    tokens: int = 0
    cost: float = 0.0
    models: set[str] = field(default_factory=set)
    leftovers: str = ""  # the ref holding what it left uncommitted in its worktree, when there was something
    waiting_for: str = ""  # while it waits for a file another run holds: what and whose
    granted: list[str] = field(default_factory=list)  # files request_files gave it beyond its plan
    requests: list[dict[str, Any]] = field(default_factory=list)  # each request_files: paths, reason, answer
    worker: str = ""  # distributed mode: the worker holding (or last holding) its job: "host pid N"


@dataclass
class RunState:
    run: str
    task: str = ""
    target: str = ""
    base: str = ""
    started: str = ""
    state: str = RUNNING
    exit_code: int | None = None
    message: str = ""
    plan: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    integration: str = ""
    integration_head: str = ""
    agents: dict[str, AgentState] = field(default_factory=dict)
    tokens: int = 0
    cost: float = 0.0
    worktrees_removed: bool = False
    usage: list[UsageRecorded] = field(default_factory=list)
    integration_review: dict[str, Any] | None = None  # {"head", "verdict"} of the last review of the result
    repairs: int = 0  # rounds the integration review's findings went back to the subtasks (run/rework.py)
    rework: dict[str, str] = field(default_factory=dict)  # feedback of rework rounds not merged yet, by subtask
    integration_tokens: int = 0  # what the reviews of the integrated result used ("integration" is no agent)
    integration_cost: float = 0.0
    owner: dict[str, Any] = field(default_factory=dict)  # {"pid", "host"} of the process running it last
    allow_protected: list[str] = field(default_factory=list)  # --allow-protected given to run and resume
    turns: dict[str, dict[str, int]] = field(default_factory=dict)  # model calls by agent, role: set by inspect
    settings: dict[str, Any] = field(default_factory=dict)  # config.settings_of when it started: for replay
    damaged: list[Damaged] = field(default_factory=list)  # journal lines skipped: status reports them
    disk: int = 0  # bytes its worktrees take on disk now: set by inspect
    attempts: dict[str, int] = field(default_factory=dict)  # a subtask's later attempts: id -> attempt number
    locks: list[str] = field(default_factory=list)  # the files it holds now (other runs queue for them): by inspect

    def agent(self, agent_id: str) -> AgentState:
        return self.agents.setdefault(agent_id, AgentState(agent_id))

    @property
    def orphaned(self) -> bool:
        """Running by its journal, but the process that ran it on this machine is gone (killed, crashed)."""
        if self.state != RUNNING or self.owner.get("host") != socket.gethostname() or "pid" not in self.owner:
            return False
        return not process_alive(int(self.owner["pid"]))

    @property
    def running_elsewhere(self) -> bool:
        """Running, and its process is alive (or on another machine): another resume would race it."""
        return self.state == RUNNING and bool(self.owner) and not self.orphaned


def owner() -> dict[str, Any]:
    """What run_started and resumed record, so status can tell a live run from a killed one."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def fold(run: str, journal: Iterable[Event]) -> RunState:
    """The run's state after `journal`'s events, in order. A damaged line changes nothing and is listed in
    `state.damaged`; every other event stands."""
    state = RunState(run)
    for event in journal:
        _apply(state, event)
    return state


def _apply(state: RunState, e: Event) -> None:  # noqa: C901 - one case per event kind, flat on purpose
    match e:
        case RunStarted():
            state.task, state.target, state.base, state.started = e.task, e.target, e.base, e.t
            state.options, state.state, state.owner, state.settings = e.options, RUNNING, e.owner, e.settings
            state.allow_protected = [str(path) for path in e.options.get("allow_protected", [])]
        case Planned():
            state.plan = e.plan
            for sub in e.plan["subtasks"]:  # their shape was checked when the line was read (Planned.invalid)
                state.agent(sub["id"]).files = list(sub["files"])
        case IntegrationCreated():
            state.integration, state.integration_head = e.branch, e.head
        case LockWaiting():
            whose = "queued behind" if e.queued else "held by"
            state.agent(e.agent).waiting_for = f"{e.path} ({whose} run {e.holder_run}, subtask {e.holder_subtask})"
        case LockGranted():
            state.agent(e.agent).waiting_for = ""
        case JobPublished():
            state.agent(e.agent).worker = f"published to {e.remote} (turn {e.step}), no worker yet"
        case WorkerClaimed():
            took = "took it over" if e.takeover else "claimed"
            lease = f", lease {e.lease:g} s" if e.lease else ""
            state.agent(e.agent).worker = f"{e.host} pid {e.pid} ({took} turn {e.step} at {e.t[11:19]}{lease})"
        case WorkerReported():
            state.agent(e.agent).worker = f"{e.host} pid {e.pid} (reported turn {e.step}: {e.status})"
        case Replanned() if (state.plan is not None and e.subtask is not None and isinstance(e.subtask.get("id"), str)
                             and isinstance(e.subtask.get("files"), list)):
            new = e.subtask
            state.plan = {**state.plan, "subtasks": [
                new if s["id"] == e.agent else {**s, "depends_on": [new["id"] if d == e.agent else d
                                                                   for d in s.get("depends_on", [])]}
                for s in state.plan["subtasks"]]}
            state.agent(str(new["id"])).files = list(new["files"])
            state.attempts[str(new["id"])] = e.attempt
        case FilesRequested():
            agent = state.agent(e.agent)
            agent.granted += [path for path in e.granted if path not in agent.granted]
            agent.requests.append({"paths": e.paths, "reason": e.reason, "granted": e.granted, "answer": e.answer})
        case AgentStarted():
            agent = state.agent(e.agent)
            agent.status, agent.branch, agent.worktree, agent.base = "running", e.branch, e.worktree, e.base
            agent.head = agent.head or e.base
        case AgentCommitted():
            agent = state.agent(e.agent)
            agent.head, agent.round, agent.status = e.head or agent.head, e.round, "committed"
            agent.summary = e.summary or agent.summary
        case Reviewed():
            agent = state.agent(e.agent)
            agent.verdict, agent.status = e.verdict, "reviewed"
        case AgentFinished():
            agent = state.agent(e.agent)
            agent.status, agent.reason = e.status, e.reason
            if e.status == "merged":  # a refused rework: its merged work stands, the feedback is answered
                state.rework.pop(e.agent, None)
        case IntegrationReviewed():
            state.integration_review = {"head": e.head, "verdict": e.verdict}
        case ReworkRequested():
            state.repairs += e.origin == "integration"
            state.rework.update(e.feedback)
        case Merged():
            state.rework.pop(e.agent, None)
            state.agent(e.agent).status = "merged"
            state.integration_head = e.head
        case UsageRecorded():
            _apply_usage(state, e)
        case RunFinished():
            state.state, state.exit_code, state.message = e.state, e.exit_code, e.message
        case LeftoversSaved():
            state.agent(e.agent).leftovers = e.ref
        case WorktreesRemoved():
            state.worktrees_removed = True
        case Resumed():
            state.state, state.owner = RUNNING, e.owner
            state.allow_protected += [str(path) for path in e.allow_protected]
            # what the run goes on with: the next resume keeps these (options holds the latest)
            state.options = {**state.options, **e.options, **({"models": e.models} if e.models else {}),
                             **({"economy": e.economy} if e.economy else {}),
                             **({"budget": e.limits} if e.limits else {})}
        case Damaged():
            state.damaged.append(e)


def _apply_usage(state: RunState, e: UsageRecorded) -> None:
    tokens, cost = e.tokens, e.cost or 0.0
    state.tokens += tokens
    state.cost += cost
    state.usage.append(e)
    if e.agent == INTEGRATION:
        state.integration_tokens += tokens
        state.integration_cost += cost
    elif e.role != "planner":
        agent = state.agent(e.agent)
        agent.tokens += tokens
        agent.cost += cost
        agent.models.add(e.model)


@contextmanager
def exclusive(state_dir: Path, run: str) -> Iterator[None]:
    """One gitteam process at a time acts on a run (approve, reject, resume, abort); another is refused.

    An OS lock on a file in the run's directory: it goes away with the process, however that ends.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the journal's owner check is all there is
        yield
        return
    if "/" in run or not (runs_dir(state_dir) / run / "events.jsonl").is_file():
        raise UsageError(f"no run named {run!r} (gitteam status lists the runs)")
    fd = os.open(runs_dir(state_dir) / run / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another gitteam process is working on run {run} (approve, reject, resume or "
                             f"abort); wait for it, then check with gitteam status {run}") from None
        yield
    finally:
        os.close(fd)


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "runs"


def list_runs(state_dir: Path) -> list[RunState]:
    """Every run, oldest first."""
    root = runs_dir(state_dir)
    if not root.is_dir():
        return []
    states = [load_run(state_dir, p.name) for p in root.iterdir() if (p / "events.jsonl").is_file()]
    return sorted(states, key=lambda s: (s.started, s.run))


def find_run(state_dir: Path, name: str) -> str:
    """The run called `name`, or the one run whose id starts with it (ids are long; a prefix is enough)."""
    root = runs_dir(state_dir)
    if "/" in name or not name:
        raise UsageError(f"no run named {name!r} (gitteam status lists the runs)")
    if (root / name / "events.jsonl").is_file():
        return name
    found = sorted(p.name for p in root.iterdir() if p.name.startswith(name) and (p / "events.jsonl").is_file()) \
        if root.is_dir() else []
    if not found:
        raise UsageError(f"no run named {name!r} (gitteam status lists the runs)")
    if len(found) > 1:
        raise UsageError(f"{name!r} starts the ids of {len(found)} runs ({', '.join(found[:5])}"
                         f"{', ...' if len(found) > 5 else ''}): give more of the id")
    return found[0]


def load_run(state_dir: Path, run: str) -> RunState:
    path = runs_dir(state_dir) / run / "events.jsonl"
    if "/" in run or not path.is_file():
        raise UsageError(f"no run named {run!r} (gitteam status lists the runs)")
    return fold(run, list(read_events(path)))

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitteam import transcripts
from gitteam.errors import UsageError
from gitteam.secrets import redact_data

Event = dict[str, Any]
Listener = Callable[[Event], None]

# States of a whole run, as `status` shows them.
RUNNING, PENDING, MERGED, FAILED, REFUSED, BUDGET, REJECTED, ABORTED, INTERRUPTED = (
    "running", "pending", "merged", "failed", "refused", "budget", "rejected", "aborted", "interrupted",
)
FINISHED_STATES = {MERGED, REJECTED, ABORTED}


class Journal:
    def __init__(self, state_dir: Path, run: str) -> None:
        self.run = run
        self.dir = state_dir / "runs" / run
        self.path = self.dir / "events.jsonl"
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def append(self, kind: str, **data: Any) -> Event:
        """Append one event (every string in it redacted: summaries, reasons, command output), then tell the
        listeners."""
        event: Event = {"t": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": kind,
                        **redact_data(data)}
        line = json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        for listener in self._listeners:
            listener(event)
        return event

    def events(self) -> list[Event]:
        return list(read_events(self.path))


def read_events(path: Path) -> Iterator[Event]:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            event = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # a line torn by a crash mid-write: everything before it stands
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            yield event


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
    usage: list[Event] = field(default_factory=list)
    integration_review: dict[str, Any] | None = None  # {"head", "verdict"} of the last review of the result
    integration_tokens: int = 0  # what the reviews of the integrated result used ("integration" is no agent)
    integration_cost: float = 0.0
    owner: dict[str, Any] = field(default_factory=dict)  # {"pid", "host"} of the process running it last
    allow_protected: list[str] = field(default_factory=list)  # --allow-protected given to run and resume
    turns: dict[str, dict[str, int]] = field(default_factory=dict)  # model calls by agent, role: transcripts
    settings: dict[str, Any] = field(default_factory=dict)  # config.settings_of when it started: for replay

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


def fold(run: str, events: list[Event]) -> RunState:
    state = RunState(run)
    for event in events:
        try:
            _apply(state, event)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # an event damaged on disk or by hand: like a torn line, the rest of the log stands
    return state


def _apply(state: RunState, e: Event) -> None:  # noqa: C901 - one branch per event kind, flat on purpose
    kind = e["event"]
    if kind == "run_started":
        state.task, state.target, state.base = e["task"], e["target"], e["base"]
        state.started, state.options = e["t"], e.get("options", {})
        state.state, state.owner = RUNNING, e.get("owner", {})
        state.allow_protected = [str(path) for path in state.options.get("allow_protected", [])]
        settings = e.get("settings")
        state.settings = settings if isinstance(settings, dict) else {}
    elif kind == "plan":
        state.plan = e["plan"]
        for sub in e["plan"]["subtasks"]:
            state.agent(sub["id"]).files = list(sub["files"])
    elif kind == "integration":
        state.integration, state.integration_head = e["branch"], e["head"]
    elif kind == "agent_started":
        agent = state.agent(e["agent"])
        agent.status, agent.branch, agent.worktree, agent.base = "running", e["branch"], e["worktree"], e["base"]
        agent.head = agent.head or e["base"]
    elif kind == "agent_committed":
        agent = state.agent(e["agent"])
        agent.head, agent.round, agent.status = e["head"], e["round"], "committed"
        agent.summary = e.get("summary", agent.summary)
    elif kind == "review":
        agent = state.agent(e["agent"])
        agent.verdict, agent.status = e["verdict"], "reviewed"
    elif kind == "agent_finished":
        agent = state.agent(e["agent"])
        agent.status, agent.reason = e["status"], e.get("reason", "")
    elif kind == "integration_review":
        state.integration_review = {"head": e["head"], "verdict": e["verdict"]}
    elif kind == "merged":
        state.agent(e["agent"]).status = "merged"
        state.integration_head = e["head"]
    elif kind == "usage":
        _apply_usage(state, e)
    elif kind == "run_finished":
        state.state, state.exit_code, state.message = e["state"], e["exit_code"], e.get("message", "")
    elif kind == "worktrees_removed":
        state.worktrees_removed = True
    elif kind == "resumed":
        state.state, state.owner = RUNNING, e.get("owner", {})
        state.allow_protected += [str(path) for path in e.get("allow_protected", [])]


def _apply_usage(state: RunState, e: Event) -> None:
    tokens = sum(int(v) for v in e["usage"].values())
    cost, role, agent_id, model = float(e.get("cost") or 0.0), str(e["role"]), str(e["agent"]), str(e["model"])
    state.tokens += tokens
    state.cost += cost
    state.usage.append(e)
    if agent_id == "integration":
        state.integration_tokens += tokens
        state.integration_cost += cost
    elif role != "planner":
        agent = state.agent(agent_id)
        agent.tokens += tokens
        agent.cost += cost
        agent.models.add(model)


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


def load_run(state_dir: Path, run: str) -> RunState:
    path = runs_dir(state_dir) / run / "events.jsonl"
    if "/" in run or not path.is_file():
        raise UsageError(f"no run named {run!r} (gitteam status lists the runs)")
    state = fold(run, list(read_events(path)))
    state.turns = transcripts.turns(path.parent)
    return state

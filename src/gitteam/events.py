"""Every kind of event a run journals, with its fields: the one schema writers and readers share.

A run appends these to its journal (`journal.py`) as it goes; `status`, `show`, `cost`, `resume` and the
terminal's progress lines read them back. Each kind is a frozen dataclass whose `KIND` is the `"event"` key
on disk and whose fields are the other keys (an `omitted()` field is not written when it is None). Reading checks each
line against its kind's fields: a line that does not fit (a field missing or of the wrong type) is
`Damaged` and skipped whole, never half-applied; a kind this version does not know is `Unknown`, kept for
display and otherwise ignored, so an older gitteam can still read a newer run's journal.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

JSON = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Event:
    KIND: ClassVar[str] = ""
    t: str = ""  # when it was appended (ISO 8601, UTC); set by the journal

    def invalid(self) -> str | None:
        """What is wrong with the event beyond its fields' types (a kind with nested data checks it here)."""
        return None

    def to_json(self) -> JSON:
        """The line's keys: every field but `t` (the journal adds it), null included unless marked `omitted`."""
        fields = [f for f in dataclasses.fields(self) if f.name != "t"]
        return {"event": self.KIND, **{f.name: getattr(self, f.name) for f in fields
                                       if not (f.metadata.get("omit") and getattr(self, f.name) is None)}}


def omitted() -> Any:
    """A field that is left out of the line when it is None (what the event says only sometimes)."""
    return field(default=None, metadata={"omit": True})


# -- the run ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    KIND = "run_started"
    run: str
    task: str
    target: str
    base: str
    owner: JSON = field(default_factory=dict)  # {"pid", "host"}: tells a live run from a killed one
    options: JSON = field(default_factory=dict)  # yes, no_merge, keep, max_agents, models, economy, budget,
    # allow_protected
    sandbox: JSON | None = None
    ignored_settings: list[str] = field(default_factory=list)
    settings: JSON = field(default_factory=dict)  # config.settings_of: what replay runs with


@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    KIND = "resumed"
    owner: JSON = field(default_factory=dict)
    budget: float | None = None
    limits: JSON = field(default_factory=dict)
    spent: float = 0.0
    tokens: int = 0
    allow_protected: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    economy: dict[str, str] = field(default_factory=dict)
    sandbox: JSON | None = None
    options: JSON = field(default_factory=dict)  # yes, no_merge, keep, max_agents as this resume had them


@dataclass(frozen=True, kw_only=True)
class Planned(Event):
    KIND = "plan"
    plan: JSON  # Plan.to_json
    summary: str = ""
    serialized: list[str] = field(default_factory=list)  # how overlapping subtasks were ordered
    waves: list[list[str]] = field(default_factory=list)

    def invalid(self) -> str | None:
        subtasks = self.plan.get("subtasks")
        if not isinstance(subtasks, list):
            return "plan without subtasks"
        for sub in subtasks:
            if not (isinstance(sub, dict) and isinstance(sub.get("id"), str) and isinstance(sub.get("files"), list)
                    and all(isinstance(f, str) for f in sub["files"])):
                return "plan with a subtask without an id or files"
        return None


@dataclass(frozen=True, kw_only=True)
class IntegrationCreated(Event):
    KIND = "integration"
    branch: str
    head: str


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    KIND = "run_finished"
    state: str
    exit_code: int
    message: str = ""
    target: str | None = omitted()  # the rest: what the final summary shows, when there is a result
    integration: str | None = omitted()
    head: str | None = omitted()
    files: list[str] | None = omitted()
    protected: list[str] | None = omitted()

    @property
    def details(self) -> JSON:
        names = ("target", "integration", "head", "files", "protected")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


# -- one subtask -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class AgentStarted(Event):
    KIND = "agent_started"
    agent: str
    branch: str
    worktree: str
    base: str


@dataclass(frozen=True, kw_only=True)
class AgentCommitted(Event):
    KIND = "agent_committed"
    agent: str
    head: str | None  # None: nothing owned was committed, only stray files were left
    round: int
    summary: str = ""
    stray: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class JobPublished(Event):
    """Distributed mode: a coder's turn on a subtask was published to the remote for a worker to take."""

    KIND = "job_published"
    agent: str
    step: int  # the subtask's turns so far: one per brief, findings or failed checks sent to its coder
    round: int
    job: str  # the job commit on the remote
    remote: str


@dataclass(frozen=True, kw_only=True)
class WorkerClaimed(Event):
    """Distributed mode: a worker holds a subtask's job (seen by the run's owner on the remote)."""

    KIND = "worker_claimed"
    agent: str
    worker: str  # unique per worker process
    host: str
    pid: int
    step: int
    takeover: bool = False  # it took the job over from a worker whose lease expired
    lease: float = 0.0  # seconds its claim lasts unrenewed


@dataclass(frozen=True, kw_only=True)
class WorkerReported(Event):
    """Distributed mode: a worker pushed its result for a subtask's job; its spend is journaled beside it."""

    KIND = "worker_reported"
    agent: str
    worker: str
    host: str
    pid: int
    step: int
    status: str  # done or failed
    head: str  # the worker's commit (its files are copied into the owner's worktree and committed there)
    model: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RemoteTraffic(Event):
    """Distributed mode: what the owner's side of the protocol cost since this gitteam process took the run on
    (its fetches and pushes across the network, its compare-and-swaps lost); journaled as the run stops."""

    KIND = "remote_traffic"
    remote: str
    fetches: int
    fetch_seconds: float
    pushes: int
    push_seconds: float
    rejected: int


@dataclass(frozen=True, kw_only=True)
class Reviewed(Event):
    KIND = "review"
    agent: str
    round: int
    head: str
    verdict: JSON  # Verdict.to_json


@dataclass(frozen=True, kw_only=True)
class AgentFinished(Event):
    KIND = "agent_finished"
    agent: str
    status: str  # approved, failed, refused, budget, interrupted, skipped
    reason: str = ""
    head: str | None = omitted()


@dataclass(frozen=True, kw_only=True)
class LockWaiting(Event):
    """A subtask waits for a file another live run holds (or an older waiter waits for) before it starts."""

    KIND = "lock_waiting"
    agent: str
    path: str
    holder_run: str
    holder_subtask: str
    queued: bool = False  # the holder is another waiter ahead in the queue, not the lock's owner


@dataclass(frozen=True, kw_only=True)
class LockGranted(Event):
    KIND = "lock_granted"
    agent: str
    waited: float  # seconds


@dataclass(frozen=True, kw_only=True)
class FilesRequested(Event):
    """A coder asked for files its plan did not give it (request_files); `granted` is what it got (empty:
    refused, `answer` says why)."""

    KIND = "files_requested"
    agent: str
    paths: list[str]
    reason: str
    granted: list[str] = field(default_factory=list)
    answer: str = ""


@dataclass(frozen=True, kw_only=True)
class Replanned(Event):
    """A failed subtask went back to the planner: `subtask` is its next attempt (a new id, a fresh branch from the
    same start; the plan's dependents now wait for it), or None when the planner gave it up."""

    KIND = "replanned"
    agent: str  # the attempt that failed
    attempt: int  # the number of the new attempt (2 for the first hand-back)
    reason: str  # why the failed attempt failed
    subtask: JSON | None = None
    error: str = ""  # the planner could not answer: the failure stands


@dataclass(frozen=True, kw_only=True)
class Merged(Event):
    KIND = "merged"
    agent: str
    head: str  # the integration branch after the merge


@dataclass(frozen=True, kw_only=True)
class BacklogRecorded(Event):
    KIND = "backlog"
    agent: str
    entries: list[str] = field(default_factory=list)
    error: str | None = omitted()


# -- the integrated result and the target --------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class IntegrationReviewStarted(Event):
    KIND = "integration_review_started"
    head: str


@dataclass(frozen=True, kw_only=True)
class IntegrationReviewed(Event):
    KIND = "integration_review"
    head: str
    verdict: JSON


@dataclass(frozen=True, kw_only=True)
class ReworkRequested(Event):
    """Merged subtasks sent back for another round (run/rework.py): by the integration review's findings
    ("integration") or by the person at approval ("person")."""

    KIND = "rework"
    origin: str
    feedback: dict[str, str]  # subtask id -> what to change


@dataclass(frozen=True, kw_only=True)
class AwaitingApproval(Event):
    KIND = "awaiting_approval"
    head: str
    protected: list[str] | None = omitted()  # changed protected paths --yes could not approve


@dataclass(frozen=True, kw_only=True)
class Approved(Event):
    KIND = "approved"


@dataclass(frozen=True, kw_only=True)
class Rejected(Event):
    KIND = "rejected"


@dataclass(frozen=True, kw_only=True)
class TargetMoved(Event):
    KIND = "target_moved"
    target: str
    target_head: str
    head: str  # the integration branch with the target's new commits merged in


@dataclass(frozen=True, kw_only=True)
class CatchUpChecked(Event):
    KIND = "catch_up_checked"
    head: str
    decision: str
    findings: list[JSON] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class TargetUpdated(Event):
    KIND = "target_updated"
    target: str
    old: str
    new: str
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class LeftoversSaved(Event):
    """What an agent left in its worktree, uncommitted, kept on a ref of the run before the worktree went."""

    KIND = "leftovers_saved"
    agent: str
    ref: str  # refs/gitteam/leftovers/<run>/<agent>
    commit: str  # its parent: the agent's branch head
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class WorktreesRemoved(Event):
    KIND = "worktrees_removed"
    removed: list[str] = field(default_factory=list)  # the worktrees' paths
    freed: int | None = omitted()  # bytes of disk; not measured when a run removes its own


# -- agents' spending and guards (agent and role are filled in by the run) -------------------------------------

@dataclass(frozen=True, kw_only=True)
class AgentEvent(Event):
    agent: str = ""
    role: str = ""


@dataclass(frozen=True, kw_only=True)
class UsageRecorded(AgentEvent):
    KIND = "usage"
    model: str
    usage: dict[str, int]  # Usage.to_json
    cost: float | None = None  # None: not known (no price for the model, or no usage reported)
    usage_unknown: bool | None = omitted()  # True: the server reported no usage; `usage` counted nothing

    @property
    def tokens(self) -> int:
        return sum(int(v) for v in self.usage.values())


@dataclass(frozen=True, kw_only=True)
class ModelCalled(AgentEvent):
    """An agent sent a request to its model and waits for the reply (a `usage` event ends the wait)."""

    KIND = "model_called"
    model: str
    step: int  # the agent's model calls so far, this one included


@dataclass(frozen=True, kw_only=True)
class ToolStarted(AgentEvent):
    """An agent began a tool call: what the live view shows as the agent's current tool (`status` counts them)."""

    KIND = "tool_started"
    tool: str
    detail: str = ""  # the path, pattern or command it acts on, cut short


@dataclass(frozen=True, kw_only=True)
class ToolRefused(AgentEvent):
    KIND = "tool_refused"
    tool: str
    error: str


@dataclass(frozen=True, kw_only=True)
class Compacted(AgentEvent):
    KIND = "compacted"
    before: int
    after: int
    limit: int
    trimmed: int = 0
    summarized: int = 0
    aged: int = 0  # tool outputs replaced by a one-line stub


@dataclass(frozen=True, kw_only=True)
class AgentCommand(AgentEvent):
    KIND = "agent_command"
    command: str
    exit_code: int | None
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""


@dataclass(frozen=True, kw_only=True)
class AgentCommitsUnwrapped(AgentEvent):
    KIND = "agent_commits_unwrapped"
    head: str
    base: str


@dataclass(frozen=True, kw_only=True)
class Economy(Event):
    KIND = "economy"
    reason: str
    at: float | None = None
    message: str = ""


# -- reading -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Unknown(Event):
    """A kind this version does not know (a newer gitteam wrote it): shown raw, otherwise ignored."""

    kind: str
    data: JSON

    def to_json(self) -> JSON:
        return dict(self.data)


@dataclass(frozen=True, kw_only=True)
class Damaged(Event):
    """A line that is not an event: torn by a crash, edited by hand, or of a known kind with bad fields."""

    line: int  # 1-based, in the journal
    problem: str

    def to_json(self) -> JSON:
        return {"event": "damaged", "line": self.line, "problem": self.problem}


KINDS: dict[str, type[Event]] = {cls.KIND: cls for cls in (
    RunStarted, Resumed, Planned, IntegrationCreated, RunFinished, AgentStarted, AgentCommitted, Reviewed,
    AgentFinished, LockWaiting, LockGranted, FilesRequested, Replanned, Merged, BacklogRecorded,
    IntegrationReviewStarted, IntegrationReviewed, ReworkRequested, AwaitingApproval, Approved, Rejected, TargetMoved,
    CatchUpChecked, TargetUpdated, LeftoversSaved, WorktreesRemoved, UsageRecorded, ModelCalled, ToolStarted,
    ToolRefused, Compacted, AgentCommand, AgentCommitsUnwrapped, Economy, JobPublished, WorkerClaimed,
    WorkerReported, RemoteTraffic,
)}


def from_json(raw: object, line: int = 0) -> Event:
    """The typed event of one journal line's JSON; `Damaged` if it does not fit its kind, `Unknown` if the kind
    is not one of ours."""
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        return Damaged(line=line, problem="not an event object")
    kind, t = raw["event"], raw.get("t", "")
    cls = KINDS.get(kind)
    if cls is None:
        return Unknown(t=str(t), kind=kind, data=raw)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "t":
            continue
        if raw.get(f.name) is None:  # absent, or null: the default, None if it may be None, else damaged
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and not _optional(_hints(cls)[f.name]):
                return Damaged(line=line, problem=f"{kind} without {f.name}")
            if required:
                values[f.name] = None
            continue
        value = raw[f.name]
        if not _fits(value, _hints(cls)[f.name]):
            return Damaged(line=line, problem=f"{kind}: {f.name} is {type(value).__name__}")
        values[f.name] = value
    event = cls(t=str(t) if isinstance(t, str) else "", **values)
    problem = event.invalid()
    return event if problem is None else Damaged(line=line, problem=f"{kind}: {problem}")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _fits(value: object, hint: Any) -> bool:  # noqa: PLR0911 - one case a shape
    """Whether a JSON value has the shape of a field's annotation (str, int, float, bool, lists, dicts, unions)."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_fits(item, args[0]) for item in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, args[1]) for k, v in value.items())
    return False

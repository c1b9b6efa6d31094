"""Distributed mode, the owner's side: each subtask's coder is a worker on another machine (docs/workers.md).

`gitteam run --remote NAME` plans here, then publishes the run to the remote. Where a local run would start a
coder agent, `RemoteCoder.work` publishes a *job* (the coder's message for this turn, the files it owns, the
commit to start from) and waits until some `gitteam worker` pushes a *result* for it. The worker's files are
copied into this run's worktree, and from there on nothing differs from a local run: the owner commits them on
the agent branch with its provenance note, runs the checks and the reviewers (whose requested changes become the
next job), integrates, asks, and fast-forwards. One place decides what reaches the target.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitteam.config import Config
from gitteam.errors import GitteamError
from gitteam.events import JobPublished, RemoteTraffic, WorkerClaimed, WorkerReported
from gitteam.git import Repository
from gitteam.memory import sync
from gitteam.models.base import CallContext, Reply, Usage
from gitteam.names import agent_ref
from gitteam.plan import Plan, Subtask
from gitteam.remote.protocol import Job, Remote, RemoteUnavailable, Result, RunInfo, RunView
from gitteam.roles.errors import AgentFailed

if TYPE_CHECKING:  # the context holds a RemoteRun: at run time the import goes the other way
    from gitteam.run.context import RunContext

WAIT_SLICE = 0.05  # seconds: how often a wait looks whether the run must stop (Ctrl-C, the budget)


@dataclass
class RemoteRun:
    """The remote a run publishes to, and what its coders share: one fetch at a time, their turn counters."""

    name: str  # the remote as the person named it (journaled, so resume and approve find it again)
    remote: Remote
    lease: float
    poll: float
    steps: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _view: RunView | None = None
    _seen: float = float("-inf")

    @classmethod
    def open(cls, repo: Repository, config: Config, name: str) -> RemoteRun:
        return cls(name, Remote(repo, name), config.remote.lease, config.remote.poll)

    def publish(self, run: str, task: str, target: str, base: str, plan: Plan) -> None:
        self.remote.publish_run(RunInfo(run=run, task=task, target=target, base=base, owner_host=_host(),
                                        owner_pid=os.getpid(), lease_seconds=self.lease, plan=plan.to_json()))

    def next_step(self, agent: str) -> int:
        with self._lock:
            self.steps[agent] = self.steps.get(agent, 0) + 1
            return self.steps[agent]

    def view(self, run: str) -> RunView | None:
        """The run as the remote has it: fetched at most once per poll interval, however many coders wait."""
        with self._lock:
            if time.monotonic() - self._seen >= self.poll:
                self._view = self.remote.fetch(run).get(run)
                self._seen = time.monotonic()
            return self._view

    def close(self, run: str) -> str:
        """The run's refs off the remote; what to tell the person when that could not be done ("" when done)."""
        try:
            self.remote.close_run(run)
        except GitteamError as exc:
            return (f" (its refs on {self.name} were not removed: {exc}; workers may still take its open jobs: "
                    f"git push {self.name} --delete $(git ls-remote {self.name} 'refs/gitteam/runs/{run}/*' | "
                    "cut -f2))")
        return ""

    def traffic(self) -> RemoteTraffic:
        """What the protocol has cost this process so far (the run's closing push included, once it is done)."""
        stats = self.remote.stats
        return RemoteTraffic(remote=self.name, fetches=stats.fetches, fetch_seconds=round(stats.fetch_seconds, 3),
                             pushes=stats.pushes, push_seconds=round(stats.push_seconds, 3), rejected=stats.rejected)

    def push_target(self, branch: str, new: str, old: str) -> str:
        """The target on the remote fast-forwarded from `old` to `new` as here, by compare-and-swap; a note for
        the person when the remote's target was not where this clone's was."""
        try:
            if self.remote.push_target(branch, new, old):
                return f"; {self.name}'s {branch} too"
        except GitteamError as exc:
            return f"; {self.name}'s {branch} was not moved: {exc}"
        return (f"; {self.name}'s {branch} was not moved: it is not at {old[:10]} there (someone pushed to it): "
                f"pull, then push {branch} yourself")

    def pull_memory(self, repo: Repository) -> None:
        """What the workers' agents remembered (each worker pushes its own notes ref)."""
        # memory is a help to later agents, never a reason to fail the subtask
        with self._lock, contextlib.suppress(GitteamError):
            sync.pull(repo, self.name, configure=False)


@dataclass
class Turn:
    """One job of a subtask as the owner follows it."""

    job: Job
    step: int
    holder: str = ""  # the worker id holding it, as last seen


class RemoteCoder:
    """A subtask's coder that is a worker somewhere else: a job out, a result back, its files into `worktree`."""

    def __init__(self, ctx: RunContext, remote: RemoteRun, subtask: Subtask, start: str, worktree: Path,
                 context: CallContext, files: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.subtask = subtask
        self.start = start
        self.worktree = worktree
        self.context = context
        self.files = files
        self.remote = remote
        self.reported_model = ""

    @property
    def model(self) -> str:
        """What the provenance notes name as the coder: the worker's model once one reported."""
        return self.reported_model or f"worker via {self.remote.name}"

    def work(self, message: str, round_number: int) -> str:
        ctx, agent = self.ctx, self.subtask.id
        ctx.meter.check()
        step = self.remote.next_step(agent)
        head = ctx.repo.rev_parse(agent_ref(ctx.run, agent)) or self.start
        job = self._published(step, round_number, head) or self.remote.remote.publish_job(
            ctx.run, agent, step, round_number, message, self.subtask.to_json(), self.files, self.start, head,
            ctx.task)
        ctx.journal.append(JobPublished(agent=agent, step=step, round=round_number, job=job.oid,
                                        remote=self.remote.name))
        result = self._wait(Turn(job, step))
        self._take_files(result)
        self.reported_model = result.model or self.reported_model
        usage = Usage.from_json(result.usage) if result.usage else Usage()
        ctx.meter.record(self.context, Reply(result.summary, (), usage, result.model or self.model, result.cost,
                                             usage_known=bool(result.usage)))
        ctx.journal.append(WorkerReported(agent=agent, worker=result.worker, host=result.host, pid=result.pid,
                                          step=step, status=result.status, head=result.head, model=result.model,
                                          reason=result.reason))
        self.remote.pull_memory(ctx.repo)
        if result.status != "done":
            raise AgentFailed(f"the worker on {result.host} (pid {result.pid}) failed: {result.reason}")
        ctx.meter.check()
        return result.summary or "the worker finished without a summary"

    def _published(self, step: int, round_number: int, head: str) -> Job | None:
        """The same turn, published by this run before it was killed (resume): its job goes on, and a worker's
        result for it, pushed while no owner was there, is taken instead of doing the work again. (Each brief
        is fenced with a new nonce, so the message itself never matches.)"""
        view = self.remote.view(self.ctx.run)
        job = view.jobs.get(self.subtask.id) if view is not None else None
        if job is None or (job.step, job.round, job.head, job.start, tuple(job.files)) != (
                step, round_number, head, self.start, self.files):
            return None
        return job

    def _wait(self, turn: Turn) -> Result:
        """Until a worker's result for `turn.job` is on the remote; who holds it is journaled as it changes."""
        ctx, agent = self.ctx, self.subtask.id
        limit = ctx.config.limits.max_seconds
        deadline = time.monotonic() + limit
        while True:
            try:
                view = self.remote.view(ctx.run)
            except RemoteUnavailable:  # an outage: the workers go on meanwhile; look again until the deadline
                view = None
            if view is not None:
                lease = view.leases.get(agent)
                if lease is not None and lease.job == turn.job.oid:
                    self._holder(turn, lease.worker, lease.host, lease.pid)
                result = view.results.get(agent)
                if result is not None and result.job == turn.job.oid:
                    # a quick worker may have claimed and finished between two looks: who did it is said anyway
                    self._holder(turn, result.worker, result.host, result.pid)
                    return result
            if time.monotonic() >= deadline:
                raise AgentFailed(f"no worker finished turn {turn.step} of {agent} within {limit:.0f} s ([limits] "
                                  f"max_seconds); start one where the remote is reachable: gitteam worker --remote "
                                  f"{self.remote.name}")
            pause = time.monotonic() + self.remote.poll
            while time.monotonic() < pause:
                ctx.meter.check()  # Ctrl-C or the budget: the job stays published; resume publishes it again
                time.sleep(WAIT_SLICE)

    def _holder(self, turn: Turn, worker: str, host: str, pid: int) -> None:
        """Journal the worker holding the turn's job, when it is a new one (the first, or a takeover)."""
        if worker != turn.holder:
            self.ctx.journal.append(WorkerClaimed(agent=self.subtask.id, worker=worker, host=host, pid=pid,
                                                  step=turn.step, takeover=bool(turn.holder), lease=self.remote.lease))
            turn.holder = worker

    def _take_files(self, result: Result) -> None:
        """The worker's version of each file this subtask owns, into the worktree, byte for byte; what it
        deleted is deleted. Nothing else of the worker's commit is taken: the gate then sees exactly what the
        owner's own commit holds."""
        repo = self.ctx.repo
        self.remote.remote.objects(result.head)
        kinds = repo.file_modes(result.head, self.files)
        blobs = repo.read_blobs(result.head, [path for path, mode in kinds.items() if mode in REGULAR])
        for path in self.files:
            target = self.worktree / path
            mode = kinds.get(path)
            if mode is None:
                if target.is_file() or target.is_symlink():
                    target.unlink()
                continue
            if mode not in REGULAR:  # a symlink or a submodule from elsewhere: a regular file is all a coder writes
                kind = "symlink" if mode == "120000" else "gitlink"
                raise AgentFailed(f"the worker's result makes {path} a {kind}; only regular files are taken")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_bytes(blobs.get(path, b""))
            target.chmod(0o755 if mode == "100755" else 0o644)


REGULAR = ("100644", "100755")


def _host() -> str:
    return socket.gethostname()

"""Distributed mode, the worker's side: `gitteam worker --remote NAME` (docs/workers.md).

A worker looks at the runs published on the remote, claims an open job by a compare-and-swap push of a lease
(exactly one of several racing workers wins), and works it here: a worktree of this clone, the coder of this
machine's own config (its models, keys, budget, sandbox), contained like any local coder. While it works it
renews the lease every third of the lease time, each renewal pushing a checkpoint of the work; every push it
makes moves the lease ref under `--force-with-lease`, so once another worker has taken the job over (this one
was paused, cut off, or too slow), nothing more of this one lands. At the end it pushes its commit and a result
(summary, spend) with the lease released, in one atomic push. The run's owner reviews and integrates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from gitteam.config import Config
from gitteam.errors import Exit, GitteamError
from gitteam.git import GitError, Repository
from gitteam.journal import Journal, process_alive
from gitteam.memory import Blackboard, sync
from gitteam.metering import BudgetExhausted, Interrupted
from gitteam.models.base import Usage
from gitteam.models.registry import Registry
from gitteam.modelspec import COMMAND
from gitteam.names import agent_branch
from gitteam.plan import Subtask, parse_plan
from gitteam.remote.lease import LeaseClock
from gitteam.remote.protocol import Job, Lease, Remote, RemoteUnavailable, RunInfo, RunView, WorkerId
from gitteam.run import worktrees
from gitteam.run.context import RunContext, command_runner, run_meter
from gitteam.run.environment import setup_problem
from gitteam.run.subtask import Assignment, coder_spec, commit_work, env, make_coder

Say = Callable[[str], None]
_T = TypeVar("_T")
CHECKPOINT_AUTHOR = ("gitteam worker", "worker@gitteam.invalid")


@dataclass(frozen=True)
class WorkerOptions:
    remote: str
    once: bool = False  # one job, then exit (a CI job)
    max_agents: int = 1  # jobs worked at once
    run: str | None = None  # only this run's jobs
    idle: float | None = None  # exit after this many seconds with no published run (and nothing at work)


@dataclass
class Holding:
    """A job this worker holds: its current lease (each renewal replaces it), and whether it was fenced. Only
    the renewal thread writes it while the coder works; the job's thread reads it after joining that thread."""

    job: Job
    lease: Lease
    fenced: bool = False


@dataclass
class Spend:
    """What this worker's jobs have spent, for its budget across jobs."""

    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Worker:
    def __init__(self, repo: Repository, config: Config, options: WorkerOptions, say: Say) -> None:
        # A granted file needs the run's dispatcher, which is the owner's: a worker's coder asks for none.
        self.config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, granted_files=0))
        self.repo = repo
        self.options = options
        self.say = say
        self.me = WorkerId.mine()
        self.remote = Remote(repo, options.remote)
        self.registry = Registry(self.config, repo.root)
        self.clocks: dict[str, LeaseClock] = {}  # per run: leases judged on this process's own clock
        self.leases: dict[str, float] = {}  # per run: its lease time, as its owner published it
        self.spend = Spend()
        self.stop = threading.Event()  # Ctrl-C or the budget: claim nothing more
        self.wake = threading.Event()  # a job ended: look for the next one now
        self.contexts: dict[str, RunContext] = {}  # jobs at work, by run/agent: Ctrl-C halts their coders
        self.exit_code = Exit.OK
        self.claimed = 0
        self.serving = False  # a published run was there at the last look: not idle, whether or not it had work
        self.reached = False  # the remote answered at least once

    def check(self) -> None:
        """The coder's model and the sandbox, before the first claim (exit 2 with the fix)."""
        spec = self.registry.spec_for("coder", economy=False)
        self.registry.check_roles(roles=("coder",))
        if self.config.allowed_commands() or self.config.run.setup or spec.startswith(COMMAND):
            command_runner(self.repo, self.config).check()

    def serve(self) -> int:
        self.check()
        self.sweep()
        self.say(f"worker {self.me.id} serving {self.options.remote}"
                 + (f" (run {self.options.run})" if self.options.run else ""))
        active: dict[str, Future[None]] = {}
        quiet_since = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.options.max_agents, thread_name_prefix="job") as pool:
            try:
                while True:
                    for key in [key for key, future in active.items() if future.done()]:
                        active.pop(key).result()
                    if self.options.once and self.claimed and not active:
                        return self.exit_code
                    if self.stop.is_set() and not active:  # its budget is spent
                        return self.exit_code
                    room = self.options.max_agents - len(active)
                    if room > 0 and not self.stop.is_set() and not (self.options.once and self.claimed):
                        for view, job, lease in self.look(set(active), 1 if self.options.once else room):
                            key = f"{job.run}/{job.agent}"
                            active[key] = pool.submit(self.work, view, job, lease)
                            active[key].add_done_callback(lambda _: self.wake.set())
                    if active or self.serving:
                        quiet_since = time.monotonic()
                    elif self.options.idle is not None and time.monotonic() - quiet_since >= self.options.idle:
                        self.say(f"nothing to do for {self.options.idle:g} s: stopping")
                        return self.exit_code
                    # the next look after `poll`, or at once when a job ends: its slot can take the next job
                    self.wake.wait(self.config.remote.poll)
                    self.wake.clear()
            except KeyboardInterrupt:
                self.stop.set()
                for ctx in list(self.contexts.values()):
                    ctx.meter.halt("interrupted")  # each job gives its lease back with its checkpoint pushed
                pool.shutdown(wait=True)
                return Exit.INTERRUPTED
            finally:
                self.say(self.remote.stats.line())

    def look(self, busy: set[str], room: int) -> list[tuple[RunView, Job, Lease]]:
        """`claims`, through an outage: a remote that answered once and fails now is tried again at the next
        look (the leases this worker holds are renewed by their own threads meanwhile, or expire); one that never
        answered is an error: a wrong URL or missing credentials do not heal by waiting."""
        try:
            found = self.claims(busy, room)
        except RemoteUnavailable as exc:
            if not self.reached:
                raise
            self.say(f"the remote did not answer: {exc}; trying again")
            return []
        self.reached = True
        return found

    def sweep(self) -> None:
        """What a worker killed in this clone left: each job's worktree and local branch (its work is on the
        remote as far as it got there). A job is marked by a file holding its worker's pid while it runs."""
        for mark in sorted(self.jobs_dir.glob("*/*.pid")):
            try:
                pid = int(mark.read_text())
            except (OSError, ValueError):
                pid = 0
            if pid and process_alive(pid):
                continue  # another worker in this clone, at work
            run, agent = mark.parent.name, mark.stem
            path = worktrees.find(self.repo, self.config, run, agent)
            if path is not None:
                self.discard(path)
            self.drop_branch(run, agent)
            mark.unlink(missing_ok=True)

    @property
    def jobs_dir(self) -> Path:
        return self.repo.state_dir / "worker" / "jobs"

    def drop_branch(self, run: str, agent: str) -> None:
        ref = f"refs/heads/{agent_branch(run, agent)}"
        previous = self.repo.rev_parse(ref)
        if previous is not None:
            self.repo.delete_ref(ref, previous)

    def claims(self, busy: set[str], room: int) -> list[tuple[RunView, Job, Lease]]:
        """Open jobs this worker won, at most `room`: free ones, and ones whose holder's lease expired."""
        won: list[tuple[RunView, Job, Lease]] = []
        views = self.remote.fetch(self.options.run)
        self.serving = bool(views)
        for run, view in sorted(views.items()):
            clock = self.clocks.setdefault(run, LeaseClock(view.info.lease_seconds))
            self.leases[run] = view.info.lease_seconds
            for job, held in self.turn(view.claimable(clock)):  # free, or its holder's lease ran out here
                if len(won) >= room:
                    return won
                if f"{run}/{job.agent}" in busy:
                    continue
                lease = self.remote.claim(job, self.me, expired=held)
                if lease is None:
                    self.say(f"lost the claim on {run}/{job.agent} to another worker")
                    continue
                self.claimed += 1
                how = f"took over from {held.host} pid {held.pid}" if held else "claimed"
                self.say(f"{how} {run}/{job.agent} (turn {job.step}, round {job.round})")
                won.append((view, job, lease))
        return won

    def turn(self, claimable: list[_T]) -> list[_T]:
        """The claimable jobs from a place of this worker's own (a hash of its id) onwards: workers that look at
        once try different jobs first instead of all racing for the first, and every job is still tried."""
        if not claimable:
            return claimable
        first = zlib.crc32(self.me.id.encode()) % len(claimable)
        return claimable[first:] + claimable[:first]

    def work(self, view: RunView, job: Job, lease: Lease) -> None:
        """One job, from its worktree to its pushed result; never raises (the serve loop goes on)."""
        holding = Holding(job, lease)
        try:
            self._work(view, holding)
        except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the others
            self.say(f"{job.run}/{job.agent}: failed: {exc}")
            self.exit_code = self.exit_code or Exit.FAILED
            if not holding.fenced:  # said on the remote, or the job would go from worker to worker
                with contextlib.suppress(GitteamError):
                    self.remote.finish(holding.lease, job.head, "failed", "", f"the worker failed: {exc}",
                                       "", Usage().to_json(), None)

    def _work(self, view: RunView, holding: Holding) -> None:
        job = holding.job
        ctx = self.context(view.info)
        subtask = job_subtask(job)
        self.contexts[f"{job.run}/{job.agent}"] = ctx
        mark = self.jobs_dir / job.run / f"{job.agent}.pid"
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(str(os.getpid()))
        path: Path | None = None
        renewer: threading.Thread | None = None
        done = threading.Event()
        try:
            self.remote.objects(job.head)
            start = self.remote.start_point(view, job)  # a takeover goes on from the last checkpoint
            path = self.worktree(ctx, job, subtask, start)
            renewer = threading.Thread(target=self.renew, args=(ctx, holding, path, done), daemon=True,
                                       name=f"lease-{job.agent}")
            renewer.start()
            summary, status, reason = self.code(ctx, holding, subtask, path, start)
            done.set()
            renewer.join()
            if holding.fenced:
                self.say(f"{job.run}/{job.agent}: fenced: another worker took the job over; nothing more is pushed")
                return
            head = commit_work(ctx, subtask, path, job.round, summary if status == "done" else
                               f"partial work: {reason}", job.start) or self.repo.rev_parse(
                f"refs/heads/{agent_branch(job.run, job.agent)}") or start
            if status == "interrupted":  # the job goes back with its work as a checkpoint for the next worker
                renewed = self.remote.renew(holding.lease, head)
                if renewed is not None:
                    self.remote.release(renewed)
                self.say(f"{job.run}/{job.agent}: interrupted: the job is given back with its work so far")
                return
            usage, cost = self.spent(ctx)
            result = self.remote.finish(holding.lease, head, "done" if status == "done" else "failed", summary,
                                        reason, coder_spec(ctx, subtask), usage.to_json(), cost)
            if result is None:
                self.say(f"{job.run}/{job.agent}: fenced: another worker took the job over; its result was not "
                         "pushed")
                return
            self.say(f"{job.run}/{job.agent}: {'done' if status == 'done' else 'failed: ' + reason}")
            with contextlib.suppress(GitteamError):  # memory helps later agents; the job is done without it
                sync.push(self.repo, self.options.remote, configure=False)  # what its agent remembered
        finally:
            done.set()
            if renewer is not None:
                renewer.join()
            self.contexts.pop(f"{job.run}/{job.agent}", None)
            if path is not None:
                self.discard(path)
            self.drop_branch(job.run, job.agent)
            mark.unlink(missing_ok=True)

    def code(self, ctx: RunContext, holding: Holding, subtask: Subtask, path: Path,
             start: str) -> tuple[str, str, str]:
        """(summary, status, reason) of the coder's turn: status is done, failed or interrupted."""
        job = holding.job
        assignment = Assignment(subtask, job.start, 0, ())
        problem = setup_problem(ctx, path, env(ctx, assignment, path))
        if problem is not None:
            return "", "failed", problem
        try:
            coder = make_coder(ctx, assignment, path, start)
            return coder.work(job.message, job.round), "done", ""
        except Interrupted as exc:  # Ctrl-C, or fenced (then nothing is pushed whatever the status)
            return "", "failed" if holding.fenced else "interrupted", str(exc)
        except BudgetExhausted as exc:
            self.stop.set()  # this worker's budget: no more claims
            self.exit_code = Exit.BUDGET
            return "", "failed", f"the worker's budget: {exc}"
        except GitteamError as exc:
            return "", "failed", str(exc)

    def renew(self, ctx: RunContext, holding: Holding, path: Path, done: threading.Event) -> None:
        """Every third of the lease: a checkpoint of the work, pushed with the renewed lease."""
        every = max(self.leases.get(holding.job.run, self.config.remote.lease) / 3, 0.2)
        while not done.wait(every):
            checkpoint = None
            with contextlib.suppress(GitError):  # a file mid-write: the lease matters more than this checkpoint
                checkpoint = self.repo.snapshot(path, holding.job.files, "gitteam: checkpoint", CHECKPOINT_AUTHOR)
            try:
                renewed = self.remote.renew(holding.lease, checkpoint)
            except GitteamError as exc:  # cut off: try again next time; past the lease another worker takes over
                self.say(f"{holding.job.run}/{holding.job.agent}: could not renew the lease: {exc}")
                continue
            if renewed is None:
                holding.fenced = True
                ctx.meter.halt(FENCED)  # the coder stops before its next call
                return
            holding.lease = renewed

    def context(self, info: RunInfo) -> RunContext:
        """A job's context: the run as this worker sees it, journaled under the worker's own state (its
        transcripts and spend), metered against the worker's budget across jobs."""
        journal = Journal(self.repo.state_dir / "worker", info.run)
        with self.spend.lock:
            meter = run_meter(self.config, journal, spent=self.spend.cost, tokens=self.spend.usage.total)
        return RunContext(repo=self.repo, config=self.config, journal=journal, registry=self.registry, meter=meter,
                          board=Blackboard(self.repo, run=info.run, role="agent"), run=info.run, task=info.task,
                          target=info.target, commands=command_runner(self.repo, self.config))

    def spent(self, ctx: RunContext) -> tuple[Usage, float | None]:
        """What the job's coder used (added to the worker's total)."""
        tallies = list(ctx.meter.agents.values())
        usage = sum((t.usage for t in tallies), Usage())
        cost = sum(t.cost for t in tallies)
        with self.spend.lock:
            self.spend.usage, self.spend.cost = self.spend.usage + usage, self.spend.cost + cost
        return usage, cost if all(t.cost_known for t in tallies) else None

    def worktree(self, ctx: RunContext, job: Job, subtask: Subtask, start: str) -> Path:
        """A fresh worktree on the job's branch at `start` (an earlier job's leftovers here are scratch)."""
        branch = agent_branch(job.run, job.agent)
        old = worktrees.find(self.repo, self.config, job.run, job.agent)
        if old is not None:
            self.discard(old)
        self.drop_branch(job.run, job.agent)
        path = worktrees.new_path(self.repo, self.config, job.run, job.agent)
        if path.exists():
            worktrees.discard(self.repo, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        external = coder_spec(ctx, subtask).startswith(COMMAND)
        cone = worktrees.cone_for(self.repo, self.config, subtask.files, job.start, external)
        self.repo.create_worktree(path, branch, start, cone)
        return path

    def discard(self, path: Path) -> None:
        """The job's worktree goes; its work is on the remote (or was fenced, and is someone else's now)."""
        try:
            self.repo.remove_worktree(path, force=True)
        except GitError:
            worktrees.discard(self.repo, path)


FENCED = "fenced: another worker took this job over"


def job_subtask(job: Job) -> Subtask:
    """The job's subtask, checked as a planner's would be (its id, title, files: a path that leaves the
    repository or enters .git fails the job): whoever could push the job is not trusted further than a plan."""
    data = job.subtask
    plan = parse_plan({"subtasks": [{"id": job.agent, "title": data.get("title", job.agent),
                                     "instructions": data.get("instructions", ""), "files": list(job.files)}]})
    return replace(plan.subtasks[0], priority=str(data.get("priority", "normal")))


def serve(repo: Repository, config: Config, options: WorkerOptions, say: Say) -> int:
    return Worker(repo, config, options, say).serve()

"""The ref protocol of the distributed mode: a run's owner and its workers meet on a git remote, nowhere else.

Everything is one `git fetch` (the run namespace into this clone's mirror, then one ref listing and one batch
of object reads) or one `git push --atomic` whose `--force-with-lease` is the compare-and-swap: a claim creates
the lease ref only if it is absent (or still the expired lease it replaces); every later push of the holder
moves the lease from the value it left, so a holder that was taken over is fenced out of every ref at once.
A lost compare-and-swap is an answer (None / False); a remote git cannot reach, or whose policy refuses the
refs, raises RemoteUnavailable.
docs/workers.md tells the whole protocol and its failure cases.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gitteam.errors import GitteamError, UsageError
from gitteam.git import GitError, Repository
from gitteam.remote import refs
from gitteam.remote.documents import (
    JOB_FILE,
    LEASE_FILE,
    RESULT_FILE,
    RUN_FILE,
    Job,
    Lease,
    Malformed,
    Result,
    RunInfo,
    WorkerId,
    decode,
    encode,
)
from gitteam.remote.lease import LeaseClock

__all__ = ["Job", "Lease", "Remote", "RemoteUnavailable", "Result", "RunInfo", "RunView", "Stats", "WorkerId"]

# Protocol commits carry a fixed identity and date, so the same document makes the same commit anywhere.
AUTHOR = ("gitteam", "gitteam@gitteam.invalid")
DATE = "1700000000 +0000"
_ATTEMPTS = 5  # an owner's own writes (job, close) retried after a fresh fetch when its view was stale
_T = TypeVar("_T")


class RemoteUnavailable(GitteamError):
    """The remote cannot be used: unreachable (host, network, authentication), or its policy refuses the
    protocol's refs (a hook, permissions). The message says which and why, on one line."""


@dataclass(frozen=True, slots=True)
class RunView:
    """One run as the last fetch saw it: per agent its job, lease, work head and result."""

    info: RunInfo
    jobs: dict[str, Job]
    leases: dict[str, Lease]
    work: dict[str, str]
    results: dict[str, Result]

    def open_jobs(self) -> list[Job]:
        """Jobs with no result for that job, in plan order (agents the plan does not name last, by name)."""
        order = {agent: index for index, agent in enumerate(self.info.order())}
        open_ = [job for agent, job in self.jobs.items()
                 if agent not in self.results or self.results[agent].job != job.oid]
        return sorted(open_, key=lambda job: (order.get(job.agent, len(order)), job.agent))

    def claimable(self, clock: LeaseClock) -> list[tuple[Job, Lease | None]]:
        """The open jobs a worker may claim now, in plan order, each with the lease its claim must replace:
        None for a job nobody holds, the lease for one whose lease `clock` has seen unchanged for too long.
        Every lease of the run is shown to `clock` (and those gone are forgotten), so call it after each fetch."""
        for agent in self.jobs.keys() - self.leases.keys():
            clock.observe(refs.lease_ref(self.info.run, agent), None)
        free: list[tuple[Job, Lease | None]] = []
        for job in self.open_jobs():
            lease = self.leases.get(job.agent)
            if lease is None:
                free.append((job, None))
            elif clock.expired(refs.lease_ref(self.info.run, job.agent), lease.oid):
                free.append((job, lease))
        return free


@dataclass
class Stats:
    """What this Remote has cost so far: git processes that crossed the network, and compare-and-swaps lost."""

    fetches: int = 0
    fetch_seconds: float = 0.0
    pushes: int = 0
    push_seconds: float = 0.0
    rejected: int = 0

    def line(self) -> str:
        """The one line a worker (on exit) and an owner (when its run stops) print of what the protocol cost."""
        return (f"protocol: {self.fetches} fetches ({self.fetch_seconds:.2f} s), {self.pushes} pushes "
                f"({self.push_seconds:.2f} s), {self.rejected} rejected")

    @classmethod
    def read(cls, text: str) -> Stats | None:
        """The numbers of the first `line()` in `text` (a worker's or an owner's output); None if it has none."""
        found = _STATS_LINE.search(text)
        if found is None:
            return None
        fetches, fetch_seconds, pushes, push_seconds, rejected = found.groups()
        return cls(int(fetches), float(fetch_seconds), int(pushes), float(push_seconds), int(rejected))

    def __add__(self, other: Stats) -> Stats:
        return Stats(self.fetches + other.fetches, self.fetch_seconds + other.fetch_seconds,
                     self.pushes + other.pushes, self.push_seconds + other.push_seconds,
                     self.rejected + other.rejected)


_STATS_LINE = re.compile(r"protocol: (\d+) fetches \(([\d.]+) s\), (\d+) pushes \(([\d.]+) s\), (\d+) rejected")


class Remote:
    """The protocol on one remote of `repo` (a configured remote's name, or a URL or path)."""

    def __init__(self, repo: Repository, remote: str) -> None:
        if not remote or remote.startswith("-"):
            raise UsageError(f"invalid remote {remote!r}: give a remote name or URL")
        if remote not in repo.remote_names() and not _looks_like_location(remote):
            raise UsageError(f"unknown remote {remote!r}: add it (git remote add {remote} URL) or pass its URL")
        self.repo = repo
        self.remote = remote
        self.mirror = refs.mirror_prefix(remote)
        self.stats = Stats()
        self._lock = threading.Lock()
        self._published: dict[str, str] = {}  # job ref -> the job commit this owner last pushed there

    # -- reading ------------------------------------------------------------------------------------------

    def fetch(self, run: str | None = None) -> dict[str, RunView]:
        """Every run on the remote (or only `run`), from one fetch into the mirror; runs whose plan cannot be
        read are left out, and so are jobs, leases and results that are not the protocol's documents."""
        source = refs.NAMESPACE if run is None else refs.run_prefix(run)
        into = self.mirror if run is None else f"{self.mirror}{run}/"
        started = time.monotonic()
        with self._transport("fetch from"):
            self.repo.fetch_mirror(self.remote, f"{source}*", f"{into}*")
        self._count(fetch=time.monotonic() - started)
        return self.views(run)

    def views(self, run: str | None = None) -> dict[str, RunView]:
        """The runs as the mirror holds them (what the last fetch saw), without touching the network."""
        listed = self.repo.refs(self.mirror if run is None else f"{self.mirror}{run}/")
        found: dict[str, dict[str, dict[str, str]]] = {}
        for name, oid in listed.items():
            parsed = refs.split(name, self.mirror)
            if parsed is not None:
                run_id, kind, agent = parsed
                found.setdefault(run_id, {}).setdefault(kind, {})[agent] = oid
        files = {"plan": RUN_FILE, "jobs": JOB_FILE, "leases": LEASE_FILE, "results": RESULT_FILE}
        names = [f"{oid}:{files[kind]}" for kinds in found.values() for kind, agents in kinds.items()
                 if kind in files for oid in agents.values()]
        blobs = self.repo.read_paths(names)

        def read(kind: str, oid: str, make: Callable[[str, dict[str, Any]], _T]) -> _T | None:
            try:
                return make(oid, decode(blobs.get(f"{oid}:{files[kind]}")))
            except Malformed:
                return None

        views = {}
        for run_id, kinds in found.items():
            plan = kinds.get("plan", {}).get("")
            info = read("plan", plan, lambda _, doc: RunInfo.read(doc)) if plan else None
            if info is None or info.run != run_id:
                continue
            jobs = {agent: job for agent, oid in kinds.get("jobs", {}).items()
                    if (job := read("jobs", oid, Job.read)) is not None and job.agent == agent and job.run == run_id}
            leases = {agent: lease for agent, oid in kinds.get("leases", {}).items()
                      if (lease := read("leases", oid, Lease.read)) is not None}
            results = {agent: result for agent, oid in kinds.get("results", {}).items()
                       if (result := read("results", oid, Result.read)) is not None}
            views[run_id] = RunView(info, jobs, leases, dict(kinds.get("work", {})), results)
        return views

    def start_point(self, view: RunView, job: Job) -> str:
        """Where a worker that claimed `job` starts: the last checkpoint on work/<agent> when it builds on the
        job's head (a takeover goes on from the dead worker's work), else the job's head (work/<agent> may
        still hold an earlier step's work)."""
        work = view.work.get(job.agent)
        if work and work != job.head and self.repo.has_commit(work) and self.repo.is_ancestor(job.head, work):
            return work
        return job.head

    def objects(self, oid: str) -> None:
        """Make sure commit `oid` is here (the mirror fetch normally brought it; a shallow clone, or a commit
        no ref names any more, is fetched by its id)."""
        if self.repo.has_commit(oid):
            return
        with self._transport("fetch a commit from"):
            self.repo.fetch_refs(self.remote, [oid])
        if not self.repo.has_commit(oid):
            raise RemoteUnavailable(f"{self.remote} did not send commit {oid}: is it still on the remote?")

    # -- the owner ----------------------------------------------------------------------------------------

    def publish_run(self, info: RunInfo) -> None:
        """Create the run's plan ref; the same content again changes nothing. The same run published before
        (same task and target: a resumed owner, with a new pid) is replaced by compare-and-swap; another run
        of the same id is refused."""
        ref = refs.plan_ref(info.run)
        oid = self._commit(RUN_FILE, info.document(), [], f"gitteam run {info.run}")
        for _ in range(_ATTEMPTS):
            there = self._mirrored(ref)
            if there is not None and there != oid:
                self._check_same_run(info)
            if there == oid or self._push([(ref, oid, there or "")]):
                return
            self.fetch(info.run)
        raise GitteamError(f"could not publish run {info.run} on {self.remote}: its plan ref keeps changing")

    def publish_job(self, run: str, agent: str, step: int, round: int, message: str, subtask: dict[str, Any],
                    files: Sequence[str], start: str, head: str, task: str) -> Job:
        """Publish the job of one coder call: a commit whose parent is `head`, at jobs/<agent>, by
        compare-and-swap from the job this owner last published there (first: what its mirror saw)."""
        job = Job("", run, agent, step, round, message, dict(subtask), tuple(files), start, head, task)
        oid = self._commit(JOB_FILE, job.document(), [head], f"gitteam job {run}/{agent} step {step}")
        ref = refs.job_ref(run, agent)
        for attempt in range(_ATTEMPTS):
            with self._lock:
                expected = self._published.get(ref) if attempt == 0 else None
            if expected is None:
                expected = self._mirrored(ref) or ""
            if expected == oid or self._push([(ref, oid, expected)]):
                with self._lock:
                    self._published[ref] = oid
                return _with_oid(job, oid)
            self.fetch(run)
        raise GitteamError(f"could not publish job {agent} of run {run} on {self.remote}: its ref keeps changing")

    def close_run(self, run: str) -> None:
        """Delete every ref of the run on the remote in one push (retried while workers still move some)."""
        for _ in range(_ATTEMPTS):
            self.fetch(run)
            there = {refs.NAMESPACE + name.removeprefix(self.mirror): oid
                     for name, oid in self.repo.refs(f"{self.mirror}{run}/").items()}
            if not there or self._push([(ref, None, oid) for ref, oid in sorted(there.items())]):
                with self._lock:
                    self._published = {ref: oid for ref, oid in self._published.items()
                                       if not ref.startswith(refs.run_prefix(run))}
                self.fetch(run)
                return
        raise GitteamError(f"could not remove run {run} from {self.remote}: its refs keep changing")

    def push_target(self, branch: str, new: str, expected: str) -> bool:
        """Move the remote's branch from `expected` to `new`, a fast-forward only, by compare-and-swap; False
        when the branch is not at `expected` there any more (someone pushed, or forced it elsewhere)."""
        if not self.repo.is_ancestor(expected, new):
            raise GitteamError(f"refusing to push {new[:12]} to {branch} on {self.remote}: it does not descend "
                               f"from {expected[:12]} (the target only ever moves forward)")
        return self._push([(f"refs/heads/{branch}", new, expected)])

    # -- a worker -----------------------------------------------------------------------------------------

    def claim(self, job: Job, worker: WorkerId, expired: Lease | None = None) -> Lease | None:
        """Take `job`: create its lease ref if absent, or replace `expired` (a lease seen unchanged past the
        run's lease time). None when another worker got there first."""
        lease = Lease("", job.oid, worker.id, worker.host, worker.pid, 0, time.time(), job.run, job.agent)
        ref = refs.lease_ref(job.run, job.agent)
        oid = self._commit(LEASE_FILE, lease.document(secrets.token_hex(8)), [], f"gitteam lease {job.agent}")
        if not self._push([(ref, oid, expired.oid if expired is not None else "")]):
            return None
        return _with_oid(lease, oid)

    def renew(self, lease: Lease, checkpoint: str | None) -> Lease | None:
        """Extend the lease (and push the work so far, if given) in one push; None: this worker was fenced
        (another took the job over), so it must stop the job and push nothing more."""
        renewed = replace(lease, oid="", seq=lease.seq + 1, at=time.time())
        oid = self._commit(LEASE_FILE, renewed.document(secrets.token_hex(8)), [], f"gitteam lease {lease.agent}")
        updates: list[tuple[str, str | None, str | None]] = [(refs.lease_ref(lease.run, lease.agent), oid,
                                                               lease.oid)]
        if checkpoint is not None:
            updates.append((refs.work_ref(lease.run, lease.agent), checkpoint, None))
        return _with_oid(renewed, oid) if self._push(updates) else None

    def finish(self, lease: Lease, head: str, status: str, summary: str, reason: str, model: str,
               usage: dict[str, Any], cost: float | None, extra: Sequence[str] = ()) -> Result | None:
        """Hand the job back done (or failed): the work, the result and the lease's deletion in one push, with
        `extra` refspecs (the worker's memory ref) in it too. None: fenced, nothing landed.

        If that push is refused while the lease is still this worker's, an extra ref was the cause (memory that
        is not a fast-forward there): the job's refs go again without it, since a result is worth more than a
        note, and the memory waits for the next `gitteam memory push`. A fenced worker is refused both times.
        """
        if status not in Result.STATUSES:
            raise ValueError(f"a result's status is one of {Result.STATUSES}, not {status!r}")
        result = Result("", lease.job, status, summary, reason, head, lease.worker, lease.host, lease.pid, model,
                        dict(usage), cost)
        oid = self._commit(RESULT_FILE, result.document(), [head], f"gitteam result {lease.agent}: {status}")
        updates = [(refs.lease_ref(lease.run, lease.agent), None, lease.oid),
                   (refs.work_ref(lease.run, lease.agent), head, None),
                   (refs.result_ref(lease.run, lease.agent), oid, None)]
        if self._push(updates, extra) or (extra and self._push(updates)):
            return _with_oid(result, oid)
        return None

    def release(self, lease: Lease) -> bool:
        """Give the job back at once (a clean interrupt); False when it was no longer this worker's."""
        return self._push([(refs.lease_ref(lease.run, lease.agent), None, lease.oid)])

    # -- plumbing -----------------------------------------------------------------------------------------

    def _check_same_run(self, info: RunInfo) -> None:
        """Refuse to replace another run that happens to have this run's id."""
        there = self.views(info.run).get(info.run)
        if there is not None and (there.info.task, there.info.target) != (info.task, info.target):
            raise GitteamError(f"{self.remote} already has a run {info.run} of another task ({there.info.task!r} "
                               f"onto {there.info.target}): start the run again for a new id")

    def _commit(self, name: str, doc: dict[str, Any], parents: Sequence[str], message: str) -> str:
        return self.repo.commit_file(name, encode(doc), parents, message, AUTHOR, DATE)

    def _mirrored(self, ref: str) -> str | None:
        """What the last fetch saw at `ref` on the remote."""
        name = self.mirror + ref.removeprefix(refs.NAMESPACE)
        return self.repo.refs(name).get(name)

    def _push(self, updates: Sequence[tuple[str, str | None, str | None]], extra: Sequence[str] = ()) -> bool:
        started = time.monotonic()
        with self._transport("push to"):
            landed = self.repo.push_atomic(self.remote, updates, extra)
        self._count(push=time.monotonic() - started, rejected=not landed)
        return landed

    def _count(self, fetch: float | None = None, push: float | None = None, rejected: bool = False) -> None:
        with self._lock:
            if fetch is not None:
                self.stats.fetches += 1
                self.stats.fetch_seconds += fetch
            if push is not None:
                self.stats.pushes += 1
                self.stats.push_seconds += push
            self.stats.rejected += rejected

    @contextmanager
    def _transport(self, action: str) -> Iterator[None]:
        try:
            yield
        except GitError as exc:
            raise RemoteUnavailable(f"cannot {action} {self.remote}: {_reason(exc.stderr)}") from exc


def _with_oid(document: _T, oid: str) -> _T:
    """A document read back as the commit it was written in."""
    return replace(document, oid=oid)  # type: ignore[type-var]


def _reason(stderr: str) -> str:
    """git's complaint on one line: its messages, without "fatal:"/"error:" and the push-advice lines."""
    lines = [line.strip().removeprefix("fatal: ").removeprefix("error: ") for line in stderr.splitlines()]
    kept = [line for line in lines if line and not line.startswith(("hint:", "Please make sure"))]
    return " ".join(kept)[:300] or "git gave no reason"


def _looks_like_location(remote: str) -> bool:
    """A URL (scheme://, or scp-like host:path) or a path, as git accepts for a remote."""
    return "://" in remote or ":" in remote or "/" in remote or remote.startswith(".")


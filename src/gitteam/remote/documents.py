"""The JSON documents of the ref protocol, each the one file of a commit: run.json, job.json, lease.json and
result.json. Keys are fixed (added to, never renamed); `gitteam_remote` is the format's version.

Encoding is canonical (sorted keys), so the same content makes the same blob, and with the protocol's fixed
identity and date the same commit: an owner that publishes an identical job again after a restart changes
nothing. Decoding refuses anything of another shape (`Malformed`): a ref someone else pushed there is skipped,
never trusted.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VERSION = 1
RUN_FILE, JOB_FILE, LEASE_FILE, RESULT_FILE = "run.json", "job.json", "lease.json", "result.json"


_MINE: dict[int, WorkerId] = {}
_MINE_LOCK = threading.Lock()


class Malformed(ValueError):
    """A document that is not one of the protocol's (bad JSON, another version, a missing or mistyped key)."""


@dataclass(frozen=True, slots=True)
class WorkerId:
    id: str  # unique per worker process: f"{host}-{pid}-{6 hex}"
    host: str
    pid: int

    @staticmethod
    def mine() -> WorkerId:
        """This process's identity (one per process: a forked child gets its own)."""
        with _MINE_LOCK:
            pid = os.getpid()
            if pid not in _MINE:
                host = socket.gethostname()
                _MINE[pid] = WorkerId(f"{host}-{pid}-{secrets.token_hex(3)}", host, pid)
            return _MINE[pid]


@dataclass(frozen=True, slots=True)
class RunInfo:
    run: str
    task: str
    target: str
    base: str
    owner_host: str
    owner_pid: int
    lease_seconds: float
    plan: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {"run": self.run, "task": self.task, "target": self.target, "base": self.base,
                "owner": {"host": self.owner_host, "pid": self.owner_pid}, "lease_seconds": self.lease_seconds,
                "plan": self.plan}

    @staticmethod
    def read(doc: Mapping[str, Any]) -> RunInfo:
        owner = _get(doc, "owner", dict)
        return RunInfo(_get(doc, "run", str), _get(doc, "task", str), _get(doc, "target", str),
                       _get(doc, "base", str), _get(owner, "host", str), _get(owner, "pid", int),
                       float(_get(doc, "lease_seconds", (int, float))), _get(doc, "plan", dict))

    def order(self) -> list[str]:
        """The plan's subtask ids, in plan order."""
        subtasks = self.plan.get("subtasks")
        if not isinstance(subtasks, list):
            return []
        return [item["id"] for item in subtasks if isinstance(item, dict) and isinstance(item.get("id"), str)]


@dataclass(frozen=True, slots=True)
class Job:
    oid: str
    run: str
    agent: str
    step: int  # 1, 2, ... per agent: one per call of the owner's coder
    round: int
    message: str  # the coder's message for this call, verbatim
    subtask: dict[str, Any]  # id, title, instructions, files
    files: tuple[str, ...]  # owned files, granted ones included
    start: str  # the subtask's start commit: the diff base
    head: str  # the job commit's parent: where the worker's worktree starts
    task: str

    def document(self) -> dict[str, Any]:
        return {"run": self.run, "agent": self.agent, "step": self.step, "round": self.round,
                "message": self.message, "subtask": self.subtask, "files": list(self.files), "start": self.start,
                "head": self.head, "task": self.task}

    @staticmethod
    def read(oid: str, doc: Mapping[str, Any]) -> Job:
        files = _get(doc, "files", list)
        if not all(isinstance(path, str) for path in files):
            raise Malformed("files: not a list of paths")
        return Job(oid, _get(doc, "run", str), _get(doc, "agent", str), _get(doc, "step", int),
                   _get(doc, "round", int), _get(doc, "message", str), _get(doc, "subtask", dict), tuple(files),
                   _get(doc, "start", str), _get(doc, "head", str), _get(doc, "task", str))


@dataclass(frozen=True, slots=True)
class Lease:
    oid: str
    job: str  # the job commit it holds
    worker: str
    host: str
    pid: int
    seq: int  # 0 at the claim, +1 per renewal
    at: float  # the holder's wall clock: shown, never compared
    run: str = ""  # where the job is (its lease ref's run and agent)
    agent: str = ""

    def document(self, nonce: str) -> dict[str, Any]:
        # the nonce makes every lease a commit of its own, so no claim can be mistaken for another's
        return {"job": self.job, "worker": self.worker, "host": self.host, "pid": self.pid, "seq": self.seq,
                "at": self.at, "run": self.run, "agent": self.agent, "nonce": nonce}

    @staticmethod
    def read(oid: str, doc: Mapping[str, Any]) -> Lease:
        return Lease(oid, _get(doc, "job", str), _get(doc, "worker", str), _get(doc, "host", str),
                     _get(doc, "pid", int), _get(doc, "seq", int), float(_get(doc, "at", (int, float))),
                     _get(doc, "run", str), _get(doc, "agent", str))


@dataclass(frozen=True, slots=True)
class Result:
    STATUSES = ("done", "failed")

    oid: str
    job: str  # the job commit it answers
    status: str  # "done" | "failed"
    summary: str
    reason: str
    head: str  # the final work commit (the result commit's parent)
    worker: str
    host: str
    pid: int
    model: str
    usage: dict[str, Any]
    cost: float | None

    def document(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status, "summary": self.summary, "reason": self.reason,
                "head": self.head, "worker": self.worker, "host": self.host, "pid": self.pid, "model": self.model,
                "usage": self.usage, "cost": self.cost}

    @staticmethod
    def read(oid: str, doc: Mapping[str, Any]) -> Result:
        cost = doc.get("cost")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)):
            raise Malformed("cost: not a number")
        status = _get(doc, "status", str)
        if status not in Result.STATUSES:
            raise Malformed(f"status: {status!r}")
        return Result(oid, _get(doc, "job", str), status, _get(doc, "summary", str), _get(doc, "reason", str),
                      _get(doc, "head", str), _get(doc, "worker", str), _get(doc, "host", str),
                      _get(doc, "pid", int), _get(doc, "model", str), _get(doc, "usage", dict),
                      None if cost is None else float(cost))


def encode(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps({"gitteam_remote": VERSION, **doc}, sort_keys=True, indent=1, ensure_ascii=False)
            + "\n").encode("utf-8")


def decode(data: bytes | None) -> dict[str, Any]:
    if data is None:
        raise Malformed("missing")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Malformed(str(exc)) from exc
    if not isinstance(doc, dict) or doc.get("gitteam_remote") != VERSION:
        raise Malformed("not a gitteam_remote 1 document")
    return doc


def _get(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise Malformed(f"{key}: missing or not a {kind}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)

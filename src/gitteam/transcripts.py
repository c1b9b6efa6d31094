"""Every agent's conversation, kept as it happens: one JSON-lines file per agent under the run's state.

`<run state>/transcripts/<role>-<agent>.jsonl` (beside the journal): one record a line, each with `"v": 1`
and a `"kind"`; the schema is docs/transcripts.md. Each line is appended by one write, so a process killed at
any point loses at most the line it was writing; `resume` appends to the same files. Unlike the journal they
are not fsynced line by line: they record, the journal decides what a resume does, and on a disk busy with
checkouts each fsync waited for the others' files (2-18 ms, before every model request). Every string goes
through `secrets.redact_data` before it is written. Reading skips a damaged line (a kill mid-write) and counts
it, never fails on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gitteam.models.base import Block, CallContext, Message, Reply, ToolCall, ToolSpec
from gitteam.modelspec import ROLES
from gitteam.secrets import redact_data

VERSION = 1
DIR = "transcripts"
Record = dict[str, Any]


def transcript_path(run_dir: Path, role: str, agent: str) -> Path:
    return run_dir / DIR / f"{role}-{agent}.jsonl"


def spec_hash(spec: ToolSpec) -> str:
    """A short digest of a tool's whole spec: the same name with another description or schema differs."""
    text = json.dumps({"name": spec.name, "description": spec.description, "parameters": spec.parameters},
                      sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def message_json(message: Message) -> Record:
    record: Record = {"role": message.role, "content": message.content}
    if message.tool_calls:
        record["tool_calls"] = [call_json(call) for call in message.tool_calls]
    if message.tool_call_id is not None:
        record["tool_call_id"] = message.tool_call_id
        record["is_error"] = message.is_error
    if message.blocks:
        record["blocks"] = blocks_json(message.blocks)
    return record


def blocks_json(blocks: Sequence[Block]) -> list[Record]:
    """A turn's provider blocks (thinking, encrypted reasoning) as the transcript keeps them."""
    return [{"provider": block.provider, "data": block.data} for block in blocks]


def call_json(call: ToolCall) -> Record:
    record: Record = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.malformed is not None:
        record["malformed"] = call.malformed
    return record


class Transcript:
    """One agent's transcript file; thread-safe, append-only."""

    def __init__(self, path: Path, context: CallContext) -> None:
        self.path = path
        self.context = context
        self._lock = threading.Lock()  # one agent writes from one thread; the lock keeps lines whole anyway

    def write(self, kind: str, **data: Any) -> None:
        record: Record = {"v": VERSION, "kind": kind, "t": datetime.now(UTC).isoformat(timespec="milliseconds"),
                          "round": self.context.round, **redact_data(data)}
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def session(self, model: str, system: str, specs: Sequence[ToolSpec]) -> None:
        """A new agent object starts (a first run, a resume, another reviewer or chunk)."""
        c = self.context
        self.write("session", run=c.run, role=c.role, agent=c.agent, model=model, system=system,
                   extra=dict(c.extra), tools=[{"name": s.name, "hash": spec_hash(s)} for s in specs])

    def request(self, step: int, model: str, messages: Sequence[Message], specs: Sequence[ToolSpec] | None) -> None:
        data: Record = {"step": step, "model": model, "messages": [message_json(m) for m in messages]}
        if specs is not None:  # only when they changed since the session record
            data["tools"] = [{"name": s.name, "hash": spec_hash(s)} for s in specs]
        self.write("request", **data)

    def response(self, step: int, reply: Reply, asked: str, seconds: float) -> None:
        extra: Record = {}
        if reply.blocks:
            extra["blocks"] = blocks_json(reply.blocks)
        if not reply.usage_known:
            extra["usage_known"] = False
        if reply.reasoning_tokens is not None:
            extra["reasoning_tokens"] = reply.reasoning_tokens
        self.write("response", step=step, text=reply.text, tool_calls=[call_json(c) for c in reply.tool_calls],
                   usage=reply.usage.to_json(), cost=reply.cost, model=reply.model, asked=asked,
                   seconds=round(seconds, 3), **extra)

    def tool_result(self, call: ToolCall, text: str, is_error: bool, finished: bool, seconds: float) -> None:
        self.write("tool_result", id=call.id, name=call.name, text=text, is_error=is_error, finished=finished,
                   seconds=round(seconds, 3))


@dataclass(frozen=True)
class Transcripts:
    """The run's transcripts: a `Transcript` for each agent object, on its (role, agent) file."""

    run_dir: Path

    def __call__(self, context: CallContext) -> Transcript:
        return Transcript(transcript_path(self.run_dir, context.role, context.agent), context)


@dataclass(frozen=True)
class Read:
    """One transcript file as read: its records, and how many lines were damaged (skipped)."""

    role: str
    agent: str
    path: Path
    records: list[Record]
    damaged: int

    @property
    def turns(self) -> int:
        """Model calls (a `command:` coder: its rounds)."""
        return sum(r.get("kind") in ("response", "command_result") for r in self.records)


def read_transcript(path: Path, role: str = "", agent: str = "") -> Read:
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        lines = []
    records: list[Record] = []
    damaged = 0
    for line in lines:
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            damaged += 1  # a line torn by a kill mid-write: everything around it stands
            continue
        if isinstance(record, dict) and isinstance(record.get("kind"), str):
            records.append(record)
        else:
            damaged += 1
    return Read(role, agent, path, records, damaged)


def agent_transcripts(run_dir: Path, agent: str) -> list[Read]:
    """Every transcript of one agent name: its planner, coder and reviewer files, in that order."""
    found = []
    for role in ROLES:
        path = transcript_path(run_dir, role, agent)
        if path.is_file():
            found.append(read_transcript(path, role, agent))
    return found


def turns(run_dir: Path) -> dict[str, dict[str, int]]:
    """Model calls per agent name and role: {"a": {"coder": 3, "reviewer": 1}}."""
    counts: dict[str, dict[str, int]] = {}
    folder = run_dir / DIR
    if not folder.is_dir():
        return counts
    for path in sorted(folder.glob("*.jsonl")):
        role, _, agent = path.stem.partition("-")
        if role in ROLES and agent:
            counts.setdefault(agent, {})[role] = read_transcript(path).turns
    return counts

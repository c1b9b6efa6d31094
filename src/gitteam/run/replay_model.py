"""The transcript player: the model behind `gitteam replay`. It answers each agent from that agent's recorded
`response` records, in order, and first checks that the request it was given is the one recorded.

Agents run in parallel, so the recording is keyed per (role, agent), one queue each, never by global order.
The expected conversation of a request is rebuilt as docs/transcripts.md describes it (the last compaction's
messages, then each request's messages, each response as an assistant message, each tool result as a tool
message) and compared, after the same redaction, with what the agent sends now. Fence nonces (fences.py) are
drawn fresh for every prompt, so each message's nonces are numbered in order of appearance before comparing.
The first difference stops the replay: every later call fails too, so the run ends without calling anything
else.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitteam.errors import GitteamError
from gitteam.models.base import Block, CallContext, Message, Reply, ToolCall, ToolSpec, Usage
from gitteam.modelspec import ROLES
from gitteam.secrets import redact_data
from gitteam.transcripts import DIR, Record, message_json, read_transcript

NONCE = re.compile(r'nonce="([0-9a-f]+)"')
# Memory entry ids hash the entry's creation time too, so a replay's notes get new ones: "remembered as
# <12 hex>" from the remember tool, "(...; <10 hex>)" closing each line of a memory digest.
MEMORY_ID = re.compile(r"(?<=remembered as )[0-9a-f]{12}\b|(?<=; )[0-9a-f]{10}(?=\))")
# The `run` tool's first line says how long the command took: the same command takes another time in a replay.
DURATION = re.compile(r"^((?:exit -?\d+|timed out) after )\d+(?:\.\d+)?s$", re.M)
DIFF_LINES = 40  # a divergence shows at most this many diff lines; the rest is counted


class ReplayDiverged(GitteamError):
    """A request differs from the recorded one (or there is no recorded one): the replay stops."""


@dataclass(frozen=True)
class Expected:
    """One recorded model call: what was sent and what came back."""

    step: int
    system: str
    messages: list[Record]
    response: Record


@dataclass
class Divergence:
    role: str
    agent: str
    turn: int  # the agent's model call, 1 first, counted across its sessions
    what: str  # "system prompt", "messages", "an extra request"
    diff: str

    def describe(self) -> str:
        head = f"{self.role} '{self.agent}', turn {self.turn}: the {self.what} differs from the recording"
        return head + ("\n" + self.diff if self.diff else "")


def expected_calls(records: Iterable[Record]) -> list[Expected]:
    """The model calls of one transcript file, each with its whole conversation as sent."""
    found: list[Expected] = []
    system = ""
    conversation: list[Record] = []
    pending: tuple[int, list[Record]] | None = None
    for record in records:
        kind = record.get("kind")
        if kind == "session":
            system, conversation, pending = str(record.get("system", "")), [], None
        elif kind == "compaction":
            conversation = list(record.get("messages", []))
        elif kind == "request":
            conversation = conversation + list(record.get("messages", []))
            pending = (int(record.get("step", 0)), list(conversation))
        elif kind == "response" and pending is not None:
            found.append(Expected(pending[0], system, pending[1], record))
            pending = None
            message: Record = {"role": "assistant", "content": record.get("text", "")}
            if record.get("tool_calls"):
                message["tool_calls"] = record["tool_calls"]
            if record.get("blocks"):
                message["blocks"] = record["blocks"]
            conversation = [*conversation, message]
        elif kind == "tool_result":
            conversation = [*conversation, {"role": "tool", "content": record.get("text", ""),
                                            "tool_call_id": record.get("id"), "is_error": record.get("is_error")}]
    return found


def without_nonces(messages: list[Record]) -> list[Record]:
    """Each message with its fence nonces and memory ids replaced by their order of appearance in it
    (`nonce="#1"`, `id#1`), and the `run` tool's durations by `#s`: all are new in every run, and what they
    stand for is compared anyway."""
    found = []
    for message in messages:
        nonces: dict[str, str] = {}
        ids: dict[str, str] = {}

        def nonce(match: re.Match[str], numbers: dict[str, str] = nonces) -> str:
            numbers.setdefault(match.group(1), f"#{len(numbers) + 1}")
            return f'nonce="{numbers[match.group(1)]}"'

        def memory_id(match: re.Match[str], numbers: dict[str, str] = ids) -> str:
            numbers.setdefault(match.group(0)[:10], f"id#{len(numbers) + 1}")
            return numbers[match.group(0)[:10]]

        content = MEMORY_ID.sub(memory_id, NONCE.sub(nonce, str(message.get("content", ""))))
        content = DURATION.sub(r"\1#s", content)
        found.append({**message, "content": content})
    return found


def rendered(messages: list[Record]) -> list[str]:
    """Messages as diffable lines: a header per message, then its text line by line."""
    lines: list[str] = []
    for n, message in enumerate(messages, 1):
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        lines.append(f"--- message {n}: {message.get('role')} " + (json.dumps(extra, sort_keys=True) if extra else ""))
        lines.extend(str(message.get("content", "")).splitlines())
    return lines


def unified(expected: list[str], got: list[str]) -> str:
    diff = list(difflib.unified_diff(expected, got, "recorded", "replayed", lineterm="", n=2))
    if len(diff) > DIFF_LINES:
        diff = [*diff[:DIFF_LINES], f"... {len(diff) - DIFF_LINES} more diff lines"]
    return "\n".join(line if len(line) <= 300 else line[:300] + " ..." for line in diff)


@dataclass
class Recording:
    """Every agent's recorded calls and a cursor per (role, agent); shared by the models of all specs."""

    calls: dict[tuple[str, str], list[Expected]]
    cursors: dict[tuple[str, str], int] = field(default_factory=dict)
    divergence: Divergence | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, run_dir: Path) -> Recording:
        calls = {}
        for path in sorted((run_dir / DIR).glob("*.jsonl")):
            role, _, agent = path.stem.partition("-")
            if role in ROLES and agent:
                calls[(role, agent)] = expected_calls(read_transcript(path).records)
        return cls(calls)

    def unplayed(self) -> dict[tuple[str, str], int]:
        """Recorded calls no agent asked for, per (role, agent)."""
        return {key: len(calls) - self.cursors.get(key, 0) for key, calls in self.calls.items()
                if len(calls) > self.cursors.get(key, 0)}

    def play(self, system: str, messages: list[Message], context: CallContext) -> Record:
        key = (context.role, context.agent)
        with self._lock:
            if self.divergence is not None:
                raise ReplayDiverged("the replay stopped at an earlier difference: " + self.divergence.describe())
            index = self.cursors.get(key, 0)
            self.cursors[key] = index + 1
            calls = self.calls.get(key, [])
            problem = self._compare(calls[index] if index < len(calls) else None, system, messages, context,
                                    index + 1)
            if problem is not None:
                self.divergence = problem
                raise ReplayDiverged(problem.describe())
            return calls[index].response

    @staticmethod
    def _compare(expected: Expected | None, system: str, messages: list[Message], context: CallContext,
                 turn: int) -> Divergence | None:
        got = without_nonces([redact_data(message_json(m)) for m in messages])
        if expected is None:
            return Divergence(context.role, context.agent, turn, "request (one more than recorded)",
                              unified([], rendered(got)))
        got_system = redact_data(system)
        if got_system != expected.system:
            return Divergence(context.role, context.agent, turn, "system prompt",
                              unified(expected.system.splitlines(), got_system.splitlines()))
        recorded = without_nonces(expected.messages)
        if got != recorded:
            return Divergence(context.role, context.agent, turn, "conversation",
                              unified(rendered(recorded), rendered(got)))
        return None


class TranscriptModel:
    """A `Model` that answers from a `Recording`: one per spec the run names, all sharing the recording."""

    def __init__(self, spec: str, recording: Recording) -> None:
        self.name = spec
        self.recording = recording

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        response = self.recording.play(system, messages, context)
        calls = tuple(call_from(c) for c in response.get("tool_calls", []))
        cost = response.get("cost")
        blocks = tuple(Block(str(b.get("provider", "")), dict(b.get("data") or {}))
                       for b in response.get("blocks") or [])
        return Reply(text=str(response.get("text", "")), tool_calls=calls,
                     usage=Usage.from_json(response.get("usage") or {}), model=str(response.get("model", self.name)),
                     cost=float(cost) if isinstance(cost, int | float) else None, blocks=blocks,
                     usage_known=response.get("usage_known", True) is not False)


def call_from(data: dict[str, Any]) -> ToolCall:
    return ToolCall(str(data["id"]), str(data["name"]), dict(data.get("arguments") or {}), data.get("malformed"))

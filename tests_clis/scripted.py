"""A scripted model that answers an agent CLI's own requests, behind the loopback server of tests/fakeapi.

The CLI under test (Codex, Claude Code, Gemini CLI, aider) talks its own wire format, sends its own tools and
its own system prompt, and expects its own tool calls back. What the scripted model does is keyed on the
request's content, never on the order of requests: the gitteam prompt in the conversation says which scenario
this subtask plays (its instructions carry `SCENARIO: NAME`) and whether the reviewer's finding is in it (a
second round); the tool results already in the conversation say how many of the scenario's steps are done.
Requests without gitteam's prompt or without tools are the CLI's side requests (a title, a quota check, a
token count, a model list, a next-speaker check): its wire answers them with something sensible.

A wire (one per CLI, in wires.py) reads a request into a `Conversation` and writes the scenario's steps as
that CLI's tool calls (or, for aider, as its edit format in plain text).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fakeapi import FakeAPI, Recorded, Scripted

OWNED = "src/answer.py"  # the subtask's one file (new: no CLI must read it before writing it)
STRAY = "README.md"  # a file the subtask does not own (tracked: aider cannot `git add` a new one contained)
STRAY_OLD, STRAY_NEW = "# project", "# project, rewritten by the agent"
FIRST, SECOND = "ANSWER = 1\n", "ANSWER = 2\n"
FINDING = "ANSWER must be 2 in round two"  # the reviewer's finding: its text reaches the second round
REFUSAL = "scripted refusal: this API key may not use the model"  # the error a failing run shows
SUMMARY = "I wrote src/answer.py as asked."
MARK = "<subtask id="  # gitteam's prompt: the subtask's fence
MAIN_USAGE = (1000, 100)  # input and output tokens of every main-conversation reply
SIDE_USAGE = (10, 1)


@dataclass(frozen=True)
class Write:
    path: str
    content: str


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Read:
    path: str


Action = Write | Edit | Read


@dataclass
class Conversation:
    """One request of the CLI's main conversation, as its wire read it."""

    prompt: str  # every user text in it, joined
    results: Sequence[str]  # the tool results already in it, in order: the steps done
    tools: Sequence[str]  # the names of the tools it offers the model
    workdir: str = ""  # where the CLI says it works (for CLIs whose tools take absolute paths)
    model: str = ""


class Wire(Protocol):
    name: str

    def read(self, request: Recorded) -> Conversation | None:
        """The main conversation's request, or None for anything else (a side request)."""

    def side(self, request: Recorded) -> Scripted:
        """An answer to a side request (or to one the wire does not know: a 404 it can live with)."""

    def reply(self, actions: Sequence[Action], conversation: Conversation) -> Scripted:
        """The next step of `actions` given what the conversation holds, then the summary."""

    def refuse(self, message: str) -> Scripted:
        """An API error the CLI cannot get past (a 4xx that no client retries)."""


def scenario(prompt: str) -> str:
    for name in ("stray", "fail", "hang"):
        if f"SCENARIO: {name}" in prompt:
            return name
    return "edit"


def actions_for(prompt: str) -> list[Action]:
    if FINDING in prompt:  # the second round: a new process, the first round's work in its worktree
        return [Read(OWNED), Edit(OWNED, FIRST.strip(), SECOND.strip())]
    actions: list[Action] = [Write(OWNED, FIRST)]
    if scenario(prompt) == "stray":
        actions += [Read(STRAY), Edit(STRAY, STRAY_OLD, STRAY_NEW)]
    return actions


@dataclass
class ScriptedModel:
    """Routes every request the loopback server gets to the CLI's wire; keeps what it saw for assertions."""

    api: FakeAPI
    wire: Wire
    main: list[Conversation] = field(default_factory=list)
    side: list[Recorded] = field(default_factory=list)
    charged: int = 0  # side requests answered with SIDE_USAGE
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.api.route = self.answer

    def answer(self, request: Recorded) -> Scripted:
        conversation = self.wire.read(request)
        if conversation is None or MARK not in conversation.prompt:
            answer = self.wire.side(request)
            with self._lock:
                self.side.append(request)
                self.charged += charged(answer)
            return answer
        with self._lock:
            self.main.append(conversation)
        kind = scenario(conversation.prompt)
        if kind == "fail":
            return self.wire.refuse(REFUSAL)
        if kind == "hang":
            return Scripted(stall=3600.0)  # until the server closes (its stop event wakes the handler)
        return self.wire.reply(actions_for(conversation.prompt), conversation)

    def tokens(self) -> int:
        """Every token the scripted model reported to the CLI."""
        return len(self.main) * sum(MAIN_USAGE) + self.charged * sum(SIDE_USAGE)


def charged(answer: Scripted) -> bool:
    """Whether an answer reports usage (in any of the wire formats)."""
    body = answer.body
    return answer.status == 200 and isinstance(body, dict) and bool(body.get("usage") or body.get("usageMetadata"))

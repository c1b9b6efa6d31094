"""The agent loop every role runs: ask the model, execute its tool calls, until a terminal tool.

Limits (the run's budget, the agent's steps, tokens, money and wall time) are checked before every model
call: steps per `run` (a review round starts a fresh allowance; rounds are bounded by the run), tokens as what
entered the conversation (metering.Intake), money at the meter's prices, wall time since the first call. The
wall time is also checked before every tool call (and a long tool call, a command or a search, is cut where it
runs out). The conversation is kept under the model's context window (models/window.py), compacted before
a call and again if the provider still finds it too long. Control leaves the loop by exceptions that
carry a message. The conversation stays on the object, so a coder can be sent back for another round
with the reviewer's findings.

Every text that enters the conversation from outside the model (the system prompt, each user message,
each tool result) goes through `secrets.redact` as it is added: this loop is the one path from content to
a model request, so no secret reaches a provider whichever tool, prompt or note carried it.

With a `Transcript`, the conversation is also written as it happens (transcripts.py): a session record when
the agent object starts, each request (the messages added since the last record), each response, each tool
result, each compaction, and how each `run` ended, whether it returned or raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gitteam.config import LimitsConfig
from gitteam.events import Compacted, ModelCalled, ToolStarted
from gitteam.metering import BudgetExhausted, Intake, Meter, agent_key
from gitteam.models.base import CallContext, Message, Model, Reply, ToolCall, ToolSpec
from gitteam.models.retry import ContextTooLong
from gitteam.models.window import COMPACT_AT, compact, estimate, fixed_tokens, prompt_limit
from gitteam.roles.errors import AgentFailed
from gitteam.roles.tools import SEARCH_SECONDS, CallLimits, Toolbox, ToolResult
from gitteam.secrets import redact
from gitteam.transcripts import Transcript, message_json, spec_hash

__all__ = ["Agent", "AgentFailed", "Limits"]

# Times a call refused as too long is compacted harder and sent again before the agent gives up.
CONTEXT_RETRIES = 2


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int  # model calls per `run` (a coder's review round)
    max_tokens: int  # tokens that entered the conversation, all rounds together (metering.Intake)
    reminders: int
    max_seconds: float | None = None  # wall time since the agent's first call, tool calls included
    budget: float | None = None  # USD this agent may spend
    search_seconds: float = SEARCH_SECONDS  # one `search` call
    compact_at: float = COMPACT_AT  # share of the prompt limit past which the conversation is compacted

    @classmethod
    def of(cls, config: LimitsConfig) -> Limits:
        """An agent's limits as `[limits]` sets them: every agent of every command gets the same."""
        return cls(max_steps=config.max_steps, max_tokens=config.max_tokens, reminders=config.reminders,
                   max_seconds=config.max_seconds, budget=config.agent_budget, search_seconds=config.search_seconds,
                   compact_at=config.compact_at)


REMINDER = (
    "You answered without calling a tool. Work only through tool calls; when you are finished, call {terminal}."
)


class Agent:
    def __init__(
        self,
        model: Model,
        system: str,
        toolbox: Toolbox,
        context: CallContext,
        limits: Limits,
        meter: Meter,
        terminal: str,
        on_tool: Callable[[CallContext, ToolCall, ToolResult], None] | None = None,
        transcript: Transcript | None = None,
        ready: Callable[[], object] | None = None,
    ) -> None:
        self.model = model
        self.system = redact(system)
        self.toolbox = toolbox
        self.context = context
        self.limits = limits
        self.meter = meter
        self.terminal = terminal
        self.on_tool = on_tool
        self.ready = ready  # what tools wait for before they run (a worktree made while the first call is out)
        self.messages: list[Message] = []
        self.steps = 0  # model calls in all rounds (transcripts number them so)
        self.round_steps = 0  # model calls since the last `run` began: what max_steps holds
        self.intake = Intake()  # tokens that entered the conversation: what max_tokens holds
        self.last_model = model.name
        self.started: float | None = None
        self.transcript = transcript
        self._recorded = 0  # messages[:_recorded] are in the transcript already
        self._specs_hash: tuple[str, ...] | None = None  # the tool specs the transcript last recorded

    def run(self, message: str | Sequence[str]) -> Any:
        """Add a user message (or several in a row: one turn of several blocks, the first a prefix other agents
        share, see models/anthropic.mark_cache) and loop until the terminal tool is accepted; returns its value."""
        if self.transcript is not None:
            self.transcript.context = self.context  # a later review round: its records say so
        if self.started is None:
            self.started = time.monotonic()
            if self.transcript is not None:
                self.transcript.session(self.model.name, self.system, self.toolbox.specs)
                self._specs_hash = _hashes(self.toolbox.specs)
        for text in [message] if isinstance(message, str) else message:
            self.messages.append(Message("user", redact(text)))
        self.round_steps = 0
        try:
            value = self._loop()
        except BaseException as exc:  # recorded, then raised on: how the conversation ended
            self._end("failed", f"{type(exc).__name__}: {exc}"[:500])
            raise
        self._end("finished")
        return value

    def _end(self, status: str, error: str | None = None) -> None:
        if self.transcript is not None:
            self.transcript.write("end", steps=self.steps, status=status, error=error,
                                  context_tokens=self.intake.tokens, largest_prompt=self.intake.largest_prompt)

    def _loop(self) -> Any:
        reminders = 0  # text-only replies in a row: with tool_choice auto, one now and then is normal
        while True:
            self._check_limits()
            reply = self._ask()
            self.steps += 1
            self.round_steps += 1
            self.last_model = reply.model
            self.meter.record(self.context, reply)
            self.intake.add(reply.usage)
            # The text beside the calls stays in the conversation, and so do the provider's own blocks
            # (signed thinking, encrypted reasoning): they go back unchanged with the next request.
            self.messages.append(Message("assistant", reply.text, reply.tool_calls, blocks=reply.blocks))
            self._recorded = len(self.messages)  # the response record holds it
            if not reply.tool_calls:
                reminders += 1
                if reminders > self.limits.reminders:
                    raise AgentFailed(f"the model answered {reminders} times in a row without calling a tool")
                self.messages.append(Message("user", REMINDER.format(terminal=self.terminal)))
                continue
            reminders = 0
            finished, value = self._execute(reply)
            if finished:
                return value

    def _execute(self, reply: Reply) -> tuple[bool, Any]:
        """The reply's tool calls in order; the time limit is checked before each, and a long one (a command,
        a search) is cut where the agent's time runs out."""
        finished = False
        value: Any = None
        deadline = None if self.limits.max_seconds is None else (self.started or 0.0) + self.limits.max_seconds
        limits = CallLimits(deadline, self.limits.search_seconds)
        if self.ready is not None:
            self.ready()  # raises what kept it from being ready
        for call in reply.tool_calls:
            self._check_time()
            self.meter.notify(self.context, ToolStarted(tool=call.name, detail=tool_detail(call)))
            began = time.monotonic()
            result = self.toolbox.execute(call, limits)
            if self.on_tool is not None:
                self.on_tool(self.context, call, result)
            text = redact(result.text)
            self.messages.append(Message("tool", text, tool_call_id=call.id, is_error=result.is_error))
            if self.transcript is not None:
                self.transcript.tool_result(call, text, result.is_error, result.finished, time.monotonic() - began)
                self._recorded = len(self.messages)
            if result.finished:
                finished, value = True, result.value
        return finished, value

    def _ask(self) -> Reply:
        """One model call on a conversation that fits the model's context."""
        specs = self.toolbox.specs
        for attempt in range(CONTEXT_RETRIES + 1):
            limit = prompt_limit(self.model)
            if attempt and limit is None:  # the provider knows its limit; we do not: shrink by half
                limit = estimate(self.system, specs, self.messages)
            if limit is not None:
                self._compact(limit, force=attempt > 0)
            self._record_request(specs)
            self.meter.notify(self.context, ModelCalled(model=self.model.name, step=self.steps + 1))
            began = time.monotonic()
            try:
                # tool_choice auto: a forced tool call suppresses the model's reasoning and rules out
                # extended thinking; a reply without a call gets the reminder instead.
                reply = self.model.complete(self.system, self.messages, specs, require_tool=False,
                                            context=self.context)
            except ContextTooLong as exc:
                if attempt == CONTEXT_RETRIES:
                    raise AgentFailed(f"{exc}; compacting it {CONTEXT_RETRIES} times did not help") from exc
                continue
            if self.transcript is not None:
                self.transcript.response(self.steps + 1, reply, self.model.name, time.monotonic() - began)
            return reply
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _compact(self, limit: int, force: bool) -> None:
        done = compact(self.messages, limit, fixed_tokens(self.system, self.toolbox.specs), force=force,
                       at=self.limits.compact_at)
        if done is None:
            if force:
                raise AgentFailed("the conversation is too long for the model's context and cannot be compacted")
            return
        self.messages = done.messages
        if self.transcript is not None:  # the whole conversation as it now stands; requests add to it
            self.transcript.write("compaction", before=done.before, after=done.after, limit=limit,
                                  messages=[message_json(m) for m in self.messages])
            self._recorded = len(self.messages)
        self.meter.notify(self.context, Compacted(before=done.before, after=done.after, limit=limit,
                                                  trimmed=done.trimmed, summarized=done.summarized, aged=done.aged))

    def _record_request(self, specs: Sequence[ToolSpec]) -> None:
        if self.transcript is None:
            return
        hashes = _hashes(specs)
        changed = hashes != self._specs_hash
        self._specs_hash = hashes
        self.transcript.request(self.steps + 1, self.model.name, self.messages[self._recorded:],
                                specs if changed else None)
        self._recorded = len(self.messages)

    def _check_limits(self) -> None:
        self.meter.check()
        if self.round_steps >= self.limits.max_steps:
            raise AgentFailed(f"step limit reached ({self.limits.max_steps} model calls in this round; "
                              "[limits] max_steps)")
        if self.intake.tokens >= self.limits.max_tokens:
            raise AgentFailed(f"token limit reached ({self.intake.tokens:,} of {self.limits.max_tokens:,} tokens "
                              f"entered the conversation in {self.intake.calls} calls; [limits] max_tokens)")
        tally = self.meter.agent(agent_key(self.context))
        if self.limits.budget is not None and tally.cost >= self.limits.budget:
            raise BudgetExhausted(f"the agent's budget of ${self.limits.budget:.2f} is spent (${tally.cost:.4f}; "
                                  "[limits] agent_budget)")
        self._check_time()

    def _check_time(self) -> None:
        elapsed = time.monotonic() - (self.started or time.monotonic())
        if self.limits.max_seconds is not None and elapsed >= self.limits.max_seconds:
            raise AgentFailed(f"time limit reached ({elapsed:.0f} of {self.limits.max_seconds:.0f} s)")


DETAIL_ARGUMENTS = ("path", "command", "pattern", "glob", "query")  # what a tool acts on, in the live view


def tool_detail(call: ToolCall) -> str:
    """The one argument that tells what a tool call acts on (a path, a command), on one line and short."""
    for name in DETAIL_ARGUMENTS:
        value = call.arguments.get(name) if isinstance(call.arguments, dict) else None
        if isinstance(value, str) and value:
            line = " ".join(value.split())
            return line if len(line) <= 80 else line[:79] + "…"
    return ""


def _hashes(specs: Sequence[ToolSpec]) -> tuple[str, ...]:
    return tuple(spec_hash(s) for s in specs)

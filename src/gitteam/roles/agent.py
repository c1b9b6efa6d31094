"""The agent loop every role runs: ask the model, execute its tool calls, until a terminal tool.

Limits (steps, tokens, budget) are checked before every model call; control leaves the loop by
exceptions that carry a message. The conversation stays on the object, so a coder can be sent back
for another round with the reviewer's findings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gitteam.metering import Meter, agent_key
from gitteam.models.base import CallContext, Message, Model, ToolCall
from gitteam.roles.errors import AgentFailed
from gitteam.roles.tools import Toolbox, ToolResult

__all__ = ["Agent", "AgentFailed", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int
    max_tokens: int
    reminders: int


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
    ) -> None:
        self.model = model
        self.system = system
        self.toolbox = toolbox
        self.context = context
        self.limits = limits
        self.meter = meter
        self.terminal = terminal
        self.on_tool = on_tool
        self.messages: list[Message] = []
        self.steps = 0
        self.last_model = model.name

    def run(self, message: str) -> Any:
        """Add a user message and loop until the terminal tool is accepted; returns its value."""
        self.messages.append(Message("user", message))
        reminders = 0
        while True:
            self._check_limits()
            reply = self.model.complete(
                self.system, self.messages, self.toolbox.specs, require_tool=True, context=self.context
            )
            self.steps += 1
            self.last_model = reply.model
            self.meter.record(self.context, reply)
            self.messages.append(Message("assistant", reply.text, reply.tool_calls))
            if not reply.tool_calls:
                reminders += 1
                if reminders > self.limits.reminders:
                    raise AgentFailed(f"the model answered {reminders} times without calling a tool")
                self.messages.append(Message("user", REMINDER.format(terminal=self.terminal)))
                continue
            finished = False
            value: Any = None
            for call in reply.tool_calls:
                result = self.toolbox.execute(call)
                if self.on_tool is not None:
                    self.on_tool(self.context, call, result)
                self.messages.append(Message("tool", result.text, tool_call_id=call.id, is_error=result.is_error))
                if result.finished:
                    finished, value = True, result.value
            if finished:
                return value

    def _check_limits(self) -> None:
        self.meter.check()
        if self.steps >= self.limits.max_steps:
            raise AgentFailed(f"step limit reached ({self.limits.max_steps} model calls)")
        used = self.meter.agent(agent_key(self.context)).usage.total
        if used >= self.limits.max_tokens:
            raise AgentFailed(f"token limit reached ({used:,} of {self.limits.max_tokens:,})")

"""The model Protocol: messages and tool schemas in; text, tool calls and token usage out.

Messages are provider-neutral; each provider converts them to its wire format. A conversation is a
list of `Message`: user text, assistant turns (text and tool calls), and tool results that answer a
tool call by its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["planner", "coder", "reviewer"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    # Set when the provider sent arguments that were not a JSON object; the agent answers with an error.
    malformed: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool": the call this result answers
    is_error: bool = False  # for role "tool": the call was refused or failed


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0  # uncached input
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total(self) -> int:
        """Every token the provider processed: what `gitteam cost` and the notes report (cache reads included,
        at full weight; their price is the meter's concern)."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt of one call, however it was billed: what it filled of the context window."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        return cls(**{k: int(data.get(k, 0)) for k in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str  # the model that actually answered (a fallback may differ from the one asked)
    cost: float | None = None  # USD, None when the price is unknown


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: used by scripted models to pick the script, and by usage accounting."""

    run: str
    role: Role
    agent: str  # "planner", a subtask id, or "integration"
    round: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


class Model(Protocol):
    @property
    def name(self) -> str:
        """The spec it was made from, e.g. "anthropic:claude-sonnet-4-6" or "replay:demo.json"."""
        ...

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        """One model call. `require_tool` asks the provider to force a tool call where it can."""
        ...

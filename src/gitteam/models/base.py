"""The model Protocol: messages and tool schemas in; text, tool calls and token usage out.

Messages are provider-neutral; each provider converts them to its wire format. A conversation is a
list of `Message`: user text, assistant turns (text and tool calls), and tool results that answer a
tool call by its id.

An assistant turn may also carry the provider's own record of it (`Block`s): Anthropic's content blocks
with their signed thinking, the Responses API's output items with their encrypted reasoning. Nothing but
the provider that made them reads them: it sends them back unchanged, in order, and every other
provider ignores them. Code that rebuilds a conversation keeps a message whole or drops it whole.
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
class Block:
    """One item of an assistant turn exactly as its provider sent it, to be sent back exactly so.

    `provider` names the wire format ("anthropic": a Messages content block; "openai-responses": a
    Responses output item); `data` is the item's JSON object. Opaque everywhere else: a thinking block's
    signature covers its text, and an encrypted reasoning item is only meaningful to the server."""

    provider: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool": the call this result answers
    is_error: bool = False  # for role "tool": the call was refused or failed
    blocks: tuple[Block, ...] = ()  # for role "assistant": the provider's own record of the turn

    def blocks_of(self, provider: str) -> list[dict[str, Any]]:
        """The turn's items in `provider`'s wire format, in the order received (empty: none of its own)."""
        return [block.data for block in self.blocks if block.provider == provider]


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
    cost: float | None = None  # USD, None when the price (or the usage) is unknown
    blocks: tuple[Block, ...] = ()  # the provider's own record of the turn: kept on the assistant Message
    # False when the server reported no usage (a compatible server that ignores stream_options): `usage`
    # is then zero because nothing was counted, not because nothing was used, and `cost` is None.
    usage_known: bool = True
    reasoning_tokens: int | None = None  # of usage.output_tokens, when the provider says (OpenAI)


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
        """One model call. `require_tool` asks the provider to force a tool call where it can (never with
        extended thinking, which the APIs refuse to combine with a forced tool); the agent loop does not
        ask it, so the model may think and write alongside its calls, and reminds a model that only wrote."""
        ...

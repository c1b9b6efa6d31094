"""What the HTTP providers share: one streamed call a turn through the one retry layer, usage priced once.

A provider says how to build its request and how to read its SDK's stream into a `Streamed` reply;
`complete` is the same for all of them. Every reply is streamed: a long reply never meets a read timeout
(the timeout is the time the server may stay silent, not the length of the reply), and the anthropic SDK
refuses long non-streamed requests outright. The whole stream is read inside the retried call, so an error
event half way, a dropped connection or a stream that stops early makes the call again from the start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from gitteam.config import ModelDef
from gitteam.models.base import Block, CallContext, Message, Reply, ToolCall, ToolSpec, Usage
from gitteam.models.catalog import context_tokens
from gitteam.models.prices import prices_for
from gitteam.models.retry import Endpoint, RetryPolicy, call_with_retries


@dataclass(frozen=True, slots=True)
class Streamed:
    """A reply as read from a whole stream."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage | None  # None: the server reported none (some compatible servers never do when streaming)
    blocks: tuple[Block, ...] = ()
    reasoning_tokens: int | None = None


class HttpModel(ABC):
    endpoint: Endpoint
    errors: tuple[type[BaseException], ...]  # the SDK's and httpx's error classes, classified by models.retry

    def __init__(self, spec: str, definition: ModelDef, retry: RetryPolicy | None, default_max_tokens: int) -> None:
        self.name = spec
        self.model_id = definition.model
        self.max_tokens = definition.max_output_tokens or default_max_tokens
        # What the agent loop keeps the conversation under (models/window.py).
        self.context_tokens = definition.context_tokens or context_tokens(definition.model)
        self.max_output_tokens = self.max_tokens
        self.retry = retry or RetryPolicy()
        self.prices = prices_for(definition)

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        request = self.request(system, messages, tools, require_tool)
        reply = call_with_retries(
            lambda: self.stream(request), endpoint=self.endpoint, policy=self.retry, errors=self.errors
        )
        known = reply.usage is not None
        usage = reply.usage or Usage()
        # Unknown usage is an unknown cost, never a free call, unless every token is free (a local model).
        free = self.prices is not None and self.prices.cost(Usage(1, 1, 1, 1)) == 0
        cost = self.prices.cost(usage) if self.prices and (known or free) else None
        return Reply(text=reply.text, tool_calls=reply.tool_calls, usage=usage, model=self.name, cost=cost,
                     blocks=reply.blocks, usage_known=known, reasoning_tokens=reply.reasoning_tokens)

    @abstractmethod
    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        """The SDK call's keyword arguments: the provider's JSON body (streaming)."""

    @abstractmethod
    def stream(self, request: dict[str, Any]) -> Streamed:
        """One SDK call, its stream read to the end; its exceptions are classified by models.retry."""

"""What the two HTTP providers share: one call a turn through the one retry layer, usage priced once.

A provider says how to build its request, send it with its SDK and read its reply; `complete` is the
same for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from gitteam.config import ModelDef
from gitteam.models.base import CallContext, Message, Reply, ToolCall, ToolSpec, Usage
from gitteam.models.catalog import context_tokens
from gitteam.models.prices import prices_for
from gitteam.models.retry import Endpoint, RetryPolicy, call_with_retries


class HttpModel(ABC):
    endpoint: Endpoint
    errors: tuple[type[BaseException], ...]  # the SDK's own error classes, classified by models.retry

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
        response = call_with_retries(
            lambda: self.send(request), endpoint=self.endpoint, policy=self.retry, errors=self.errors
        )
        text, calls, usage = self.parse(response)
        cost = self.prices.cost(usage) if self.prices else None
        return Reply(text=text, tool_calls=calls, usage=usage, model=self.name, cost=cost)

    @abstractmethod
    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        """The SDK call's keyword arguments: the provider's JSON body."""

    @abstractmethod
    def send(self, request: dict[str, Any]) -> Any:
        """One SDK call; its exceptions are classified by models.retry."""

    @abstractmethod
    def parse(self, response: Any) -> tuple[str, tuple[ToolCall, ...], Usage]:
        """Text, tool calls and usage from the SDK's response."""

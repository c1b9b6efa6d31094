"""The `openai:` provider on the Responses API (`api = "responses"` in [models.NAME]): stateless, streamed.

Stateless: every request has `store: false`, so nothing of the conversation is kept on the server, and the
whole conversation goes in `input` each turn. A reasoning model's reasoning then survives between turns only
as `include: ["reasoning.encrypted_content"]` returns it: reasoning items carrying `encrypted_content`. A turn
holding such items keeps all its output items on the assistant message (reasoning, message, function_call,
as `response.output_item.done` delivered them) and sends them back exactly so, in order: a reasoning item
must stay in front of the call it led to. Tool results go back as `function_call_output` items.

The stream is read from its typed events: each `response.output_item.done` holds a whole item; the usage
comes with `response.completed` (or `response.incomplete`, a reply cut at max_output_tokens). An `error` or
`response.failed` event is a `StreamError`, which the retry layer treats like any transient failure. Any
server that speaks the Responses API works through base_url.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from gitteam.models.base import Block, Message, ToolCall, ToolSpec, Usage
from gitteam.models.http import Streamed
from gitteam.models.openai import OpenAIClientModel, parse_arguments
from gitteam.models.retry import StreamError

PROVIDER = "openai-responses"  # Block.provider of this wire format
PLAIN = ("message", "function_call")  # what a Message holds anyway; other items make the turn keep its own
INCLUDE = ["reasoning.encrypted_content"]


class ResponsesModel(OpenAIClientModel):
    """The Responses API, stateless (`store: false`); the client and endpoint are Chat Completions' own."""

    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        return build_request(self.model_id, system, messages, tools, require_tool, effort=self.effort,
                             max_tokens=self.max_tokens)

    def stream(self, request: dict[str, Any]) -> Streamed:
        with self._client.responses.create(**request) as events:
            return collect(event.to_dict(warnings=False) for event in events)


def build_request(
    model: str,
    system: str,
    messages: list[Message],
    tools: list[ToolSpec],
    require_tool: bool,
    *,
    effort: str | None = None,
    max_tokens: int = 0,
) -> dict[str, Any]:
    """The keyword arguments of `responses.create`: the JSON body."""
    request: dict[str, Any] = {"model": model, "input": to_input(messages), "stream": True, "store": False,
                               "include": list(INCLUDE)}
    if system:
        request["instructions"] = system
    if tools:
        # strict false: the API defaults to strict schemas, which want every property required.
        request["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                             "parameters": t.parameters, "strict": False} for t in tools]
        request["tool_choice"] = "required" if require_tool else "auto"
    if effort is not None:
        request["reasoning"] = {"effort": effort}
    if max_tokens:
        request["max_output_tokens"] = max_tokens
    return request


def to_input(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages as input items; an assistant turn with its own items sends those, as received."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "user":
            items.append({"role": "user", "content": message.content})
        elif message.role == "tool":
            output = message.content
            if message.is_error and not output.lower().startswith("error"):
                output = f"Error: {output}"  # function_call_output has no error flag
            items.append({"type": "function_call_output", "call_id": message.tool_call_id or "", "output": output})
        elif own := message.blocks_of(PROVIDER):
            items.extend(item for item in own if _replayable(item))
        else:
            if message.content:
                items.append({"role": "assistant", "content": message.content})
            items.extend({"type": "function_call", "call_id": call.id, "name": call.name,
                          "arguments": json.dumps(call.arguments)} for call in message.tool_calls)
    return items


def _replayable(item: dict[str, Any]) -> bool:
    # A reasoning item with neither encrypted nor plain content names a stored item, and nothing is stored.
    return item.get("type") != "reasoning" or bool(item.get("encrypted_content") or item.get("content"))


def collect(events: Iterable[dict[str, Any]]) -> Streamed:
    """A Responses SSE stream (as event objects) read into a reply."""
    items: dict[int, dict[str, Any]] = {}
    final: dict[str, Any] | None = None
    for event in events:
        kind = event.get("type")
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            items[int(event.get("output_index", len(items)))] = event["item"]
        elif kind in ("response.completed", "response.incomplete"):
            final = event.get("response") or {}
        elif kind == "response.failed":
            error = (event.get("response") or {}).get("error") or {}
            raise StreamError(str(error.get("message") or "the response failed"), code=str(error.get("code") or ""))
        elif kind == "error":
            raise StreamError(str(event.get("message") or "error event"), code=str(event.get("code") or "error"))
    if final is None:
        raise StreamError("the reply stream ended before response.completed")
    output = [items[i] for i in sorted(items)] or [i for i in final.get("output") or [] if isinstance(i, dict)]
    texts: list[str] = []
    calls: list[ToolCall] = []
    for item in output:
        if item.get("type") == "message":
            texts.append("".join(str(part.get("text") or part.get("refusal") or "")
                                 for part in item.get("content") or [] if isinstance(part, dict)))
        elif item.get("type") == "function_call":
            calls.append(_tool_call(item))
    own = tuple(Block(PROVIDER, item) for item in output) if any(
        item.get("type") not in PLAIN for item in output) else ()
    usage = final.get("usage")
    details = (usage or {}).get("output_tokens_details") or {}
    return Streamed("\n".join(text for text in texts if text), tuple(calls),
                    _usage(usage) if isinstance(usage, dict) else None, own,
                    _count(details.get("reasoning_tokens")) if "reasoning_tokens" in details else None)


def _tool_call(item: dict[str, Any]) -> ToolCall:
    call_id = str(item.get("call_id") or item.get("id") or f"call_{uuid.uuid4().hex[:16]}")
    name = str(item.get("name") or "")
    arguments = item.get("arguments")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    parsed = parse_arguments(text)
    return ToolCall(call_id, name, parsed) if parsed is not None else ToolCall(call_id, name, {}, malformed=text)


def _usage(usage: dict[str, Any]) -> Usage:
    details = usage.get("input_tokens_details") or {}
    cached = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_write_tokens"))
    # input_tokens includes the cached ones, output_tokens the reasoning ones (billed as output).
    return Usage(
        input_tokens=max(0, _count(usage.get("input_tokens")) - cached - written),
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0

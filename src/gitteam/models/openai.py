"""The `openai:` provider: Chat Completions through the openai SDK, one streamed call a turn.

Any OpenAI-compatible server works through a base URL (Ollama, vLLM, LM Studio, llama.cpp server), and
those are sloppy: arguments that are not JSON, replies without a tool call, no usage, ids missing. All
of it becomes a normal Reply; only what the agent loop cannot act on is an error. The reply is read from
the `chat.completion.chunk` stream; `stream_options.include_usage` asks for a last chunk with the usage, and
a server that ignores it leaves the usage unknown (never zero). `api = "responses"` in [models.NAME] picks
the Responses API instead (models/responses.py).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gitteam.config import ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.fallback import with_fallbacks
from gitteam.models.http import HttpModel, Streamed
from gitteam.models.retry import Endpoint, RetryPolicy, StreamError, policy_for

if TYPE_CHECKING:
    import openai

    from gitteam.models.registry import Registry

KEY_VARIABLE = "OPENAI_API_KEY"
OFFICIAL_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one
READ_TIMEOUT = 600.0  # seconds of silence: a local model on a CPU can take minutes before its first token
CONNECT_TIMEOUT = 10.0
TOOLS_HINT = (
    "use a model with tool support (Ollama: one tagged 'tools'), start vLLM with --enable-auto-tool-choice "
    "--tool-call-parser NAME, or llama.cpp's server with --jinja"
)


def create(spec: str, definition: ModelDef, registry: Registry) -> Model:
    policy = policy_for(bool(definition.fallbacks))
    if definition.api == "responses":
        from gitteam.models.responses import ResponsesModel

        return with_fallbacks(ResponsesModel(spec, definition, retry=policy), definition, registry)
    return with_fallbacks(OpenAIModel(spec, definition, retry=policy), definition, registry)


class OpenAIClientModel(HttpModel):
    """What both OpenAI wire formats (Chat Completions, Responses) share: the client, its errors, the endpoint."""

    def __init__(
        self,
        spec: str,
        definition: ModelDef,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        import openai

        super().__init__(spec, definition, retry, 0)  # 0: let the server choose the reply's length
        base_url = definition.base_url or os.environ.get("OPENAI_BASE_URL") or OFFICIAL_URL
        self.official = "api.openai.com" in base_url
        self.effort = definition.reasoning_effort
        self._client = make_client(spec, definition, base_url, self.official,
                                   timeout or definition.timeout or READ_TIMEOUT)
        self.errors = (openai.APIError, StreamError)  # the SDK wraps httpx errors met inside a stream
        self.endpoint = Endpoint(
            spec=spec,
            model=definition.model,
            key_variable=definition.api_key_env or KEY_VARIABLE,
            base_url=base_url.rstrip("/"),
            tools_hint="" if self.official else TOOLS_HINT,
        )


class OpenAIModel(OpenAIClientModel):
    """Chat Completions: OpenAI and every OpenAI-compatible server."""

    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        request = build_request(self.model_id, system, messages, tools, require_tool)
        if self.max_tokens:
            # OpenAI's reasoning models refuse max_tokens; most local servers know only max_tokens.
            request["max_completion_tokens" if self.official else "max_tokens"] = self.max_tokens
        if self.effort is not None:
            request["reasoning_effort"] = self.effort
        return request

    def stream(self, request: dict[str, Any]) -> Streamed:
        with self._client.chat.completions.create(**request) as chunks:
            return collect(chunk.to_dict(warnings=False) for chunk in chunks)


def make_client(spec: str, definition: ModelDef, base_url: str, official: bool, timeout: float) -> openai.OpenAI:
    import openai

    variable = definition.api_key_env or KEY_VARIABLE
    key = os.environ.get(variable, "").strip()
    if not key:
        # A variable named in config means the server wants a key, local or not.
        if official or definition.api_key_env:
            raise UsageError(
                f"{spec}: {variable} is not set: export {variable}=<your API key>, or give the model a "
                "base_url for a local OpenAI-compatible server (Ollama, vLLM) that needs none"
            )
        key = PLACEHOLDER_KEY
    return openai.OpenAI(
        api_key=key,
        base_url=base_url,
        max_retries=0,  # ours is the one retry layer
        timeout=openai.Timeout(timeout, connect=CONNECT_TIMEOUT),
    )


def build_request(
    model: str, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
) -> dict[str, Any]:
    """The keyword arguments of `chat.completions.create`: the JSON body."""
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    wire.extend(_wire_message(message) for message in messages)
    request: dict[str, Any] = {"model": model, "messages": wire, "stream": True,
                               "stream_options": {"include_usage": True}}
    if tools:  # OpenAI rejects an empty tools list
        request["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools
        ]
        request["tool_choice"] = "required" if require_tool else "auto"
    return request


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        content = message.content
        if message.is_error and not content.lower().startswith("error"):
            content = f"Error: {content}"  # Chat Completions has no is_error flag
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": content}
    if message.role == "user" or not message.tool_calls:
        return {"role": message.role, "content": message.content}
    return {
        "role": "assistant",
        "content": message.content,  # "" rather than null: some local servers reject null content
        "tool_calls": [
            # A malformed call goes back as "{}": strict servers parse history arguments and would
            # refuse the whole request; the tool result already tells the model what was wrong.
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ],
    }


def collect(chunks: Iterable[dict[str, Any]]) -> Streamed:
    """A Chat Completions stream read into a reply: the text from `delta.content`, each tool call from the
    `delta.tool_calls` pieces of its `index` (id and name once, the arguments in pieces), the usage from
    the chunk that carries it (the last one, with no choices, when include_usage is honoured)."""
    texts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] | None = None
    finished = False
    for chunk in chunks:
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, list):  # content parts, from servers that mirror the request format
                content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            if content:
                texts.append(str(content))
            for piece in delta.get("tool_calls") or []:
                if isinstance(piece, dict):
                    _add_piece(calls, piece)
            finished = finished or bool(choice.get("finish_reason"))
    if not finished:
        raise StreamError("the reply stream ended before a finish_reason")
    tool_calls = tuple(_tool_call(calls[index]) for index in sorted(calls))
    details = (usage or {}).get("completion_tokens_details") or {}
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Streamed("".join(texts), tool_calls, _usage(usage) if usage is not None else None,
                    reasoning_tokens=_count(reasoning) if reasoning is not None else None)


def _add_piece(calls: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    """One `delta.tool_calls` entry into the call it continues. A server without indexes sends each call
    whole, or its id first: a new id starts a new call."""
    index = piece.get("index")
    if not isinstance(index, int):
        last = max(calls, default=-1)
        index = last + 1 if last < 0 or (piece.get("id") and piece.get("id") != calls[last].get("id")) else last
    call = calls.setdefault(index, {"function": {"arguments": ""}})  # none sent: a call without arguments
    if piece.get("id"):
        call["id"] = piece["id"]
    function = piece.get("function") or {}
    if function.get("name") and not call["function"].get("name"):
        call["function"]["name"] = function["name"]
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # non-standard, but some servers send an object
        call["function"]["arguments"] = arguments
    elif arguments:
        call["function"]["arguments"] = str(call["function"].get("arguments", "")) + str(arguments)


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    # Some servers omit ids; the tool result must still answer this call and no other.
    call_id = str(raw.get("id") or f"call_{uuid.uuid4().hex[:16]}")
    name = str(function.get("name") or "")
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # non-standard, but some servers send an object
        return ToolCall(call_id, name, arguments)
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    parsed = parse_arguments(text)
    return ToolCall(call_id, name, parsed) if parsed is not None else ToolCall(call_id, name, {}, malformed=text)


def parse_arguments(text: str) -> dict[str, Any] | None:
    """The arguments object, forgiving what local models commonly do; None when it is not one."""
    text = text.strip()
    if not text:  # a call without arguments, as some servers send it
        return {}
    try:
        # raw_decode accepts a complete object followed by junk (an end-of-turn token, a second "}").
        value, _ = json.JSONDecoder().raw_decode(text)
        if isinstance(value, str):  # arguments encoded twice
            value, _ = json.JSONDecoder().raw_decode(value.strip())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _usage(usage: dict[str, Any]) -> Usage:
    details = usage.get("prompt_tokens_details") or {}
    prompt = _count(usage.get("prompt_tokens"))
    cached = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_write_tokens"))
    # prompt_tokens includes the cached tokens (unlike Anthropic's input_tokens): count each once.
    return Usage(
        input_tokens=max(0, prompt - cached - written),
        output_tokens=_count(usage.get("completion_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0

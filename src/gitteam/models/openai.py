"""The `openai:` provider: Chat Completions through the openai SDK, one non-streaming call a turn.

Any OpenAI-compatible server works through a base URL (Ollama, vLLM, LM Studio, llama.cpp server), and
those are sloppy: arguments that are not JSON, replies without a tool call, no usage, ids missing. All
of it becomes a normal Reply; only what the agent loop cannot act on is an error.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

from gitteam.config import ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.fallback import with_fallbacks
from gitteam.models.http import HttpModel
from gitteam.models.retry import Endpoint, RetryPolicy, policy_for

if TYPE_CHECKING:
    import openai

    from gitteam.models.registry import Registry

KEY_VARIABLE = "OPENAI_API_KEY"
OFFICIAL_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the SDK insists on one
READ_TIMEOUT = 600.0  # a local model on a CPU can take minutes for one reply
CONNECT_TIMEOUT = 10.0
TOOLS_HINT = (
    "use a model with tool support (Ollama: one tagged 'tools'), start vLLM with --enable-auto-tool-choice "
    "--tool-call-parser NAME, or llama.cpp's server with --jinja"
)


def create(spec: str, definition: ModelDef, registry: Registry) -> Model:
    policy = policy_for(bool(definition.fallbacks))
    return with_fallbacks(OpenAIModel(spec, definition, retry=policy), definition, registry)


class OpenAIModel(HttpModel):
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
        self._client = _client(spec, definition, base_url, self.official, timeout or definition.timeout or READ_TIMEOUT)
        self.errors = (openai.APIError,)
        self.endpoint = Endpoint(
            spec=spec,
            model=definition.model,
            key_variable=definition.api_key_env or KEY_VARIABLE,
            base_url=base_url.rstrip("/"),
            tools_hint="" if self.official else TOOLS_HINT,
        )

    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        request = build_request(self.model_id, system, messages, tools, require_tool)
        if self.max_tokens:
            # OpenAI's reasoning models refuse max_tokens; most local servers know only max_tokens.
            request["max_completion_tokens" if self.official else "max_tokens"] = self.max_tokens
        return request

    def send(self, request: dict[str, Any]) -> Any:
        return self._client.chat.completions.create(**request)

    def parse(self, response: Any) -> tuple[str, tuple[ToolCall, ...], Usage]:
        return parse_response(response.to_dict(warnings=False))


def _client(spec: str, definition: ModelDef, base_url: str, official: bool, timeout: float) -> openai.OpenAI:
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
    request: dict[str, Any] = {"model": model, "messages": wire}
    if tools:  # OpenAI rejects an empty tools list
        request["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools
        ]
        if require_tool:
            request["tool_choice"] = "required"
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


def parse_response(data: dict[str, Any]) -> tuple[str, tuple[ToolCall, ...], Usage]:
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    text = message.get("content") or ""
    if isinstance(text, list):  # content parts, from servers that mirror the request format
        text = "".join(str(part.get("text", "")) for part in text if isinstance(part, dict))
    calls = tuple(_tool_call(raw) for raw in message.get("tool_calls") or [] if isinstance(raw, dict))
    return str(text), calls, _usage(data.get("usage") or {})


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

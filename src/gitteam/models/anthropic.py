"""The `anthropic:` provider: the Messages API through the anthropic SDK, one non-streaming call a turn.

Non-streaming keeps one retry layer simple: an error is an exception from `create`, never an event half
way through a reply. The stable prefix (tool schemas, system prompt) and the conversation so far are
marked for prompt caching, so each turn of an agent loop re-reads the earlier turns at a tenth of the
input price.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any

from gitteam.config import ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.fallback import with_fallbacks
from gitteam.models.http import HttpModel
from gitteam.models.retry import Endpoint, RetryPolicy, policy_for

if TYPE_CHECKING:
    import anthropic

    from gitteam.models.registry import Registry

KEY_VARIABLE = "ANTHROPIC_API_KEY"
OFFICIAL_HOST = "api.anthropic.com"
PLACEHOLDER_KEY = "not-needed"  # an Anthropic-compatible proxy without auth; the SDK insists on a key
DEFAULT_MAX_TOKENS = 8192
READ_TIMEOUT = 600.0  # a long reply from a large model, not streamed
CONNECT_TIMEOUT = 10.0
EPHEMERAL = {"type": "ephemeral"}
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def create(spec: str, definition: ModelDef, registry: Registry) -> Model:
    policy = policy_for(bool(definition.fallbacks))
    return with_fallbacks(AnthropicModel(spec, definition, retry=policy), definition, registry)


class AnthropicModel(HttpModel):
    def __init__(
        self,
        spec: str,
        definition: ModelDef,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        import anthropic

        super().__init__(spec, definition, retry, DEFAULT_MAX_TOKENS)
        self._client = _client(spec, definition, timeout or definition.timeout or READ_TIMEOUT)
        self.errors = (anthropic.APIError,)
        self.endpoint = Endpoint(
            spec=spec,
            model=definition.model,
            key_variable=definition.api_key_env or KEY_VARIABLE,
            base_url=str(self._client.base_url).rstrip("/"),
        )

    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        return build_request(self.model_id, self.max_tokens, system, messages, tools, require_tool)

    def send(self, request: dict[str, Any]) -> Any:
        return self._client.messages.create(**request)

    def parse(self, response: Any) -> tuple[str, tuple[ToolCall, ...], Usage]:
        return parse_response(response.to_dict(warnings=False))


def _client(spec: str, definition: ModelDef, timeout: float) -> anthropic.Anthropic:
    import anthropic

    options: dict[str, Any] = {
        "base_url": definition.base_url,  # None: ANTHROPIC_BASE_URL, else the SDK's default
        "max_retries": 0,  # ours is the one retry layer
        "timeout": anthropic.Timeout(timeout, connect=CONNECT_TIMEOUT),
    }
    if definition.api_key_env:
        key = os.environ.get(definition.api_key_env, "").strip()
        if not key:
            raise UsageError(
                f"{spec}: {definition.api_key_env} is not set: export {definition.api_key_env}=<your "
                f"Anthropic API key> (named by [models.{definition.name}].api_key_env)"
            )
        options["api_key"] = key
    client = anthropic.Anthropic(**options)
    # Without explicit options the SDK reads ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or a profile.
    if any(getattr(client, name, None) for name in ("api_key", "auth_token", "credentials")):
        return client
    if OFFICIAL_HOST in str(client.base_url):
        raise UsageError(
            f"{spec}: {KEY_VARIABLE} is not set: export {KEY_VARIABLE}=<your Anthropic API key>, "
            "or pick another model with --model"
        )
    return anthropic.Anthropic(**options, api_key=PLACEHOLDER_KEY)


def build_request(
    model: str,
    max_tokens: int,
    system: str,
    messages: list[Message],
    tools: list[ToolSpec],
    require_tool: bool,
) -> dict[str, Any]:
    """The keyword arguments of `messages.create`: the Messages API's JSON body."""
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": to_wire(messages)}
    if system:
        request["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    if tools:
        wire_tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
        # Tools come first in the cached prefix: this breakpoint keeps them cached when the system
        # prompt differs (coders of one run share tools, not their instructions).
        wire_tools[-1]["cache_control"] = EPHEMERAL
        request["tools"] = wire_tools
        if require_tool:
            request["tool_choice"] = {"type": "any"}
    return request


def to_wire(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Anthropic turns: tool results are user content, and consecutive messages of
    one role share a turn (the API wants roles to alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Tool results must open the turn that answers a tool_use; the API rejects empty content.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
        if not turn["content"]:
            turn["content"] = [{"type": "text", "text": "(empty)"}]
    if turns:
        # The third breakpoint: the conversation so far, read back from the cache on the next turn.
        turns[-1]["content"][-1] = {**turns[-1]["content"][-1], "cache_control": EPHEMERAL}
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _safe_id(message.tool_call_id or "")}
        if message.content:  # content is optional; an empty text block would be refused
            block["content"] = message.content
        if message.is_error:
            block["is_error"] = True
        return [block]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": _safe_id(call.id), "name": call.name, "input": call.arguments})
    return blocks


def _safe_id(call_id: str) -> str:
    # After a fallback from another provider, ids may hold characters the API refuses.
    return _ID_UNSAFE.sub("_", call_id) or "call"


def parse_response(data: dict[str, Any]) -> tuple[str, tuple[ToolCall, ...], Usage]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or []:
        if block.get("type") == "text" and block.get("text"):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            call_id, name, raw = str(block.get("id", "")), str(block.get("name", "")), block.get("input")
            if isinstance(raw, dict):
                calls.append(ToolCall(call_id, name, raw))
            else:
                calls.append(ToolCall(call_id, name, {}, malformed=json.dumps(raw)))
    usage = data.get("usage") or {}
    return (
        "\n".join(texts),
        tuple(calls),
        Usage(
            input_tokens=_count(usage.get("input_tokens")),  # already excludes cached tokens
            output_tokens=_count(usage.get("output_tokens")),
            cache_read_tokens=_count(usage.get("cache_read_input_tokens")),
            cache_write_tokens=_count(usage.get("cache_creation_input_tokens")),
        ),
    )


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0

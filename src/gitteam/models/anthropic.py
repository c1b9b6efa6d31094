"""The `anthropic:` provider: the Messages API through the anthropic SDK, one streamed call a turn.

The reply is read from the Messages SSE stream (`message_start`, `content_block_start`/`_delta`/`_stop`,
`message_delta`, `message_stop`) into the same content blocks a non-streamed reply would hold. A turn that
holds blocks gitteam cannot rebuild (signed `thinking`, `redacted_thinking`) keeps all its blocks on the
assistant message, and they are sent back exactly as received, in their order: the API checks the
signatures and wants the thinking that led to a tool call with that call's result.

Prompt caching: tools, then the system prompt, then the conversation form the cached prefix. A breakpoint
on the static part pays only when it reaches the model's minimum cacheable length, so it is set only then;
the conversation gets two: on the latest user turn (written for the next call) and on the turn that ended
the previous call (read now, however many parallel tool calls and results came after it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gitteam.config import ModelDef
from gitteam.errors import UsageError
from gitteam.models.base import Block, Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.fallback import with_fallbacks
from gitteam.models.http import HttpModel, Streamed
from gitteam.models.retry import Endpoint, RetryPolicy, StreamError, policy_for
from gitteam.tokens import estimate_tokens

if TYPE_CHECKING:
    import anthropic

    from gitteam.models.registry import Registry

KEY_VARIABLE = "ANTHROPIC_API_KEY"
OFFICIAL_HOST = "api.anthropic.com"
PLACEHOLDER_KEY = "not-needed"  # an Anthropic-compatible proxy without auth; the SDK insists on a key
PROVIDER = "anthropic"  # Block.provider of this wire format
DEFAULT_MAX_TOKENS = 8192  # the answer; a thinking budget comes on top of it
ADAPTIVE_MAX_TOKENS = 32_000  # adaptive thinking counts toward max_tokens too; every current model allows it
READ_TIMEOUT = 600.0  # seconds the server may stay silent, before the stream starts or inside it
CONNECT_TIMEOUT = 10.0
EPHEMERAL = {"type": "ephemeral"}
THINKING = ("thinking", "redacted_thinking")
REBUILT = ("text", "tool_use")  # what a Message holds anyway; other blocks make the turn keep its own
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

# The shortest prefix the API caches, by longest model-id prefix; a shorter one is processed uncached.
CACHE_MINIMUM = {
    "claude-opus-4-": 1024,
    "claude-sonnet-4-": 1024,
    "claude-3-7-sonnet": 1024,
    "claude-sonnet-4-6": 2048,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-7": 4096,
    "claude-opus-4-8": 4096,
    "claude-haiku-4-5": 4096,
}
UNKNOWN_CACHE_MINIMUM = 4096  # newer families: the largest known minimum, so no breakpoint is wasted


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
        import httpx2

        self.thinking = thinking_param(definition.thinking)
        super().__init__(spec, definition, retry, default_max_tokens(self.thinking))
        self.effort = definition.reasoning_effort
        self.cache_minimum = cache_minimum(definition.model)
        self._client = _client(spec, definition, timeout or definition.timeout or READ_TIMEOUT)
        # httpx's errors: a connection dropped while the SDK reads the stream is not wrapped by it.
        self.errors = (anthropic.APIError, httpx2.TransportError, StreamError)
        self.endpoint = Endpoint(
            spec=spec,
            model=definition.model,
            key_variable=definition.api_key_env or KEY_VARIABLE,
            base_url=str(self._client.base_url).rstrip("/"),
        )

    def request(
        self, system: str, messages: list[Message], tools: list[ToolSpec], require_tool: bool
    ) -> dict[str, Any]:
        return build_request(self.model_id, self.max_tokens, system, messages, tools, require_tool=require_tool,
                             thinking=self.thinking, effort=self.effort, cache_minimum=self.cache_minimum)

    def stream(self, request: dict[str, Any]) -> Streamed:
        with self._client.messages.create(**request) as events:
            return collect(event.to_dict(warnings=False) for event in events)


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


def thinking_param(configured: dict[str, Any] | None) -> dict[str, Any] | None:
    """[models.NAME] thinking as the API's object: {budget_tokens = N} means type "enabled"."""
    if configured is None:
        return None
    kind = configured.get("type", "enabled" if "budget_tokens" in configured else "adaptive")
    return {"type": kind, **{k: v for k, v in configured.items() if k != "type"}}


def default_max_tokens(thinking: dict[str, Any] | None) -> int:
    """max_tokens when max_output_tokens is unset: thinking tokens count toward it, so room for them too."""
    if thinking is None or thinking["type"] == "disabled":
        return DEFAULT_MAX_TOKENS
    if thinking["type"] == "enabled":
        return int(thinking["budget_tokens"]) + DEFAULT_MAX_TOKENS
    return ADAPTIVE_MAX_TOKENS


def cache_minimum(model: str) -> int:
    key = model.strip().lower()
    best = max((prefix for prefix in CACHE_MINIMUM if key.startswith(prefix)), key=len, default=None)
    return CACHE_MINIMUM[best] if best is not None else UNKNOWN_CACHE_MINIMUM


def build_request(
    model: str,
    max_tokens: int,
    system: str,
    messages: list[Message],
    tools: list[ToolSpec],
    *,
    require_tool: bool = False,
    thinking: dict[str, Any] | None = None,
    effort: str | None = None,
    cache_minimum: int = UNKNOWN_CACHE_MINIMUM,
) -> dict[str, Any]:
    """The keyword arguments of `messages.create`: the Messages API's JSON body, streamed.

    No temperature, top_p or top_k is ever sent: with thinking the API allows none of them but the
    default, and a forced tool (`any`) neither, so with thinking the choice stays `auto`."""
    turns = to_wire(messages)
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": turns, "stream": True}
    if system:
        request["system"] = [{"type": "text", "text": system}]
    if thinking is not None and thinking_allowed(turns, thinking):
        request["thinking"] = thinking
    if effort is not None:
        request["output_config"] = {"effort": effort}
    if tools:
        request["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                            for t in tools]
        thinks = "thinking" in request and request["thinking"]["type"] != "disabled"
        request["tool_choice"] = {"type": "any" if require_tool and not thinks else "auto"}
    mark_cache(request, cache_minimum)
    return request


def thinking_allowed(turns: list[dict[str, Any]], thinking: dict[str, Any]) -> bool:
    """Whether budgeted thinking may be asked for: the API refuses it while a tool loop's last assistant turn
    does not start with a thinking block (one written by a model without thinking: a fallback, an economy
    model). The loop then goes on without thinking until the model speaks again in a new turn."""
    if thinking["type"] != "enabled" or len(turns) < 2:
        return True
    last, before = turns[-1], turns[-2]
    if last["role"] != "user" or not any(block.get("type") == "tool_result" for block in last["content"]):
        return True
    return before["role"] != "assistant" or before["content"][0].get("type") in THINKING


def mark_cache(request: dict[str, Any], minimum: int) -> None:
    """At most four breakpoints: tools and system when each prefix reaches `minimum` tokens, the latest user
    turn, and the user turn that ended the previous call (where that call's breakpoint was).

    A first user turn of several text blocks opens with a prefix other agents share (reviewers of one diff:
    the same system prompt and diff, then each one's focus): its first block gets the tools' breakpoint,
    which the system prompt's covers anyway, so parallel reviewers read the diff from one cache entry."""
    tools, system = request.get("tools") or [], request.get("system") or []
    users = [turn for turn in request["messages"] if turn["role"] == "user"]
    opening = users[0]["content"] if users else []
    shared = len(opening) > 1 and all(block.get("type") == "text" for block in opening)
    static = estimate_tokens(json.dumps(tools))
    if tools and static >= minimum and not shared:  # coders of one run share their tools, not their system prompts
        tools[-1]["cache_control"] = EPHEMERAL
    static += sum(estimate_tokens(block["text"]) for block in system)
    if system and static >= minimum:
        system[-1]["cache_control"] = EPHEMERAL
    if shared:
        opening[0] = {**opening[0], "cache_control": EPHEMERAL}
    for turn in users[-2:]:  # never an assistant turn: thinking blocks take no cache_control
        turn["content"][-1] = {**turn["content"][-1], "cache_control": EPHEMERAL}


def to_wire(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Anthropic turns: tool results are user content, and consecutive messages of
    one role share a turn (the API wants roles to alternate), so the results of parallel tool calls go
    back together in one user turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _assistant_blocks(message) if role == "assistant" else _user_blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool results must open the turn that answers a tool_use
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
        if not turn["content"]:  # the API rejects empty content
            turn["content"] = [{"type": "text", "text": "(empty)"}]
    return turns


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    """The turn's own blocks when it has them (thinking with its signature, exactly as received, in order),
    else text and tool_use rebuilt from the message. Only empty text blocks, which the API refuses, are
    left out; a turn left ending in thinking (a reply cut off while thinking, never one with a tool call)
    cannot be sent as it is, and is rebuilt without it."""
    native = [block for block in message.blocks_of(PROVIDER) if block.get("type") != "text" or block.get("text")]
    if native and native[-1].get("type") not in THINKING:
        return native
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": _safe_id(call.id), "name": call.name, "input": call.arguments})
    return blocks


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _safe_id(message.tool_call_id or "")}
        if message.content:  # content is optional; an empty text block would be refused
            block["content"] = message.content
        if message.is_error:
            block["is_error"] = True
        return [block]
    return [{"type": "text", "text": message.content}] if message.content else []


def _safe_id(call_id: str) -> str:
    # After a fallback from another provider, ids may hold characters the API refuses.
    return _ID_UNSAFE.sub("_", call_id) or "call"


# --- the stream ---------------------------------------------------------------------------------------


def collect(events: Iterable[dict[str, Any]]) -> Streamed:
    """A Messages SSE stream (as event objects) read into a reply. The content blocks are rebuilt as the
    API would have returned them whole: text and thinking from their deltas, a signature from its
    `signature_delta`, a tool call's input from its `input_json_delta` pieces."""
    blocks: dict[int, dict[str, Any]] = {}
    pieces: dict[int, list[str]] = {}
    usage: dict[str, Any] | None = None
    stopped = False
    for event in events:
        kind = event.get("type")
        index = event.get("index", 0)
        if kind == "message_start":
            found = (event.get("message") or {}).get("usage")
            usage = dict(found) if isinstance(found, dict) else None
        elif kind == "content_block_start":
            blocks[index] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            _apply_delta(blocks.setdefault(index, {}), event.get("delta") or {}, pieces.setdefault(index, []))
        elif kind == "message_delta" and isinstance(event.get("usage"), dict):
            # Cumulative counts: output_tokens grows; newer servers repeat the input counts here.
            usage = {**(usage or {}), **{k: v for k, v in event["usage"].items() if v is not None}}
        elif kind == "message_stop":
            stopped = True
        elif kind == "error":  # the SDK raises on an `event: error`; a proxy may send it unnamed
            error = event.get("error") or {}
            raise StreamError(str(error.get("message", "error event")), error_type=str(error.get("type", "")))
    if not stopped:
        raise StreamError("the reply stream ended before message_stop")
    content = [blocks[i] for i in sorted(blocks)]
    text, calls = _read_content(content, {i: "".join(p) for i, p in pieces.items() if p}, sorted(blocks))
    own = tuple(Block(PROVIDER, block) for block in content) if any(
        block.get("type") not in REBUILT for block in content) else ()
    return Streamed(text, calls, _usage(usage), own, _thinking_tokens(usage))


def _apply_delta(block: dict[str, Any], delta: dict[str, Any], pieces: list[str]) -> None:
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + str(delta.get("text", ""))
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
    elif kind == "signature_delta":
        block["signature"] = block.get("signature", "") + str(delta.get("signature", ""))
    elif kind == "input_json_delta":
        pieces.append(str(delta.get("partial_json", "")))
    elif kind == "citations_delta" and "citation" in delta:
        block.setdefault("citations", []).append(delta["citation"])


def _read_content(
    content: list[dict[str, Any]], inputs: dict[int, str], order: list[int]
) -> tuple[str, tuple[ToolCall, ...]]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for index, block in zip(order, content, strict=True):
        if block.get("type") == "text" and block.get("text"):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            call_id, name = str(block.get("id", "")), str(block.get("name", ""))
            raw = inputs.get(index)
            if raw is not None:
                try:
                    block["input"] = json.loads(raw)
                except ValueError:
                    calls.append(ToolCall(call_id, name, {}, malformed=raw))
                    continue
            value = block.get("input")
            if isinstance(value, dict):
                calls.append(ToolCall(call_id, name, value))
            else:
                calls.append(ToolCall(call_id, name, {}, malformed=json.dumps(value)))
    return "\n".join(texts), tuple(calls)


def _usage(usage: dict[str, Any] | None) -> Usage | None:
    if usage is None or ("input_tokens" not in usage and "output_tokens" not in usage):
        return None
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),  # already excludes cached tokens
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=_count(usage.get("cache_read_input_tokens")),
        cache_write_tokens=_count(usage.get("cache_creation_input_tokens")),
    )


def _thinking_tokens(usage: dict[str, Any] | None) -> int | None:
    details = (usage or {}).get("output_tokens_details")
    return _count(details.get("thinking_tokens")) if isinstance(details, dict) else None


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0

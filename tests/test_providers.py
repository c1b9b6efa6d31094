"""The anthropic: and openai: providers, driven through the real SDKs against a loopback server (every reply
streamed; tests/test_streaming.py has what streaming, thinking, the Responses API and caching add)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakeapi import FakeAPI, Scripted, anthropic_error, anthropic_message, openai_completion, openai_error, serve
from gitteam.config import Config, ModelDef
from gitteam.errors import Exit, GitteamError, UsageError
from gitteam.models.anthropic import AnthropicModel
from gitteam.models.base import CallContext, Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.fallback import FallbackModel
from gitteam.models.openai import OpenAIModel, parse_arguments
from gitteam.models.prices import Prices, builtin_prices, prices_for
from gitteam.models.registry import Registry
from gitteam.models.retry import ContextTooLong, Failure, Kind, ModelUnavailable, RetryPolicy, classify

SYSTEM = "You are a careful coder."
CTX = CallContext(run="r1", role="coder", agent="fix-bug")
TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("search", "Search the repository.", {"type": "object", "properties": {"pattern": {"type": "string"}}}),
    ToolSpec("done", "Finish.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
]
EPHEMERAL = {"type": "ephemeral"}


pytestmark = pytest.mark.usefixtures("loopback_env")


def policy(sleeps: list[float], **fields: Any) -> RetryPolicy:
    """No real waiting: sleeps are recorded, jitter is zero unless a test sets it."""
    return RetryPolicy(sleep=sleeps.append, jitter=lambda: 0.0, **fields)


def anthropic_model(
    api: FakeAPI, sleeps: list[float], model: str = "claude-haiku-4-5", timeout: float = 5.0, **fields: Any
) -> AnthropicModel:
    definition = ModelDef(name="test", provider="anthropic", model=model, base_url=api.url, **fields)
    return AnthropicModel(f"anthropic:{model}", definition, retry=policy(sleeps), timeout=timeout)


def openai_model(
    api: FakeAPI, sleeps: list[float], model: str = "gpt-4.1", timeout: float = 5.0, **fields: Any
) -> OpenAIModel:
    definition = ModelDef(name="test", provider="openai", model=model, base_url=f"{api.url}/v1", **fields)
    return OpenAIModel(f"openai:{model}", definition, retry=policy(sleeps), timeout=timeout)


def ask(model: Model, messages: list[Message] | None = None, require_tool: bool = False) -> Any:
    return model.complete(
        SYSTEM, messages or [Message("user", "Fix the bug.")], TOOLS, require_tool=require_tool, context=CTX
    )


# --- tool calls round-trip over several turns ---------------------------------------------------------


def test_anthropic_tool_round_trip(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(
        anthropic_message(
            "Looking.", [("toolu_1", "read_file", {"path": "a.py"}), ("toolu_2", "search", {"pattern": "bug"})]
        ),
        anthropic_message(calls=[("toolu_3", "done", {"summary": "fixed"})]),
        anthropic_message("All done."),
    )
    model = anthropic_model(api, sleeps)
    conversation = [Message("user", "Fix the bug.")]

    first = ask(model, conversation)
    assert first.text == "Looking."
    assert first.tool_calls == (
        ToolCall("toolu_1", "read_file", {"path": "a.py"}),
        ToolCall("toolu_2", "search", {"pattern": "bug"}),
    )
    assert first.model == "anthropic:claude-haiku-4-5"
    conversation += [
        Message("assistant", first.text, first.tool_calls),
        Message("tool", "print('a')\n", tool_call_id="toolu_1"),
        Message("tool", "no match", tool_call_id="toolu_2", is_error=True),
    ]
    second = ask(model, conversation)
    assert second.tool_calls == (ToolCall("toolu_3", "done", {"summary": "fixed"}),)
    conversation += [Message("assistant", "", second.tool_calls), Message("tool", "ok", tool_call_id="toolu_3")]
    third = ask(model, conversation, require_tool=True)
    assert (third.text, third.tool_calls) == ("All done.", ())

    assert [r.path for r in api.requests] == ["/v1/messages"] * 3
    assert api.requests[0].headers["anthropic-version"]
    bodies = api.bodies()
    body = bodies[0]
    assert body["model"] == "claude-haiku-4-5"
    assert body["max_tokens"] == 8192
    assert body["stream"] is True
    # A prefix this small is below the model's cacheable minimum: no breakpoint is spent on it.
    assert body["system"] == [{"type": "text", "text": SYSTEM}]
    assert body["tools"][0] == {
        "name": "read_file",
        "description": "Read a file.",
        "input_schema": TOOLS[0].parameters,
    }
    assert all("cache_control" not in tool for tool in body["tools"])
    assert body["tool_choice"] == {"type": "auto"}
    assert bodies[2]["tool_choice"] == {"type": "any"}  # asked for: forced
    assert bodies[1]["messages"] == [
        # the turn that ended the previous call keeps its breakpoint: that call wrote the cache there
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug.", "cache_control": EPHEMERAL}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.py"}},
                {"type": "tool_use", "id": "toolu_2", "name": "search", "input": {"pattern": "bug"}},
            ],
        },
        {  # both results in one user turn; the last block marks the conversation for caching
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "print('a')\n"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "no match",
                    "is_error": True,
                    "cache_control": EPHEMERAL,
                },
            ],
        },
    ]
    assert bodies[2]["messages"][3] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_3", "name": "done", "input": {"summary": "fixed"}}],
    }


def test_openai_tool_round_trip(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(
        openai_completion(
            "Looking.", [("call_1", "read_file", {"path": "a.py"}), ("call_2", "search", {"pattern": "bug"})]
        ),
        openai_completion(None, [("call_3", "done", {"summary": "fixed"})]),
        openai_completion("All done."),
    )
    model = openai_model(api, sleeps)
    conversation = [Message("user", "Fix the bug.")]

    first = ask(model, conversation)
    assert first.text == "Looking."
    assert first.tool_calls == (
        ToolCall("call_1", "read_file", {"path": "a.py"}),
        ToolCall("call_2", "search", {"pattern": "bug"}),
    )
    conversation += [
        Message("assistant", first.text, first.tool_calls),
        Message("tool", "print('a')\n", tool_call_id="call_1"),
        Message("tool", "no match", tool_call_id="call_2", is_error=True),
    ]
    second = ask(model, conversation)
    assert (second.text, second.tool_calls) == ("", (ToolCall("call_3", "done", {"summary": "fixed"}),))
    conversation += [Message("assistant", "", second.tool_calls), Message("tool", "ok", tool_call_id="call_3")]
    third = ask(model, conversation, require_tool=True)
    assert (third.text, third.tool_calls, third.model) == ("All done.", (), "openai:gpt-4.1")

    assert [r.path for r in api.requests] == ["/v1/chat/completions"] * 3
    assert api.requests[0].headers["authorization"] == "Bearer sk-test"
    bodies = api.bodies()
    assert bodies[0]["model"] == "gpt-4.1"
    assert (bodies[0]["stream"], bodies[0]["stream_options"]) == (True, {"include_usage": True})
    assert bodies[0]["tools"][0] == {
        "type": "function",
        "function": {"name": "read_file", "description": "Read a file.", "parameters": TOOLS[0].parameters},
    }
    assert bodies[0]["tool_choice"] == "auto"
    assert bodies[2]["tool_choice"] == "required"  # asked for: forced
    assert bodies[1]["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Fix the bug."},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "search", "arguments": '{"pattern": "bug"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "print('a')\n"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: no match"},
    ]
    assert bodies[2]["messages"][-1] == {"role": "tool", "tool_call_id": "call_3", "content": "ok"}


# --- usage and cost -----------------------------------------------------------------------------------


def test_anthropic_usage_counts_cache_reads_and_writes(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(anthropic_message("hi", input_tokens=100, output_tokens=20, cache_read=1000, cache_write=500))
    reply = ask(anthropic_model(api, sleeps))
    # Anthropic's input_tokens already excludes both cache reads and cache writes.
    assert reply.usage == Usage(input_tokens=100, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=500)
    assert reply.cost == pytest.approx((100 * 1 + 20 * 5 + 1000 * 0.1 + 500 * 1.25) / 1e6)


def test_openai_usage_separates_cached_tokens(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(openai_completion("hi", prompt_tokens=1200, completion_tokens=50, cached_tokens=1000))
    reply = ask(openai_model(api, sleeps))
    # prompt_tokens includes the cached ones: 1,200 prompt = 200 uncached + 1,000 cached.
    assert reply.usage == Usage(input_tokens=200, output_tokens=50, cache_read_tokens=1000)
    assert reply.cost == pytest.approx((200 * 2 + 50 * 8 + 1000 * 0.5) / 1e6)


def test_unknown_price_reports_cost_none_and_warns_once(
    api: FakeAPI, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    api.push(openai_completion("one"), openai_completion("two"))
    with caplog.at_level(logging.WARNING, logger="gitteam"):
        model = openai_model(api, sleeps, model="llama3.1:8b-unpriced")
        again = openai_model(api, sleeps, model="llama3.1:8b-unpriced")
        replies = [ask(model), ask(again)]
    assert [r.cost for r in replies] == [None, None]
    assert replies[0].usage == Usage(input_tokens=10, output_tokens=5)
    warnings = [r.getMessage() for r in caplog.records if "no price known" in r.getMessage()]
    assert len(warnings) == 1
    assert "openai:llama3.1:8b-unpriced" in warnings[0] and "[models.test]" in warnings[0]


# --- errors: retried ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flavor:
    make: Callable[..., Model]
    ok: Callable[[str], Scripted]
    error: Callable[[int, str, dict[str, str]], Scripted]


FLAVORS = {
    "anthropic": Flavor(
        anthropic_model,
        lambda text: anthropic_message(text),
        lambda status, kind, headers: anthropic_error(status, kind, f"{kind} happened", headers),
    ),
    "openai": Flavor(
        openai_model,
        lambda text: openai_completion(text),
        lambda status, kind, headers: openai_error(status, f"{kind} happened", kind, headers=headers),
    ),
}


@pytest.fixture(params=sorted(FLAVORS))
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return FLAVORS[request.param]


@pytest.mark.parametrize(
    ("status", "kind", "headers", "expected_sleep"),
    [
        (429, "rate_limit_error", {"retry-after": "2"}, 2.0),
        (429, "rate_limit_error", {"retry-after-ms": "1500"}, 1.5),
        (429, "rate_limit_error", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # an HTTP date, past
        (500, "api_error", {}, 0.0),
        (503, "api_error", {}, 0.0),
        (529, "overloaded_error", {}, 0.0),
        (408, "timeout_error", {}, 0.0),
    ],
)
def test_retryable_status_recovers(
    api: FakeAPI,
    sleeps: list[float],
    flavor: Flavor,
    status: int,
    kind: str,
    headers: dict[str, str],
    expected_sleep: float,
) -> None:
    api.push(flavor.error(status, kind, headers), flavor.ok("recovered"))
    reply = ask(flavor.make(api, sleeps))
    assert reply.text == "recovered"
    assert len(api.requests) == 2
    assert sleeps == [expected_sleep]


def test_timeout_recovers(api: FakeAPI, sleeps: list[float], flavor: Flavor) -> None:
    api.push(Scripted(stall=10.0), flavor.ok("recovered"))
    reply = ask(flavor.make(api, sleeps, timeout=0.3))
    assert reply.text == "recovered"
    assert len(api.requests) == 2
    assert len(sleeps) == 1


def test_dropped_connection_recovers(api: FakeAPI, sleeps: list[float], flavor: Flavor) -> None:
    api.push(Scripted(drop=True), Scripted(drop=True), flavor.ok("recovered"))
    reply = ask(flavor.make(api, sleeps))
    assert reply.text == "recovered"
    assert len(api.requests) == 3


def test_backoff_grows_exponentially_with_a_cap(api: FakeAPI, flavor: Flavor) -> None:
    sleeps: list[float] = []
    api.default = flavor.error(500, "api_error", {})
    model = flavor.make(api, sleeps)
    model.retry = RetryPolicy(attempts=6, base=1.0, cap=5.0, sleep=sleeps.append, jitter=lambda: 1.0)  # type: ignore[attr-defined]
    with pytest.raises(ModelUnavailable) as caught:
        ask(model)
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(api.requests) == 6  # the SDK adds no retries of its own
    assert caught.value.exit_code == Exit.FAILED
    assert "gave up after 6 attempts" in str(caught.value)


def test_retry_after_beyond_the_limit_gives_up_at_once(api: FakeAPI, sleeps: list[float], flavor: Flavor) -> None:
    api.push(flavor.error(429, "rate_limit_error", {"retry-after": "86400"}))
    with pytest.raises(ModelUnavailable):
        ask(flavor.make(api, sleeps))
    assert len(api.requests) == 1 and sleeps == []


# --- errors: not retried ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_names_the_variable_without_retrying(
    api: FakeAPI, sleeps: list[float], flavor: Flavor, status: int
) -> None:
    api.push(flavor.error(status, "authentication_error", {}))
    model = flavor.make(api, sleeps)
    with pytest.raises(UsageError) as caught:
        ask(model)
    message = str(caught.value)
    variable = "ANTHROPIC_API_KEY" if isinstance(model, AnthropicModel) else "OPENAI_API_KEY"
    assert variable in message and "\n" not in message
    assert caught.value.exit_code == Exit.USAGE
    assert len(api.requests) == 1 and sleeps == []


def test_auth_error_names_the_configured_variable(
    api: FakeAPI, sleeps: list[float], flavor: Flavor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-team")
    api.push(flavor.error(401, "authentication_error", {}))
    with pytest.raises(UsageError, match="set TEAM_KEY to a valid API key"):
        ask(flavor.make(api, sleeps, api_key_env="TEAM_KEY"))
    assert "sk-team" in api.requests[0].headers.get("authorization", "") + api.requests[0].headers.get("x-api-key", "")


def test_unknown_model_is_a_usage_error(api: FakeAPI, sleeps: list[float], flavor: Flavor) -> None:
    api.push(flavor.error(404, "not_found_error", {}))
    with pytest.raises(UsageError) as caught:
        ask(flavor.make(api, sleeps, model="no-such-model"))
    assert "'no-such-model' not found" in str(caught.value)
    assert caught.value.exit_code == Exit.USAGE
    assert len(api.requests) == 1


def test_bad_request_is_not_retried(api: FakeAPI, sleeps: list[float], flavor: Flavor) -> None:
    api.push(flavor.error(400, "invalid_request_error", {}))
    with pytest.raises(GitteamError, match="request was rejected") as caught:
        ask(flavor.make(api, sleeps))
    assert caught.value.exit_code == Exit.FAILED
    assert len(api.requests) == 1


def test_context_too_long(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(anthropic_error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(ContextTooLong):
        ask(anthropic_model(api, sleeps))
    api.push(openai_error(400, "This model's maximum context length is 8192 tokens.", code="context_length_exceeded"))
    with pytest.raises(ContextTooLong):
        ask(openai_model(api, sleeps))
    assert len(api.requests) == 2 and sleeps == []


def test_openai_tool_calling_rejected_explains_the_fix(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(
        openai_error(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')
    )
    with pytest.raises(UsageError) as caught:
        ask(openai_model(api, sleeps, model="qwen2.5-coder"))
    message = str(caught.value)
    assert "--enable-auto-tool-choice --tool-call-parser" in message and "\n" not in message
    assert caught.value.exit_code == Exit.USAGE


# --- keys ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "variable"), [("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"), ("openai:gpt-4.1", "OPENAI_API_KEY")]
)
def test_missing_key_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: str, variable: str
) -> None:
    monkeypatch.delenv(variable)
    with pytest.raises(UsageError) as caught:
        Registry(Config(), tmp_path).resolve(spec)
    assert variable in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == Exit.USAGE


def test_local_openai_server_needs_no_key(api: FakeAPI, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    api.push(openai_completion("local"))
    reply = ask(openai_model(api, sleeps, model="llama3.1:8b", input_price=0.0, output_price=0.0))
    assert (reply.text, reply.cost) == ("local", 0.0)
    assert api.requests[0].headers["authorization"] == "Bearer not-needed"


@pytest.mark.filterwarnings("ignore:The model 'claude-opus-4-0' is deprecated:DeprecationWarning")
def test_large_max_output_tokens_are_streamed(api: FakeAPI, sleeps: list[float]) -> None:
    # The SDK refuses non-streamed calls it expects to run past ten minutes; a streamed one it sends.
    api.push(anthropic_message("long"))
    definition = ModelDef(
        name="big", provider="anthropic", model="claude-opus-4-0", base_url=api.url, max_output_tokens=64000
    )
    assert ask(AnthropicModel("big", definition, retry=policy(sleeps))).text == "long"
    assert api.bodies()[0]["max_tokens"] == 64000


# --- sloppy OpenAI-compatible servers -----------------------------------------------------------------


def test_malformed_arguments_become_a_malformed_tool_call(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(
        openai_completion(
            None,
            [
                ("call_1", "read_file", '{"path": "a.py"'),  # cut short
                ("call_2", "read_file", '{"path": "b.py"}<|eom_id|>'),  # junk after the object
                ("call_3", "done", ""),  # no arguments at all
                ("call_4", "search", '"{\\"pattern\\": \\"x\\"}"'),  # encoded twice
            ],
        ),
        openai_completion("noted"),
    )
    model = openai_model(api, sleeps)
    reply = ask(model)
    assert reply.tool_calls == (
        ToolCall("call_1", "read_file", {}, malformed='{"path": "a.py"'),
        ToolCall("call_2", "read_file", {"path": "b.py"}),
        ToolCall("call_3", "done", {}),
        ToolCall("call_4", "search", {"pattern": "x"}),
    )
    conversation = [
        Message("user", "Fix the bug."),
        Message("assistant", "", reply.tool_calls[:1]),
        Message("tool", "arguments are not valid JSON", tool_call_id="call_1", is_error=True),
    ]
    assert ask(model, conversation).text == "noted"
    # The broken arguments go back as "{}", so strict servers accept the history.
    assert api.bodies()[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_reply_without_usage_ids_or_tool_calls(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(
        Scripted(body={"choices": [{"message": {"role": "assistant", "content": "I think we are done."}}]}),
        Scripted(
            body={
                "choices": [
                    {
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [{"function": {"name": "done", "arguments": '{"summary": "s"}'}}],
                        }
                    }
                ]
            }
        ),
    )
    model = openai_model(api, sleeps)
    plain = ask(model)
    # No usage reported: unknown, never a free call.
    assert (plain.text, plain.tool_calls, plain.usage_known, plain.cost) == ("I think we are done.", (), False, None)
    call = ask(model).tool_calls[0]
    assert (call.name, call.arguments) == ("done", {"summary": "s"})
    assert call.id.startswith("call_")


def test_parse_arguments() -> None:
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("  ") == {}
    assert parse_arguments("[1, 2]") is None
    assert parse_arguments("{'a': 1}") is None


# --- fallbacks ----------------------------------------------------------------------------------------


def test_fallback_through_the_registry(tmp_path: Path) -> None:
    with serve() as primary, serve() as backup:
        # An overloaded Anthropic asks for no wait; gitteam leaves it after two such answers.
        primary.default = anthropic_error(529, "overloaded_error", "Overloaded", {"retry-after": "0"})
        backup.push(openai_completion("from backup"), openai_completion("still backup"), openai_completion("other"))
        config = Config(
            models={
                "main": ModelDef("main", "anthropic", "claude-sonnet-4-6", base_url=primary.url, fallbacks=("spare",)),
                "spare": ModelDef("spare", "openai", "gpt-4.1-mini", base_url=f"{backup.url}/v1"),
            }
        )
        model = Registry(config, tmp_path).resolve("main")
        assert isinstance(model, FallbackModel)

        reply = ask(model)
        assert (reply.text, reply.model) == ("from backup", "spare")
        assert reply.cost == pytest.approx((10 * 0.4 + 5 * 1.6) / 1e6)
        assert len(primary.requests) == 2
        # The agent stays on the fallback for the rest of its conversation ...
        assert ask(model).model == "spare"
        assert len(primary.requests) == 2
        # ... while another agent tries the primary first.
        other = model.complete(
            SYSTEM, [Message("user", "x")], TOOLS, require_tool=True, context=CallContext("r1", "reviewer", "fix-bug")
        )
        assert other.model == "spare"
        assert len(primary.requests) == 4
        assert backup.bodies()[0]["model"] == "gpt-4.1-mini"


def test_fallback_after_exhausted_retries(api: FakeAPI, sleeps: list[float]) -> None:
    with serve() as backup:
        api.default = openai_error(500, "boom", "server_error")
        backup.push(anthropic_message("saved"))
        primary = openai_model(api, sleeps)
        primary.retry = policy(sleeps, attempts=3)
        secondary = anthropic_model(backup, sleeps)
        model = FallbackModel(primary, ["second"], {"second": secondary}.__getitem__)
        conversation = [
            Message("user", "Fix the bug."),
            Message("assistant", "", (ToolCall("call.1:x", "read_file", {"path": "a.py"}),)),
            Message("tool", "text", tool_call_id="call.1:x"),
        ]
        reply = ask(model, conversation)
        assert (reply.text, reply.model) == ("saved", "anthropic:claude-haiku-4-5")
        assert len(api.requests) == 3
        # The conversation continues mid-way on the other provider; its ids are made acceptable there.
        assert backup.bodies()[0]["messages"][1]["content"][0]["id"] == "call_1_x"
        assert backup.bodies()[0]["messages"][2]["content"][0]["tool_use_id"] == "call_1_x"


def test_fallback_cycle_ends(tmp_path: Path) -> None:
    with serve() as one, serve() as two:
        for server in (one, two):
            server.default = anthropic_error(529, "overloaded_error", "Overloaded", {"retry-after": "0"})
        config = Config(
            models={
                "a": ModelDef("a", "anthropic", "claude-sonnet-4-6", base_url=one.url, fallbacks=("b",)),
                "b": ModelDef("b", "anthropic", "claude-haiku-4-5", base_url=two.url, fallbacks=("a",)),
            }
        )
        with pytest.raises(ModelUnavailable, match="every model of the fallback chain failed"):
            ask(Registry(config, tmp_path).resolve("a"))
        assert (len(one.requests), len(two.requests)) == (2, 2)


def test_errors_other_than_unavailable_do_not_fall_back(api: FakeAPI, sleeps: list[float]) -> None:
    with serve() as backup:
        # The agent loop compacts on ContextTooLong; a fallback would only hide it.
        api.push(anthropic_error(400, "invalid_request_error", "prompt is too long: 1 tokens > 0 maximum"))
        spare = openai_model(backup, sleeps)
        model = FallbackModel(anthropic_model(api, sleeps), ["spare"], {"spare": spare}.__getitem__)
        with pytest.raises(ContextTooLong):
            ask(model)
        assert backup.requests == []


# --- the rules and the price table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Failure(400, "prompt is too long: 210000 tokens > 200000 maximum"), Kind.CONTEXT),
        (Failure(400, "x", code="context_length_exceeded"), Kind.CONTEXT),
        (Failure(400, "the request exceeds the available context size"), Kind.CONTEXT),
        (Failure(429, "quota", code="insufficient_quota"), Kind.QUOTA),
        (Failure(429, "over 40,000 input tokens per minute, context window"), Kind.TRANSIENT),
        (Failure(529, "Overloaded", "overloaded_error"), Kind.OVERLOADED),
        (Failure(200, "Overloaded", "overloaded_error"), Kind.OVERLOADED),  # mid-stream, after HTTP 200
        (Failure(500, "context deadline exceeded"), Kind.TRANSIENT),  # a Go server's timeout, not the context
        (Failure(None, "connection failed"), Kind.TRANSIENT),
        (Failure(409, "conflict"), Kind.TRANSIENT),
        (Failure(401, "bad key"), Kind.AUTH),
        (Failure(404, "model not found"), Kind.MODEL),
        (Failure(400, "tool_choice required is not supported"), Kind.TOOLS),
        (Failure(400, "messages: roles must alternate"), Kind.BAD_REQUEST),
        (Failure(413, "request too large"), Kind.BAD_REQUEST),
    ],
)
def test_rules(failure: Failure, kind: Kind) -> None:
    assert classify(failure) is kind


def test_retry_after_forms() -> None:
    assert Failure(429, "", headers={"retry-after-ms": "250"}).retry_after == 0.25
    assert Failure(429, "", headers={"retry-after": "3"}).retry_after == 3.0
    assert Failure(429, "", headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_after == 0.0
    assert Failure(429, "", headers={"retry-after": "soon"}).retry_after is None
    assert Failure(429, "").retry_after is None


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [
        ("claude-sonnet-4-5-20250929", 3.0, 15.0),
        ("claude-sonnet-4-20250514", 3.0, 15.0),
        ("claude-opus-4-5", 5.0, 25.0),
        ("claude-opus-4-1-20250805", 15.0, 75.0),
        ("claude-opus-4-20250514", 15.0, 75.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("gpt-4.1-mini", 0.4, 1.6),
        ("gpt-4o-2024-08-06", 2.5, 10.0),
        ("gpt-4o-mini", 0.15, 0.6),
        ("o3", 2.0, 8.0),
        ("o4-mini", 1.1, 4.4),
        ("gpt-5", 1.25, 10.0),
        ("gpt-5-mini", 0.25, 2.0),
        ("openai/gpt-4.1", 2.0, 8.0),
    ],
)
def test_builtin_prices(model: str, input_price: float, output_price: float) -> None:
    prices = builtin_prices(model)
    assert prices is not None and (prices.input, prices.output) == (input_price, output_price)


def test_config_prices_override_the_table() -> None:
    known = prices_for(ModelDef("m", "openai", "gpt-4.1", input_price=1.0))
    assert known == Prices(1.0, 8.0, cache_read=0.5, cache_write=2.0)
    assert prices_for(ModelDef("m", "openai", "my-local-model", input_price=0.0, output_price=0.0)) == Prices(0.0, 0.0)
    assert prices_for(ModelDef("m", "openai", "my-local-model-2", input_price=1.0)) is None


def test_no_sdk_is_imported_by_the_registry() -> None:
    code = (
        "import sys, gitteam.models.registry, gitteam.models.anthropic, gitteam.models.openai; "
        "print(sorted(m for m in ('anthropic', 'openai') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""Streamed replies on every provider (Anthropic Messages, Chat Completions, the Responses API) through the
real SDKs against the loopback server: replies reassembled from their events, errors mid-stream retried,
usage a server leaves out reported as unknown, and the stateless Responses API round trip."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from crews import configure
from fakeapi import (
    Call,
    Event,
    FakeAPI,
    Scripted,
    anthropic_error_event,
    anthropic_message,
    openai_completion,
    openai_error_chunk,
    reasoning_item,
    responses_error_event,
    responses_failed_event,
    responses_response,
)
from gitteam.config import ModelDef
from gitteam.models.anthropic import AnthropicModel
from gitteam.models.base import CallContext, Message, Model, ToolCall, ToolSpec, Usage
from gitteam.models.http import HttpModel
from gitteam.models.openai import OpenAIModel
from gitteam.models.responses import ResponsesModel
from gitteam.models.retry import ModelUnavailable, RetryPolicy
from loopback import call, plan, run, subtask, team, turn
from scripts import cli, events

SYSTEM = "You are a careful coder."
CTX = CallContext(run="r1", role="coder", agent="fix-bug")
TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("search", "Search.", {"type": "object", "properties": {"pattern": {"type": "string"}}}),
    ToolSpec("done", "Finish.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
]
FLAVORS = ("anthropic", "openai", "responses")


pytestmark = pytest.mark.usefixtures("loopback_env")


def make(flavor: str, api: FakeAPI, sleeps: list[float], **fields: Any) -> HttpModel:
    retry = RetryPolicy(sleep=sleeps.append, jitter=lambda: 0.0, overloaded_attempts=fields.pop("overloaded", None))
    if flavor == "anthropic":
        definition = ModelDef("t", "anthropic", "claude-haiku-4-5", base_url=api.url, **fields)
        return AnthropicModel("anthropic:claude-haiku-4-5", definition, retry=retry, timeout=5.0)
    if flavor == "openai":
        definition = ModelDef("t", "openai", "gpt-4.1", base_url=f"{api.url}/v1", **fields)
        return OpenAIModel("openai:gpt-4.1", definition, retry=retry, timeout=5.0)
    definition = ModelDef("t", "openai", "gpt-5.4", base_url=f"{api.url}/v1", api="responses", **fields)
    return ResponsesModel("gpt", definition, retry=retry, timeout=5.0)


def reply(flavor: str, text: str = "", calls: tuple[Call, ...] = (), **usage: int) -> Scripted:
    if flavor == "anthropic":
        return anthropic_message(text, calls, **usage)
    if flavor == "openai":
        return openai_completion(text or None, calls, **usage)
    return responses_response(text, calls, **usage)


def ask(model: Model, messages: list[Message] | None = None) -> Any:
    return model.complete(SYSTEM, messages or [Message("user", "Fix the bug.")], TOOLS, require_tool=False,
                          context=CTX)


# --- a reply read from its events ---------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_each_provider_streams_and_reassembles_text_and_tool_calls(api: FakeAPI, sleeps: list[float],
                                                                   flavor: str) -> None:
    calls = (("c_1", "read_file", {"path": "src/a.py"}), ("c_2", "search", {"pattern": "two words — ünïcode"}))
    api.push(reply(flavor, "Reading both, then searching.", calls))
    answer = ask(make(flavor, api, sleeps))
    # Every piece came in halves (text deltas, argument deltas) and is whole again.
    assert answer.text == "Reading both, then searching."
    assert answer.tool_calls == (ToolCall("c_1", "read_file", {"path": "src/a.py"}),
                                 ToolCall("c_2", "search", {"pattern": "two words — ünïcode"}))
    assert answer.usage_known and answer.cost is not None and answer.cost > 0
    assert api.bodies()[0]["stream"] is True
    assert api.requests[0].path == {"anthropic": "/v1/messages", "openai": "/v1/chat/completions",
                                    "responses": "/v1/responses"}[flavor]


# --- errors inside a stream ---------------------------------------------------------------------------


@pytest.mark.parametrize(("flavor", "event"), [
    ("anthropic", anthropic_error_event("overloaded_error", "Overloaded")),
    ("anthropic", anthropic_error_event("api_error", "Internal server error")),
    ("openai", openai_error_chunk("The server had an error while processing your request.")),
    ("responses", responses_error_event("server_error", "The server had an error")),
    ("responses", responses_failed_event("server_error", "The model failed to finish")),
], ids=["anthropic-overloaded", "anthropic-api-error", "chat-error-chunk", "responses-error", "responses-failed"])
def test_an_error_event_mid_stream_is_retried(api: FakeAPI, sleeps: list[float], flavor: str, event: Event,
                                              caplog: pytest.LogCaptureFixture) -> None:
    broken = reply(flavor, "never finished", (("c_1", "read_file", {"path": "a.py"}),))
    api.push(Scripted(body=broken.body, error_event=event, after=3), reply(flavor, "recovered"))
    with caplog.at_level(logging.WARNING, logger="gitteam"):
        answer = ask(make(flavor, api, sleeps))
    assert (answer.text, answer.tool_calls) == ("recovered", ())  # nothing of the broken stream is kept
    assert len(api.requests) == 2 and len(sleeps) == 1
    assert any("mid-stream" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("how", ["cut", "short"])
def test_a_stream_dropped_or_ended_early_is_retried(api: FakeAPI, sleeps: list[float], flavor: str,
                                                    how: str) -> None:
    # cut: the connection closes short of the announced length; short: the stream ends cleanly but before
    # its last event (message_stop, a finish_reason, response.completed).
    broken = reply(flavor, "half a reply", (("c_1", "read_file", {"path": "a.py"}),))
    api.push(Scripted(body=broken.body, after=4, **{how: True}), reply(flavor, "whole"))
    assert ask(make(flavor, api, sleeps)).text == "whole"
    assert len(api.requests) == 2 and len(sleeps) == 1


def test_an_overloaded_stream_every_time_makes_the_model_unavailable(api: FakeAPI, sleeps: list[float]) -> None:
    # With a fallback to go to, two overloaded answers are enough, mid-stream ones included.
    api.default = Scripted(body=anthropic_message("x").body, error_event=anthropic_error_event(), after=1)
    with pytest.raises(ModelUnavailable) as caught:
        ask(make("anthropic", api, sleeps, overloaded=2))
    assert caught.value.overloaded and len(api.requests) == 2
    assert "mid-stream overloaded_error: Overloaded" in str(caught.value)


# --- usage a server leaves out ------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", FLAVORS)
def test_usage_left_out_of_the_stream_is_unknown_not_zero(api: FakeAPI, sleeps: list[float], flavor: str) -> None:
    whole = reply(flavor, "no usage here", input_tokens=10) if flavor != "openai" else reply(flavor, "no usage here")
    api.push(Scripted(body=whole.body, usage=False), reply(flavor, "with usage"))
    model = make(flavor, api, sleeps)
    unknown, known = ask(model), ask(model)
    assert (unknown.text, unknown.usage_known, unknown.cost, unknown.usage) == ("no usage here", False, None, Usage())
    assert known.usage_known and known.cost is not None
    if flavor == "openai":
        assert api.bodies()[0]["stream_options"] == {"include_usage": True}


def test_unknown_usage_of_a_free_model_costs_nothing(api: FakeAPI, sleeps: list[float]) -> None:
    api.push(Scripted(body=openai_completion("local").body, usage=False))
    answer = ask(make("openai", api, sleeps, input_price=0.0, output_price=0.0, cache_read_price=0.0,
                      cache_write_price=0.0))
    assert (answer.usage_known, answer.cost) == (False, 0.0)  # tokens unknown, but every one of them is free


def test_a_run_on_a_server_without_usage_shows_tokens_and_cost_unknown(repo: Path) -> None:
    with team("openai") as crew:
        crew.usage = False
        configure(crew, "hosted-model")
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="X = 1\n"), call("done", summary="ok")))

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        usage = events(repo, result.run, "usage")
        assert usage and all(e["usage_unknown"] is True and e["cost"] is None for e in usage)
        rows = json.loads(cli(repo, "cost", result.run, "--json").stdout)
        assert rows and all(row["usage_known"] is False and row["cost"] is None for row in rows)
        shown = cli(repo, "cost", result.run).stdout
        assert "unknown" in shown and "$0.0000" not in shown


# --- the Responses API: stateless, reasoning sent back encrypted --------------------------------------


def test_responses_round_trip_sends_encrypted_reasoning_back_with_store_false(api: FakeAPI,
                                                                             sleeps: list[float]) -> None:
    first_reasoning = reasoning_item("rs_1", "gAAAAABo-first+/encrypted==", summary="Look at a.py first.")
    answers = [
        responses_response("Reading it.", (("call_1", "read_file", {"path": "a.py"}),), reasoning=[first_reasoning],
                           input_tokens=1200, cached_tokens=1000, output_tokens=300, reasoning_tokens=250),
        responses_response("", (("call_2", "done", {"summary": "fixed"}),),
                           reasoning=[reasoning_item("rs_2", "gAAAAABo-second+/encrypted==")]),
        responses_response("All done."),
    ]
    api.push(*answers)
    model = make("responses", api, sleeps, reasoning_effort="high")
    conversation = [Message("user", "Fix the bug.")]

    first = ask(model, conversation)
    assert (first.text, first.tool_calls) == ("Reading it.", (ToolCall("call_1", "read_file", {"path": "a.py"}),))
    # input_tokens includes the cached ones; output_tokens the reasoning ones (billed as output)
    assert first.usage == Usage(input_tokens=200, output_tokens=300, cache_read_tokens=1000)
    assert first.reasoning_tokens == 250
    conversation += [Message("assistant", first.text, first.tool_calls, blocks=first.blocks),
                     Message("tool", "print('a')\n", tool_call_id="call_1")]
    second = ask(model, conversation)
    conversation += [Message("assistant", second.text, second.tool_calls, blocks=second.blocks),
                     Message("tool", "no such file", tool_call_id="call_2", is_error=True)]
    assert ask(model, conversation).text == "All done."

    bodies = api.bodies()
    assert [r.path for r in api.requests] == ["/v1/responses"] * 3
    for body in bodies:
        assert (body["store"], body["include"], body["stream"]) == (False, ["reasoning.encrypted_content"], True)
        assert "previous_response_id" not in body and "conversation" not in body
        assert body["instructions"] == SYSTEM and body["reasoning"] == {"effort": "high"}
        assert body["tool_choice"] == "auto"
        assert body["tools"][0] == {"type": "function", "name": "read_file", "description": "Read a file.",
                                    "parameters": TOOLS[0].parameters, "strict": False}
    assert bodies[0]["input"] == [{"role": "user", "content": "Fix the bug."}]
    # Every output item of the turn goes back exactly as the server sent it, reasoning first, in order ...
    served = [answer.body["output"] for answer in answers]
    assert bodies[1]["input"] == [{"role": "user", "content": "Fix the bug."}, *served[0],
                                  {"type": "function_call_output", "call_id": "call_1", "output": "print('a')\n"}]
    assert bodies[1]["input"][1] == first_reasoning
    # ... and stays so a turn later, beside the next turn's own items.
    assert bodies[2]["input"] == [*bodies[1]["input"], *served[1], {"type": "function_call_output",
                                                                    "call_id": "call_2",
                                                                    "output": "Error: no such file"}]


def test_responses_turn_without_reasoning_goes_back_as_plain_items(api: FakeAPI, sleeps: list[float]) -> None:
    # Nothing to keep encrypted: the turn is sent as an assistant message and its calls, without item ids.
    api.push(responses_response("Looking.", (("call_1", "read_file", {"path": "a.py"}),)), responses_response("ok"))
    model = make("responses", api, sleeps)
    first = ask(model)
    assert first.blocks == ()
    ask(model, [Message("user", "Fix the bug."), Message("assistant", first.text, first.tool_calls),
                Message("tool", "x", tool_call_id="call_1")])
    assert api.bodies()[1]["input"][1:] == [
        {"role": "assistant", "content": "Looking."},
        {"type": "function_call", "call_id": "call_1", "name": "read_file", "arguments": '{"path": "a.py"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "x"},
    ]
    assert "reasoning" not in api.bodies()[0]  # no reasoning_effort configured: the model's default


def test_a_whole_run_on_the_responses_api(repo: Path) -> None:
    with team("responses") as crew:
        configure(crew, "gpt-5.4")
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work",
                   turn(call("read_file", path="src/app.py"), thinking=[reasoning_item("rs_9", "gAAAA-coder==")]),
                   turn(call("write_file", path="src/app.py", content="Y = 2\n"), call("done", summary="ok")))

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        coder = crew.bodies("coder", "work")
        assert len(coder) == 2 and all(body["store"] is False for body in coder)
        assert reasoning_item("rs_9", "gAAAA-coder==") in coder[1]["input"]

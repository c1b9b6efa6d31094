"""Reasoning and how the turns go back: tool_choice auto with the reminder, Anthropic extended thinking (signed
blocks sent back unchanged, never compacted apart), reasoning effort, cache breakpoints, and their config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from crews import configure
from fakeapi import FakeAPI, anthropic_message, openai_completion, redacted_thinking_block, thinking_block
from gitteam.config import ModelDef, load_config
from gitteam.config.loader import user_config_path
from gitteam.errors import ConfigError
from gitteam.models.anthropic import AnthropicModel
from gitteam.models.base import Block, CallContext, Message, ToolCall, ToolSpec
from gitteam.models.openai import OpenAIModel
from gitteam.models.retry import RetryPolicy
from gitteam.models.window import compact
from gitteam.roles.agent import REMINDER
from gitteam.transcripts import read_transcript, transcript_path
from loopback import Team, call, plan, run, subtask, team, turn
from scripts import cli

SYSTEM = "You are a careful coder."
CTX = CallContext(run="r1", role="coder", agent="fix-bug")
TOOLS = [
    ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}}),
    ToolSpec("done", "Finish.", {"type": "object", "properties": {"summary": {"type": "string"}}}),
]
EPHEMERAL = {"type": "ephemeral"}
# Thinking text with what a careless copy would change: unicode, trailing spaces, blank lines, escapes.
THOUGHT_1 = "Read src/app.py first — it returns 1.  \n\n  Then change it; \"quotes\" and \\ stay.\t✓"
SIGNATURE_1 = "EqQBCkYIBxgCKkDkd3VlZ2h0Ct+/Rk9PQkFSPT0=" * 4
THOUGHT_2 = "Now write the file."
SIGNATURE_2 = "ErUBCkYIBxgCKkBvbmUgbW9yZQ==" * 3
REDACTED = "RVhBTVBMRSBSRURBQ1RFRCBUSElOS0lORw=="


pytestmark = pytest.mark.usefixtures("loopback_env")


def anthropic(api: FakeAPI, model: str = "claude-sonnet-4-6", **fields: Any) -> AnthropicModel:
    definition = ModelDef("t", "anthropic", model, base_url=api.url, **fields)
    return AnthropicModel(f"anthropic:{model}", definition, retry=RetryPolicy(sleep=lambda _: None), timeout=5.0)


# --- tool_choice auto and the reminder ----------------------------------------------------------------


@pytest.mark.parametrize("crew", ["anthropic", "openai", "responses"], indirect=True)
def test_tool_choice_is_auto_and_a_text_only_reply_gets_the_reminder(repo: Path, crew: Team) -> None:
    configure(crew)
    crew.planner(plan(subtask("work", ["src/app.py"])))
    crew.coder("work",
               turn(text="Let me think about the change before touching anything."),
               turn(call("write_file", path="src/app.py", content="Z = 3\n"), text="Writing it now."),
               turn(text="Written; one more look."),  # a text reply after a tool call: reminded again
               turn(call("done", summary="wrote Z")))

    result = run(repo, limits__reminders=1)  # one in a row is allowed, twice over the run

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    bodies = crew.bodies("coder", "work")
    assert len(bodies) == 4
    auto = {"type": "auto"} if crew.flavor == "anthropic" else "auto"
    assert all(body["tool_choice"] == auto for body in bodies)
    second = json.dumps(bodies[1])
    assert "Let me think about the change before touching anything." in second
    assert json.dumps(REMINDER.format(terminal="done"))[1:-1] in second
    # the text written beside a tool call stays in the conversation
    assert "Writing it now." in json.dumps(bodies[2])


# --- extended thinking: signed blocks go back unchanged -----------------------------------------------


def test_thinking_blocks_go_back_byte_identical_across_turns(repo: Path) -> None:
    first = [thinking_block(THOUGHT_1, SIGNATURE_1), redacted_thinking_block(REDACTED)]
    with team("anthropic") as crew:
        configure(crew, "claude-sonnet-4-6", thinking={"budget_tokens": 4000})
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work",
                   turn(call("read_file", path="src/app.py"), text="Reading it first.", thinking=first),
                   turn(call("write_file", path="src/app.py", content="W = 4\n"),
                        thinking=[thinking_block(THOUGHT_2, SIGNATURE_2)]),
                   turn(call("done", summary="wrote W")))

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        bodies = crew.bodies("coder", "work")
        assert len(bodies) == 3
        for body in bodies:
            assert body["thinking"] == {"type": "enabled", "budget_tokens": 4000}
            assert body["max_tokens"] == 4000 + 8192  # room for the answer beside the thinking
            assert body["tool_choice"] == {"type": "auto"}  # the API refuses a forced tool with thinking
            assert not {"temperature", "top_p", "top_k"} & set(body)
        # The server's own content of each turn, exactly: thinking, its signature, the redacted block, order.
        turn_1 = [*first, {"type": "text", "text": "Reading it first."}]
        assert bodies[1]["messages"][1]["role"] == "assistant"
        assert bodies[1]["messages"][1]["content"][:3] == turn_1
        assert bodies[1]["messages"][1]["content"][3]["type"] == "tool_use"
        # A turn later it is still the same, and the new turn's thinking leads its own content.
        assert bodies[2]["messages"][1] == bodies[1]["messages"][1]
        assert bodies[2]["messages"][3]["content"][0] == thinking_block(THOUGHT_2, SIGNATURE_2)
        # The transcript keeps them too, redacted like everything in it (a signature looks like a secret).
        path = transcript_path(Path(git(repo, "rev-parse", "--absolute-git-dir").strip()) / "gitteam" / "runs"
                               / result.run, "coder", "work")
        responses = [r for r in read_transcript(path).records if r["kind"] == "response"]
        assert responses[0]["blocks"][0]["provider"] == "anthropic"
        assert responses[0]["blocks"][0]["data"]["thinking"] == THOUGHT_1
        assert SIGNATURE_1 not in path.read_text()

    proc = cli(repo, "replay", result.run)  # offline: the recorded blocks make the same conversation
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


def test_thinking_is_left_out_while_the_tool_loop_turn_has_none(api: FakeAPI) -> None:
    # The last turn came from a model without thinking (a fallback): the API would refuse budgeted thinking
    # until the loop ends, so it is not asked for; a turn with thinking brings it back.
    api.push(anthropic_message("ok"), anthropic_message("ok"))
    model = anthropic(api, thinking={"budget_tokens": 2048})
    plain = Message("assistant", "", (ToolCall("call_1", "read_file", {"path": "a.py"}),))
    signed = Message("assistant", "", plain.tool_calls, blocks=(
        Block("anthropic", thinking_block("why", "sig")),
        Block("anthropic", {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "a.py"}})))
    for assistant in (plain, signed):
        model.complete(SYSTEM, [Message("user", "Fix it."), assistant, Message("tool", "x", tool_call_id="call_1")],
                       TOOLS, require_tool=True, context=CTX)
    without, with_thinking = api.bodies()
    assert "thinking" not in without and without["tool_choice"] == {"type": "any"}
    assert with_thinking["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert with_thinking["tool_choice"] == {"type": "auto"}  # forced is refused with thinking
    assert with_thinking["messages"][1]["content"][0] == thinking_block("why", "sig")


def test_a_turn_cut_off_while_thinking_goes_back_without_it(api: FakeAPI) -> None:
    # The API refuses an assistant turn that ends in thinking; such a turn has no tool call to answer.
    api.push(anthropic_message("ok"))
    cut = Message("assistant", "", blocks=(Block("anthropic", thinking_block("half a thought", "sig")),))
    anthropic(api, thinking={"budget_tokens": 2048}).complete(
        SYSTEM, [Message("user", "Fix it."), cut, Message("user", "Call a tool.")], TOOLS, require_tool=False,
        context=CTX)
    assert api.bodies()[0]["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "(empty)"}]}


def test_adaptive_thinking_and_effort(api: FakeAPI) -> None:
    api.push(anthropic_message("ok"), openai_completion("ok"))
    anthropic(api, "claude-opus-4-8", thinking={"type": "adaptive"}, reasoning_effort="xhigh").complete(
        SYSTEM, [Message("user", "Fix it.")], TOOLS, require_tool=False, context=CTX)
    definition = ModelDef("t", "openai", "gpt-5.4", base_url=f"{api.url}/v1", reasoning_effort="minimal")
    OpenAIModel("openai:gpt-5.4", definition, retry=RetryPolicy(sleep=lambda _: None), timeout=5.0).complete(
        SYSTEM, [Message("user", "Fix it.")], TOOLS, require_tool=False, context=CTX)
    claude, gpt = api.bodies()
    assert claude["thinking"] == {"type": "adaptive"} and claude["output_config"] == {"effort": "xhigh"}
    assert claude["max_tokens"] == 32_000
    assert gpt["reasoning_effort"] == "minimal"


def test_compaction_keeps_a_thinking_turn_whole_or_drops_it_whole() -> None:
    blocks = (Block("anthropic", thinking_block(THOUGHT_1, SIGNATURE_1)),)
    messages = [Message("user", "the brief " * 50)]
    for n in range(30):
        calls = (ToolCall(f"call_{n}", "read_file", {"path": f"f{n}.py"}),)
        # long reasoning text: assistant turns are never shortened, so only dropping old turns makes room
        messages += [Message("assistant", f"step {n} " * 150, calls, blocks=blocks),
                     Message("tool", "x" * 2000, tool_call_id=f"call_{n}")]
    done = compact(messages, limit=8000, fixed=500)
    assert done is not None and done.summarized
    kept = [m for m in done.messages if m.role == "assistant"]
    assert kept and all(m.blocks == blocks and m in messages for m in kept)
    assert done.messages[-2] is messages[-2]  # the turn whose results end the conversation is untouched


# --- cache breakpoints --------------------------------------------------------------------------------


def breakpoints(body: dict[str, Any]) -> list[str]:
    """Where cache_control sits in a request body: "tools", "system", "messages[i]"."""
    found = ["tools" for tool in body.get("tools", []) if "cache_control" in tool]
    found += ["system" for block in body.get("system", []) if "cache_control" in block]
    for index, message in enumerate(body["messages"]):
        found += [f"messages[{index}]" for block in message["content"] if "cache_control" in block]
    return found


def test_cache_breakpoints_cover_a_large_prefix_and_the_conversation_after_parallel_calls(api: FakeAPI) -> None:
    api.push(anthropic_message("ok"))
    system = "Follow the house rules. " * 800  # about 4,800 tokens: above every model's minimum
    calls = tuple(ToolCall(f"toolu_{n}", "read_file", {"path": f"src/m{n}.py"}) for n in range(12))
    conversation = [
        Message("user", "Fix the bug."),
        Message("assistant", "Reading one.", (ToolCall("toolu_a", "read_file", {"path": "a.py"}),)),
        Message("tool", "a", tool_call_id="toolu_a"),
        Message("assistant", "Reading all twelve at once.", calls),
        *[Message("tool", f"module {n}", tool_call_id=f"toolu_{n}") for n in range(12)],
    ]
    anthropic(api, "claude-sonnet-4-6").complete(system, conversation, TOOLS, require_tool=False, context=CTX)
    body = api.bodies()[0]
    # The twelve results answer their calls in one user turn, in order: one block run, one breakpoint.
    last = body["messages"][-1]
    assert [block["tool_use_id"] for block in last["content"]] == [f"toolu_{n}" for n in range(12)]
    assert len(body["messages"]) == 5
    # Static prefix (tools + system) cached; the previous call's last turn read back exactly where that
    # call wrote it (twelve calls and twelve results later: past the API's 20-block lookback); the
    # latest turn written for the next call. Tools alone are too small for a breakpoint of their own.
    assert breakpoints(body) == ["system", "messages[2]", "messages[4]"]
    assert "cache_control" in last["content"][-1] and "cache_control" in body["messages"][2]["content"][-1]
    assert json.dumps(body).count("cache_control") <= 4


@pytest.mark.parametrize(("model", "cached"), [("claude-opus-4-1", True), ("claude-sonnet-4-6", False),
                                                ("claude-haiku-4-5", False), ("claude-future-9", False)])
def test_the_static_breakpoint_needs_the_models_minimum(api: FakeAPI, model: str, cached: bool) -> None:
    api.push(anthropic_message("ok"))
    system = "Follow the house rules. " * 250  # about 1,500 tokens with the tools: over 1,024, under 2,048
    anthropic(api, model).complete(system, [Message("user", "Fix it.")], TOOLS, require_tool=False, context=CTX)
    assert breakpoints(api.bodies()[0]) == (["system"] if cached else []) + ["messages[0]"]


def test_no_breakpoint_lands_on_an_assistant_turn_with_thinking(api: FakeAPI) -> None:
    api.push(anthropic_message("ok"))
    signed = Message("assistant", "", (ToolCall("t1", "read_file", {"path": "a"}),), blocks=(
        Block("anthropic", thinking_block("why", "sig")),
        Block("anthropic", {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "a"}})))
    anthropic(api, thinking={"budget_tokens": 2048}).complete(
        SYSTEM, [Message("user", "Fix it."), signed, Message("tool", "x", tool_call_id="t1")], TOOLS,
        require_tool=False, context=CTX)
    body = api.bodies()[0]
    assert breakpoints(body) == ["messages[0]", "messages[2]"]
    assert body["messages"][1]["content"] == [block.data for block in signed.blocks]


# --- configuration ------------------------------------------------------------------------------------


def load_models(root: Path, text: str) -> dict[str, ModelDef]:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return dict(load_config(root, env={}).models)


def test_thinking_effort_and_api_are_read_from_models(root: Path) -> None:
    models = load_models(root, """
[models.deep]
provider = "anthropic"
model = "claude-sonnet-4-6"
thinking = {budget_tokens = 16000}

[models.adaptive]
provider = "anthropic"
model = "claude-opus-4-8"
thinking = {type = "adaptive", display = "summarized"}
reasoning_effort = "high"

[models.gpt]
provider = "openai"
model = "gpt-5.4"
api = "responses"
reasoning_effort = "low"
""")
    assert models["deep"].thinking == {"budget_tokens": 16000}
    assert models["adaptive"].thinking == {"type": "adaptive", "display": "summarized"}
    assert (models["gpt"].api, models["gpt"].reasoning_effort) == ("responses", "low")
    assert models["deep"].api == "chat"


@pytest.mark.parametrize(("table", "expected"), [
    ('provider = "anthropic"\nthinking = {budget_tokens = 512}', "models.m.thinking must be a table"),
    ('provider = "anthropic"\nthinking = {type = "adaptive", budget_tokens = 2048}', "models.m.thinking must be"),
    ('provider = "anthropic"\nthinking = {budget = 2048}', "models.m.thinking must be"),
    ('provider = "anthropic"\nthinking = 2048', "models.m.thinking must be a table"),
    ('provider = "openai"\nthinking = {budget_tokens = 2048}', "thinking is for provider = \"anthropic\""),
    ('provider = "anthropic"\napi = "responses"', 'api = "responses" is the OpenAI Responses API'),
    ('provider = "openai"\napi = "completions"', 'models.m.api must be "chat" or "responses"'),
    ('provider = "anthropic"\nreasoning_effort = "minimal"', "is not one anthropic accepts"),
    ('provider = "openai"\nreasoning_effort = "extreme"', "models.m.reasoning_effort must be one of"),
    ('provider = "anthropic"\nthinking = {budget_tokens = 8000}\nmax_output_tokens = 8000',
     "budget_tokens (8000) must be below max_output_tokens (8000)"),
])
def test_model_reasoning_settings_are_validated(root: Path, table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_models(root, f'[models.m]\nmodel = "x"\n{table}\n')
    assert expected in str(caught.value) and "\n" not in str(caught.value)

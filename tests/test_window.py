"""Compaction, message by message: a command's output keeps its tail, old results age out oldest first, the
latest turns and every assistant message stay as they were, and each tool call keeps its result right after it.
(A whole run under a small window: tests/test_models_context.py.)"""

from __future__ import annotations

import random

import pytest

from gitteam.config import LimitsConfig
from gitteam.models.base import Message, ToolCall
from gitteam.models.window import (
    AGED_MARK,
    COMPACT_AT,
    DIGEST_MARK,
    KEEP_TURNS,
    TRIM_MARK,
    compact,
    message_tokens,
)
from gitteam.roles.agent import Limits

BRIEF = Message("user", "Subtask work: make the tests pass. " * 20)
TEST_OUTPUT = ("exit 1 after 2.1s\n" + "".join(f"tests/test_a.py::test_{n} PASSED\n" for n in range(300))
               + "FAILED tests/test_x.py::test_y - AssertionError: expected 3, got 4\n"
               + "==== 1 failed, 300 passed in 2.10s ====\n")


def turn(n: int, name: str, output: str, **arguments: object) -> list[Message]:
    call = ToolCall(f"c{n}", name, dict(arguments))
    return [Message("assistant", f"step {n}", (call,)), Message("tool", output, tool_call_id=f"c{n}")]


def size(messages: list[Message]) -> int:
    return sum(map(message_tokens, messages))


def assert_paired(messages: list[Message]) -> None:
    """Each assistant turn's tool calls are answered right after it, in order, and no result stands alone."""
    index = 0
    while index < len(messages):
        message = messages[index]
        ids = [call.id for call in message.tool_calls]
        answers = messages[index + 1:index + 1 + len(ids)]
        assert [(m.role, m.tool_call_id) for m in answers] == [("tool", i) for i in ids], index
        assert message.role != "tool", f"a result without its call at {index}"
        index += 1 + len(ids)


def test_a_failing_test_run_keeps_its_tail() -> None:
    messages = [BRIEF, *turn(0, "run", TEST_OUTPUT, command="pytest -q")]
    for n in range(1, 6):
        messages += turn(n, "read_file", f"contents of f{n}.py\n" * 60, path=f"f{n}.py")
    limit = int(size(messages) / 0.8)  # over the 70% mark

    done = compact(messages, limit, fixed=0)

    assert done is not None and done.trimmed >= 1 and done.summarized == 0
    run_output = done.messages[2].content
    assert run_output.startswith("exit 1 after 2.1s\n")  # the status line: the head
    assert run_output.endswith("FAILED tests/test_x.py::test_y - AssertionError: expected 3, got 4\n"
                               "==== 1 failed, 300 passed in 2.10s ====\n")  # the failure and summary: the tail
    assert TRIM_MARK in run_output and "run the command again to see all of its output" in run_output
    assert "test_150 PASSED" not in run_output and len(run_output) < 2500
    marker = next(line for line in run_output.splitlines() if TRIM_MARK in line)
    assert marker.startswith("[... ") and int(marker[5:].split(" ", 1)[0].replace(",", "")) > 5000


def test_old_results_age_out_first_and_the_latest_turns_stay() -> None:
    messages = [BRIEF]
    for n in range(12):
        messages += turn(n, "read_file", f"line of f{n}.py\n" * 300, path=f"f{n}.py")  # 4,200 characters each
    limit = 9000

    done = compact(messages, limit, fixed=300)

    assert done is not None and done.after <= limit * COMPACT_AT * 0.7 and done.aged > 0
    kept = done.messages
    assert_paired(kept)
    results = [m.content for m in kept if m.role == "tool"]
    aged = [i for i, text in enumerate(results) if text.startswith(AGED_MARK)]
    assert aged == list(range(len(aged)))  # the oldest first, and only those
    assert results[0] == (f'{AGED_MARK}: read_file {{"path": "f0.py"}} returned 4,200 characters; '
                          "call it again if you still need them]")
    assert results[-KEEP_TURNS:] == [m.content for m in messages[-2 * KEEP_TURNS + 1::2]]  # the latest: whole
    assistants = [m for m in messages if m.role == "assistant"]
    assert [m for m in kept if m.role == "assistant"] == assistants  # never altered, none dropped
    assert all(a is b for a, b in zip([m for m in kept if m.role == "assistant"], assistants, strict=True))


def test_short_results_are_left_and_a_conversation_under_the_mark_is_not_touched() -> None:
    messages = [BRIEF]
    for n in range(4):
        messages += turn(n, "search", "a.py:1: match\n" * 40, pattern="x")
    limit = int(size(messages) / 0.65)

    assert compact(messages, limit, fixed=0) is None  # under 70%
    assert compact(messages, limit, fixed=0, at=0.6) is not None  # the mark is configurable
    assert LimitsConfig().compact_at == COMPACT_AT and Limits.of(LimitsConfig(compact_at=0.5)).compact_at == 0.5


def test_the_latest_turn_is_trimmed_only_when_it_cannot_fit_otherwise() -> None:
    huge = "x" * 200 + "\n" + "middle line\n" * 4000 + "the end\n"
    messages = [BRIEF, *turn(0, "read_file", "small\n", path="a.py"), *turn(1, "search", huge, pattern="y")]

    ordinary = compact(messages, limit=int(size(messages) * 1.2), fixed=0)
    refused = compact(messages, limit=int(size(messages) * 1.2), fixed=0, force=True)

    assert ordinary is None  # past 70% of the window, but the latest turns are all there is: left whole
    assert refused is not None and refused.messages[-1].content.endswith("middle line\nthe end\n")
    assert "search again with a narrower pattern or glob" in refused.messages[-1].content
    assert_paired(refused.messages)


@pytest.mark.parametrize("seed", range(12))
def test_pairing_and_the_latest_turns_hold_in_any_conversation(seed: int) -> None:
    rng = random.Random(seed)
    messages = [BRIEF]
    for n in range(rng.randint(5, 40)):
        calls = tuple(ToolCall(f"c{n}-{k}", rng.choice(["run", "read_file", "search"]), {"path": f"f{n}.py"})
                      for k in range(rng.randint(1, 3)))
        messages.append(Message("assistant", "thinking aloud " * rng.randint(0, 20), calls))
        messages += [Message("tool", "r" * rng.choice([50, 900, 3000, 9000]), tool_call_id=c.id,
                             is_error=rng.random() < 0.1) for c in calls]
        if rng.random() < 0.15:
            messages.append(Message("user", "The reviewer requested changes: " + "z" * rng.randint(10, 400)))
    limit = rng.randint(size(messages) // 3, size(messages) + 1)

    done = compact(messages, limit, fixed=200)

    if done is None:
        return
    kept = done.messages
    assert_paired(kept)
    assert kept[0] is BRIEF
    starts = [i for i, m in enumerate(messages) if m.role == "assistant"]
    latest = messages[starts[-KEEP_TURNS]:] if len(starts) >= KEEP_TURNS else messages
    if 200 + size([BRIEF, *latest]) <= limit * 0.7:  # they fit beside the brief and a digest (<= 25%)
        assert kept[-len(latest):] == latest  # so the latest turns are as they were
    originals = {id(m) for m in messages}
    assert all(id(m) in originals for m in kept if m.role == "assistant")  # assistant turns never rewritten
    assert all(m.content.startswith(DIGEST_MARK) for m in kept[1:] if m.role == "user" and id(m) not in originals)
    assert done.after < done.before

"""Context limits: a long coder conversation under a small configured context window is compacted before
it passes the limit (old tool outputs trimmed to their head and tail, then aged out, then earlier turns
summarized), the provider's own "too long" makes the agent compact and try again, and the run still finishes.
The compaction's own rules, message by message: tests/test_window.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files
from crews import configure
from fakeapi import anthropic_error, openai_error
from gitteam.models.base import Message, ToolCall
from gitteam.models.window import DIGEST_MARK, TRIM_MARK, compact, message_tokens
from gitteam.roles.lines import window
from loopback import Team, call, plan, run, subtask, team, turn
from scripts import blob, events

CONTEXT = 6000
BIG = "".join(f"line {n}: " + "x" * 60 + "\n" for n in range(60))  # about 4,300 characters


pytestmark = pytest.mark.usefixtures("loopback_env")


def configure_window(crew: Team, context: int = CONTEXT) -> None:
    configure(crew, "model-small", context_tokens=context, max_output_tokens=1000)


def size(body: dict[str, Any]) -> int:
    """Tokens of a request as it went over the wire, JSON framing included: a bound above our estimate."""
    return len(json.dumps({k: body[k] for k in ("system", "tools", "messages") if k in body})) // 4


WINDOW = 2 * CONTEXT + 2000  # room for the brief (the whole plan) and the reads, trimmed; not all of them whole


def test_old_tool_outputs_are_trimmed_before_the_window_fills(repo: Path, crew: Team) -> None:
    commit_files(repo, {"data/big.txt": BIG})
    configure_window(crew, context=WINDOW)
    crew.planner(plan(subtask("work", ["src/app.py"])))
    crew.coder("work", *[turn(call("read_file", path="data/big.txt")) for _ in range(14)],
               turn(call("write_file", path="src/app.py", content="DONE = 1\n"), call("done", summary="read it")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    bodies = crew.bodies("coder", "work")
    assert len(bodies) == 15
    assert 14 * len(BIG) // 4 > WINDOW  # uncompacted, the conversation would not fit
    assert max(map(size, bodies)) < WINDOW
    last = json.dumps(bodies[-1])
    assert TRIM_MARK in last and DIGEST_MARK[:30] not in last
    assert json.dumps(window(BIG, "data/big.txt", None, None))[1:-1] in last  # the latest read is whole
    compactions = [e for e in events(repo, result.run, "compacted") if e["role"] == "coder"]
    assert compactions and all(e["after"] < e["before"] and e["limit"] == WINDOW - 1000 for e in compactions)
    # compacted as soon as one read took it past 70% of the limit, long before the provider could refuse it
    read = len(window(BIG, "data/big.txt", None, None))  # one read as the model gets it: numbered lines
    assert all(e["before"] <= (WINDOW - 1000) * 0.7 + read // 4 + 100 for e in compactions)
    assert all(e["summarized"] == 0 and e["trimmed"] > 0 for e in compactions)
    assert blob(repo, "main", "src/app.py") == b"DONE = 1\n"


def test_many_turns_are_summarized_into_a_digest_and_the_brief_stays(repo: Path) -> None:
    small = "".join(f"row {n}\n" for n in range(60))  # about 400 characters: too short to trim
    commit_files(repo, {"data/small.txt": small})
    with team("anthropic") as crew:
        configure_window(crew)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        steps = [turn(call("read_file", path="data/small.txt", start_line=1 + n % 5), text=f"note {n}")
                 for n in range(45)]
        crew.coder("work", turn(call("write_file", path="src/app.py", content="S = 1\n")), *steps,
                   turn(call("done", summary="summarized")))

        result = run(repo, limits__max_steps=60)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        bodies = crew.bodies("coder", "work")
        assert max(map(size, bodies)) < CONTEXT
        last = json.dumps(bodies[-1]["messages"])
        assert DIGEST_MARK[:40] in last
        assert "src/app.py: write_file" in last  # the digest remembers which files were written
        assert "Subtask work" in json.dumps(bodies[-1]["messages"][0])  # the brief is never folded
        # 47 turns are about 95 messages unfolded; folding keeps every request far below that, wherever the
        # last fold fell (it moves with the length of the prompts)
        assert max(len(body["messages"]) for body in bodies) < 60


def test_a_context_error_from_the_provider_compacts_and_retries(repo: Path, crew: Team) -> None:
    commit_files(repo, {"data/big.txt": BIG})
    configure(crew, "model-unknown-window")  # no context_tokens: a 32k guess
    too_long = (anthropic_error(400, "invalid_request_error", "prompt is too long: 9000 tokens > 8000 maximum")
                if crew.flavor == "anthropic" else
                openai_error(400, "This model's maximum context length is 8000 tokens",
                             code="context_length_exceeded"))
    crew.planner(plan(subtask("work", ["src/app.py"])))
    crew.coder("work", turn(call("read_file", path="data/big.txt")), turn(call("read_file", path="data/big.txt")),
               too_long, turn(call("write_file", path="src/app.py", content="R = 1\n"), call("done", summary="ok")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    bodies = crew.bodies("coder", "work")
    assert len(bodies) == 4
    assert size(bodies[3]) < size(bodies[2]) * 0.75  # the retry after "too long" was compacted
    assert [e["role"] for e in events(repo, result.run, "compacted")] == ["coder"]


def test_compaction_never_separates_a_tool_call_from_its_result() -> None:
    messages = [Message("user", "the brief " * 50)]
    for n in range(30):
        call_ = ToolCall(f"c{n}", "read_file", {"path": f"f{n}.py"})
        messages += [Message("assistant", f"step {n}", (call_,)), Message("tool", "y" * 2000, tool_call_id=f"c{n}")]
    before = sum(map(message_tokens, messages))

    done = compact(messages, limit=4000, fixed=500)

    assert done is not None and done.after <= 4000 * 0.6 < before
    kept = done.messages
    assert kept[0] == messages[0] and kept[1].content.startswith(DIGEST_MARK)
    assert kept[2].role == "assistant"
    answered = {m.tool_call_id for m in kept if m.role == "tool"}
    asked = {c.id for m in kept for c in m.tool_calls}
    assert answered == asked
    assert "f0.py: read_file" in kept[1].content and "step 0" not in kept[1].content[:0]
    again = compact(kept, limit=4000, fixed=500)
    assert again is None  # under the high-water mark: left alone, so the cached prefix stays

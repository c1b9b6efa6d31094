"""Budgets through the real SDKs: a run stops at its budget (money, tokens, time; run-wide and per agent)
with its partial work committed and exit 4, resumes with a new total; economy mode switches models at the
threshold, once, and the server sees the cheaper model."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

from crews import home
from fakeapi import Scripted, anthropic_message
from gitteam.events import from_json
from gitteam.ui import ProgressPrinter
from loopback import Team, approve, call, model_table, plan, resume, roles, run, subtask, team, turn, write_user_config
from scripts import blob, commits, events, note, rev, run_state

_IDS = itertools.count(1)
DOLLAR = {"input_tokens": 1000, "output_tokens": 0}  # $1 a call at 1000 USD per million input tokens


pytestmark = pytest.mark.usefixtures("loopback_env")


def configure(crew: Team, **economy: str) -> None:
    text = model_table("big", crew.flavor, crew.api.url, "claude-big", input_price=1000.0, output_price=0.0)
    text += model_table("small", crew.flavor, crew.api.url, "claude-small", input_price=100.0, output_price=0.0)
    write_user_config(home(), text + roles("big", economy=economy))


def test_a_budget_smaller_than_the_work_stops_with_exit_4_and_resume_finishes(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        base = rev(repo, "main") or ""
        crew.planner(plan(subtask("work", ["src/app.py", "src/extra.py"]), **DOLLAR))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="A = 3\n"), **DOLLAR),
                   turn(call("write_file", path="src/extra.py", content="EXTRA = 3\n"), **DOLLAR),
                   turn(call("done", summary="both files"), **DOLLAR))
        crew.reviewer("work", approve(**DOLLAR))

        result = run(repo, run__budget=2.5)

        assert (result.exit_code, result.state) == (4, "budget"), result.message
        assert "budget of $2.50 reached" in result.message
        assert len(crew.seen) == 3  # no call after the budget was reached
        assert rev(repo, "main") == base
        [partial] = commits(repo, base, f"gitteam/{result.run}/work")
        assert blob(repo, partial, "src/app.py") == b"A = 3\n"
        assert blob(repo, partial, "src/extra.py") == b"EXTRA = 3\n"
        assert run_state(repo, result.run).cost == pytest.approx(3.0)
        assert note(repo, partial)["review"] is None

        again = resume(repo, result.run, run__budget=20.0)

        assert (again.exit_code, again.state) == (0, "merged"), again.message
        assert blob(repo, "main", "src/extra.py") == b"EXTRA = 3\n"
        assert run_state(repo, result.run).cost == pytest.approx(5.0)
        [resumed] = events(repo, result.run, "resumed")
        assert (resumed["budget"], resumed["spent"]) == (20.0, pytest.approx(3.0))


def test_economy_mode_switches_to_the_cheaper_models_once_at_the_threshold(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew, planner="small", coder="small", reviewer="small")
        crew.planner(plan(subtask("work", ["src/app.py"]), **DOLLAR))
        crew.coder("work", *[turn(call("read_file", path="src/app.py"), **DOLLAR) for _ in range(5)],
                   turn(call("write_file", path="src/app.py", content="E = 1\n"), **DOLLAR),
                   turn(call("done", summary="economical"), **DOLLAR))
        lines: list[str] = []

        result = run(repo, run__budget=10.0, run__economy_at=0.5)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        # $1 a call on the big model: the planner and four coder calls reach $5, half of the budget
        assert crew.models("planner") == ["claude-big"]
        assert crew.models("coder") == ["claude-big"] * 4 + ["claude-small"] * 3
        assert set(crew.models("reviewer")) == {"claude-small"}
        [economy] = events(repo, result.run, "economy")
        assert "$5.0000 of the $10.00 budget" in economy["reason"]
        note_model = note(repo, rev(repo, f"gitteam/{result.run}/work") or "")["model"]
        assert note_model == "small"
        lines = [line for e in events(repo, result.run) if (line := ProgressPrinter.describe(from_json(e)))]
        assert sum("economy mode" in line for line in lines) == 1


def test_an_agent_budget_stops_that_agent_with_exit_4(repo: Path) -> None:
    with team("openai") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/app.py"]), input_tokens=10))
        crew.coder("work", *[turn(call("write_file", path="src/app.py", content=f"N = {n}\n"), **DOLLAR)
                             for n in range(4)])

        result = run(repo, limits__agent_budget=1.5)

        assert (result.exit_code, result.state) == (4, "budget"), result.message
        assert "agent's budget of $1.50" in result.message
        assert crew.models("coder") == ["claude-big"] * 2
        [partial] = commits(repo, rev(repo, "main") or "", f"gitteam/{result.run}/work")
        assert blob(repo, partial, "src/app.py") == b"N = 1\n"


def test_a_run_token_budget_stops_the_run(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/app.py"]), input_tokens=10))
        crew.coder("work", *[turn(call("write_file", path="src/app.py", content=f"T = {n}\n"), input_tokens=900,
                                  output_tokens=100) for n in range(5)])

        result = run(repo, run__max_tokens=2500)

        assert (result.exit_code, result.state) == (4, "budget"), result.message
        assert "token budget of 2,500 reached" in result.message
        assert len(crew.models("coder")) == 3


def test_wall_time_budgets_of_the_run_and_of_an_agent(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        slow = dataclasses.replace(crew.reply(turn(call("read_file", path="src/app.py")), "claude-big"), stall=0.6)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", slow, slow, slow)

        result = run(repo, limits__max_seconds=1.0)

        assert (result.exit_code, result.state) == (1, "failed"), result.message
        assert "time limit reached" in result.message
        assert len(crew.models("coder")) == 2

    with team("anthropic") as crew:
        configure(crew)
        slow_plan = dataclasses.replace(crew.reply(plan(subtask("work", ["README.md"])), "claude-big"), stall=0.6)
        crew.planner(slow_plan)
        crew.coder("work", slow, slow)

        result = run(repo, task="another task", run__max_seconds=1.0)

        assert (result.exit_code, result.state) == (4, "budget"), result.message
        assert "time budget of 1 s reached" in result.message


# --- an agent's own limits: steps per round, tokens that entered the conversation, money at the cache's price --

def cached(*calls: tuple[str, Any], read: int, write: int, output: int = 100) -> Scripted:
    """One answer whose prompt was `read` tokens from the cache and `write` new ones (Anthropic's usage)."""
    ids = [(f"toolu_c{next(_IDS)}", name, args) for name, args in calls]
    return anthropic_message("", ids, model="claude-big", input_tokens=0, output_tokens=output, cache_read=read,
                             cache_write=write)


def review(decision: str) -> Any:
    findings = [] if decision == "APPROVE" else [
        {"file": "src/app.py", "severity": "major", "message": "say why it is 4", "evidence": "A = 4"}]
    return turn(call("submit_review", decision=decision, summary=decision.lower(), findings=findings))


def test_a_review_round_gives_the_coder_a_fresh_step_allowance(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("read_file", path="src/app.py")),
                   turn(call("write_file", path="src/app.py", content="A = 4\n")), turn(call("done", summary="4")),
                   turn(call("read_file", path="src/app.py")),
                   turn(call("write_file", path="src/app.py", content="A = 4  # the answer\n")),
                   turn(call("done", summary="said why")))
        crew.reviewer("work", review("REQUEST_CHANGES"), review("APPROVE"))

        result = run(repo, limits__max_steps=3)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        assert len(crew.models("coder")) == 6  # three a round: more than max_steps in all, never in one round

    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="A = 5\n")),
                   turn(call("done", summary="5")), *[turn(call("read_file", path="src/app.py")) for _ in range(4)])
        crew.reviewer("work", review("REQUEST_CHANGES"))

        result = run(repo, task="another task", limits__max_steps=3)

        assert (result.exit_code, result.state) == (1, "failed"), result.message
        assert "step limit reached (3 model calls in this round" in result.message
        assert len(crew.models("coder")) == 2 + 3


def test_the_token_limit_counts_what_entered_the_conversation_not_cached_rereads(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        # each call's prompt is the previous one (read from the cache) and 3,000 new tokens: 3,100 a call enter
        crew.coder("work", *[cached(call("read_file", path="src/app.py"), read=3000 * n, write=3000)
                             for n in range(6)])

        result = run(repo, limits__max_tokens=10_000, limits__agent_budget=1000.0)

        assert (result.exit_code, result.state) == (1, "failed"), result.message
        # billed tokens pass 10,000 at the third call (3,100 + 6,100 + 9,100); the conversation only at the fourth
        assert len(crew.models("coder")) == 4
        assert "token limit reached (12,400 of 10,000 tokens entered the conversation in 4 calls" in result.message


def test_an_agents_money_counts_cache_reads_at_their_price(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)  # $1000 per million input tokens: cache reads at a tenth of it, $1 for 10,000
        crew.planner(plan(subtask("work", ["src/app.py"]), input_tokens=10))
        crew.coder("work", *[cached(call("read_file", path="src/app.py"), read=10_000, write=0, output=0)
                             for _ in range(5)])

        result = run(repo, limits__agent_budget=2.5)

        assert (result.exit_code, result.state) == (4, "budget"), result.message
        assert "agent's budget of $2.50 is spent ($3.0000" in result.message
        assert len(crew.models("coder")) == 3  # at the input price the first call alone ($10) would have spent it

"""Reading a run's journal that a crash or a hand damaged: every intact event counts, wherever the damage is.

A line torn by a crash mid-write, a line that is not JSON, or JSON that is not an event is skipped, and so is
an event missing a field its kind needs: the run's state is then what it would be had that line never been
written. Nothing before or after the damage is lost (`read_events`, `fold`, `load_run`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from gitteam.events import Damaged, from_json
from gitteam.journal import MERGED, RUNNING, RunState, fold, load_run, read_events

RUN = "r-1"
Event = dict[str, Any]  # a journal line as JSON: the tests write what a crash or a hand could


def event(kind: str, **data: Any) -> Event:
    return {"t": "2025-01-01T00:00:00.000+00:00", "event": kind, **data}


def folded(events: list[Event]) -> RunState:
    """The state of a log given as JSON lines, as `load_run` would fold it."""
    return fold(RUN, [from_json(e, number) for number, e in enumerate(events, start=1)])


def readable(path: Path) -> list[Event]:
    """The events read back that are not damaged, as JSON again."""
    return [{"t": e.t, **e.to_json()} for e in read_events(path) if not isinstance(e, Damaged)]


def undamaged(state: RunState) -> RunState:
    """The state without its list of skipped lines: what the run would be had they never been written."""
    return dataclasses.replace(state, damaged=[])


def usage(agent: str, tokens: int, role: str = "coder") -> Event:
    return event("usage", usage={"input_tokens": tokens, "output_tokens": 0}, cost=0.5, role=role, agent=agent,
                 model="replay:x")


LOG: list[Event] = [
    event("run_started", run=RUN, task="do it", target="main", base="b0", owner={}, options={}, settings={}),
    event("plan", plan={"subtasks": [{"id": "a", "files": ["a.txt"]}]}),
    event("integration", branch="gitteam/r-1/integration", head="b0"),
    event("agent_started", agent="a", branch="gitteam/r-1/a", worktree="/w/a", base="b0"),
    usage("a", 100),
    event("agent_committed", agent="a", head="c1", round=1, summary="wrote a"),
    usage("a", 50, role="reviewer"),
    event("review", agent="a", round=1, head="c1", verdict={"decision": "APPROVE", "summary": "ok", "findings": []}),
    event("agent_finished", agent="a", status="approved"),
    event("merged", agent="a", head="m1"),
    event("run_finished", state=MERGED, exit_code=0, message="merged"),
]
MIDDLE = 5  # damage goes in before agent_committed: most of the run's state comes after it


def lines(events: list[Event]) -> list[bytes]:
    return [json.dumps(e).encode() + b"\n" for e in events]


def write_log(state_dir: Path, content: bytes) -> Path:
    path = state_dir / "runs" / RUN / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    return path


def assert_whole_run(state: Any) -> None:
    """What LOG folds to: every event after the damage counted."""
    assert (state.state, state.exit_code, state.task) == (MERGED, 0, "do it")
    agent = state.agents["a"]
    assert (agent.status, agent.head, agent.round, agent.summary) == ("merged", "c1", 1, "wrote a")
    assert agent.verdict == {"decision": "APPROVE", "summary": "ok", "findings": []}
    assert (state.tokens, state.cost, agent.tokens) == (150, 1.0, 150)
    assert state.integration_head == "m1"


DAMAGED_LINES = {
    "torn": b'{"t": "2025-01-01T00:00:00.000+00:00", "event": "agent_comm\n',
    "not json": b"not json at all\n",
    "zeros": b"\x00\x00\x00\x00\n",  # what a crash can leave in a file's last block
    "not utf-8": b'{"event": "note \xff"}\n',
    "a json list": b'["event", "agent_committed"]\n',
    "a json string": b'"agent_committed"\n',
    "no event field": b'{"agent": "a", "head": "zz"}\n',
    "event not a string": b'{"event": 7, "agent": "a"}\n',
    "empty": b"\n",
}


@pytest.mark.parametrize("damage", list(DAMAGED_LINES.values()), ids=list(DAMAGED_LINES))
def test_a_damaged_line_in_the_middle_is_skipped_and_every_later_event_counts(tmp_path: Path, damage: bytes) -> None:
    intact = lines(LOG)
    path = write_log(tmp_path, b"".join(intact[:MIDDLE]) + damage + b"".join(intact[MIDDLE:]))
    assert readable(path) == [from_json(e).to_json() | {"t": e["t"]} for e in LOG]
    state = load_run(tmp_path, RUN)
    assert_whole_run(state)
    assert undamaged(state) == folded(LOG)
    assert len(state.damaged) == (0 if damage == b"\n" else 1)  # a blank line is no line at all


def test_several_damaged_lines_anywhere_lose_only_themselves(tmp_path: Path) -> None:
    content = b""
    for number, line in enumerate(lines(LOG)):
        content += list(DAMAGED_LINES.values())[number % len(DAMAGED_LINES)] + line
    path = write_log(tmp_path, content + b'{"event": "torn at the end')
    assert readable(path) == [from_json(e).to_json() | {"t": e["t"]} for e in LOG]
    assert_whole_run(load_run(tmp_path, RUN))


def test_a_line_torn_at_the_end_leaves_everything_before_it(tmp_path: Path) -> None:
    intact = lines(LOG[:MIDDLE])
    path = write_log(tmp_path, b"".join(intact) + b'{"t": "2025-01-01", "event": "agent_committed", "ag')
    assert readable(path) == [from_json(e).to_json() | {"t": e["t"]} for e in LOG[:MIDDLE]]
    state = load_run(tmp_path, RUN)
    assert state.state == RUNNING
    assert (state.agents["a"].status, state.tokens) == ("running", 100)


@pytest.mark.parametrize("damaged", [
    usage("a", 0) | {"usage": "lots"},  # usage not an object
    event("agent_committed", agent="a", round=1),  # no head
    event("review", agent="a"),  # no verdict
    event("run_finished", state=MERGED),  # no exit_code
], ids=["usage", "agent_committed", "review", "run_finished"])
def test_an_event_missing_what_its_kind_needs_does_not_stop_the_fold(damaged: Event) -> None:
    """Valid JSON, a known kind, a field missing: skipped, and the events after it still count."""
    state = folded([*LOG[:MIDDLE], damaged, *LOG[MIDDLE:]])
    assert_whole_run(state)
    assert undamaged(state) == folded(LOG)


HALF_APPLIED = {
    # state.agent("ghost") runs before e["branch"] fails: a phantom agent that never started
    "agent_started without branch": event("agent_started", agent="ghost", worktree="/w/g", base="b0"),
    # the status is set before e["head"] fails: a merge that never happened, at the wrong head
    "merged without head": event("merged", agent="a"),
    # the plan and the first subtask's agent are set before the second subtask's files are missed
    "plan with a subtask without files": event("plan", plan={"subtasks": [{"id": "x", "files": ["x.txt"]},
                                                                          {"id": "y"}]}),
}


@pytest.mark.parametrize("damaged", list(HALF_APPLIED.values()), ids=list(HALF_APPLIED))
def test_an_event_missing_a_field_is_not_half_applied(damaged: Event) -> None:
    """A damaged event counts as if it were not in the log at all, not as far as fold got with it."""
    before = LOG[:MIDDLE + 1]  # a is committed, not merged
    state = folded([*before, damaged])
    assert undamaged(state) == folded(before) and len(state.damaged) == 1

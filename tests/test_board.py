"""The live view's board: a run's journal events folded into rows, on a clock the test moves."""

from __future__ import annotations

import io
from typing import Any

from gitteam import terminal
from gitteam.events import (
    AgentCommitted,
    AgentFinished,
    AgentStarted,
    Event,
    LockGranted,
    LockWaiting,
    Merged,
    ModelCalled,
    Planned,
    Reviewed,
    RunFinished,
    RunStarted,
    ToolStarted,
    UsageRecorded,
)
from gitteam.ui import ProgressPrinter
from gitteam.ui.board import Board
from gitteam.ui.live import RunDisplay, heartbeat_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def usage(agent: str, role: str, cost: float = 0.01) -> UsageRecorded:
    return UsageRecorded(agent=agent, role=role, model="m", usage={"input_tokens": 100, "output_tokens": 20},
                         cost=cost)


def started() -> list[Event]:
    return [RunStarted(run="r", task="t", target="main", base="b" * 40, options={"budget": {"money": 2.0}}),
            ModelCalled(agent="planner", role="planner", model="m", step=1), usage("planner", "planner"),
            Planned(plan={"subtasks": [{"id": "a", "files": ["a"]}, {"id": "b", "files": ["b"]}]},
                    waves=[["a"], ["b"]])]


def fold(board: Board, events: list[Event]) -> list[tuple[str, str]]:
    """The (agent, new state) of every change the events made."""
    return [(c.row.id, c.row.state) for e in events if (c := board.apply(e)) is not None]


def test_a_subtask_goes_through_every_state_of_a_round_trip_with_changes_requested() -> None:
    clock = Clock()
    board = Board(clock)
    changes = fold(board, [
        *started(),
        AgentStarted(agent="a", branch="gitteam/r/a", worktree="/w/a", base="b" * 40),
        ModelCalled(agent="a", role="coder", model="m", step=1), usage("a", "coder"),
        ToolStarted(agent="a", role="coder", tool="write_file", detail="a"),
        AgentCommitted(agent="a", head="c" * 40, round=1),
        ModelCalled(agent="a", role="reviewer", model="m", step=1), usage("a", "reviewer"),
        Reviewed(agent="a", round=1, head="c" * 40, verdict={"decision": "REQUEST_CHANGES", "summary": "x"}),
        ModelCalled(agent="a", role="coder", model="m", step=2),
    ])
    assert changes == [("planner", "planning"), ("planner", "planned"), ("a", "setting up"), ("a", "coding"),
                       ("a", "testing"), ("a", "reviewing"), ("a", "changes requested"), ("a", "coding")]
    row = board.rows["a"]
    assert (row.round, row.steps, row.tokens, round(row.cost, 4), row.tool) == (2, 1, 240, 0.02, "(thinking)")
    assert board.wave() == (1, 2)
    assert board.rows["b"].state == "queued"
    header, _, _ = board.snapshot()
    assert (header.budget, round(header.spent, 4), header.tokens) == (2.0, 0.03, 360)

    fold(board, [usage("a", "coder"), ToolStarted(agent="a", role="coder", tool="run", detail="pytest  -q\n-x"),
                 AgentCommitted(agent="a", head="d" * 40, round=2),
                 Reviewed(agent="a", round=2, head="d" * 40, verdict={"decision": "APPROVE", "summary": "ok"})])
    assert board.rows["a"].round == 2
    clock.now += 5
    assert fold(board, [AgentFinished(agent="a", status="approved"), Merged(agent="a", head="e" * 40)]) == [
        ("a", "merged")]
    clock.now += 60
    assert board.rows["a"].elapsed(clock.now) == 5.0  # stopped when it ended


def test_silent_agents_get_one_heartbeat_per_silence_and_the_run_end_stops_every_row() -> None:
    clock = Clock()
    board = Board(clock)
    fold(board, [*started(), AgentStarted(agent="a", branch="x", worktree="/w", base="b" * 40),
                 ToolStarted(agent="a", role="coder", tool="run", detail="make test")])
    clock.now += 10
    assert board.silent(30) == []
    clock.now += 25
    (row,) = board.silent(30)
    assert heartbeat_line(row, clock.now) == ("  [dim]a: still coding, round 1, in run make test, 0 tokens, "
                                              "$0.0000, 35s[/dim]")
    assert board.silent(30) == []  # heard again by its heartbeat: the next one after another 30 s
    fold(board, [RunFinished(state="interrupted", exit_code=130)])
    assert board.rows["a"].state == "interrupted" and board.silent(0) == []


def test_plain_output_is_one_timestamped_line_per_milestone_and_per_change_of_work() -> None:
    buffer = io.StringIO()
    console = terminal.console(file=buffer, width=200)
    display = RunDisplay(console, ProgressPrinter(console), live=False, heartbeat=3600, board=Board(Clock()))
    events: list[Any] = [*started(), AgentStarted(agent="a", branch="gitteam/r/a", worktree="/w", base="b" * 40,
                                                  t="2026-01-02T03:04:05.000+00:00"),
                         ModelCalled(agent="a", role="coder", model="m", step=1, t="2026-01-02T03:04:06.000+00:00")]
    with display:
        for event in events:
            display(event)
    lines = buffer.getvalue().splitlines()
    assert any(line.endswith("  planner: planning") for line in lines), lines
    assert any(line.endswith("  > a: setting up on gitteam/r/a") for line in lines), lines
    assert any(line.endswith("  a: coding") for line in lines), lines
    assert all(line[:8].count(":") == 2 and line[8] == " " for line in lines if not line.startswith(" ")), lines


def test_names_and_tool_details_from_agents_are_shown_not_obeyed_in_the_live_table() -> None:
    from gitteam.ui.live import render

    board = Board(Clock())
    fold(board, [*started(), ToolStarted(agent="a", role="coder", tool="write_file", detail="x\x1b[2Jy")])
    header, rows, now = board.snapshot()
    buffer = io.StringIO()
    out = terminal.console(file=buffer, width=200, force_terminal=True)
    out.print(render(header, rows, now, 1, 2))
    assert "\x1b[2J" not in buffer.getvalue() and "x^[[2Jy" in buffer.getvalue()


def test_a_subtask_waiting_for_another_runs_file_shows_what_and_whose_then_sets_up() -> None:
    board = Board(Clock())
    changes = fold(board, [
        *started(),
        LockWaiting(agent="a", path="src/api.py", holder_run="other-run", holder_subtask="x"),
        LockGranted(agent="a", waited=12.0),
        AgentStarted(agent="a", branch="gitteam/r/a", worktree="/w/a", base="b" * 40),
    ])
    assert [state for agent, state in changes if agent == "a"] == ["waiting for a lock", "queued", "setting up"]
    board.apply(LockWaiting(agent="b", path="src/api.py", holder_run="other-run", holder_subtask="x"))
    assert board.rows["b"].tool == "src/api.py (other-run)"

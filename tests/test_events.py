"""Typed journal events: every kind round-trips, a line that does not fit its kind is skipped whole and
reported, and a kind this version does not know is kept apart and changes nothing."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gitteam import events
from gitteam.events import KINDS, AgentStarted, Damaged, Event, RunStarted, Unknown, from_json
from gitteam.journal import Journal, fold, load_run, read_events
from scripts import approve, cli, coder_writes, done, plan_turn, script, start, subtask, turn


def sample(hint: Any) -> Any:
    """A value of a field's type, different from its default."""
    if hint is Any:
        return {"any": 1}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if type(None) in args:
        return sample(next(arg for arg in args if arg is not type(None)))
    if origin is list:
        return [sample(args[0])]
    if origin is dict:
        return {"k": sample(args[1])}
    return {str: "text", int: 7, float: 2.5, bool: True}[hint]


def full(cls: type[Event]) -> Event:
    hints = typing.get_type_hints(cls)
    values = {f.name: sample(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "t"}
    if cls is events.Planned:  # nested data its kind checks: a plan of subtasks with ids and files
        values["plan"] = {"subtasks": [{"id": "a", "files": ["a.txt"]}], "summary": "s"}
    return cls(t="2026-11-29T00:00:00.000+00:00", **values)


def required(cls: type[Event]) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            and type(None) not in typing.get_args(hints[f.name])]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_through_a_journal_line(kind: str) -> None:
    event = full(KINDS[kind])
    line = json.loads(json.dumps({"t": event.t, **event.to_json()}))
    assert line["event"] == kind
    assert from_json(line) == event


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind in sorted(KINDS) for name in required(KINDS[kind])])
def test_a_line_without_a_required_field_is_damaged_not_half_applied(kind: str, name: str) -> None:
    line = full(KINDS[kind]).to_json()
    del line[name]
    parsed = from_json(line, 12)
    assert isinstance(parsed, Damaged) and parsed.line == 12 and name in parsed.problem


@pytest.mark.parametrize(("field", "value"), [
    ("agent", 3), ("branch", None), ("worktree", ["a"]), ("base", {"sha": "x"}), ("agent", True),
])
def test_a_field_of_the_wrong_type_makes_the_line_damaged(field: str, value: object) -> None:
    line = {"event": "agent_started", "agent": "a", "branch": "b", "worktree": "w", "base": "c", field: value}
    assert isinstance(from_json(line), Damaged)


@pytest.mark.parametrize("raw", [[], "x", 3, None, {"event": 3}, {"no": "event"}])
def test_what_is_not_an_event_object_is_damaged(raw: object) -> None:
    assert isinstance(from_json(raw), Damaged)


def test_an_unknown_kind_is_kept_apart_and_changes_nothing() -> None:
    parsed = from_json({"event": "from_the_future", "agent": "x"})
    assert isinstance(parsed, Unknown) and parsed.kind == "from_the_future"
    assert fold("r", [parsed]).agents == {}


def test_optional_fields_left_out_stay_out_and_nulls_are_written() -> None:
    finished = events.AgentFinished(agent="a", status="skipped")
    assert finished.to_json() == {"event": "agent_finished", "agent": "a", "status": "skipped", "reason": ""}
    usage = events.UsageRecorded(agent="a", role="coder", model="m", usage={"input_tokens": 1})
    assert usage.to_json()["cost"] is None  # "not known", which `cost` shows as unknown


def test_fold_skips_a_damaged_line_whole_and_everything_around_it_stands(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "r")
    journal.append(RunStarted(run="r", task="t", target="main", base="b0"))
    with journal.path.open("a") as out:
        out.write('{"event": "agent_started", "agent": "phantom"}\n')  # valid JSON, not a valid event
        out.write('{"event": "agent_sta\n')  # torn by a crash mid-write
        out.write("\n")
    journal.append(AgentStarted(agent="real", branch="gitteam/r/real", worktree="/w", base="b0"))

    state = load_run(tmp_path, "r")
    assert list(state.agents) == ["real"] and state.agents["real"].status == "running"
    assert [(d.line, d.problem) for d in state.damaged] == [(2, "agent_started without branch"), (3, "not JSON")]
    assert [type(e).__name__ for e in read_events(journal.path)] == ["RunStarted", "Damaged", "Damaged",
                                                                     "AgentStarted"]


def test_listeners_get_the_event_as_it_was_written(tmp_path: Path) -> None:
    seen: list[Event] = []
    journal = Journal(tmp_path, "r")
    journal.subscribe(seen.append)
    written = journal.append(RunStarted(run="r", task="key AKIAABCDEFGHIJKLMNOP", target="main", base="b"))
    assert seen == [written] and isinstance(written, RunStarted) and written.t
    assert "AKIA" not in written.task and "AKIA" not in journal.path.read_text()


def test_status_reports_damaged_lines(repo: Path) -> None:
    data = script(planner=[plan_turn([subtask("work", ["src/app.py"])])],
                  coder={"work": [turn(coder_writes("src/app.py", "x = 1\n"), done())]},
                  reviewer={"work": [approve()]})
    result = start(repo, data)
    assert result.state == "merged", result.message
    path = repo / ".git" / "gitteam" / "runs" / result.run / "events.jsonl"
    with path.open("a") as out:
        out.write("{torn\n")
    text = cli(repo, "status", result.run)
    assert text.returncode == 0, text.stderr
    assert "damaged line" in text.stdout and "not JSON" in text.stdout
    listed = json.loads(cli(repo, "status", result.run, "--json").stdout)
    assert listed[0]["damaged"] == [{"line": len(path.read_text().splitlines()), "problem": "not JSON"}]
    assert listed[0]["state"] == "merged"  # the rest of the journal stands
    assert git(repo, "status", "--porcelain") == ""

"""What must hold of the team suite, whatever the table says: right scripts land, a wrong signature nobody
fixes does not, a coder's stray write never reaches the target, the table's numbers are the journal's, and
docs/agents.md shows the table of this gitteam."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from scenarios import interfaces_supported
from suite import (
    DOCS,
    Case,
    Row,
    cases,
    docs_tables,
    environment,
    hidden_tests_pass,
    journal_path,
    run_case,
    run_suite,
    tables,
)
from tasks import TASKS, Task, module_source

BY_ID = {task.id: task for task in TASKS}


def _run(tmp_path: Path, task: str, scenario: str) -> tuple[Row, Path]:
    row = run_case(Case(BY_ID[task], scenario), tmp_path / "case")
    return row, tmp_path / "case" / "repo"


def _events(repo: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal_path(repo).read_text().splitlines() if line.strip()]


def _show(repo: Path, path: str, rev: str = "main") -> str | None:
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True,
                         env=environment(repo.parent / "home"))
    return out.stdout if out.returncode == 0 else None


def _commits_on_main(repo: Path) -> int:
    out = subprocess.run(["git", "rev-list", "--count", "main"], cwd=repo, capture_output=True, text=True,
                         check=True, env=environment(repo.parent / "home"))
    return int(out.stdout)


@pytest.fixture(scope="session")
def suite_rows(tmp_path_factory: pytest.TempPathFactory) -> list[Row]:
    """The whole suite once: what the docs' table must show."""
    return run_suite(cases(), tmp_path_factory.mktemp("suite"), jobs=2)


def test_the_suite_has_about_twenty_tasks_of_two_to_four_subtasks_sharing_an_interface() -> None:
    assert 18 <= len(TASKS) <= 24
    assert {len(task.subtask_ids) for task in TASKS} == {2, 3, 4}
    for task in TASKS:  # the consumer's module imports the provider's function: the shared interface
        assert f"import {task.provider.name}\n" in module_source(task, task.consumer)


def test_every_correctly_scripted_task_lands(suite_rows: list[Row]) -> None:
    correct = [row for row in suite_rows if row.scenario == "correct"]
    assert [row.task for row in correct] == [task.id for task in TASKS]
    failed = [(row.task, row.exit_code, row.run_dir) for row in correct if not row.landed or row.exit_code != 0]
    assert not failed
    for row in correct:  # one gate round a subtask, nothing refused, nothing requested
        assert (row.rounds, row.checks_failed, row.changes_requested, row.refused_subtasks) == (row.subtasks, 0, 0, 0)


def test_the_docs_show_this_gitteams_table(suite_rows: list[Row]) -> None:
    """Regenerate with `python tests_team/run.py --write-docs` when a change to gitteam moves a number."""
    assert docs_tables(DOCS.read_text(encoding="utf-8")) == tables(suite_rows)


def test_a_wrong_signature_the_coder_never_fixes_does_not_land(tmp_path: Path) -> None:
    row, repo = _run(tmp_path, "temperature", "wrong-signature-unfixed")
    assert not row.landed and row.exit_code == 3
    assert _commits_on_main(repo) == 1  # the target did not move
    assert _show(repo, "temperature/convert.py") is None
    finished = {e["agent"]: e["status"] for e in _events(repo) if e["event"] == "agent_finished"}
    assert finished == {"provider": "refused", "consumer": "skipped"}
    assert row.changes_requested == 2 and row.refused_subtasks == 1


def test_a_wrong_signature_the_reviewer_catches_is_fixed_in_a_second_round_and_lands(tmp_path: Path) -> None:
    row, repo = _run(tmp_path, "temperature", "wrong-signature")
    assert row.landed and row.exit_code == 0
    provider_rounds = [e["round"] for e in _events(repo) if e["event"] == "review" and e["agent"] == "provider"]
    assert provider_rounds == [1, 2]
    assert "def c_to_f(" in (_show(repo, "temperature/convert.py") or "")
    assert "get_c_to_f" not in (_show(repo, "temperature/convert.py") or "")


def test_a_coders_write_outside_its_files_is_refused_and_never_reaches_the_target(tmp_path: Path) -> None:
    task = BY_ID["badges"]
    row, repo = _run(tmp_path, task.id, "outside-files")
    assert row.landed
    refusals = [e for e in _events(repo) if e["event"] == "tool_refused"]
    assert [(e["agent"], e["tool"]) for e in refusals] == [("consumer", "write_file")]
    assert _show(repo, task.path(task.provider)) == module_source(task, task.provider)  # the provider's own
    assert (row.guard_refusals, row.tool_errors) == (1, {"write_file": 1})


def test_a_missed_file_is_caught_by_the_checks_and_the_task_lands(tmp_path: Path) -> None:
    task = BY_ID["slugs"]
    row, repo = _run(tmp_path, task.id, "missed-file")
    assert row.landed and row.changes_requested == 0  # the test command caught it, no reviewer had to
    assert _show(repo, task.path(task.consumer)) == module_source(task, task.consumer)
    first = next(e for e in _events(repo) if e["event"] == "agent_committed" and e["agent"] == "consumer")
    assert _show(repo, task.path(task.consumer), first["head"]) is None  # the first commit missed it


def test_a_failing_first_test_run_is_fixed_within_the_round(tmp_path: Path) -> None:
    row, _ = _run(tmp_path, "shipping", "failing-test")
    assert row.landed and (row.rounds, row.checks_failed, row.changes_requested) == (2, 0, 0)


def test_parallel_siblings_land_only_where_the_plan_declares_their_interfaces(tmp_path: Path) -> None:
    """Issue 13's first finding: a consumer planned beside its provider is tested without the provider's code.
    Where plans declare `provides`/`consumes`, the same run must land."""
    row, repo = _run(tmp_path, "inventory", "parallel")
    if interfaces_supported():
        assert row.landed and row.exit_code == 0
    else:
        waves = next(e["waves"] for e in _events(repo) if e["event"] == "plan")
        assert waves == [["provider", "consumer"]]
        assert not row.landed and _commits_on_main(repo) == 1
        finished = {e["agent"]: e["status"] for e in _events(repo) if e["event"] == "agent_finished"}
        assert finished["consumer"] != "approved"


def test_the_tables_numbers_are_the_journals(tmp_path: Path) -> None:
    """Counted here from the raw journal lines, apart from suite.row_from_journal, for a run with a bit of
    everything: a guard refusal, a failed check, a second round."""
    task = BY_ID["geometry"]
    row, repo = _run(tmp_path, task.id, "outside-files")
    events = _events(repo)
    reviews = [e for e in events if e["event"] == "review"]
    assert row.rounds == len(reviews)
    assert row.refused_subtasks == sum(e["event"] == "agent_finished" and e["status"] == "refused" for e in events)
    assert row.tool_errors == dict(Counter(str(e["tool"]) for e in events if e["event"] == "tool_refused"))
    costs = [float(e["cost"]) for e in events if e["event"] == "usage" and e.get("cost") is not None]
    assert costs and row.cost == pytest.approx(sum(costs))
    line = next(line for line in tables([row]).splitlines() if line.startswith(f"| {task.id} |"))
    assert f"| ${row.cost:.4f} |" in line and "| write_file 1 |" in line


def test_a_task_the_hidden_tests_reject_does_not_count_as_landed(tmp_path: Path) -> None:
    """Landed means the hidden tests pass on the target, not only that gitteam merged: the same merged tree
    fails hidden tests that also ask for a README section nobody wrote."""
    task = BY_ID["vowels"]
    row = run_case(Case(task, "correct"), tmp_path / "case")
    assert row.landed
    stricter = Task(task.package, task.provider, task.consumer, docs=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert not hidden_tests_pass(tmp_path / "case" / "repo", stricter, environment(tmp_path / "case" / "home"),
                                 scratch)

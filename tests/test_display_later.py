"""The run's display made once the first model request is out (ui.DisplayLater): the planner's request does not
wait for rich to load, and every line is still shown, in order, whether a model request comes or not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import commit_files
from gitteam import ui
from gitteam.events import Merged, ModelCalled
from scripts import call, done, in_process, plan_turn, script, subtask, write_script


def shown_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def wait_until_made(later: ui.DisplayLater) -> None:
    deadline = time.monotonic() + 30
    while later._display is None:  # the maker thread's effect; nothing else makes it in these tests
        assert time.monotonic() < deadline, "the display was never made"
        time.sleep(0.005)


def test_events_wait_for_the_first_model_request_then_show_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    later = ui.DisplayLater(quiet=True)
    later.PATIENCE = 600.0  # only the model request may make it here
    with later:
        later(Merged(agent="first", head="0" * 40, t="2026-01-01T00:00:00+00:00"))
        later(Merged(agent="second", head="0" * 40, t="2026-01-01T00:00:01+00:00"))
        assert later._display is None and shown_lines(capsys) == []
        later(ModelCalled(agent="planner", role="planner", model="replay:x", step=1, t="2026-01-01T00:00:02+00:00"))
        wait_until_made(later)
        later(Merged(agent="third", head="0" * 40, t="2026-01-01T00:00:03+00:00"))
    lines = shown_lines(capsys)
    assert [line.split("merged ")[1].split()[0] for line in lines if "merged " in line] == ["first", "second",
                                                                                             "third"]


def test_without_a_model_request_the_lines_wait_no_longer_than_the_patience(
        capsys: pytest.CaptureFixture[str]) -> None:
    later = ui.DisplayLater(quiet=True)
    later.PATIENCE = 0.05
    with later:
        later(Merged(agent="queued", head="0" * 40, t="2026-01-01T00:00:00+00:00"))
        wait_until_made(later)  # made by its own thread, inside the block
        assert any("merged queued" in line for line in shown_lines(capsys))


def test_a_block_that_ends_first_shows_what_waits(capsys: pytest.CaptureFixture[str]) -> None:
    later = ui.DisplayLater(quiet=True)
    later.PATIENCE = 600.0
    with later:
        later(Merged(agent="only", head="0" * 40, t="2026-01-01T00:00:00+00:00"))
    assert any("merged only" in line for line in shown_lines(capsys))


def test_rich_loads_only_once_the_planners_request_is_journaled_and_the_run_shows_every_line(
        repo: Path, tmp_path: Path) -> None:
    """In order: the planner's model_called, then the first import of rich (seen by an audit hook); without the
    patience (set out of reach here), nothing else may load it before."""
    commit_files(repo, {"a.txt": "a\n"})
    model = write_script(tmp_path / "s.json", script(
        [plan_turn([subtask("a", ["a.txt"])])], {"a": [call("write_file", path="a.txt", content="b\n"), done("a")]}))
    proc = in_process(repo, ["run", "--yes", "--quiet", "--model", f"replay:{model}", "change a"], before=(
        "order = []\n"
        "def audit(event, args):\n"
        "    if event == 'import' and args[0].split('.')[0] == 'rich' and 'rich' not in order:\n"
        "        order.append('rich')\n"
        "sys.addaudithook(audit)\n"
        "import gitteam.journal, gitteam.ui\n"
        "from gitteam.events import ModelCalled\n"
        "gitteam.ui.DisplayLater.PATIENCE = 600.0\n"
        "append = gitteam.journal.Journal.append\n"
        "def journaled(self, event):\n"
        "    if isinstance(event, ModelCalled) and event.role == 'planner' and 'planner' not in order:\n"
        "        order.append('planner')\n"
        "    return append(self, event)\n"
        "gitteam.journal.Journal.append = journaled\n"), after="print('RESULT', code, *order)\n")
    assert proc.stdout.splitlines()[-1].split() == ["RESULT", "0", "planner", "rich"], (proc.stdout, proc.stderr)
    lines = proc.stderr
    order = [lines.index(text) for text in ("gitteam run ", "planned 1 subtask(s)", "merged a", "fast-forwarded")]
    assert order == sorted(order), lines

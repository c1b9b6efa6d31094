"""The replay model's "pause" turn: tests hold a model call in flight until they have done what they must.

The test synchronises on files it controls: PATH.reached says the call got there, PATH.go lets it answer.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gitteam.errors import UsageError
from gitteam.models import replay
from gitteam.models.base import CallContext, Reply
from gitteam.models.replay import ReplayModel, ReplayPaused, turn_problem

CODER = CallContext(run="r", role="coder", agent="a")


def model(tmp_path: Path, *turns: dict[str, Any]) -> ReplayModel:
    path = tmp_path / "scripts" / "script.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"gitteam_replay": 1, "planner": [], "coder": {"a": list(turns)}}))
    return ReplayModel(f"replay:{path}", path)


def wait_for_file(path: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def ask(scripted: ReplayModel) -> Reply:
    return scripted.complete("system", [], [], require_tool=True, context=CODER)


def test_a_pause_answers_only_once_the_test_lets_it(tmp_path: Path) -> None:
    marker = tmp_path / "hold"
    scripted = model(tmp_path, {"pause": str(marker), "call": "done", "args": {"summary": "held"}})
    answers: list[Reply] = []
    caller = threading.Thread(target=lambda: answers.append(ask(scripted)))
    caller.start()
    wait_for_file(tmp_path / "hold.reached")
    assert caller.is_alive() and answers == []  # in the call, waiting: nothing answered yet
    (tmp_path / "hold.go").touch()
    caller.join(30)
    assert not caller.is_alive()
    (answer,) = answers
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("done", {"summary": "held"})]


def test_a_released_pause_answers_at_once_and_other_turns_do_not_pause(tmp_path: Path) -> None:
    (tmp_path / "scripts" / "m.go").parent.mkdir()
    (tmp_path / "scripts" / "m.go").touch()  # released before it is reached
    scripted = model(tmp_path, {"pause": "m", "say": "first"}, {"say": "second"})
    assert ask(scripted).text == "first"
    assert (tmp_path / "scripts" / "m.reached").exists()  # relative to the script's directory
    assert ask(scripted).text == "second"


def test_a_pause_never_released_fails_the_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "PAUSE_LIMIT", 0.05)
    scripted = model(tmp_path, {"pause": str(tmp_path / "never"), "say": "x"})
    with pytest.raises(ReplayPaused, match=r"coder 'a' turn 1 paused at .*never\.go did not appear"):
        ask(scripted)


@pytest.mark.parametrize("pause", [3, "", "  ", None, ["a"]])
def test_a_pause_must_name_a_file(tmp_path: Path, pause: object) -> None:
    assert turn_problem({"pause": pause}) == '"pause" must be the path of a marker file'
    with pytest.raises(UsageError, match="coder turn 1"):
        ask(model(tmp_path, {"pause": pause}))


def test_ctrl_c_ends_a_pause_on_the_main_thread(tmp_path: Path) -> None:
    """The main thread's wait is a sleep like any other: SIGINT raises KeyboardInterrupt out of it."""
    marker = tmp_path / "hold"
    scripted = model(tmp_path, {"pause": str(marker), "say": "never answered"})
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gitteam.models.base import CallContext\n"
        "from gitteam.models.replay import ReplayModel\n"
        "m = ReplayModel('replay', Path(sys.argv[1]))\n"
        "try:\n"
        "    m.complete('s', [], [], require_tool=True, context=CallContext('r', 'coder', 'a'))\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted in the pause')\n"
        "    sys.exit(7)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(scripted.path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_file(tmp_path / "hold.reached")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, out.strip()) == (7, "interrupted in the pause"), err

"""request_files: a coder asks for a file its plan did not give it (run/grants.py), through the real anthropic and
openai SDKs against loopback servers, in whole `gitteam run`s."""

from __future__ import annotations

import json
from pathlib import Path

from crews import configure
from gitteam.git import find_repository
from gitteam.locks.refs import claim_files, held_locks
from loopback import Team, call, plan, run, subtask, tool_results, turn
from scripts import blob, events


def answers(crew: Team, agent: str) -> list[str]:
    """Every tool result the coder of `agent` was sent, in order."""
    bodies = crew.bodies("coder", agent)
    return [text for _, text, _ in tool_results(bodies[-1])] if bodies else []


def reviewer_requests(crew: Team) -> str:
    return json.dumps(crew.bodies("reviewer"))


def test_a_coder_is_granted_a_free_file_it_asks_for_and_lands_it(repo: Path, crew: Team) -> None:
    configure(crew)
    crew.planner(plan(subtask("app", ["src/app.py"])))
    crew.coder("app",
               turn(call("write_file", path="src/util.py", content="HELPER = 2\n")),
               turn(call("request_files", paths=["src/util.py"], reason="the helper it calls lives there")),
               turn(call("write_file", path="src/util.py", content="HELPER = 2\n")),
               turn(call("edit_file", path="src/app.py", old="return 1", new="return 2"), call("done", summary="ok")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/util.py") == b"HELPER = 2\n"
    said = answers(crew, "app")
    assert "ask for it with request_files" in said[0]  # the refused write points at the way to ask
    assert said[1].startswith("granted: src/util.py")
    asked = events(repo, result.run, "files_requested")
    assert [(e["paths"], e["granted"]) for e in asked] == [(["src/util.py"], ["src/util.py"])]
    reviewed = reviewer_requests(crew)  # the reviewers see what was granted, and why
    assert "files granted during the work" in reviewed and "the helper it calls lives there" in reviewed
    assert held_locks(find_repository(repo)) == {}  # released with the run's other files


def test_a_file_another_run_holds_is_not_granted_and_the_coder_is_told_who_holds_it(repo: Path,
                                                                                      crew: Team) -> None:
    configure(crew)
    gateway = find_repository(repo)
    claim_files(gateway, "other-run", {"src/util.py": "helper"})  # what another gitteam process holds
    crew.planner(plan(subtask("app", ["src/app.py"])))
    crew.coder("app",
               turn(call("request_files", paths=["src/util.py"], reason="the helper it calls lives there")),
               turn(call("write_file", path="src/util.py", content="HELPER = 2\n")),
               turn(call("edit_file", path="src/app.py", old="return 1", new="return 2"),
                    call("done", summary="could not get src/util.py")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    said = answers(crew, "app")
    assert said[0].startswith("not granted: src/util.py is held by run other-run (subtask helper)")
    assert said[1].startswith("error: refused: src/util.py is not one of this subtask's files")
    assert b"HELPER" not in (blob(repo, "main", "src/util.py") or b"")
    assert held_locks(gateway) == {"src/util.py": ("other-run", "helper")}  # the holder keeps it
    assert events(repo, result.run, "files_requested")[0]["granted"] == []


def test_grants_stop_at_the_configured_limit(repo: Path, crew: Team) -> None:
    configure(crew, extra="\n[limits]\ngranted_files = 1\n")
    crew.planner(plan(subtask("app", ["src/app.py"])))
    crew.coder("app",
               turn(call("request_files", paths=["src/a.py", "src/b.py"], reason="both")),
               turn(call("edit_file", path="src/app.py", old="return 1", new="return 2"), call("done", summary="ok")))

    result = run(repo)

    assert result.state == "merged", result.message
    assert answers(crew, "app")[0].startswith("refused: a subtask may be given 1 file(s) beyond its plan")
    assert held_locks(find_repository(repo)) == {}



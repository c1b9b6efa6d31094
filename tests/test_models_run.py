"""Whole `gitteam run`s through the real anthropic and openai SDKs against loopback servers: tool calls
round-trip from planner to coders to reviewers to a merged result; provider errors, fallbacks and malformed
output all end in a finished run; reminders are bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git
from crews import configure, home
from fakeapi import Scripted, anthropic_error, openai_error
from loopback import Team, call, model_table, plan, roles, run, subtask, team, tool_results, turn, write_user_config
from scripts import blob, commits, events, note, rev, status

pytestmark = pytest.mark.usefixtures("loopback_env")


def test_a_whole_run_round_trips_tool_calls_and_merges(repo: Path, crew: Team) -> None:
    configure(crew)
    base = rev(repo, "main")
    crew.planner(
        turn(call("list_files")),
        turn(call("read_file", path="src/app.py")),
        plan(subtask("app", ["src/app.py"]), subtask("docs", ["docs/guide.md"])),
    )
    crew.coder("app",
               turn(call("read_file", path="src/app.py")),
               turn(call("edit_file", path="src/app.py", old="return 1", new="return 2")),
               turn(call("done", summary="returns 2")))
    crew.coder("docs", turn(call("write_file", path="docs/guide.md", content="# Guide\n"), call("done", summary="ok")))
    crew.reviewer("app", turn(call("submit_review", decision="REQUEST_CHANGES", summary="add a comment",
                                   findings=[{"file": "src/app.py", "line": 2, "severity": "major",
                                              "message": "say why it returns 2", "evidence": "return 2"}])))
    crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 2", new="return 2  # the answer")),
               turn(call("done", summary="commented")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2  # the answer\n"
    assert blob(repo, "main", "docs/guide.md") == b"# Guide\n"
    assert status(repo) == ""
    assert len(commits(repo, base or "", f"gitteam/{result.run}/app")) == 2  # two review rounds
    # the planner's file read came back as a tool result answering its own call id, with the file's text
    planner_turn_3 = crew.bodies("planner")[2]
    results = tool_results(planner_turn_3)
    assert any("return 1" in text and not error for _, text, error in results)
    # the coder's second round carried the reviewer's finding in the same conversation
    app_requests = crew.bodies("coder", "app")
    assert "say why it returns 2" in json.dumps(app_requests[-1]["messages"])
    assert len(app_requests[-1]["messages"]) > len(app_requests[0]["messages"])
    model = "m"
    assert note(repo, rev(repo, f"gitteam/{result.run}/app") or "")["model"] == model
    usage = events(repo, result.run, "usage")
    assert {e["role"] for e in usage} == {"planner", "coder", "reviewer"}
    assert all(e["cost"] > 0 for e in usage)


def test_provider_errors_all_end_in_a_finished_run(repo: Path, crew: Team) -> None:
    configure(crew, timeout=2.0)
    error = anthropic_error if crew.flavor == "anthropic" else (
        lambda status, kind, message, headers=None: openai_error(status, message, kind, headers=headers))
    crew.planner(
        error(429, "rate_limit_error", "slow down", {"retry-after": "0"}),
        error(500, "api_error", "internal error"),
        plan(subtask("work", ["src/app.py"])),
    )
    crew.coder(
        "work",
        error(529, "overloaded_error", "overloaded"),
        Scripted(stall=6.0),  # past the 2 s timeout
        turn(call("write_file", path="src/app.py", content="X = 1\n")),
        Scripted(drop=True),
        turn(call("done", summary="wrote it")),
    )

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/app.py") == b"X = 1\n"
    asked = [role for role, _, _ in crew.seen]
    assert (asked.count("planner"), asked.count("coder")) == (3, 5)  # every failure was retried, once


def test_a_primary_that_always_fails_falls_back_and_the_note_says_so(repo: Path, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    with team("anthropic") as primary, team("openai") as backup:
        primary.api.default = anthropic_error(529, "overloaded_error", "Overloaded")
        primary.api.route = None
        write_user_config(home(), model_table("main", "anthropic", primary.api.url, "claude-main", fallbacks=["spare"])
                          + model_table("spare", "openai", backup.api.url, "gpt-spare") + roles("main"))
        backup.planner(plan(subtask("work", ["src/app.py"])))
        backup.coder("work", turn(call("write_file", path="src/app.py", content="Y = 2\n")),
                     turn(call("done", summary="on the spare")))

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        assert note(repo, rev(repo, f"gitteam/{result.run}/work") or "")["model"] == "spare"
        assert {e["model"] for e in events(repo, result.run, "usage")} == {"spare"}
        assert {r.body["model"] for r in primary.api.requests} == {"claude-main"}
        # each agent left the primary after two overloaded answers and stayed on the spare
        assert len(primary.api.requests) == 2 * len({(r, a) for r, a, _ in backup.seen})
        assert blob(repo, "main", "src/app.py") == b"Y = 2\n"


def test_malformed_and_invalid_arguments_go_back_and_are_corrected(repo: Path) -> None:
    with team("openai") as crew:
        configure(crew)
        crew.planner(
            turn(call("submit_plan", subtasks=[{"id": "work", "title": "t", "instructions": "i",
                                                "files": "src/app.py"}])),
            plan(subtask("work", ["src/app.py"])),
        )
        crew.coder(
            "work",
            turn(("write_file", '{"path": "src/app.py", "content": "Z = '), text="oops"),
            turn(call("write_file", path="src/app.py")),
            turn(call("write_file", path="src/app.py", content=3)),
            turn(call("write_file", path="src/app.py", content="Z = 3\n"), call("done", summary="fixed")),
        )

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        assert blob(repo, "main", "src/app.py") == b"Z = 3\n"
        refusals = [e["error"] for e in events(repo, result.run, "tool_refused")]
        assert any("subtasks[0].files must be of type array" in text for text in refusals)
        assert any("not a JSON object" in text for text in refusals)
        assert any("missing required argument(s): content" in text for text in refusals)
        assert any("'content' must be of type string" in text for text in refusals)
        last = crew.bodies("coder", "work")[-1]
        errors = [text for _, text, error in tool_results(last) if error]
        assert len(errors) == 3


def test_a_model_that_will_not_call_tools_gets_reminders_then_fails_with_its_work_committed(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        base = rev(repo, "main") or ""
        crew.planner(plan(subtask("work", ["src/app.py", "src/more.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="HALF = 1\n")),
                   turn(text="I think I am done."), turn(text="Really done."), turn(text="Done, honestly."),
                   turn(text="never asked"))

        result = run(repo, limits__reminders=2)

        assert (result.exit_code, result.state) == (1, "failed"), result.message
        assert "3 times in a row without calling a tool" in result.message
        coder_bodies = crew.bodies("coder")
        assert len(coder_bodies) == 4  # one call that worked, then three without a tool: two reminders
        assert all(b.get("tool_choice") == {"type": "auto"} for b in coder_bodies)
        assert "call done" in json.dumps(coder_bodies[-1]["messages"][-1])
        [partial] = commits(repo, base, f"gitteam/{result.run}/work")
        assert blob(repo, partial, "src/app.py") == b"HALF = 1\n"
        assert rev(repo, "main") == base
        assert git(repo, "status", "--porcelain") == ""


def test_arguments_are_checked_against_nested_schemas_with_every_problem_listed() -> None:
    from gitteam.models.base import ToolSpec
    from gitteam.roles.tools import check_arguments, tool

    finding = {"type": "object", "properties": {"file": {"type": "string"}, "line": {"type": "integer"},
                                                "severity": {"type": "string", "enum": ["minor", "major"]}},
               "required": ["file", "severity"], "additionalProperties": False}
    spec: ToolSpec = tool("submit_review", "d", {"decision": {"type": "string", "enum": ["APPROVE", "BLOCK"]},
                                                 "findings": {"type": "array", "items": finding}}, ["decision"])
    assert check_arguments(spec, {"decision": "APPROVE", "findings": [{"file": "a", "severity": "major"}]}) is None
    assert check_arguments(spec, {"decision": "APPROVE", "findings": None}) is None  # optional null = absent
    problem = check_arguments(spec, {"decision": "MAYBE", "findings": [
        {"file": "a", "severity": "huge", "line": True}, {"severity": "minor", "color": "red"}, "text"]}) or ""
    assert "decision must be one of APPROVE, BLOCK (got \"MAYBE\")" in problem
    assert "findings[0].severity must be one of minor, major" in problem
    assert "findings[0].line must be of type integer (got true)" in problem
    assert "findings[1] is missing 'file'" in problem
    assert "findings[1] has an unknown key 'color'" in problem
    assert "findings[2] must be of type object" in problem
    assert check_arguments(spec, {}) == "missing required argument(s): decision"


def test_the_backoff_base_comes_from_the_environment() -> None:
    from gitteam.errors import UsageError
    from gitteam.models.retry import policy_for

    assert policy_for(False, {}).base == 1.0 and policy_for(False, {}).overloaded_attempts is None
    assert policy_for(True, {"GITTEAM_RETRY_BASE_SECONDS": "0.01"}).base == 0.01
    assert policy_for(True, {}).overloaded_attempts == 2
    with pytest.raises(UsageError, match="GITTEAM_RETRY_BASE_SECONDS must be a number"):
        policy_for(False, {"GITTEAM_RETRY_BASE_SECONDS": "soon"})

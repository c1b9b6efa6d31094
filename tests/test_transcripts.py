"""Transcripts: every agent's conversation on disk as it happens, matching what the model server received and
answered; no secret in them; `show --transcript` and `status` read them; a SIGKILL leaves every complete line
whole and `resume` appends to the same files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files
from crews import configure
from fakeapi import Recorded, Scripted
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.transcripts import DIR, VERSION, read_transcript
from loopback import Team, call, first_user_text, plan, run, subtask, team, tool_results, turn
from scripts import approve, cli, coder_writes, done, finding, plan_turn, request_changes, script, start
from scripts import call as rcall
from scripts import subtask as rsubtask
from test_command_coder import FAKE_AGENT, command, reach, team_script

SECRET = "tok-9f8e7d6c5b4a3210"  # the value of a secret-named variable: it must reach no transcript


@pytest.fixture(autouse=True)
def _env(loopback_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", SECRET)


def transcript_dir(repo: Path, run_id: str) -> Path:
    return Journal(find_repository(repo).state_dir, run_id).dir / DIR


def transcripts(repo: Path, run_id: str) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for path in sorted(transcript_dir(repo, run_id).glob("*.jsonl")):
        read = read_transcript(path)
        assert read.damaged == 0, path
        found[path.stem] = read.records
    return found


def test_every_agent_has_a_transcript_matching_the_server(repo: Path, crew: Team) -> None:
    """Two waves and a review round through the real SDKs; each transcript says what the server saw."""
    configure(crew)
    commit_files(repo, {"notes.txt": f"the payments token is {SECRET}\n"})
    crew.planner(
        turn(call("read_file", path="notes.txt")),
        plan(subtask("app", ["src/app.py"]), subtask("docs", ["docs/guide.md"], depends_on=["app"])),
    )
    crew.coder("app",
               turn(call("read_file", path="src/app.py")),
               turn(call("edit_file", path="src/app.py", old="return 1", new="return 2")),
               turn(call("done", summary=f"returns 2; token {SECRET}")))
    crew.reviewer("app", turn(call("submit_review", decision="REQUEST_CHANGES", summary="add a comment",
                                   findings=[{"file": "src/app.py", "line": 2, "severity": "major",
                                              "message": "say why it returns 2", "evidence": "return 2"}])))
    crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 2", new="return 2  # the answer")),
               turn(call("done", summary="commented")))
    crew.coder("docs", turn(call("write_file", path="docs/guide.md", content="# Guide\n"), call("done", summary="ok")))
    crew.reviewer("docs", turn(call("submit_review", decision="APPROVE", summary="fine", findings=[])))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    found = transcripts(repo, result.run)
    assert set(found) == {"planner-planner", "coder-app", "coder-docs", "reviewer-app", "reviewer-docs",
                          "reviewer-integration"}
    bodies = [r.body for r in crew.api.requests]
    for name, records in found.items():
        role, _, agent = name.partition("-")
        assert all(r["v"] == VERSION for r in records)
        sent = [b for b in bodies if identify(crew, b) == (role, agent)]
        requests = [r for r in records if r["kind"] == "request"]
        responses = [r for r in records if r["kind"] == "response"]
        assert len(requests) == len(responses) == len(sent), name
        assert_requests_match(records, sent)
        assert records[-1]["kind"] == "end" and records[-1]["status"] == "finished"
    coder = found["coder-app"]
    assert [r["round"] for r in coder if r["kind"] == "session"] == [1]  # one conversation across rounds
    assert any("say why it returns 2" in m["content"] for r in coder if r["kind"] == "request"
               for m in r["messages"])
    assert len([r for r in found["reviewer-app"] if r["kind"] == "session"]) == 2  # a reviewer per round
    text = "".join(p.read_text() for p in transcript_dir(repo, result.run).glob("*.jsonl"))
    assert SECRET not in text and "sk-ant-test" not in text and "sk-test" not in text
    assert "[REDACTED:env:PAYMENTS_API_TOKEN]" in text


def identify(crew: Team, body: Any) -> tuple[str, str]:
    """The team's own guess, told the integration reviewer apart (its brief names every subtask)."""
    role, agent = crew.identify(body)
    if role == "reviewer" and "the combined result of every subtask" in first_user_text(body):
        return role, "integration"
    return role, agent


def assert_requests_match(records: list[dict[str, Any]], sent: list[Any]) -> None:
    """Each request record pairs with the server's request in order: the tool results the conversation held
    then; each tool result answers a call of the response before it; each response names the model."""
    bodies = iter(sent)
    results = 0
    calls: list[str] = []
    for record in records:
        if record["kind"] == "session":
            results = 0
        elif record["kind"] == "request":
            body = next(bodies)
            assert len(tool_results(body)) == results
        elif record["kind"] == "response":
            assert record["model"] == "m" and record["usage"]["output_tokens"] == 20  # the spec that answered
            calls = [c["id"] for c in record["tool_calls"]]
            assert calls
        elif record["kind"] == "tool_result":
            assert record["id"] in calls
            results += 1


def test_show_transcript_and_status_turns_through_the_cli(repo: Path) -> None:
    data = script(
        planner=[plan_turn([rsubtask("a", ["a.txt"])])],
        coder={"a": [rcall("read_file", path="missing.txt"), coder_writes("a.txt", "one\n" * 20),
                     done("wrote a"), coder_writes("a.txt", "two\n"), done("fixed")]},
        reviewer={"a": [request_changes("shorter", [finding("a.txt", "too long", evidence="one\none")]), approve()]},
    )
    result = start(repo, data)
    assert result.exit_code == 0, result.message

    shown = cli(repo, "show", result.run, "a", "--transcript")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "coder" in out and "reviewer" in out and "-> read_file" in out and "error" in out
    assert "-> write_file" in out and "too long" in out and "turn(s)" in out
    assert "--full" in out and "more line(s)" in out  # the 20-line file content is trimmed
    full = cli(repo, "show", result.run, "a", "--transcript", "--full")
    assert full.stdout.count("one") > out.count("one")

    as_json = cli(repo, "show", result.run, "a", "--transcript", "--json")
    document = json.loads(as_json.stdout)
    by_role = {t["role"]: t for t in document["transcripts"]}
    assert by_role["coder"]["turns"] == 5 and by_role["reviewer"]["turns"] == 2
    kinds = [r["kind"] for r in by_role["coder"]["records"]]
    assert kinds.count("tool_result") == 5 and kinds[0] == "session"

    status = json.loads(cli(repo, "status", result.run, "--json").stdout)[0]
    assert status["agents"][0]["turns"] == {"coder": 5, "reviewer": 2}
    assert status["turns"]["planner"] == {"planner": 1}
    text = cli(repo, "status", result.run).stdout
    assert "turns    coder 5, reviewer 2" in text

    planner = cli(repo, "show", result.run, "planner", "--transcript")
    assert planner.returncode == 0 and "-> submit_plan" in planner.stdout
    missing = cli(repo, "show", result.run, "nobody", "--transcript")
    assert missing.returncode == 2 and "no agent" in missing.stderr


def test_a_damaged_line_is_skipped_and_reported(repo: Path) -> None:
    data = script(planner=[plan_turn([rsubtask("a", ["a.txt"])])], coder={"a": [coder_writes("a.txt", "x\n"),
                                                                                 done()]})
    result = start(repo, data)
    path = transcript_dir(repo, result.run) / "coder-a.jsonl"
    with path.open("ab") as f:
        f.write(b'{"v": 1, "kind": "respo')  # a kill mid-write
    read = read_transcript(path)
    assert read.damaged == 1 and read.turns == 2
    shown = cli(repo, "show", result.run, "a", "--transcript")
    assert shown.returncode == 0 and "1 damaged line(s) skipped" in shown.stdout
    assert json.loads(cli(repo, "status", result.run, "--json").stdout)[0]["agents"][0]["turns"]["coder"] == 2


def test_model_text_in_a_transcript_cannot_drive_the_terminal(repo: Path) -> None:
    data = script(planner=[plan_turn([rsubtask("a", ["a.txt"])])],
                  coder={"a": [coder_writes("a.txt", "x\n"), done("\x1b]0;owned\x07\x1b[2Jdone")]})
    result = start(repo, data)
    shown = cli(repo, "show", result.run, "a", "--transcript", "--full")
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout


def test_a_command_coder_transcript_holds_each_rounds_prompt_and_result(repo: Path, tmp_path: Path) -> None:
    agent = tmp_path / "fake_agent.py"
    agent.write_text(FAKE_AGENT)
    reviewer = [request_changes("round two please", [finding("src/app.py", "make it round two", evidence="ROUND = 1")]),
                approve()]
    result = start(repo, team_script(reviewer), config={**reach(agent), "roles.coder": command(agent, "edit")})
    assert result.exit_code == 0, result.message

    records = transcripts(repo, result.run)["coder-cli-work"]
    prompts = [r for r in records if r["kind"] == "command"]
    results = [r for r in records if r["kind"] == "command_result"]
    assert [r["round"] for r in prompts] == [1, 2] and [r["round"] for r in results] == [1, 2]
    assert "Set ROUND to the round number." in prompts[0]["prompt"] and "make it round two" in prompts[1]["prompt"]
    assert [r["summary"] for r in results] == ["set ROUND to 1", "set ROUND to 2"]
    assert results[0]["exit_code"] == 0 and results[0]["usage"]["input_tokens"] == 1200
    status = json.loads(cli(repo, "status", result.run, "--json").stdout)[0]
    assert status["agents"][0]["turns"] == {"coder": 2, "reviewer": 2}
    shown = cli(repo, "show", result.run, "cli-work", "--transcript")
    assert "command" in shown.stdout and "set ROUND to 2" in shown.stdout


# --- SIGKILL mid-run, then resume --------------------------------------------------------------------------


def test_a_killed_run_leaves_whole_lines_and_resume_appends(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("a", ["a.txt"]), subtask("b", ["b.txt"])))
        for name in ("a", "b"):  # twice: a coder the kill cut off asks again after resume
            for _ in range(2):
                crew.coder(name, turn(call("read_file", path="README.md")),
                           turn(call("write_file", path=f"{name}.txt", content=f"{name}\n"),
                                call("done", summary=name)))
        reached = threading.Event()
        hold = {"on": True}
        kill_at = 4  # the planner's call, both coders' first, and one more: both coders are mid-conversation

        def route(request: Recorded) -> Scripted | None:
            if hold["on"] and len(crew.api.requests) >= kill_at:
                reached.set()
                return Scripted(stall=60)  # the process is inside a model call when it dies
            return crew.answer(request)

        crew.api.route = route
        proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "--yes", "two files"], cwd=repo,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert reached.wait(60), proc.stderr.read() if proc.poll() is not None and proc.stderr else "no request"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
        hold["on"] = False
        runs = find_repository(repo).state_dir / "runs"
        (run_id,) = [p.name for p in runs.iterdir()]
        folder = transcript_dir(repo, run_id)
        before = {p.name: p.read_bytes() for p in folder.glob("*.jsonl")}
        assert {"planner-planner.jsonl", "coder-a.jsonl", "coder-b.jsonl"} <= set(before)
        for name, content in before.items():
            complete = content.split(b"\n")[:-1]  # what follows the last newline is the line in flight
            for line in complete:
                assert json.loads(line)["v"] == VERSION, name

        resumed = cli(repo, "resume", run_id, "--yes")

        assert resumed.returncode == 0, resumed.stderr
        for name, content in before.items():
            after = (folder / name).read_bytes()
            assert after.startswith(content), name  # appended, never rewritten
        for name in ("coder-a.jsonl", "coder-b.jsonl"):
            grown = (folder / name).read_bytes()
            if grown != before[name]:
                records = [json.loads(line) for line in grown[len(before[name]):].splitlines()]
                assert records[0]["kind"] == "session" and records[-1]["kind"] == "end"
        assert any((folder / n).read_bytes() != c for n, c in before.items() if n.startswith("coder-"))
        assert all(read_transcript(p).damaged == 0 for p in folder.glob("*.jsonl"))

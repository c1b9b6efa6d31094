"""The `command:` coder: an external agent CLI (here a small fake written by each test) runs in the agent's
worktree with the subtask's prompt, a time limit and a limited environment; gitteam then commits only the
subtask's files, reports and leaves out the rest, and reviews the result as it does its own coders' work."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.git import find_repository
from gitteam.locks.ownership import Ownership
from gitteam.review.checks import CheckContext, OwnershipCheck
from gitteam.review.diff import parse_diff
from gitteam.roles.external_coder import failure, reported
from scripts import (
    approve,
    blob,
    branches,
    cli,
    commits,
    events,
    finding,
    note,
    plan_turn,
    request_changes,
    rev,
    script,
    start,
    status,
    subtask,
)

FAKE_AGENT = r'''
import json, os, pathlib, subprocess, sys, time

mode, log = sys.argv[1], pathlib.Path(sys.argv[2])
arg = sys.argv[3] if len(sys.argv) > 3 else None
prompt = sys.stdin.read() if arg is None else pathlib.Path(arg).read_text() if os.path.isfile(arg) else arg
with log.open("a") as out:
    out.write(json.dumps({"mode": mode, "cwd": os.getcwd(), "prompt": prompt, "env": sorted(os.environ),
                          "argv": sys.argv[3:]}) + "\n")
rounds = sum(1 for _ in log.open())
pathlib.Path("src").mkdir(exist_ok=True)
pathlib.Path("src/app.py").write_text(f"ROUND = {rounds}\n")
if mode == "stray":
    pathlib.Path("notes").mkdir(exist_ok=True)
    pathlib.Path("notes/stray.txt").write_text("not mine\n")
    pathlib.Path("README.md").write_text("rewritten by the agent\n")
    # contained, the git dir is read-only and these fail; uncontained, gitteam unwraps the commit
    added = subprocess.run(["git", "add", "-A"])
    committed = subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "agent commit"])
    print(f"git add: {added.returncode}, git commit: {committed.returncode}")
if mode == "login":  # an agent CLI that reads its login from HOME, refreshes it and keeps state there
    home = pathlib.Path(os.environ["HOME"])
    token = home / ".agent" / "token"
    seen = token.read_text() if token.exists() else "none"
    ssh = (home / ".ssh" / "id_rsa").exists()
    pathlib.Path("src/app.py").write_text(f"TOKEN = {seen!r}\nSSH = {ssh}\n")
    token.parent.mkdir(exist_ok=True)
    token.write_text(f"refreshed in round {rounds}")
    (home / "state.txt").write_text("the CLI's own state")
if mode == "hang":
    print("working...", flush=True)
    time.sleep(60)
if mode == "fail":
    print("something broke", flush=True)
    sys.exit(3)
if mode == "plain":
    print("I changed src/app.py.")
else:
    cost = 5.0 if mode == "expensive" else 0.25
    print(json.dumps({"type": "result", "result": f"set ROUND to {rounds}", "total_cost_usd": cost,
                      "usage": {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 800}}))
'''


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    path = tmp_path / "fake_agent.py"
    path.write_text(FAKE_AGENT)
    return path


def command(agent: Path, mode: str, placeholder: str = "{prompt_file}") -> str:
    argv = [sys.executable, str(agent), mode, str(agent.parent / "agent.log")]
    return "command:" + shlex.join(argv) + (f" {placeholder}" if placeholder else "")


def reach(agent: Path) -> dict[str, object]:
    """The fake agent and its log live beside the repository: the sandbox must let the CLI reach them."""
    return {"sandbox.read_write": (str(agent.parent),)}


def calls(agent: Path) -> list[dict[str, object]]:
    log = agent.parent / "agent.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def team_script(reviewer: list[dict[str, object]] | None = None) -> dict[str, object]:
    plan = plan_turn([subtask("cli-work", ["src/app.py"], instructions="Set ROUND to the round number.")])
    return script(planner=[plan], coder={}, reviewer={"cli-work": reviewer or [approve()]})


def test_a_command_coder_edits_its_file_and_the_result_is_reviewed_and_merged(repo: Path, agent: Path) -> None:
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "edit")})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/app.py") == b"ROUND = 1\n"
    assert status(repo) == ""
    [ran] = calls(agent)
    assert ran["cwd"].endswith(f"/{result.run}/cli-work")  # type: ignore[union-attr]
    assert "/.git/" not in str(ran["cwd"])  # agent CLIs refuse to edit under .git/
    prompt = str(ran["prompt"])
    for text in ("cli-work", "Subtask cli-work", "Set ROUND to the round number.", "src/app.py", "Do not commit"):
        assert text in prompt
    assert "call done" not in prompt.lower()
    head = rev(repo, f"gitteam/{result.run}/cli-work") or ""
    provenance = note(repo, head)
    assert provenance["model"] == command(agent, "edit")
    assert provenance["review"]["decision"] == "APPROVE"
    assert provenance["cost"] == pytest.approx(0.25)
    [usage] = [e for e in events(repo, result.run, "usage") if e["role"] == "coder"]
    assert usage["usage"] == {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 800,
                              "cache_write_tokens": 0}
    assert "set ROUND to 1" in git(repo, "log", "-1", "--format=%B", head)


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_files_it_does_not_own_are_reported_and_never_committed_even_when_it_commits(repo: Path, agent: Path,
                                                                                       sandbox: str) -> None:
    base = rev(repo, "main") or ""
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "stray"),
                                                "sandbox.mode": sandbox})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    branch = f"gitteam/{result.run}/cli-work"
    [only] = commits(repo, base, branch)  # the agent's own commit was unwrapped; gitteam committed its file
    assert git(repo, "show", "--name-only", "--format=", only).split() == ["src/app.py"]
    assert blob(repo, "main", "notes/stray.txt") is None
    assert blob(repo, "main", "README.md") == b"# project\n"
    # contained, its own commit could not even be made (the git dir is read-only); uncontained, it was undone
    assert bool(events(repo, result.run, "agent_commits_unwrapped")) == (sandbox == "none")
    [committed] = events(repo, result.run, "agent_committed")
    assert sorted(committed["stray"]) == ["README.md", "notes/stray.txt"]


def test_the_gates_ownership_check_rejects_a_commit_with_a_file_the_subtask_does_not_own(repo: Path) -> None:
    base = rev(repo, "main") or ""
    head = commit_files(repo, {"src/app.py": "X = 1\n", "notes/stray.txt": "not mine\n"}, "slipped through")
    gateway = find_repository(repo)
    changes = parse_diff(gateway.diff(base, head))

    findings = OwnershipCheck().run(CheckContext(gateway, base, head, changes, Ownership(["src/app.py"])))

    assert [(f.file, f.severity) for f in findings] == [("notes/stray.txt", "critical")]


def test_a_hanging_command_times_out_fails_and_its_partial_work_is_committed(repo: Path, agent: Path) -> None:
    base = rev(repo, "main") or ""
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "hang"),
                                                "limits.max_seconds": 1.5})

    assert (result.exit_code, result.state) == (1, "failed"), result.message
    assert "timed out after 2 s" in result.message or "timed out after 1 s" in result.message
    [partial] = commits(repo, base, f"gitteam/{result.run}/cli-work")
    assert blob(repo, partial, "src/app.py") == b"ROUND = 1\n"
    assert note(repo, partial)["review"] is None
    assert rev(repo, "main") == base
    [ran] = events(repo, result.run, "agent_command")
    assert ran["timed_out"] is True and "working..." in ran["output"]


def test_a_failing_command_fails_the_agent(repo: Path, agent: Path) -> None:
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "fail")})

    assert (result.exit_code, result.state) == (1, "failed"), result.message
    assert "exited 3: something broke" in result.message


def test_review_findings_send_the_command_back_with_the_brief_on_stdin(repo: Path, agent: Path) -> None:
    reviewer = [request_changes("round two please", [finding("src/app.py", "make it round two", evidence="ROUND = 1")]),
                approve()]
    result = start(repo, team_script(reviewer), config={**reach(agent),
                                                        "roles.coder": command(agent, "edit", placeholder="")})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/app.py") == b"ROUND = 2\n"
    first, second = calls(agent)
    assert "make it round two" in str(second["prompt"]) and "Set ROUND to the round number." in str(second["prompt"])
    assert "make it round two" not in str(first["prompt"])


def test_the_environment_holds_only_the_safe_base_and_the_named_variables(repo: Path, agent: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_CLI_API_KEY", "sk-agent-0123456789")
    monkeypatch.setenv("UNRELATED_SECRET_TOKEN", "nope-0123456789")
    monkeypatch.setenv("SOME_SETTING", "x")
    result = start(repo, team_script(), config={**reach(agent), "commands.agent_env": ["AGENT_CLI_API_KEY"],
                                                "roles.coder": command(agent, "edit", "{prompt} {files}")})

    assert result.exit_code == 0, result.message
    [ran] = calls(agent)
    names = set(ran["env"])  # type: ignore[arg-type]
    assert "AGENT_CLI_API_KEY" in names and "PATH" in names and "GITTEAM_AGENT" in names
    assert not names & {"UNRELATED_SECRET_TOKEN", "SOME_SETTING"}
    assert "Set ROUND to the round number." in str(ran["prompt"])  # the {prompt} placeholder
    assert ran["argv"][1:] == ["src/app.py"]  # type: ignore[index]  # {files}: one word per owned file


def test_spend_it_reports_counts_against_the_budget(repo: Path, agent: Path) -> None:
    base = rev(repo, "main") or ""
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "expensive"),
                                                "run.budget": 1.0})

    assert (result.exit_code, result.state) == (4, "budget"), result.message
    [partial] = commits(repo, base, f"gitteam/{result.run}/cli-work")
    assert blob(repo, partial, "src/app.py") == b"ROUND = 1\n"


def test_spend_it_does_not_report_is_unknown(repo: Path, agent: Path) -> None:
    result = start(repo, team_script(), config={**reach(agent), "roles.coder": command(agent, "plain")})

    assert result.exit_code == 0, result.message
    [usage] = [e for e in events(repo, result.run, "usage") if e["role"] == "coder"]
    assert usage["cost"] is None
    assert "I changed src/app.py." in git(repo, "log", "-1", "--format=%B", f"gitteam/{result.run}/cli-work")
    rows = json.loads(cli(repo, "cost", result.run, "--json").stdout)
    assert [r["cost"] for r in rows if r["role"] == "coder"] == [None]


def test_command_is_for_the_coder_only_and_must_be_installed(repo: Path, agent: Path) -> None:
    everywhere = cli(repo, "run", "x", "--model", command(agent, "edit"))
    assert everywhere.returncode == 2 and "--coder" in everywhere.stderr

    missing = cli(repo, "run", "x", "--model", "replay:demo", "--coder", "command:no-such-agent-cli -p {prompt}")
    assert missing.returncode == 2
    [line] = missing.stderr.strip().splitlines()
    assert "no-such-agent-cli is not installed" in line
    assert branches(repo, "x") == set()


def test_reported_spend_from_common_agent_clis() -> None:
    claude = json.dumps({"type": "result", "result": "done", "total_cost_usd": 0.5,
                         "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 7}})
    usage, cost, summary = reported("some log line\n" + claude + "\n")
    assert (usage.input_tokens, usage.cache_write_tokens, cost, summary) == (10, 7, 0.5, "done")
    codex = "\n".join(json.dumps(e) for e in (
        {"type": "turn.completed", "usage": {"input_tokens": 100, "cached_input_tokens": 40, "output_tokens": 9}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "all set"}},
        {"type": "turn.completed", "usage": {"input_tokens": 50, "cached_input_tokens": 0, "output_tokens": 1}},
    ))
    usage, cost, summary = reported(codex)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, cost, summary) == (110, 40, 10, None,
                                                                                                  "all set")
    codex_cache = json.dumps({"type": "turn.completed", "usage": {
        "input_tokens": 100, "cached_input_tokens": 40, "cache_write_input_tokens": 10, "output_tokens": 9}})
    usage = reported(codex_cache)[0]
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (50, 40, 10)
    aider_events = "\n".join((
        "Creating empty file src/x.py", json.dumps({"event": "launched", "properties": {}}),
        "Tokens: 1.2k sent, 100 received. Cost: $0.0045 message, $0.0045 session.",
        json.dumps({"event": "message_send", "properties": {"prompt_tokens": 1234, "completion_tokens": 100,
                                                             "cost": 0.0045, "total_cost": 0.0045}}),
        "Fixed the bug in src/x.py.",
        json.dumps({"event": "message_send", "properties": {"prompt_tokens": 2000, "completion_tokens": 50,
                                                             "cost": 0.001, "total_cost": 0.0055}}),
        json.dumps({"event": "exit", "properties": {"reason": "Completed --message-file"}})))
    usage, cost, summary = reported(aider_events)
    assert (usage.input_tokens, usage.output_tokens, cost) == (3234, 150, 0.0055)
    assert "Fixed the bug" in summary and "{" not in summary
    aider_text = ("Tokens: 2.5k sent, 1.0k cache write, 300 cache hit, 120 received. Cost: $0.01 message, $0.01 "
                  "session.\nall done\nTokens: 900 sent, 20 received. Cost: $0.0031 message, $0.013 session.\n")
    usage, cost, _ = reported(aider_text)
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_read_tokens, usage.output_tokens, cost) == (
        2100, 1000, 300, 140, 0.013)
    gemini = json.dumps({"response": "edited", "stats": {}}, indent=2)
    assert reported(gemini)[2] == "edited"
    tokens = {"input": 900, "prompt": 1000, "candidates": 80, "total": 1100, "cached": 100, "thoughts": 20, "tool": 5}
    gemini = json.dumps({"session_id": "s", "response": "edited", "stats": {"models": {
        "gemini-3.1-pro-preview": {"api": {"totalRequests": 2}, "tokens": tokens},
        "gemini-3.5-flash-lite": {"api": {"totalRequests": 1}, "tokens": {"input": 10, "candidates": 1}}}}}, indent=2)
    usage, cost, summary = reported("YOLO mode is enabled. All tool calls will be automatically approved.\n" + gemini)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, cost, summary) == (
        915, 100, 101, None, "edited")
    assert reported("plain text\nlast line")[1:] == (None, "plain text\nlast line")


@pytest.mark.parametrize("write_back", [False, True])
def test_a_command_coder_has_a_private_home_seeded_with_its_login(repo: Path, agent: Path, write_back: bool) -> None:
    home = Path.home()
    (home / ".agent").mkdir()
    (home / ".agent" / "token").write_text("original login")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    result = start(repo, team_script(), config={
        **reach(agent), "roles.coder": command(agent, "login"), "sandbox.home_files": (".agent/",),
        "sandbox.home_write_back": write_back})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    # it saw the copy of its login, and nothing else of the real HOME
    assert blob(repo, "main", "src/app.py") == b"TOKEN = 'original login'\nSSH = False\n"
    # what it wrote stayed in its own HOME, except the login files when write-back is on
    expected = "refreshed in round 1" if write_back else "original login"
    assert (home / ".agent" / "token").read_text() == expected
    assert not (home / "state.txt").exists()
    [private] = (repo / ".git" / "gitteam").glob(f"runs/{result.run}/homes/cli-work")
    assert (private / "state.txt").read_text() == "the CLI's own state"


def test_why_a_cli_failed_is_its_own_error_message() -> None:
    gemini = json.dumps({"session_id": "s", "error": {"type": "Error", "message": "API key not valid.\nCheck it.",
                                                       "code": 1}}, indent=2)
    assert failure("YOLO mode is enabled.\n" + gemini) == "API key not valid. Check it."
    codex = "\n".join(json.dumps(e) for e in (
        {"type": "error", "message": "Reconnecting... 2/5"},
        {"type": "turn.failed", "error": {"message": "unexpected status 400: model not allowed"}}))
    assert failure(codex) == "unexpected status 400: model not allowed"
    body = json.dumps({"error": {"code": 400, "message": "model not allowed", "status": "INVALID_ARGUMENT"}})
    assert failure(json.dumps({"error": {"type": "Error", "message": body, "code": 400}})) == "model not allowed"
    claude = json.dumps({"type": "result", "is_error": True, "result": "API Error: 401 invalid x-api-key"})
    assert failure(claude) == "API Error: 401 invalid x-api-key"
    assert failure("Traceback ...\nValueError: bad\n\n") == "ValueError: bad"
    assert failure("") == "no output"

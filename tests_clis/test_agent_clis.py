"""Real coding-agent CLIs as gitteam's `command:` coder, end to end: `gitteam run` plans (a replay model), the
CLI codes in its worktree, contained by bubblewrap with the network to the loopback server that scripts its
model, a replay reviewer approves or requests changes, and the run lands or fails as it should.

For each CLI: the owned file lands after approval; a file it does not own is reported, never committed; the
spend it reports reaches the provenance note and `gitteam cost`; a REQUEST_CHANGES round runs it again with the
finding; an API error fails the agent with the CLI's message; a hang is killed at `[limits] max_seconds`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clis import CLIS, Cli
from fakeapi import serve
from gitteam.git import find_repository
from gitteam.journal import Journal
from install import InstallFailed, install, version
from loopback import toml_value, write_user_config
from scripted import FINDING, FIRST, MAIN_USAGE, OWNED, REFUSAL, SIDE_USAGE, STRAY, SUMMARY, ScriptedModel
from scripts import approve, blob, events, finding, note, plan_turn, request_changes, rev, script, subtask, write_script

AGENT = "answer"
RUN_SECONDS = 600
HANG_SECONDS = 30  # past the slowest start (aider's, contained: about 10 s)


@pytest.fixture(scope="session", params=CLIS, ids=[cli.name for cli in CLIS])
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, Path]:
    """The CLI, installed (once per version, in the cache), at the version docs/models.md names; its PATH dir. A
    CLI that cannot be installed fails the test under CI=true and skips it elsewhere (no registry here)."""
    cli: Cli = request.param
    try:
        path_dir = install(cli.package)
    except InstallFailed as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{cli.name} {cli.package.version} is needed under CI: {exc}")
        pytest.skip(f"{cli.name} {cli.package.version} could not be installed: {exc}")
    assert version(path_dir, cli.name, tmp_path_factory.mktemp(f"{cli.name}-home")) == cli.version_line
    return cli, path_dir


@dataclass
class Team:
    cli: Cli
    model: ScriptedModel
    repo: Path
    url: str

    def run(self, scenario: str, reviewer: Sequence[dict[str, Any]] = (), max_seconds: float = 300.0
            ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        instructions = f"Write {OWNED} holding ANSWER = 1. SCENARIO: {scenario}"
        data = script(planner=[plan_turn([subtask(AGENT, [OWNED], instructions=instructions)])], coder={},
                      reviewer={AGENT: list(reviewer) or [approve()]})
        replay = "replay:" + str(write_script(self.repo.parent / f"script-{scenario}.json", data))
        home = Path.home()
        variables = self.cli.configure(home, self.url)
        write_user_config(home, "\n".join((
            "[sandbox]", 'agent_network = "host"', f"home_files = {toml_value(list(self.cli.home_files))}",
            "[commands]", f"agent_env = {toml_value(list(self.cli.agent_env))}",
            "[limits]", f"max_seconds = {max_seconds}", "")))
        env = {**os.environ, **variables}
        proc = subprocess.run([sys.executable, "-m", "gitteam", "run", "do the task", "--json", "--yes",
                               "--planner", replay, "--reviewer", replay, "--coder", f"command:{self.cli.command}"],
                              cwd=self.repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=RUN_SECONDS)
        summary = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
        return proc, summary


@pytest.fixture
def team(installed: tuple[Cli, Path], repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    cli, path_dir = installed
    monkeypatch.setenv("PATH", f"{path_dir}{os.pathsep}{os.environ['PATH']}")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    if cli.repo_files:
        for relative, text in cli.repo_files.items():
            (repo / relative).write_text(text)
        subprocess.run(["git", "add", *cli.repo_files], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", f"what a repository used with {cli.name} holds"], cwd=repo, check=True)
    with serve() as api:
        yield Team(cli, ScriptedModel(api, cli.wire), repo, api.url)


def assert_its_own_requests(team: Team) -> None:
    """The server got the CLI's own requests: its tools (aider has none: its edit format stands for them)."""
    assert team.model.main, "the CLI never reached the scripted model"
    for conversation in team.model.main:
        assert set(team.cli.tools) <= set(conversation.tools), (team.cli.tools, conversation.tools)


def diagnosis(team: Team, proc: subprocess.CompletedProcess[str], summary: dict[str, Any]) -> str:
    """What a failing assertion shows: gitteam's progress, what the CLI printed, the tool results it sent."""
    outputs = [e.get("output", "") for e in events(team.repo, summary["run"], "agent_command")] if summary.get("run") \
        else []
    results = [c.results[-1][-1500:] for c in team.model.main if c.results]
    return "\n---\n".join((proc.stderr[-3000:], *[o[-3000:] for o in outputs], *results))


def transcript(repo: Path, run: str) -> list[dict[str, Any]]:
    path = Journal(find_repository(repo).state_dir, run).dir / "transcripts" / f"coder-{AGENT}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def coder_rows(repo: Path, run: str) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "gitteam", "cost", run, "--json"], cwd=repo, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [row for row in json.loads(proc.stdout) if row["role"] == "coder"]


def test_its_edits_land_after_a_second_round_with_the_finding_and_its_spend_is_recorded(team: Team) -> None:
    cli = team.cli
    base = rev(team.repo, "main")
    reviewer = [request_changes("round two please", [finding(OWNED, FINDING, evidence=FIRST.strip())]), approve()]

    proc, summary = team.run("edit", reviewer)

    assert (proc.returncode, summary.get("state")) == (0, "merged"), diagnosis(team, proc, summary)
    assert_its_own_requests(team)
    assert blob(team.repo, "main", OWNED) == b"ANSWER = 2\n", diagnosis(team, proc, summary)
    assert rev(team.repo, "main") != base
    first = [c for c in team.model.main if FINDING not in c.prompt]
    second = [c for c in team.model.main if FINDING in c.prompt]
    assert first and second, [c.prompt[-300:] for c in team.model.main]
    assert "SCENARIO: edit" in second[0].prompt  # the brief again: a new process remembers nothing
    run = summary["run"]
    head = rev(team.repo, f"gitteam/{run}/{AGENT}") or ""
    provenance = note(team.repo, head)
    assert provenance["model"] == f"command:{cli.command}"
    assert provenance["review"]["decision"] == "APPROVE"
    assert SUMMARY in subprocess.run(["git", "log", "-1", "--format=%B", head], cwd=team.repo, capture_output=True,
                                     text=True).stdout
    # its spend, as it reported it: every reply of the scripted model carried MAIN_USAGE
    replies, side = len(team.model.main), team.model.charged if cli.counts_side_requests else 0
    [row] = coder_rows(team.repo, run)
    assert (row["input_tokens"], row["output_tokens"]) == (replies * MAIN_USAGE[0] + side * SIDE_USAGE[0],
                                                           replies * MAIN_USAGE[1] + side * SIDE_USAGE[1]), row
    assert provenance["tokens"] == row["input_tokens"] + row["output_tokens"]
    if cli.printed_cost is None:  # Codex and Gemini report tokens, no money
        assert (provenance["cost"], row["cost"], row["cost_known"]) == (None, None, False), row
    else:  # the money it printed, each round's last figure, as the transcript holds its output
        outputs = [r["output"] for r in transcript(team.repo, run) if r["kind"] == "command_result"]
        printed = [re.findall(cli.printed_cost, output) for output in outputs]
        assert len(printed) == 2 and all(printed), outputs
        cost = sum(float(found[-1]) for found in printed)
        assert cost > 0 and provenance["cost"] == pytest.approx(cost) and row["cost"] == pytest.approx(cost), row


def test_a_file_it_does_not_own_is_reported_and_never_committed(team: Team) -> None:
    proc, summary = team.run("stray")

    assert (proc.returncode, summary.get("state")) == (0, "merged"), diagnosis(team, proc, summary)
    assert_its_own_requests(team)
    assert blob(team.repo, "main", OWNED) == b"ANSWER = 1\n", diagnosis(team, proc, summary)
    assert blob(team.repo, "main", STRAY) == b"# project\n"
    [committed] = events(team.repo, summary["run"], "agent_committed")
    assert committed["stray"] == [STRAY]
    assert STRAY in proc.stderr


def test_an_api_error_fails_the_agent_with_the_clis_message(team: Team) -> None:
    base = rev(team.repo, "main")
    # what a reviewer says of what aider leaves (it exits 0 after the error): the others never reach review
    # (the finding is about the change as a whole: it quotes what was asked, since there is no code to quote)
    reviewer = [request_changes("nothing was done", [finding("", "the file is empty", "major",
                                                             evidence="holding ANSWER = 1")])] * 2

    proc, summary = team.run("fail", reviewer)

    assert_its_own_requests(team)
    said = REFUSAL.split(":")[0]  # short: aider wraps its lines at 80 columns
    assert said in json.dumps(events(team.repo, summary["run"], "agent_command")), diagnosis(team, proc, summary)
    assert rev(team.repo, "main") == base
    if team.cli.fails_on_api_error:
        assert (proc.returncode, summary.get("state")) == (1, "failed"), diagnosis(team, proc, summary)
        assert "the agent command exited" in summary["message"] and said in summary["message"], summary
    else:  # aider prints the error and exits 0: the gate and the reviewers are what stop it
        assert (proc.returncode, summary.get("state")) == (3, "refused"), diagnosis(team, proc, summary)


def test_a_hang_is_killed_at_the_time_limit(team: Team) -> None:
    started = time.monotonic()

    proc, summary = team.run("hang", max_seconds=HANG_SECONDS)

    assert (proc.returncode, summary.get("state")) == (1, "failed"), diagnosis(team, proc, summary)
    assert_its_own_requests(team)
    assert f"timed out after {HANG_SECONDS} s" in summary["message"], summary
    assert time.monotonic() - started < HANG_SECONDS + 60

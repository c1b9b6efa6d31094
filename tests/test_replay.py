"""`gitteam replay`: a real two-wave run with a review round, recorded through the loopback SDK server, is
replayed offline (the server closed) to the same trees byte for byte; a changed prompt line is reported at the
first request it changes; the user's checkout, refs and status are untouched."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from conftest import commit_files, git
from crews import configure
from gitteam import __version__
from gitteam.events import RunStarted
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.roles import coder as coder_role
from gitteam.run.replay import replay
from loopback import call, plan, run, subtask, team, turn
from scripts import assert_error, cli

SECRET = "tok-9f8e7d6c5b4a3210"


@pytest.fixture(autouse=True)
def _env(loopback_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", SECRET)


def record(repo: Path, task: str = "do the task") -> str:
    """A merged run: planner, two waves (docs depends on app), one REQUEST_CHANGES round; the server closed."""
    commit_files(repo, {"notes.txt": f"the payments token is {SECRET}\n"})
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(turn(call("read_file", path="notes.txt")),
                     plan(subtask("app", ["src/app.py"]), subtask("docs", ["docs/guide.md"], depends_on=["app"])))
        crew.coder("app", turn(call("read_file", path="src/app.py")),
                   turn(call("edit_file", path="src/app.py", old="return 1", new="return 2")),
                   turn(call("done", summary="returns 2")))
        crew.reviewer("app", turn(call("submit_review", decision="REQUEST_CHANGES", summary="add a comment",
                                       findings=[{"file": "src/app.py", "line": 2, "severity": "major",
                                                  "message": "say why it returns 2"}])))
        crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 2", new="return 2  # the answer")),
                   turn(call("done", summary="commented")))
        crew.coder("docs", turn(call("write_file", path="docs/guide.md", content="# Guide\n"),
                                call("done", summary="ok")))
        crew.reviewer("docs", turn(call("submit_review", decision="APPROVE", summary="fine", findings=[])))
        result = run(repo, task)
    assert (result.exit_code, result.state) == (0, "merged"), result.message
    return result.run


def snapshot(repo: Path) -> tuple[str, str, str]:
    return (git(repo, "for-each-ref", "--format=%(refname) %(objectname)"), git(repo, "status", "--porcelain=v2"),
            git(repo, "rev-parse", "HEAD"))


def test_replay_reproduces_the_trees_offline(repo: Path) -> None:
    run_id = record(repo)  # the loopback server is closed here: a request would fail to connect
    before = snapshot(repo)
    proc = cli(repo, "replay", run_id)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert f"gitteam/{run_id}/app: same tree" in proc.stdout
    assert f"gitteam/{run_id}/docs: same tree" in proc.stdout
    assert f"gitteam/{run_id}/integration: same tree" in proc.stdout
    assert "every agent reached the recorded tree" in proc.stdout
    assert snapshot(repo) == before  # the user's refs, status and HEAD


def test_a_changed_prompt_line_is_reported_at_the_first_request(repo: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = record(repo)
    before = snapshot(repo)
    first = coder_role.SYSTEM.splitlines()[0]
    monkeypatch.setattr(coder_role, "SYSTEM", coder_role.SYSTEM.replace(first, first + " Be brief.", 1))
    report = replay(find_repository(repo), run_id)
    assert report.exit_code == 1
    assert report.divergence is not None
    assert report.divergence.role == "coder" and report.divergence.agent == "app"
    assert report.divergence.turn == 1 and report.divergence.what == "system prompt"
    assert "+" + first + " Be brief." in report.divergence.diff
    assert "-" + first in report.divergence.diff
    assert "diverged at coder 'app', turn 1" in "\n".join(report.lines())
    assert snapshot(repo) == before



def test_a_command_coder_cannot_be_replayed(repo: Path) -> None:
    state = find_repository(repo).state_dir
    Journal(state, "cmd-run").append(RunStarted(run="cmd-run", task="t", target="main", base="HEAD", options={
        "models": {"planner": "m", "coder": "command:agent -p {prompt}", "reviewer": "m"}}))
    proc = cli(repo, "replay", "cmd-run")
    assert_error(proc, 2, "command:agent", "cannot be replayed")


def test_export_holds_the_parts_redacted_with_a_size_report(repo: Path, tmp_path: Path) -> None:
    run_id = record(repo, task=f"do the task; the token is {SECRET}")
    before = snapshot(repo)
    output = tmp_path / "bug.tar.gz"
    proc = cli(repo, "export", run_id, "--output", str(output))
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(output) as archive:
        files = {m.name.partition("/")[2]: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]
    assert {"events.jsonl", "transcripts/planner-planner.jsonl", "transcripts/coder-app.jsonl",
            "transcripts/coder-docs.jsonl", "transcripts/reviewer-app.jsonl", "notes.json", "plan.json",
            "version.txt", "manifest.json"} <= set(files)
    assert all(SECRET.encode() not in data for data in files.values())
    assert b"[REDACTED:env:PAYMENTS_API_TOKEN]" in files["events.jsonl"]
    notes = json.loads(files["notes.json"])
    assert notes and all(note["run"] == run_id for note in notes.values())
    assert [s["id"] for s in json.loads(files["plan.json"])["subtasks"]] == ["app", "docs"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["run"] == run_id and manifest["version"] == __version__
    sizes = {p["name"]: p["bytes"] for p in manifest["parts"]}
    assert sizes["events.jsonl"] == len(files["events.jsonl"])
    for name, size in sizes.items():
        assert f"{size:>10}  {name}" in proc.stdout
    assert str(output) in proc.stdout
    assert snapshot(repo) == before


def test_the_demo_replays_to_its_trees(tmp_path: Path) -> None:
    """The demo's settings come from gitteam itself (flags, not a file) and its agents write memory in
    parallel: a replay must use the recorded settings, and memory ids drawn anew must not count as changes."""
    demo = tmp_path / "demo"
    made = cli(tmp_path, "demo", "--dir", str(demo))
    assert made.returncode == 0, made.stderr
    [run_id] = [path.name for path in (demo / ".git" / "gitteam" / "runs").iterdir()]
    before = git(demo, "for-each-ref", "--format=%(refname) %(objectname)")

    replayed = cli(demo, "replay", run_id)

    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "every agent reached the recorded tree" in replayed.stdout + replayed.stderr
    assert git(demo, "for-each-ref", "--format=%(refname) %(objectname)") == before


def test_command_durations_are_not_a_difference() -> None:
    """The `run` tool's result starts with how long the command took; a replay's command takes another time."""
    from gitteam.run.replay_model import without_nonces

    def said(text: str) -> list[dict[str, object]]:
        return [{"role": "tool", "content": text}]

    assert without_nonces(said("exit 127 after 0.1s\nnot found")) == without_nonces(
        said("exit 127 after 0.0s\nnot found"))
    assert without_nonces(said("timed out after 30.0s\n")) == without_nonces(said("timed out after 29.9s\n"))
    assert without_nonces(said("exit 0 after 0.1s\n1")) != without_nonces(said("exit 0 after 0.1s\n2"))

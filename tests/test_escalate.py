"""A run that needs a person says so beyond the terminal: the user's [run] notify command, a CI annotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import commit_files
from scripts import approve, block, call, done, plan_turn, script, subtask, write_script

NOTE = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(' | '.join(sys.argv[2:]))"


def gitteam(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def notify_into(path: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    command = f"{sys.executable} -c {json.dumps(NOTE)} {path} {{state}} {{run}} {{message}}"
    config.write_text(f"[run]\nnotify = {json.dumps(command)}\n")


def one_writer(tmp_path: Path, reviews: list[dict[str, object]] | None = None, content: str = "A") -> str:
    data = script([plan_turn([subtask("a", ["a.txt"])])],
                  {"a": [call("write_file", path="a.txt", content=content), done("wrote a")]},
                  reviewer={"*": reviews or [approve()]})
    return f"replay:{write_script(tmp_path / f's-{content}.json', data)}"


def test_a_refused_run_runs_the_notify_command_and_annotates_the_workflow(repo: Path, tmp_path: Path) -> None:
    told = tmp_path / "told.txt"
    notify_into(told)
    ran = gitteam(repo, "run", "--yes", "--json", "--model", one_writer(tmp_path, [block("leaks the key")]), "do a",
                  env={"GITHUB_ACTIONS": "true"})
    assert ran.returncode == 3, ran.stderr
    run = json.loads(ran.stdout)["run"]
    state, named, message = told.read_text().split(" | ", 2)
    assert (state, named) == ("refused", run) and "leaks the key" in message
    assert f"::error title=gitteam run {run} refused::" in ran.stderr  # stdout stays --json's alone


def test_a_pending_run_notifies_and_a_merged_one_does_not(repo: Path, tmp_path: Path) -> None:
    told = tmp_path / "told.txt"
    notify_into(told)
    merged = gitteam(repo, "run", "--yes", "--model", one_writer(tmp_path), "do a")
    assert merged.returncode == 0, merged.stderr
    assert not told.exists()  # nobody needs to act on a merged run
    pending = gitteam(repo, "run", "--no-merge", "--model", one_writer(tmp_path, content="AA"), "do a again",
                      env={"GITHUB_ACTIONS": "true"})
    assert pending.returncode == 0, pending.stderr
    assert told.read_text().startswith("pending | ")
    assert "::notice title=gitteam run" in pending.stderr


def test_a_notify_command_that_fails_changes_nothing_of_the_run(repo: Path, tmp_path: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[run]\nnotify = "/nonexistent/notify-send {message}"\n')
    ran = gitteam(repo, "run", "--yes", "--model", one_writer(tmp_path, [block("no")]), "do a")
    assert ran.returncode == 3
    assert "[run] notify failed" in ran.stderr and "Traceback" not in ran.stderr


def test_a_repositorys_config_cannot_set_the_notify_command(repo: Path, tmp_path: Path) -> None:
    told = tmp_path / "told.txt"
    command = f"{sys.executable} -c {json.dumps(NOTE)} {told} {{state}}"
    (repo / ".gitteam.toml").write_text(f"[run]\nnotify = {json.dumps(command)}\n")
    commit_files(repo, {".gitteam.toml": (repo / ".gitteam.toml").read_text()})
    ran = gitteam(repo, "run", "--yes", "--model", one_writer(tmp_path, [block("no")]), "do a")
    assert ran.returncode == 3
    assert not told.exists()  # a command of the repository's choosing never runs with the user's authority
    assert "run.notify" in ran.stderr

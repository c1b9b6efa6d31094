"""The fixed interfaces of CONTRACT.md, checked the way a user or a CI script meets them: `python -m gitteam` in
a subprocess without a terminal (stdin is /dev/null), on real temporary repositories, every model a replay script.

Each test names the contract point it holds; the pipeline's inner workings are the other test modules' business.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main

import loopback
from conftest import commit_files, git
from crews import configure, home
from gitteam.cli import app
from loopback import write_user_config
from pausing import interrupt, paused, release, wait_reached
from scripts import (
    approve,
    blob,
    block,
    call,
    cli,
    coder_writes,
    done,
    events,
    note,
    plan_turn,
    rev,
    script,
    sha,
    spec,
    status,
    subtask,
    turn,
    write_script,
)


def gitteam(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Like scripts.cli, from any directory and with extra environment variables."""
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def one_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout holds exactly one JSON document (json.loads refuses anything before or after it)."""
    data = json.loads(proc.stdout)
    assert isinstance(data, dict), proc.stdout
    return data


def one_subtask(path: str = "src/app.py", content: str = "def main():\n    return 2\n") -> dict[str, Any]:
    return script(planner=[plan_turn([subtask("app", [path])])],
                  coder={"app": [coder_writes(path, content), done("returns 2")]})


def saved(tmp_path: Path, data: dict[str, Any], name: str = "script.json") -> str:
    return spec(write_script(tmp_path / name, data))


# --- commands: every one accepts --repo PATH --------------------------------------------------------------


def leaf_commands() -> dict[str, list[str]]:
    """Every command of the CLI (subcommands of groups included) -> its option names."""
    found: dict[str, list[str]] = {}

    def walk(command: Any, prefix: str) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, f"{prefix} {name}".strip())
            return
        found[prefix] = [opt for param in command.params for opt in getattr(param, "opts", [])]

    walk(typer.main.get_command(app), "")
    return found


def test_every_command_accepts_repo() -> None:
    commands = leaf_commands()
    for name in ("run", "plan", "status", "show", "approve", "reject", "resume", "abort", "review",
                 "hook install", "hook uninstall", "memory list", "memory add", "memory search", "cost", "clean",
                 "demo", "init"):
        assert name in commands, name
    missing = [name for name, options in commands.items() if "--repo" not in options]
    assert missing == []


def test_repo_option_works_from_outside_any_repository(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    before = status(repo)
    ran = gitteam(outside, "run", "make main return 2", "--repo", str(repo), "--model",
                  saved(tmp_path, one_subtask()), "--no-merge", "--json")
    assert ran.returncode == 0, ran.stderr
    result = one_json(ran)
    assert result["state"] == "pending"
    shown = gitteam(outside, "status", result["run"], "--repo", str(repo), "--json")
    assert json.loads(shown.stdout)[0]["state"] == "pending"
    approved = gitteam(outside, "approve", result["run"], "--repo", str(repo), "--json")
    assert approved.returncode == 0, approved.stderr
    assert one_json(approved)["state"] == "merged"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    assert status(repo) == before

    made = tmp_path / "demo-repo"
    demo = gitteam(outside, "demo", "--repo", str(made), "--json")
    assert demo.returncode == 0, demo.stderr
    assert one_json(demo)["state"] == "merged"
    assert (made / ".git" / "gitteam").is_dir()


# --- --json: one document on stdout, progress on stderr, failures included --------------------------------


@pytest.mark.parametrize("args", [
    ["run", "x", "--model", "nosuch:model"],
    ["run", "x", "--model", "command:aider --yes"],
    ["approve", "no-such-run"],
    ["resume", "no-such-run"],
    ["reject", "no-such-run"],
    ["status", "no-such-run"],
])
def test_json_failures_still_give_one_json_document(repo: Path, args: list[str]) -> None:
    proc = cli(repo, *args, "--json")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    result = one_json(proc)
    assert result["exit_code"] == 2 and result["state"] == "error"
    assert result["message"] and result["message"] in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_json_pending_then_approve_json(repo: Path, tmp_path: Path) -> None:
    """--no-merge leaves the run waiting for approve; exit 0 with "state": "pending"; approve fast-forwards."""
    base = sha(repo, "main")
    before = status(repo)
    ran = cli(repo, "run", "make main return 2", "--model", saved(tmp_path, one_subtask()), "--no-merge", "--json")
    assert ran.returncode == 0, ran.stderr
    result = one_json(ran)
    assert (result["state"], result["exit_code"]) == ("pending", 0)
    assert "planned 1 subtask" in ran.stderr  # progress goes to stderr
    assert sha(repo, "main") == base
    approved = cli(repo, "approve", result["run"], "--json")
    assert approved.returncode == 0, approved.stderr
    assert one_json(approved)["state"] == "merged"
    assert git(repo, "merge-base", "--is-ancestor", base, "main") == ""
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    assert status(repo) == before


def test_without_a_terminal_and_without_yes_the_run_is_left_pending(repo: Path, tmp_path: Path) -> None:
    base = sha(repo, "main")
    ran = cli(repo, "run", "make main return 2", "--model", saved(tmp_path, one_subtask()))
    assert ran.returncode == 0, ran.stderr
    assert "pending" in ran.stdout and "gitteam approve" in ran.stdout  # the result; progress went to stderr
    assert sha(repo, "main") == base


# --- --target, --max-agents -------------------------------------------------------------------------------


def test_target_moves_a_branch_that_is_not_checked_out(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "release")
    main = sha(repo, "main")
    (repo / "scratch.txt").write_text("the user's own file\n")
    before = status(repo)
    ran = cli(repo, "run", "make main return 2", "--model", saved(tmp_path, one_subtask()), "--yes",
              "--target", "release", "--json")
    assert ran.returncode == 0, ran.stderr
    assert one_json(ran)["state"] == "merged"
    assert blob(repo, "release", "src/app.py") == b"def main():\n    return 2\n"
    assert git(repo, "merge-base", "--is-ancestor", main, "release") == ""
    assert sha(repo, "main") == main
    assert status(repo) == before
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 1\n"


def two_independent(first_calls: dict[str, Path]) -> dict[str, Any]:
    """Two subtasks; each coder's first call pauses at its marker in `first_calls`."""
    look = call("list_files")
    return script(
        planner=[plan_turn([subtask("one", ["one.txt"]), subtask("two", ["two.txt"])])],
        coder={"one": [paused(look, first_calls["one"]), coder_writes("one.txt", "1\n"), done()],
               "two": [paused(look, first_calls["two"]), coder_writes("two.txt", "2\n"), done()]},
        reviewer={"one": [approve()], "two": [approve()], "integration": [approve()]},
    )


@pytest.mark.parametrize("max_agents", [1, 2])
def test_max_agents_bounds_the_coders_at_once(repo: Path, tmp_path: Path, max_agents: int) -> None:
    first_calls = {name: tmp_path / f"first-{name}" for name in ("one", "two")}
    if max_agents == 1:
        release(*first_calls.values())  # nothing held: one coder at a time cannot wait for the other
    proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "two files", "--model",
                             saved(tmp_path, two_independent(first_calls)), "--yes", "--max-agents", str(max_agents),
                             "--json"], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if max_agents == 2:
        wait_reached(proc, *first_calls.values())  # both coders inside a model call at once
        release(*first_calls.values())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    run = json.loads(out)["run"]
    order = [(e["event"], e.get("agent")) for e in events(repo, run)
             if e["event"] in ("agent_started", "agent_committed")]
    starts = [n for n, (kind, _) in enumerate(order) if kind == "agent_started"]
    first_commit = next(n for n, (kind, _) in enumerate(order) if kind == "agent_committed")
    overlapped = starts[1] < first_commit
    assert overlapped == (max_agents == 2), order


# --- exit codes -------------------------------------------------------------------------------------------


def test_exit_codes_of_run_resume_and_approve(repo: Path, tmp_path: Path) -> None:
    empty_coder = script(planner=[plan_turn([subtask("app", ["src/app.py"])])], coder={"app": []})
    failed = cli(repo, "run", "x", "--model", saved(tmp_path, empty_coder, "s1.json"), "--yes", "--json")
    assert failed.returncode == 1, failed.stderr
    run = one_json(failed)["run"]
    assert one_json(failed)["exit_code"] == 1
    resumed = cli(repo, "resume", run, "--model", saved(tmp_path, one_subtask(), "s2.json"), "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert one_json(resumed)["state"] == "merged"

    blocked = one_subtask("src/other.py", "X = 1\n")
    blocked["reviewer"] = {"*": [block()]}
    refused = cli(repo, "run", "x", "--model", saved(tmp_path, blocked, "s3.json"), "--yes", "--json")
    assert refused.returncode == 3, refused.stderr
    assert one_json(refused)["exit_code"] == 3

    priced = one_subtask("src/third.py", "Y = 1\n")
    priced["prices"] = {"input": 1000.0, "output": 1000.0}
    broke = cli(repo, "run", "x", "--model", saved(tmp_path, priced, "s4.json"), "--yes", "--budget", "0.01",
                "--json")
    assert broke.returncode == 4, broke.stderr
    assert one_json(broke)["exit_code"] == 4

    pending = cli(repo, "run", "x", "--model", saved(tmp_path, one_subtask("src/fourth.py", "Z = 1\n"), "s5.json"),
                  "--no-merge", "--json")
    pending_run = one_json(pending)["run"]
    rejected = cli(repo, "reject", pending_run, "--json")
    assert rejected.returncode == 5, rejected.stderr
    assert one_json(rejected)["state"] == "rejected"
    assert cli(repo, "approve", pending_run).returncode == 2
    assert cli(repo, "run", "x", "--max-agents", "0").returncode == 2


def test_exit_codes_of_review(repo: Path, tmp_path: Path) -> None:
    base = sha(repo, "main")
    commit_files(repo, {"src/app.py": "def main():\n    return 3\n"})
    assert cli(repo, "review", "--base", base, "--checks-only").returncode == 0
    blocking = {"gitteam_replay": 1, "planner": [], "coder": {}, "reviewer": {"range": [block()]}}
    refused = cli(repo, "review", "--base", base, "--reviewer", saved(tmp_path, blocking))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    approving = {"gitteam_replay": 1, "planner": [], "coder": {}, "reviewer": {"range": [approve()]}}
    assert cli(repo, "review", "--base", base, "--reviewer", saved(tmp_path, approving, "a.json")).returncode == 0
    assert cli(repo, "review", "--base", base, "--format", "nonsense").returncode == 2


# --- model specs: precedence end to end, command: only for the coder ---------------------------------------


def test_model_precedence_through_the_cli(repo: Path, tmp_path: Path) -> None:
    """defaults < user config < .gitteam.toml < GITTEAM_MODEL < --model < --planner/--coder/--reviewer."""
    nothing = {"gitteam_replay": 1, "planner": [], "coder": {}, "reviewer": {}}  # the run stops after it starts
    specs = {name: saved(tmp_path, nothing, f"{name}.json") for name in ("user", "repo", "env", "model", "coder")}
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    user_config.parent.mkdir(parents=True)

    def models(*args: str, env: dict[str, str] | None = None) -> dict[str, str]:
        proc = gitteam(repo, "run", "x", "--json", *args, env=env)
        assert proc.returncode == 1, proc.stderr
        started = events(repo, one_json(proc)["run"], "run_started")[0]
        found: dict[str, str] = started["options"]["models"]
        return found

    user_config.write_text(f'[roles]\nplanner = "{specs["user"]}"\ncoder = "{specs["user"]}"\n'
                           f'reviewer = "{specs["user"]}"\n')
    assert set(models().values()) == {specs["user"]}
    (repo / ".gitteam.toml").write_text(f'[roles]\nplanner = "{specs["repo"]}"\ncoder = "{specs["repo"]}"\n')
    assert models() == {"planner": specs["repo"], "coder": specs["repo"], "reviewer": specs["user"]}
    env = {"GITTEAM_MODEL": specs["env"]}
    assert set(models(env=env).values()) == {specs["env"]}
    assert set(models("--model", specs["model"], env=env).values()) == {specs["model"]}
    assert models("--model", specs["model"], "--coder", specs["coder"], env=env) == {
        "planner": specs["model"], "coder": specs["coder"], "reviewer": specs["model"]}
    assert models("--reviewer", specs["coder"], env=env) == {
        "planner": specs["env"], "coder": specs["env"], "reviewer": specs["coder"]}


@pytest.mark.parametrize("how", ["flag", "env", "file", "planner", "reviewer"])
def test_command_for_every_role_is_refused_pointing_to_coder(repo: Path, how: str) -> None:
    args, env = ["run", "x"], {}
    if how == "flag":
        args += ["--model", "command:aider --yes"]
    elif how == "env":
        env["GITTEAM_MODEL"] = "command:aider --yes"
    elif how == "file":
        (repo / ".gitteam.toml").write_text('[roles]\nplanner = "command:aider"\ncoder = "command:aider"\n'
                                            'reviewer = "command:aider"\n')
    else:
        args += ["--model", "replay:demo", f"--{how}", "command:aider --yes"]
    proc = gitteam(repo, *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "--coder" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((repo / ".git" / "gitteam").glob("runs/*"))  # refused before any run started


# --- agent tools: names and argument names, optional ones included -----------------------------------------


def test_every_tool_with_every_argument_is_accepted(repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {"src/old.py": "OLD = 1\n", "tests/test_app.py": "import unittest\n"})
    # the allow-list counts only from the user config
    write_user_config(home(), f'[commands]\nallowed = ["{sys.executable} -c pass"]\n')
    reads = [call("list_files"), call("list_files", glob="src/*.py"),
             call("read_file", path="src/app.py"), call("read_file", path="src/app.py", start_line=1, end_line=2),
             call("search", pattern="main"), call("search", pattern="main", glob="*.py"),
             call("recall"), call("recall", query="conventions", tags=["style"]),
             call("remember", content="main() lives in src/app.py"),
             call("remember", content="tabs are never used", tags=["style"])]
    plan = {"call": "submit_plan", "args": {"summary": "two steps", "subtasks": [
        {"id": "app", "title": "Return 2", "instructions": "Make main return 2.",
         "files": ["src/app.py", "src/new.py", "src/old.py"]},
        {"id": "docs", "title": "Document", "instructions": "Say so.", "files": ["README.md"],
         "depends_on": ["app"]}]}}
    review = call("submit_review", decision="APPROVE", summary="fine", findings=[
        {"file": "src/app.py", "severity": "info", "message": "ok"},
        {"file": "src/app.py", "line": 2, "severity": "minor", "message": "ok", "suggestion": "keep it"}])
    data = script(
        planner=[turn(*reads), plan],
        coder={"app": [turn(*reads),
                       turn(call("write_file", path="src/new.py", content="NEW = 1\r\n"),
                            call("edit_file", path="src/app.py", old="return 1", new="return 2"),
                            call("delete_file", path="src/old.py"),
                            call("run", command=f"{shlex.quote(sys.executable)} -c pass")),
                       done("returns 2")],
               "docs": [coder_writes("README.md", "# project\n\nmain returns 2\n"), done("documented")]},
        reviewer={"app": [turn(*reads[:8]), review], "docs": [review], "integration": [review]},
    )
    ran = cli(repo, "run", "make main return 2", "--model", saved(tmp_path, data), "--yes", "--json")
    assert ran.returncode == 0, ran.stderr
    run = one_json(ran)["run"]
    assert events(repo, run, "tool_refused") == []
    assert blob(repo, "main", "src/new.py") == b"NEW = 1\r\n"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    assert blob(repo, "main", "src/old.py") is None


# --- a subtask's fields reach its coder verbatim -----------------------------------------------------------

DUMP_PROMPT = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())"


def test_a_subtasks_fields_reach_its_coder_verbatim(repo: Path, tmp_path: Path) -> None:
    instructions = ('Add "power" to ops.py:\n\n    def power(a, b):\n\t\treturn a ** b\n\n'
                    'Call done only when C:\\path\\x and «ü» are handled.')
    title = 'Power "op" \\ with tab\tand ünïcode'
    files = ["src/app.py", "docs/a b.md"]
    data = script(planner=[plan_turn([{"id": "power_op.v2", "title": title, "instructions": instructions,
                                       "files": files}])], coder={}, reviewer={"*": [block()]})
    dump = tmp_path / "prompt.txt"
    # where the command dumps its prompt must be writable in the sandbox
    write_user_config(home(), f"[sandbox]\nread_write = [{json.dumps(str(tmp_path))}]\n")
    coder = "command:" + shlex.join([sys.executable, "-c", DUMP_PROMPT, str(dump)])
    ran = cli(repo, "run", "x", "--model", saved(tmp_path, data), "--coder", coder, "--yes")
    assert ran.returncode == 3, ran.stderr  # the reviewer blocks: the prompt is what this test is after
    prompt = dump.read_text()
    for text in ("power_op.v2", title, instructions, *files):
        assert text in prompt, text


# --- what a run leaves in git ------------------------------------------------------------------------------


def test_notes_show_in_git_log_and_refs_stay_where_the_contract_puts_them(repo: Path, tmp_path: Path) -> None:
    data = one_subtask()
    data["coder"]["app"].insert(0, call("remember", content="main() returns the exit code", tags=["api"]))
    data["reviewer"] = {"*": [approve(findings=[{"file": "src/app.py", "severity": "info", "message": "nice"}])]}
    ran = cli(repo, "run", "x", "--model", saved(tmp_path, data), "--no-merge", "--json")
    run = one_json(ran)["run"]
    refs = git(repo, "for-each-ref", "--format=%(refname)").split()
    assert any(r.startswith("refs/gitteam/") for r in refs)  # the pending run's locks
    assert cli(repo, "approve", run).returncode == 0
    refs = git(repo, "for-each-ref", "--format=%(refname)").split()
    notes = [r for r in refs if r.startswith("refs/notes/")]
    assert "refs/notes/gitteam" in notes
    memory = [r for r in notes if r != "refs/notes/gitteam"]
    assert memory and not any(r.startswith("refs/notes/gitteam/") for r in memory)
    for ref in refs:
        assert ref.startswith(("refs/heads/", "refs/notes/", "refs/gitteam/")), ref
        if ref.startswith("refs/heads/"):
            assert ref == "refs/heads/main" or ref.startswith(f"refs/heads/gitteam/{run}/"), ref
    head = sha(repo, f"gitteam/{run}/app")
    log = git(repo, "log", "-1", "--notes=gitteam", head)
    provenance = note(repo, head)
    for key in ("run", "agent", "role", "model", "tokens", "cost", "review"):
        assert key in provenance, key
        assert f'"{key}"' in log
    assert (provenance["run"], provenance["agent"], provenance["role"]) == (run, "app", "coder")
    assert provenance["review"]["decision"] == "APPROVE"
    assert provenance["review"]["findings"][0]["message"] == "nice"


def test_run_state_lives_in_the_common_dir_when_run_from_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    (linked / "notes.txt").write_text("uncommitted, elsewhere\n")
    before, main_before = status(linked), status(repo)
    main = sha(repo, "main")
    ran = cli(linked, "run", "x", "--model", saved(tmp_path, one_subtask()), "--yes", "--json")
    assert ran.returncode == 0, ran.stderr
    result = one_json(ran)
    assert (result["state"], result["target"]) == ("merged", "feature")
    common = Path(git(linked, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    assert common == (repo / ".git").resolve()
    assert (common / "gitteam" / "runs" / result["run"]).is_dir()
    assert not (common / "worktrees" / "linked" / "gitteam").exists()
    assert (linked / "src" / "app.py").read_text() == "def main():\n    return 2\n"  # checked out: fast-forwarded
    assert status(linked) == before and status(repo) == main_before
    assert sha(repo, "main") == main
    assert json.loads(cli(repo, "status", result["run"], "--json").stdout)[0]["state"] == "merged"
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 2  # the user's two; the run's are gone


def test_worktrees_are_removed_when_a_run_ends_unless_keep(repo: Path, tmp_path: Path) -> None:
    def count() -> int:
        return git(repo, "worktree", "list", "--porcelain").count("worktree ")

    ran = cli(repo, "run", "x", "--model", saved(tmp_path, one_subtask(), "a.json"), "--yes")
    assert ran.returncode == 0, ran.stderr
    assert count() == 1
    kept = cli(repo, "run", "x", "--model", saved(tmp_path, one_subtask("b.txt", "b\n"), "b.json"), "--yes",
               "--keep")
    assert kept.returncode == 0, kept.stderr
    assert count() == 2
    assert rev(repo, "main") is not None


def test_every_agent_commit_carries_a_note_even_when_interrupted(repo: Path, tmp_path: Path) -> None:
    """Ctrl-C with the only coder in the main thread: its work is committed, and that commit has its note."""
    second = tmp_path / "second-turn"
    data = script(planner=[plan_turn([subtask("app", ["src/app.py"])])],
                  coder={"app": [coder_writes("src/app.py", "X = 1\n"),
                                 paused(coder_writes("src/app.py", "X = 2\n"), second), done()]})
    path = write_script(tmp_path / "slow.json", data)
    proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "x", "--yes", "--max-agents", "1",
                             "--model", spec(path)], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_reached(proc, second)  # the first write is done; the coder is inside its second model call
    interrupt(proc)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    (run,) = [log.parent.name for log in (repo / ".git" / "gitteam" / "runs").glob("*/events.jsonl")]
    base = sha(repo, "main")
    agent_commits = git(repo, "rev-list", f"{base}..gitteam/{run}/app").split()
    assert agent_commits, "the interrupted agent's work is committed"
    assert blob(repo, f"gitteam/{run}/app", "src/app.py") == b"X = 1\n"  # the write before the interrupt
    for commit in agent_commits:
        provenance = note(repo, commit)
        assert (provenance["run"], provenance["agent"], provenance["role"]) == (run, "app", "coder")


@pytest.mark.usefixtures("loopback_env")
def test_a_subtasks_fields_reach_a_model_coder_verbatim(repo: Path) -> None:
    """The same through a provider: the coder's first message, as the API receives it."""
    instructions = 'Return 2:\n\n    def main():\n        return 2\n\nThen "call done" when C:\\x is handled.'
    with loopback.team("openai") as crew:
        configure(crew, "small")
        crew.planner(loopback.plan({"id": "app", "title": 'Title "q" \\ ü', "instructions": instructions,
                                    "files": ["src/app.py"]}))
        crew.coder("app", loopback.turn(loopback.call("write_file", path="src/app.py", content="X = 2\n"),
                                        loopback.call("done", summary="ok")))
        crew.reviewer("app", loopback.approve())
        result = loopback.run(repo, "x")
        assert result.state == "merged", result.message
        firsts = [loopback.first_user_text(body) for body in crew.bodies("coder", "app")]
    assert firsts
    for text in ("app", 'Title "q" \\ ü', instructions, "src/app.py"):
        assert text in firsts[0], text


CURSOR_POSITION_REQUEST = b"\x1b[6n"


def prompt_waiting(seen: bytes, master: int) -> bool:
    """The approval prompt is drawn to its last choice and the terminal is out of line mode: the prompt is
    reading keys, so a key sent now is its answer (sent earlier, a line discipline in canonical mode would hold
    it back as part of a line)."""
    question = seen.rfind(b"Fast-forward main")
    drawn = question >= 0 and b"keep it pending" in seen[question:]  # the menu drawn to its last choice
    return drawn and not termios.tcgetattr(master)[3] & termios.ICANON


def test_json_stays_alone_on_stdout_when_a_terminal_is_asked(repo: Path, tmp_path: Path) -> None:
    """stdin and stderr on a terminal, stdout redirected: the approval prompt appears on the terminal."""
    master, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "x", "--json", "--model",
                             saved(tmp_path, one_subtask())], cwd=repo, stdin=terminal, stderr=terminal,
                            stdout=subprocess.PIPE, text=True)
    os.close(terminal)
    seen, answered, positions = b"", False, 0
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        while seen.count(CURSOR_POSITION_REQUEST) > positions:  # answered as a terminal does, without waiting
            os.write(master, b"\x1b[1;1R")
            positions += 1
        if not answered and prompt_waiting(seen, master):
            os.write(master, b"\r")  # the first choice: approve
            answered = True
    out, _ = proc.communicate(timeout=30)
    os.close(master)
    assert answered, seen.decode(errors="replace")
    assert proc.returncode == 0, seen.decode(errors="replace")
    assert json.loads(out)["state"] == "merged"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"

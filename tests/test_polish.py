"""The terminal experience of issue 15, driven as a person drives it: `python -m gitteam` in a subprocess on real
repositories, each run played by a replay script. Every test here failed on the main it was written against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from crews import home
from scripts import (
    assert_error,
    cli,
    coder_writes,
    done,
    events,
    plan_turn,
    script,
    sha,
    spec,
    subtask,
    write_script,
)


def one_subtask(path: str = "src/app.py", content: str = "def main():\n    return 2\n") -> dict[str, Any]:
    return script(planner=[plan_turn([subtask("app", [path])])],
                  coder={"app": [coder_writes(path, content), done("returns 2")]})


def saved(tmp_path: Path, data: dict[str, Any], name: str = "script.json") -> str:
    return spec(write_script(tmp_path / name, data))


def pending_run(repo: Path, tmp_path: Path, task: str = "make main return 2", name: str = "script.json",
                path: str = "src/app.py") -> str:
    ran = cli(repo, "run", task, "--no-merge", "--json", "--model", saved(tmp_path, one_subtask(path), name))
    assert ran.returncode == 0, ran.stderr
    run: str = json.loads(ran.stdout)["run"]
    return run


# -- discoverability --------------------------------------------------------------------------------------


def test_version_and_short_help(tmp_path: Path) -> None:
    from gitteam import __version__

    version = cli(tmp_path, "--version")
    assert (version.returncode, version.stdout) == (0, f"gitteam {__version__}\n")
    for args in (["-h"], ["run", "-h"], ["memory", "add", "-h"]):
        proc = cli(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Usage: gitteam"), proc.stdout


def test_shell_completion_is_offered(tmp_path: Path) -> None:
    top = cli(tmp_path, "--help")
    assert "--install-completion" in top.stdout
    shown = cli(tmp_path, "--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "_GITTEAM_COMPLETE" in shown.stdout


def test_usage_lines_name_arguments_plainly(tmp_path: Path) -> None:
    """No `{TASK}` (typer's mark of a required argument) and no `[[RUN]]` (a metavar bracketed twice)."""
    expected = {"resume": "Usage: gitteam resume [OPTIONS] RUN", "status": "Usage: gitteam status [OPTIONS] [RUN]",
                "show": "Usage: gitteam show [OPTIONS] RUN [AGENT]", "cost": "Usage: gitteam cost [OPTIONS] [RUN]",
                "memory add": "Usage: gitteam memory add [OPTIONS] CONTENT"}
    for command, usage in expected.items():
        proc = cli(tmp_path, *command.split(), "--help")
        assert proc.stdout.splitlines()[0] == usage, proc.stdout
    missing = cli(tmp_path, "resume")
    assert missing.returncode == 2
    assert "Usage: gitteam resume [OPTIONS] RUN" in missing.stderr


def test_every_option_and_argument_of_every_command_has_help() -> None:
    import typer.main

    from gitteam.cli import app

    missing: list[str] = []

    def walk(command: Any, name: str) -> None:
        for sub, child in (getattr(command, "commands", None) or {}).items():
            walk(child, f"{name} {sub}")
        if not getattr(command, "commands", None):
            missing.extend(f"{name} {param.name}" for param in command.params if not getattr(param, "help", None))

    walk(typer.main.get_command(app), "gitteam")
    assert missing == []


# -- run ids by prefix ------------------------------------------------------------------------------------


def test_every_command_takes_a_unique_prefix_of_a_run_id(repo: Path, tmp_path: Path) -> None:
    run = pending_run(repo, tmp_path)
    prefix = run[:6]
    status = cli(repo, "status", prefix, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)[0]["run"] == run
    shown = cli(repo, "show", prefix, "app")
    assert shown.returncode == 0 and "return 2" in shown.stdout, shown.stderr
    assert json.loads(cli(repo, "cost", prefix, "--json").stdout)[0]["run"] == run
    base = sha(repo, "main")
    approved = cli(repo, "approve", prefix, "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["state"] == "merged"
    assert git(repo, "merge-base", "--is-ancestor", base, "main") == ""
    assert sha(repo, "main") != base


def test_a_prefix_two_runs_share_is_refused_naming_both(repo: Path, tmp_path: Path) -> None:
    first = pending_run(repo, tmp_path, name="one.json")
    second = pending_run(repo, tmp_path, name="two.json", path="README.md")  # another file: no lock waits
    shared = "make-main"
    assert first.startswith(shared) and second.startswith(shared)
    before = sha(repo, "main")
    assert_error(cli(repo, "approve", shared), 2, first, second, "give more of the id")
    assert_error(cli(repo, "status", "nosuch"), 2, "no run named 'nosuch'")
    assert sha(repo, "main") == before


# -- output -----------------------------------------------------------------------------------------------


def test_the_result_line_reaches_stdout_and_progress_stays_on_stderr(repo: Path, tmp_path: Path) -> None:
    """`gitteam run ... | tee log` keeps what happened."""
    ran = cli(repo, "run", "make main return 2", "--yes", "--model", saved(tmp_path, one_subtask()))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("merged"), ran.stdout
    assert "merged" not in ran.stderr.splitlines()[-1]


# -- fail before spending ---------------------------------------------------------------------------------


def agents_started(repo: Path, run: str) -> list[dict[str, Any]]:
    return events(repo, run, "agent_started")


def test_an_uncommitted_edit_to_a_planned_file_fails_the_run_before_any_coder(repo: Path, tmp_path: Path) -> None:
    (repo / "src" / "app.py").write_text("def main():\n    return 'mine'\n")
    base = sha(repo, "main")
    model = saved(tmp_path, one_subtask())
    ran = cli(repo, "run", "make main return 2", "--yes", "--json", "--model", model)
    result = json.loads(ran.stdout)
    assert ran.returncode == 2, ran.stderr
    assert "src/app.py" in result["message"] and "no coder was started" in result["message"]
    assert agents_started(repo, result["run"]) == []
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 'mine'\n"
    assert sha(repo, "main") == base

    git(repo, "stash")  # out of the way: resume carries on with the plan it has, and lands
    resumed = cli(repo, "resume", result["run"], "--yes", "--json", "--model", model)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "merged"
    assert git(repo, "show", "main:src/app.py") == "def main():\n    return 2"


def test_an_untracked_file_where_the_plan_adds_one_fails_the_run_before_any_coder(repo: Path,
                                                                                   tmp_path: Path) -> None:
    (repo / "NOTES.md").write_text("my notes, never committed\n")
    ran = cli(repo, "run", "write notes", "--yes", "--json", "--model",
              saved(tmp_path, one_subtask("NOTES.md", "the team's notes\n")))
    result = json.loads(ran.stdout)
    assert ran.returncode == 2 and "NOTES.md" in result["message"], ran.stdout
    assert agents_started(repo, result["run"]) == []
    assert (repo / "NOTES.md").read_text() == "my notes, never committed\n"


def test_a_run_left_pending_at_the_prompt_exits_0_and_with_yes_1(repo: Path, tmp_path: Path) -> None:
    """The person approves at the prompt while having edited a file the run changes: the target cannot move,
    the run is pending, which exits 0. The same run approved with `gitteam approve` (unattended) exits 1."""
    from gitteam.run.context import ApprovalRequest, RunOptions
    from scripts import start

    def edit_then_approve(request: ApprovalRequest) -> str:
        (repo / "src" / "app.py").write_text("def main():\n    return 'edited meanwhile'\n")
        return "approve"

    base = sha(repo, "main")
    result = start(repo, one_subtask(), RunOptions(approver=edit_then_approve))
    assert (result.state, result.exit_code) == ("pending", 0), result.message
    assert sha(repo, "main") == base
    approved = cli(repo, "approve", result.run)
    assert approved.returncode == 1, approved.stdout
    assert "pending" in approved.stdout and sha(repo, "main") == base
    assert (repo / "src" / "app.py").read_text() == "def main():\n    return 'edited meanwhile'\n"


def test_a_target_that_does_not_exist_is_refused_before_the_planner_naming_the_branches(
        repo: Path, tmp_path: Path) -> None:
    ran = cli(repo, "run", "make main return 2", "--target", "nosuch", "--model", saved(tmp_path, one_subtask()))
    assert_error(ran, 2, "no branch named 'nosuch'", "branches: main")
    assert "pass --target" not in ran.stderr
    assert not (repo / ".git" / "gitteam" / "runs").exists()  # no run was started, no planner was paid


# -- resume keeps the run's models and options ------------------------------------------------------------


def failed_before_coding(repo: Path, tmp_path: Path, *flags: str) -> tuple[str, str]:
    """A run stopped after planning (an uncommitted edit to its file, then put away): resumable."""
    (repo / "src" / "app.py").write_text("def main():\n    return 'mine'\n")
    model = saved(tmp_path, one_subtask(), "run-model.json")
    ran = cli(repo, "run", "make main return 2", "--json", "--model", model, *flags)
    assert ran.returncode == 2, ran.stdout
    git(repo, "checkout", "--", "src/app.py")
    return json.loads(ran.stdout)["run"], model


def test_resume_keeps_the_runs_models_and_yes_and_says_where_settings_differ(repo: Path, tmp_path: Path) -> None:
    run, model = failed_before_coding(repo, tmp_path, "--yes")
    other = saved(tmp_path, one_subtask(content="def main():\n    return 3\n"), "other.json")
    (repo / ".gitteam.toml").write_text(f'[roles]\nplanner = "{other}"\ncoder = "{other}"\nreviewer = "{other}"\n')

    resumed = cli(repo, "resume", run[:8], "--json")  # no --yes, no --model: the run's own

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "merged"
    assert git(repo, "show", "main:src/app.py") == "def main():\n    return 2"
    assert f"the coder stays the run's {model} (your settings now say {other}" in resumed.stderr
    resumed_events = events(repo, run, "resumed")
    assert resumed_events[-1]["models"] == {"planner": model, "coder": model, "reviewer": model}


def test_resume_with_a_model_flag_uses_it_and_says_it_replaces_the_runs(repo: Path, tmp_path: Path) -> None:
    run, model = failed_before_coding(repo, tmp_path)
    other = saved(tmp_path, one_subtask(content="def main():\n    return 3\n"), "other.json")

    resumed = cli(repo, "resume", run, "--coder", other, "--json")

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "pending"  # no --yes then, none now, no terminal: it waits
    assert f"the coder is now {other} (the run had {model})" in resumed.stderr
    assert git(repo, "show", f"gitteam/{run}/app:src/app.py") == "def main():\n    return 3"
    assert events(repo, run, "resumed")[-1]["models"]["planner"] == model


# -- plan, then run --plan --------------------------------------------------------------------------------


def plan_json(repo: Path, model: str, *flags: str, task: str = "make main return 2") -> dict[str, Any]:
    planned = cli(repo, "plan", task, "--model", model, "--json", *flags)
    assert planned.returncode == 0, planned.stderr
    data: dict[str, Any] = json.loads(planned.stdout)
    return data


def test_plan_saves_its_plan_and_run_plan_carries_it_out_without_planning_again(repo: Path,
                                                                                 tmp_path: Path) -> None:
    model = saved(tmp_path, one_subtask())  # the planner's script has one turn: a second plan would fail
    base = sha(repo, "main")
    plan = plan_json(repo, model)
    run = plan["run"]
    assert plan["waves"] == [["app"]]
    assert sha(repo, "main") == base and git(repo, "status", "--porcelain") == ""
    [planner] = json.loads(cli(repo, "cost", run, "--json").stdout)  # the planner's spend is on record
    assert planner["role"] == "planner" and planner["input_tokens"] > 0
    assert json.loads(cli(repo, "status", run, "--json").stdout)[0]["state"] == "planned"

    ran = cli(repo, "run", "--plan", run[:10], "--yes", "--json", "--model", model)

    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["state"] == "merged"
    assert git(repo, "show", "main:src/app.py") == "def main():\n    return 2"
    assert len(events(repo, run, "plan")) == 1
    roles = [row["role"] for row in json.loads(cli(repo, "cost", run, "--json").stdout)]
    assert roles.count("planner") == 1 and "coder" in roles


def test_an_integration_branch_made_but_not_journaled_is_taken_over(repo: Path, tmp_path: Path) -> None:
    """A process killed between making the integration branch and journaling it left the branch at the run's
    start: carrying the run on takes it; a branch of that name anywhere else is still refused."""
    model = saved(tmp_path, one_subtask())
    base = sha(repo, "main")
    elsewhere = plan_json(repo, model)["run"]
    git(repo, "branch", f"gitteam/{elsewhere}/integration", git(repo, "commit-tree", "-p", base, "-m", "other",
                                                                 f"{base}^{{tree}}"))
    refused = cli(repo, "run", "--plan", elsewhere, "--yes", "--model", model)
    assert refused.returncode == 1 and "already exists" in refused.stdout, refused.stdout
    assert cli(repo, "abort", elsewhere).returncode == 0  # it holds the file the next one claims
    again = saved(tmp_path, one_subtask(), "again.json")
    run = plan_json(repo, again)["run"]
    git(repo, "branch", f"gitteam/{run}/integration", base)
    ran = cli(repo, "run", "--plan", run, "--yes", "--json", "--model", again)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert git(repo, "show", "main:src/app.py") == "def main():\n    return 2"
    assert len(events(repo, run, "integration")) == 1


def test_plan_on_another_target_is_run_there(repo: Path, tmp_path: Path) -> None:
    git(repo, "branch", "release")
    model = saved(tmp_path, one_subtask())
    main_before = sha(repo, "main")
    run = plan_json(repo, model, "--target", "release")["run"]
    refused = cli(repo, "run", "--plan", run, "--target", "main", "--model", model)
    assert_error(refused, 2, "made on release, not main")
    ran = cli(repo, "run", "--plan", run, "--yes", "--json", "--model", model)
    assert ran.returncode == 0, ran.stderr
    assert git(repo, "show", "release:src/app.py") == "def main():\n    return 2"
    assert sha(repo, "main") == main_before


def test_plan_from_the_backlog_and_the_run_closes_the_item(repo: Path, tmp_path: Path) -> None:
    added = cli(repo, "memory", "add", "main should return 2", "--tag", "backlog")
    item = added.stdout.strip()
    model = saved(tmp_path, one_subtask())
    run = plan_json(repo, model, "--from-backlog", item[:10], task="")["run"]
    assert "main should return 2" in events(repo, run, "run_started")[0]["task"]
    ran = cli(repo, "run", "--plan", run, "--yes", "--model", model)
    assert ran.returncode == 0, ran.stderr
    assert item[:10] not in cli(repo, "backlog").stdout


def test_run_plan_refuses_what_is_no_saved_plan(repo: Path, tmp_path: Path) -> None:
    model = saved(tmp_path, one_subtask())
    run = plan_json(repo, model)["run"]
    assert_error(cli(repo, "run", "another task", "--plan", run), 2, "give no TASK")
    merged = cli(repo, "run", "--plan", run, "--yes", "--model", model)
    assert merged.returncode == 0, merged.stderr
    assert_error(cli(repo, "run", "--plan", run, "--yes", "--model", model), 2, "is merged, not a saved plan")


def test_work_inside_a_directory_the_plan_owns_fails_the_run_before_any_coder(repo: Path, tmp_path: Path) -> None:
    (repo / "src" / "draft.py").write_text("half written\n")
    data = script(planner=[plan_turn([subtask("app", ["src/"])])],
                  coder={"app": [coder_writes("src/app.py", "def main():\n    return 2\n"), done()]})
    ran = cli(repo, "run", "rework src", "--yes", "--json", "--model", saved(tmp_path, data))
    result = json.loads(ran.stdout)
    assert ran.returncode == 2 and "src/" in result["message"], ran.stdout
    assert agents_started(repo, result["run"]) == []
    assert (repo / "src" / "draft.py").read_text() == "half written\n"


# -- init -------------------------------------------------------------------------------------------------


def test_init_without_a_remote_explains_the_memory_refs_and_changes_no_git_config(repo: Path) -> None:
    config_before = (repo / ".git" / "config").read_text()
    proc = cli(repo, "init")
    assert proc.returncode == 0, proc.stderr
    assert "no git remote yet" in proc.stdout and "refs/notes/gitteam-memory/" in proc.stdout
    assert (repo / ".git" / "config").read_text() == config_before
    first = (repo / ".gitteam.toml").read_text().splitlines()[0]
    assert "Copy this file" not in first and first.startswith("# gitteam settings for this repository")


def test_init_says_what_a_plain_git_push_now_sends(repo: Path, tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "remote.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    proc = cli(repo, "init")
    assert proc.returncode == 0, proc.stderr
    assert "git config remote.origin.push = HEAD" in proc.stdout
    assert "a push refspec replaces push.default, so HEAD was added" in proc.stdout
    assert "git config --unset-all remote.origin.push" in proc.stdout
    assert "git fetch origin now also brings" in proc.stdout


def test_init_force_keeps_the_settings_the_user_made(repo: Path) -> None:
    from gitteam.config import load_config

    assert cli(repo, "init").returncode == 0
    path = repo / ".gitteam.toml"
    text = path.read_text().replace("# max_agents = 4\n", "max_agents = 2\n")
    path.write_text(text + '\n[models.fast]\nprovider = "openai"\nmodel = "gpt-x"\n')
    proc = cli(repo, "init", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "kept your settings: run.max_agents, models.fast" in proc.stdout
    config = load_config(repo, {})
    assert config.run.max_agents == 2
    assert "fast" in config.models
    assert "# Every setting below" in path.read_text()  # the documentation is there again


def test_init_force_on_a_broken_file_changes_nothing(repo: Path) -> None:
    path = repo / ".gitteam.toml"
    path.write_text("[run\nmax_agents = 2\n")
    assert_error(cli(repo, "init", "--force"), 2, "not valid TOML", "move it away")
    assert path.read_text() == "[run\nmax_agents = 2\n"


# -- cost at 80 columns -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("loopback_env")
def test_cost_piped_shows_whole_model_names_within_80_columns(repo: Path) -> None:
    """Through the real anthropic SDK against a loopback server: opus plans and reviews, sonnet codes."""
    from loopback import call, model_table, plan, roles, run, team, turn, write_user_config
    from loopback import subtask as loop_subtask

    with team("anthropic") as crew:
        write_user_config(home(),
                          model_table("opus", "anthropic", crew.api.url, "claude-opus-4-8")
                          + model_table("sonnet", "anthropic", crew.api.url, "claude-sonnet-4-6")
                          + roles("opus", coder="sonnet"))
        crew.planner(plan(loop_subtask("a-rather-long-subtask-id", ["src/app.py"])))
        crew.coder("a-rather-long-subtask-id",
                   turn(call("write_file", path="src/app.py", content="def main():\n    return 2\n"),
                        call("done", summary="returns 2")))
        result = run(repo)
    assert result.state == "merged", result.message

    shown = cli(repo, "cost")  # piped: rich lays it out for 80 columns

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, shown.stdout
    assert "…" not in shown.stdout
    models = {row["model"] for row in json.loads(cli(repo, "cost", "--json").stdout)}
    assert len(models) == 2
    for model in models:
        assert any(model in line for line in lines), (model, shown.stdout)


# -- wording ----------------------------------------------------------------------------------------------


def test_result_lines_say_the_state_once(repo: Path, tmp_path: Path) -> None:
    merged = cli(repo, "run", "make main return 2", "--yes", "--model", saved(tmp_path, one_subtask()))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.startswith("merged: main ") and " fast-forwarded " in merged.stdout, merged.stdout
    run = pending_run(repo, tmp_path, task="write the readme", name="readme.json", path="README.md")
    rejected = cli(repo, "reject", run)
    assert rejected.returncode == 5, rejected.stderr
    assert rejected.stdout.startswith("rejected: main is unchanged"), rejected.stdout
    status = cli(repo, "status", run)  # its subtask reached the run's integration branch, never main
    assert " integrated " in status.stdout and " merged " not in status.stdout, status.stdout


def test_a_reviewers_summary_ending_in_a_full_stop_gets_no_second_one(repo: Path, tmp_path: Path) -> None:
    from scripts import block

    data = script(planner=[plan_turn([subtask("app", ["src/app.py"])])],
                  coder={"app": [coder_writes("src/app.py", "import os\n"), done()]},
                  reviewer={"*": [block("This deletes the program.")]})
    ran = cli(repo, "run", "break it", "--yes", "--model", saved(tmp_path, data))
    assert ran.returncode == 3, ran.stdout
    assert "This deletes the program." in ran.stdout and ".." not in ran.stdout


def test_show_gives_each_rounds_own_tokens(repo: Path, tmp_path: Path) -> None:
    from scripts import approve, finding, request_changes, turn

    def writes(content: str) -> dict[str, Any]:
        return turn(coder_writes("src/app.py", content), done(), usage={"input_tokens": 1000, "output_tokens": 10})

    data = script(planner=[plan_turn([subtask("app", ["src/app.py"])])],
                  coder={"app": [writes("def main():\n    return 2\n"), writes("def main():\n    return 2  # two\n")]},
                  reviewer={"*": [request_changes("say why", [finding("src/app.py", "say why it is 2", "major", 2,
                                                                      evidence="return 2")]), approve()]})
    ran = cli(repo, "run", "make main return 2", "--yes", "--json", "--model", saved(tmp_path, data))
    assert ran.returncode == 0, ran.stderr
    shown = cli(repo, "show", json.loads(ran.stdout)["run"], "app")
    rounds = [line for line in shown.stdout.splitlines() if " round " in line]
    assert len(rounds) == 2, shown.stdout
    assert all("tokens 1,010:" in line for line in rounds), shown.stdout  # not 1,010 then 2,020


def test_no_color_means_no_bold_either(repo: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pending_run(repo, tmp_path)

    def status(**env: str) -> str:
        return subprocess.run([sys.executable, "-m", "gitteam", "status"], cwd=repo, capture_output=True, text=True,
                              env={**os.environ, "FORCE_COLOR": "1", **env}, check=True).stdout

    assert "\x1b[" in status()  # a terminal would get styles...
    assert "\x1b[" not in status(NO_COLOR="1")  # ...but NO_COLOR asks for none at all


def test_the_demos_hints_name_the_gitteam_that_ran_it(tmp_path: Path) -> None:
    """`.venv/bin/gitteam demo` as the README says, without an activated virtualenv: `gitteam` is not on PATH."""
    import os
    import subprocess
    import sys

    script_path = Path(sys.executable).parent / "gitteam"
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(script_path), "demo", "--dir", str(tmp_path / "demo")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert f"{script_path} status " in proc.stderr
    assert "\n  gitteam status" not in proc.stderr


@pytest.mark.usefixtures("loopback_env")
def test_a_connection_error_names_the_server_and_review_suggests_no_resume(repo: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    git(repo, "commit", "-q", "--allow-empty", "-m", "nothing")
    (repo / "src" / "app.py").write_text("def main():\n    return 3\n")
    git(repo, "commit", "-q", "-am", "three")
    env = {**os.environ, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.run([sys.executable, "-m", "gitteam", "review", "--base", "HEAD~1", "--model",
                           "anthropic:claude-sonnet-4-6"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert f"at http://127.0.0.1:{port}" in proc.stderr
    assert "gitteam resume" not in proc.stderr

"""The commands around the pipeline, driven as a user or CI script drives them: `python -m gitteam` in a subprocess.

Each test looks at the exit code, at what reached stdout and stderr, and at what changed in git. The pipeline
itself (run, resume, the guards) is test_pipeline.py's and test_guards.py's business; here a run is only the
material that status, show, cost, clean, approve and abort work on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gitteam.commands.demo import make_repository
from gitteam.config import load_config
from scripts import assert_error, in_process
from scripts import cli as gitteam

COMMANDS = [
    "run", "plan", "status", "show", "approve", "reject", "resume", "abort", "review", "hook install",
    "hook uninstall", "memory list", "memory add", "memory search", "cost", "clean", "demo", "init",
]

PLAN_SCRIPT: dict[str, Any] = {
    "gitteam_replay": 1,
    "planner": [
        {"call": "read_file", "args": {"path": "src/app.py"}},
        {"call": "submit_plan", "args": {
            "summary": "The code first, its test after it; the README alongside.",
            "subtasks": [
                {"id": "app", "title": "Return 2", "instructions": "main() returns 2.", "files": ["src/app.py"]},
                {"id": "readme", "title": "Document main", "instructions": "Say what main does.",
                 "files": ["README.md"]},
                {"id": "tests", "title": "Test main", "instructions": "Test that main() returns 2.",
                 "files": ["tests/test_app.py"], "depends_on": ["app"]},
            ],
        }},
    ],
}


def refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def state_entries(repo: Path) -> list[str]:
    root = repo / ".git" / "gitteam"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def write_script(tmp_path: Path, script: dict[str, Any], name: str = "script.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(script))
    return path


def events(repo: Path, run: str) -> list[dict[str, Any]]:
    path = repo / ".git" / "gitteam" / "runs" / run / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`gitteam demo --dir`: a merged run of three agents in two waves, one of them reviewed twice.

    Made once per module for the tests that only read it, in an environment as hermetic as conftest's.
    """
    home = tmp_path_factory.mktemp("demo-home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITTEAM_", "GIT_")) and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    (home / ".gitconfig").write_text("[user]\n\tname = Test\n\temail = t@example.com\n")
    path = home / "demo"
    proc = subprocess.run([sys.executable, "-m", "gitteam", "demo", "--dir", str(path), "--json"], cwd=home,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["state"] == "merged"
    return path, result["run"]


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    """The demo's repository before any run (its .gitteam.toml gives every role the bundled replay script)."""
    return make_repository(tmp_path / "calc")


def start(repo: Path, task: str, *flags: str) -> dict[str, Any]:
    proc = gitteam(repo, "run", task, "--json", *flags)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# -- help -------------------------------------------------------------------------------------------------


def test_top_level_help(tmp_path: Path) -> None:
    proc = gitteam(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "plan", "status", "review", "hook", "memory", "demo", "init"):
        assert f" {command} " in proc.stdout


def test_every_command_has_help(tmp_path: Path) -> None:
    """All in one interpreter (the entry point, as `gitteam` runs it): one process instead of eighteen."""
    code = (
        "import contextlib, io, json, sys\n"
        "from gitteam.cli import main\n"
        "results = {}\n"
        f"for command in {COMMANDS!r}:\n"
        "    sys.argv = ['gitteam', *command.split(), '--help']\n"
        "    out, err = io.StringIO(), io.StringIO()\n"
        "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            main()\n"
        "        except SystemExit as exc:\n"
        "            results[command] = [exc.code, out.getvalue(), err.getvalue()]\n"
        "print(json.dumps(results))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert sorted(results) == sorted(COMMANDS)
    for command, (exit_code, out, err) in results.items():
        assert exit_code in (0, None), (command, exit_code, err)
        assert out.startswith(f"Usage: gitteam {command} [OPTIONS]"), (command, out)
        assert err == "", (command, err)


def test_the_entry_points_collect_garbage_less_often_and_the_library_leaves_python_as_it_was(tmp_path: Path) -> None:
    """`gitteam`, `git-team` and `python -m gitteam` run `gitteam.__main__:main`, which raises the collector's
    threshold for the command's process; importing gitteam's modules, as a library or a test does, does not."""
    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"gitteam": "gitteam.__main__:main", "git-team": "gitteam.__main__:main"}
    proc = in_process(tmp_path, ["--version"], entry="gitteam.__main__",
                      before="import gc\ndefault = gc.get_threshold()\nimport gitteam.cli, gitteam.run.orchestrator\n"
                             "imported = gc.get_threshold()\n",
                      after="print(default[0], imported[0], gc.get_threshold()[0])\n")
    assert proc.returncode == 0, proc.stderr
    version, default, imported, running = proc.stdout.split("\n")[0], *proc.stdout.split()[-3:]
    assert version.startswith("gitteam ")
    assert default == imported == "700"
    assert int(running) >= 10_000


def test_help_imports_no_sdk_and_no_gitpython(tmp_path: Path) -> None:
    proc = in_process(tmp_path, ["--help"], after=(
        "assert code in (0, None), code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'openai', 'git', 'questionary'))\n"
        "print(repr(heavy), file=sys.stderr)\n"))
    assert proc.returncode == 0, proc.stderr
    assert "Usage: gitteam" in proc.stdout
    assert proc.stderr.strip() == "[]"


# -- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["frobnicate"], "No such command 'frobnicate'"),
    (["status", "--verbose"], "No such option: --verbose"),
    (["memory", "add"], "Missing argument"),
    (["run"], "Missing argument 'TASK'"),
    (["run", "x", "--max-agents", "0"], "--max-agents"),
])
def test_bad_usage_is_exit_2_with_a_short_message(repo: Path, args: list[str], needle: str) -> None:
    proc = gitteam(repo, *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 4, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [
    ["status"], ["init"], ["review"], ["memory", "list"], ["run", "x", "--model", "replay:demo"],
])
def test_outside_a_repository(tmp_path: Path, args: list[str]) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert_error(gitteam(outside, *args), 2, "not a git repository")
    assert list(outside.iterdir()) == []


def test_repo_option_pointing_nowhere(repo: Path, tmp_path: Path) -> None:
    assert_error(gitteam(repo, "status", "--repo", str(tmp_path / "missing")), 2, "not a git repository")


@pytest.mark.parametrize(("toml", "needles", "command"), [
    ("[run]\nbudgett = 1.0\n", ["run.budgett", ".gitteam.toml"], ["run", "do it", "--model", "replay:demo"]),
    ('[run]\nmax_agents = "four"\n', ["run.max_agents", ".gitteam.toml"], ["plan", "do it"]),
    ("[nonsense]\nx = 1\n", ["[nonsense]", ".gitteam.toml"], ["review"]),
    ("[run\n", [".gitteam.toml", "TOML"], ["run", "do it", "--model", "replay:demo"]),
])
def test_bad_config_names_key_and_file(repo: Path, toml: str, needles: list[str], command: list[str]) -> None:
    (repo / ".gitteam.toml").write_text(toml)
    before = refs(repo)
    assert_error(gitteam(repo, *command), 2, *needles)
    assert refs(repo) == before
    assert state_entries(repo) == []


def test_empty_task(repo: Path) -> None:
    assert_error(gitteam(repo, "run", "", "--model", "replay:demo"), 2, "task is empty")
    assert_error(gitteam(repo, "run", "   ", "--model", "replay:demo"), 2, "task is empty")
    assert state_entries(repo) == []


@pytest.mark.parametrize(("spec", "needle"), [
    ("nosuchprovider:model-x", "nosuchprovider"),
    ("replay:no/such/script.json", "replay script not found: no/such/script.json"),
    ("undefined-model-name", "undefined-model-name"),
])
def test_bad_model_spec(repo: Path, spec: str, needle: str) -> None:
    before = refs(repo)
    assert_error(gitteam(repo, "run", "do it", "--model", spec), 2, needle)
    assert refs(repo) == before
    assert state_entries(repo) == []


def test_broken_replay_script(repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "broken.json"
    script.write_text('{"gitteam_replay": 1,')
    assert_error(gitteam(repo, "run", "do it", "--model", f"replay:{script}"), 2, "not valid JSON")


@pytest.mark.parametrize("command", [["run", "do it"], ["plan", "do it"]])
def test_no_model_configured_points_to_the_demo(repo: Path, command: list[str]) -> None:
    assert_error(gitteam(repo, *command), 2, "no model configured", "gitteam demo")
    assert state_entries(repo) == []


@pytest.mark.parametrize("command", [
    ["status", "no-such-run"], ["show", "no-such-run", "agent"], ["approve", "no-such-run"], ["abort", "no-such-run"],
    ["resume", "no-such-run", "--model", "replay:demo"], ["status", "../../etc"],
])
def test_unknown_run(repo: Path, command: list[str]) -> None:
    assert_error(gitteam(repo, *command), 2, "no run named")


def test_debug_shows_the_traceback(repo: Path) -> None:
    """The other side of the one-line errors: GITTEAM_DEBUG=1 lets the exception through."""
    proc = subprocess.run([sys.executable, "-m", "gitteam", "status", "no-such-run"], cwd=repo, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env={**os.environ, "GITTEAM_DEBUG": "1"}, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "UsageError: no run named 'no-such-run'" in proc.stderr


def test_demo_refuses_a_directory_in_use(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine\n")
    assert_error(gitteam(tmp_path, "demo", "--dir", str(used)), 2, "not empty")
    assert [p.name for p in used.iterdir()] == ["notes.txt"]


# -- init -------------------------------------------------------------------------------------------------


def test_init_writes_a_config_that_loads(repo: Path) -> None:
    proc = gitteam(repo / "src", "init")
    assert proc.returncode == 0, proc.stderr
    path = repo / ".gitteam.toml"
    assert str(path) in proc.stdout
    text = path.read_text()
    assert text.lstrip().startswith("#")  # commented
    tomllib.loads(text)
    load_config(repo, {})
    # and the CLI reads it: review loads the configuration before it looks at the range
    assert gitteam(repo, "review", "--base", "HEAD").returncode == 0


def test_init_refuses_to_overwrite_without_force(repo: Path) -> None:
    assert gitteam(repo, "init").returncode == 0
    path = repo / ".gitteam.toml"
    path.write_text("# mine\n[run]\nmax_agents = 2\n")
    assert_error(gitteam(repo, "init"), 2, "already exists", "--force")
    assert path.read_text() == "# mine\n[run]\nmax_agents = 2\n"
    proc = gitteam(repo, "init", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "# mine" not in path.read_text()
    load_config(repo, {})
    assert sorted(p.name for p in repo.iterdir()) == [".git", ".gitteam.toml", "README.md", "src"]


# -- plan -------------------------------------------------------------------------------------------------


def snapshot(repo: Path) -> tuple[str, str, str, str]:
    return (refs(repo), git(repo, "status", "--porcelain", "--ignored"), git(repo, "worktree", "list"),
            git(repo, "stash", "list"))


def test_plan_prints_waves_and_files_and_changes_nothing(repo: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, PLAN_SCRIPT)
    (repo / "README.md").write_text("# project\n\nuncommitted\n")
    before = snapshot(repo)
    proc = gitteam(repo, "plan", "Make main return 2, test and document it", "--planner", f"replay:{script}")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "The code first" in out
    assert out.index("wave 1") < out.index("app: Return 2") < out.index("wave 2") < out.index("tests: Test main")
    assert out.index("readme: Document main") < out.index("wave 2")
    assert "files: src/app.py" in out and "files: tests/test_app.py" in out and "files: README.md" in out
    assert "(after app)" in out
    assert snapshot(repo) == before
    assert not (repo / "tests").exists()


def test_plan_leaves_only_a_saved_plan(repo: Path, tmp_path: Path) -> None:
    """The plan is saved as a run in state "planned" (for run --plan, and cost); nothing else is made."""
    script = write_script(tmp_path, PLAN_SCRIPT)
    proc = gitteam(repo, "plan", "Make main return 2", "--planner", f"replay:{script}")
    assert proc.returncode == 0, proc.stderr
    [run] = {entry.split("/")[1] for entry in state_entries(repo) if entry.startswith("runs/")}
    assert f"gitteam run --plan {run}" in proc.stdout
    assert " planned " in gitteam(repo, "status").stdout
    assert not any(entry.startswith("worktrees") for entry in state_entries(repo))


def test_plan_json(repo: Path, tmp_path: Path) -> None:
    script = write_script(tmp_path, PLAN_SCRIPT)
    before = refs(repo)
    proc = gitteam(repo, "plan", "Make main return 2", "--model", f"replay:{script}", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["waves"] == [["app", "readme"], ["tests"]]
    subtasks = {s["id"]: s for s in data["plan"]["subtasks"]}
    assert subtasks["tests"]["files"] == ["tests/test_app.py"]
    assert subtasks["tests"]["depends_on"] == ["app"]
    assert subtasks["app"]["instructions"] == "main() returns 2."
    assert data["summary"].startswith("The code first")
    assert refs(repo) == before


def test_plan_serializes_overlapping_subtasks(repo: Path, tmp_path: Path) -> None:
    script = json.loads(json.dumps(PLAN_SCRIPT))
    script["planner"][1]["args"]["subtasks"][1]["files"] = ["README.md", "src/app.py"]
    proc = gitteam(repo, "plan", "x", "--planner", f"replay:{write_script(tmp_path, script)}", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    flat = [s for wave in data["waves"] for s in wave]
    assert flat.index("app") != flat.index("readme")
    assert not any({"app", "readme"} <= set(wave) for wave in data["waves"])
    assert data["serialized"]


# -- status, show, cost after a run ----------------------------------------------------------------------


def test_status_lists_runs_and_agents(demo: tuple[Path, str]) -> None:
    repo, run = demo
    every = gitteam(repo, "status")
    assert every.returncode == 0, every.stderr
    assert run in every.stdout and "merged" in every.stdout
    one = gitteam(repo, "status", run)
    assert one.returncode == 0, one.stderr
    for agent in ("power", "docs", "cli"):
        assert f"gitteam/{run}/{agent}" in one.stdout
    assert "files    calc/cli.py, tests/test_cli.py" in one.stdout
    assert "(removed)" in one.stdout  # the demo's worktrees went when it merged


def test_status_json(demo: tuple[Path, str]) -> None:
    repo, run = demo
    proc = gitteam(repo, "status", run, "--json")
    assert proc.returncode == 0, proc.stderr
    [state] = json.loads(proc.stdout)
    assert state["run"] == run and state["state"] == "merged" and state["target"] == "main"
    assert git(repo, "rev-parse", "main") == state["integration_head"]
    agents = {a["id"]: a for a in state["agents"]}
    assert set(agents) == {"power", "docs", "cli"}
    for agent_id, agent in agents.items():
        assert agent["branch"] == f"gitteam/{run}/{agent_id}"
        assert git(repo, "rev-parse", f"refs/heads/{agent['branch']}") == agent["head"]
        assert agent["worktree"].endswith(f"/{run}/{agent_id}")  # outside the repository and its git dir
        assert Path(agent["worktree"]).parents[2].as_posix().endswith("/.local/share/gitteam/worktrees")
        assert agent["tokens"] > 0 and agent["cost"] > 0
        assert agent["verdict"] == "APPROVE" and agent["status"] == "merged"
    assert agents["docs"]["round"] == 2
    assert agents["docs"]["files"] == ["README.md"]
    assert state["tokens"] > sum(a["tokens"] for a in agents.values())  # the planner's share too
    listed = json.loads(gitteam(repo, "status", "--json").stdout)
    assert [s["run"] for s in listed] == [run]


def test_show_agent_prints_diff_and_review_rounds(demo: tuple[Path, str]) -> None:
    repo, run = demo
    proc = gitteam(repo, "show", run, "docs")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 commit(s)" in out
    assert "REQUEST_CHANGES The command-line section has no example." in out
    assert "README.md:12 The subtask asks for an example, and the Command line section does not show an" in out
    assert "APPROVE The example is there." in out
    assert "diff --git a/README.md b/README.md" in out and "+## Operations" in out
    assert "calc/ops.py" not in out  # another agent's file
    data = json.loads(gitteam(repo, "show", run, "docs", "--json").stdout)
    assert [n["review"]["decision"] for n in data["notes"]] == ["REQUEST_CHANGES", "APPROVE"]
    assert data["diff"] == git(repo, "diff", "--no-color", "--full-index", "-M", f"{data['commits'][0]}~1",
                               data["commits"][-1]) + "\n"


def test_show_run_prints_the_combined_diff(demo: tuple[Path, str]) -> None:
    repo, run = demo
    proc = gitteam(repo, "show", run)
    assert proc.returncode == 0, proc.stderr
    assert f"{run} / integration" in proc.stdout
    for path in ("README.md", "calc/ops.py", "calc/cli.py", "tests/test_ops.py", "tests/test_cli.py"):
        assert f"diff --git a/{path} b/{path}" in proc.stdout
    assert "A negative exponent with base 0" in proc.stdout  # power's review finding
    assert_error(gitteam(repo, "show", run, "nobody"), 2, "no agent 'nobody'", "power")


def test_cost_matches_the_journal(demo: tuple[Path, str]) -> None:
    repo, run = demo
    usage = [e for e in events(repo, run) if e["event"] == "usage"]
    assert usage
    spent = sum(e["cost"] for e in usage)
    tokens = sum(sum(e["usage"].values()) for e in usage)
    proc = gitteam(repo, "cost", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["run"] for r in rows} == {run}
    assert {r["role"] for r in rows} == {"planner", "coder", "reviewer"}
    assert {(r["role"], r["agent"]) for r in rows} >= {("coder", "power"), ("reviewer", "docs"), ("planner", "planner")}
    assert sum(r["cost"] for r in rows) == pytest.approx(spent, abs=1e-5)
    assert sum(r["input_tokens"] + r["output_tokens"] for r in rows) == tokens
    docs_coder = sum(e["cost"] for e in usage if e["agent"] == "docs" and e["role"] == "coder")
    assert [r["cost"] for r in rows if (r["role"], r["agent"]) == ("coder", "docs")] == [pytest.approx(docs_coder)]
    text = gitteam(repo, "cost", run)
    assert text.returncode == 0, text.stderr
    assert f"total ${spent:.4f}" in text.stdout
    assert "replay:demo" in text.stdout


def test_status_and_cost_with_no_runs(repo: Path) -> None:
    proc = gitteam(repo, "status")
    assert proc.returncode == 0 and "no runs yet" in proc.stdout
    assert json.loads(gitteam(repo, "status", "--json").stdout) == []
    assert json.loads(gitteam(repo, "cost", "--json").stdout) == []
    assert "total $0.0000" in gitteam(repo, "cost").stdout


# -- approve, abort, clean --------------------------------------------------------------------------------


def test_approve_or_reject_a_run_that_is_not_pending(demo: tuple[Path, str]) -> None:
    repo, run = demo
    head = git(repo, "rev-parse", "main")
    assert_error(gitteam(repo, "approve", run), 2, "not pending")
    assert_error(gitteam(repo, "reject", run), 2, "not pending")
    assert_error(gitteam(repo, "abort", run), 2, "already merged")
    assert git(repo, "rev-parse", "main") == head
    assert json.loads(gitteam(repo, "status", run, "--json").stdout)[0]["state"] == "merged"


def lock_refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/gitteam/locks/")


def worktrees(repo: Path) -> list[str]:
    return [line.split()[1] for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def test_abort_a_pending_run(calc: Path) -> None:
    base = git(calc, "rev-parse", "main")
    first = start(calc, "first", "--no-merge")
    run = first["run"]
    assert first["state"] == "pending"
    assert len(worktrees(calc)) == 4
    assert lock_refs(calc)
    # its files are taken: another run on them fails before any agent starts
    blocked = gitteam(calc, "run", "second", "--no-merge", "--json")
    assert blocked.returncode == 1, blocked.stderr
    assert "cannot claim" in json.loads(blocked.stdout)["message"]
    # clean leaves a pending run alone
    assert gitteam(calc, "clean").returncode == 0
    assert len(worktrees(calc)) == 4

    proc = gitteam(calc, "abort", run)
    assert proc.returncode == 0, proc.stderr
    assert "aborted" in proc.stdout
    assert worktrees(calc) == [str(calc)]
    assert not list((Path.home() / ".local/share/gitteam/worktrees").glob(f"*/{run}"))
    branches = git(calc, "for-each-ref", "--format=%(refname:short)", f"refs/heads/gitteam/{run}/").split()
    assert sorted(branches) == [f"gitteam/{run}/{a}" for a in ("cli", "docs", "integration", "power")]
    assert lock_refs(calc) == ""
    assert git(calc, "rev-parse", "main") == base
    assert json.loads(gitteam(calc, "status", run, "--json").stdout)[0]["state"] == "aborted"
    assert_error(gitteam(calc, "approve", run), 2, "not pending")
    assert_error(gitteam(calc, "abort", run), 2, "already aborted")

    third = start(calc, "third", "--no-merge")
    assert third["state"] == "pending"
    assert sorted(third["files"]) == ["README.md", "calc/cli.py", "calc/ops.py", "tests/test_cli.py",
                                      "tests/test_ops.py"]


def test_clean_removes_finished_worktrees_keeping_uncommitted_work_on_a_ref(calc: Path) -> None:
    result = start(calc, "kept worktrees", "--yes", "--keep")
    run = result["run"]
    assert result["state"] == "merged"
    paths = [Path(p) for p in worktrees(calc)[1:]]
    assert len(paths) == 3
    dirty = next(p for p in paths if p.name == "docs")
    (dirty / "scratch.txt").write_text("not committed anywhere\n")
    notes_before = git(calc, "notes", "--ref=gitteam", "list")
    branches_before = git(calc, "for-each-ref", f"refs/heads/gitteam/{run}/")
    assert notes_before and branches_before
    assert " on disk " in gitteam(calc, "status").stdout  # what the kept worktrees take

    proc = gitteam(calc, "clean")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "removed 3 worktree(s) of 1 finished run(s), freed " in proc.stdout and "freed 0 B" not in proc.stdout
    assert all(str(path) in proc.stdout for path in paths)
    leftovers = f"refs/gitteam/leftovers/{run}/docs"
    assert leftovers in proc.stdout
    assert git(calc, "show", f"{leftovers}:scratch.txt") == "not committed anywhere"
    assert worktrees(calc) == [str(calc)] and not any(path.exists() for path in paths)
    assert git(calc, "notes", "--ref=gitteam", "list") == notes_before
    assert git(calc, "for-each-ref", f"refs/heads/gitteam/{run}/") == branches_before
    again = gitteam(calc, "clean")
    assert again.returncode == 0 and "removed 0 worktree(s) of 0 finished run(s), freed 0 B" in again.stdout
    assert git(calc, "status", "--porcelain") == ""
    assert " on disk " not in gitteam(calc, "status").stdout


def test_a_repository_without_commits_is_refused_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    assert_error(gitteam(empty, "run", "--model", "replay:demo", "do it"), 2, "main has no commits yet")
    assert git(empty, "for-each-ref") == ""

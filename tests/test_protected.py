"""Protected paths: the matcher, the ownership predicate that uses it, and what runs do with them.

The run tests drive real runs with the replay model and assert what reached git: the target branch, the
agents' branches and worktrees, exit codes. Nothing of git or gitteam is mocked.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitteam.config import ProtectConfig, load_config
from gitteam.errors import UsageError
from gitteam.git import find_repository
from gitteam.locks.ownership import Ownership
from gitteam.locks.protected import Protection, check_patterns, plan_refusals, planner_note, refusal_error
from gitteam.roles import planner as planner_role
from gitteam.run.context import ApprovalRequest, RunOptions
from gitteam.run.control import decide
from scripts import (
    assert_error,
    blob,
    block,
    branches,
    cli,
    coder_edits,
    coder_runs,
    coder_writes,
    done,
    events,
    only_run,
    plan_turn,
    resume,
    run_state,
    script,
    script_path,
    sha,
    spec,
    start,
    subtask,
    turn,
    write_script,
)
from scripts import refused as refused_calls

# --- the matcher ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    ".gitteam.toml", ".github/workflows/ci.yml", ".github", ".gitattributes", "src/.gitattributes",
    "a/b/c/.gitattributes", ".gitmodules", ".worktreeinclude", ".pre-commit-config.yaml", ".envrc",
    ".vscode/settings.json", ".husky/pre-commit", ".devcontainer/devcontainer.json",
])
def test_default_protection_covers_files_directories_and_globs(path: str) -> None:
    assert Protection().protects(path)
    assert Protection().blocks(path)


@pytest.mark.parametrize("path", [
    "src/app.py", "README.md", "github/workflows/ci.yml", "docs/.github.md", ".gitattributes-notes/x",
    "src/gitattributes", ".githubx/y", "src/.gitteam.toml",
])
def test_default_protection_leaves_ordinary_paths_alone(path: str) -> None:
    assert not Protection().protects(path)


@pytest.mark.parametrize("spelling", [
    "./.github/../.github/workflows/x.yml", ".github//workflows/x.yml", ".GitHub/Workflows/X.yml",
    ".github./workflows/x.yml", ".github /workflows/x.yml", ".git\u200chub/workflows/x.yml",
    "src/../.github/workflows/x.yml", "SRC/.GITATTRIBUTES", "src/.gitattributes.",
])
def test_any_spelling_that_opens_a_protected_file_is_protected(spelling: str) -> None:
    assert Protection().blocks(spelling)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "", ".git/config", "a\\b"])
def test_a_path_that_is_no_repository_path_counts_as_protected(path: str) -> None:
    assert Protection().protects(path)
    assert not Protection().allows(path)


def test_globs_match_within_a_component_and_double_star_across_components() -> None:
    protection = Protection(["deploy/*.sh", "**/secrets/", "ci/**/run", "x?.cfg", "[ab].txt"], [])
    assert protection.protects("deploy/release.sh")
    assert not protection.protects("deploy/sub/release.sh")  # * stops at /
    assert protection.protects("secrets/key") and protection.protects("a/b/secrets/key")
    assert protection.protects("ci/run") and protection.protects("ci/a/b/run/log")
    assert not protection.protects("ci/a/b/runner")
    assert protection.protects("x1.cfg") and not protection.protects("x12.cfg")
    assert protection.protects("a.txt") and not protection.protects("c.txt")


def test_a_pattern_covers_its_path_and_everything_below_it_with_or_without_a_slash() -> None:
    for pattern in (".vscode", ".vscode/", "./.vscode"):
        protection = Protection([pattern])
        assert protection.protects(".vscode") and protection.protects(".vscode/settings.json"), pattern
        assert not protection.protects(".vscode-notes"), pattern


def test_allow_unblocks_only_what_it_covers() -> None:
    protection = Protection(allow=[".github/workflows/ci.yml", "**/.GitAttributes"])
    assert protection.protects(".github/workflows/ci.yml")
    assert not protection.blocks(".github/workflows/ci.yml")
    assert protection.blocks(".github/workflows/other.yml")
    assert not protection.blocks("./src/../src/.gitattributes")
    assert protection.blocks(".gitteam.toml")


def test_an_empty_protect_list_protects_nothing() -> None:
    assert not Protection([], []).protects(".gitteam.toml")


@pytest.mark.parametrize("bad", ["../outside", "/abs", ".git/hooks", "./"])
def test_bad_patterns_are_usage_errors_naming_where(bad: str) -> None:
    with pytest.raises(UsageError, match="protect.paths"):
        Protection([bad])
    with pytest.raises(UsageError, match="--allow-protected"):
        check_patterns([bad], "--allow-protected")


# --- the ownership predicate ---------------------------------------------------------------------------------


def test_ownership_never_covers_a_protected_path_even_below_an_owned_directory() -> None:
    owner = Ownership(["src/", "docs/guide.md"])
    assert owner.owns("src/app.py")
    assert not owner.owns("src/.gitattributes")
    assert not owner.owns("src/deep/.GITATTRIBUTES")
    assert owner.violations(["src/a.py", "src/.gitattributes"]) == ["src/.gitattributes"]


def test_ownership_follows_the_runs_protect_section() -> None:
    listed = [".gitteam.toml", "src/"]
    assert not Ownership(listed).owns(".gitteam.toml")
    assert Ownership(listed, ProtectConfig(allow=(".gitteam.toml",))).owns(".gitteam.toml")
    assert Ownership(listed, ProtectConfig(paths=())).owns("src/.gitattributes")
    assert not Ownership(listed, ProtectConfig(paths=("src/gen/",))).owns("src/gen/x.py")
    # allowed, but not listed: still not this subtask's
    assert not Ownership(["src/"], ProtectConfig(allow=(".gitteam.toml",))).owns(".gitteam.toml")


# --- plans ---------------------------------------------------------------------------------------------------


def test_plan_entries_are_refused_when_they_are_or_hold_a_protected_path() -> None:
    protection = Protection([*Protection().paths, "config/deploy.sh", "tools/hooks/"])
    refusals = plan_refusals([
        ("ok", ["src/", "README.md"]),
        ("ci", [".github/", "src/x.py"]),
        ("wf", [".github/workflows/"]),
        ("attr", ["src/.gitattributes", ".gitteam.toml"]),
        ("holder", ["config/", "tools/"]),
    ], protection)
    assert {r.subtask: r.paths for r in refusals} == {
        "ci": (".github/",),
        "wf": (".github/workflows/",),
        "attr": ("src/.gitattributes", ".gitteam.toml"),
        "holder": ("config/deploy.sh", "tools/hooks/"),
    }


def test_allowed_protected_paths_pass_the_plan_check() -> None:
    protection = Protection(allow=[".github/", ".gitteam.toml"])
    assert plan_refusals([("ci", [".github/workflows/", ".gitteam.toml"])], protection) == []
    assert plan_refusals([("attr", ["src/.gitattributes"])], protection)[0].paths == ("src/.gitattributes",)


def test_the_refusal_names_the_paths_the_subtasks_and_the_flag() -> None:
    error = refusal_error(plan_refusals([("ci", [".github/", "**/x"])], Protection([".github/", "**/x"])), "r-1")
    text = str(error)
    assert "\n" not in text and error.exit_code == 2
    assert 'subtask "ci": .github/, **/x' in text
    assert "gitteam resume r-1 --allow-protected .github/ --allow-protected '**/x'" in text
    assert "gitteam run --allow-protected .github/ --allow-protected '**/x' TASK" in text


def test_the_planner_is_told_what_is_protected_and_what_this_run_allows() -> None:
    text = planner_role.brief("task", "overview", "", planner_note(Protection(allow=[".gitteam.toml"])))
    assert ".github/" in text and "**/.gitattributes" in text and "refused" in text
    assert "Allowed for this run: .gitteam.toml" in text
    assert planner_note(Protection([], [])) == ""


# --- runs ----------------------------------------------------------------------------------------------------

PLANTED = '[commands]\nallowed = ["sh"]\n'


def config_script(coder: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A plan that hands `.gitteam.toml` to a coder, which rewrites it."""
    return script(
        planner=[plan_turn([subtask("cfg", [".gitteam.toml", "src/app.py"])])],
        coder={"cfg": coder or [turn(coder_writes(".gitteam.toml", PLANTED), done("configured"))]},
    )


def run_cli(repo: Path, data: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(repo, "run", "tune the config", "--model", spec(write_script(script_path(repo), data)), *args)


def test_a_plan_handing_out_a_protected_file_is_refused_before_any_coder_starts(repo: Path) -> None:
    base = sha(repo, "main")

    proc = run_cli(repo, config_script(), "--yes")

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 'subtask "cfg": .gitteam.toml' in proc.stdout and "--allow-protected .gitteam.toml" in proc.stdout
    run = only_run(repo)
    assert events(repo, run, "agent_started") == []
    assert [e["role"] for e in events(repo, run, "usage")] == ["planner"]  # the coder's turns were never read
    assert branches(repo, run) == set()
    assert sha(repo, "main") == base
    assert not (repo / ".gitteam.toml").exists()
    assert run_state(repo, run).exit_code == 2


def test_gitteam_plan_prints_the_same_refusal(repo: Path) -> None:
    path = write_script(script_path(repo), config_script())

    proc = cli(repo, "plan", "tune the config", "--model", spec(path))

    assert_error(proc, 2, 'subtask "cfg": .gitteam.toml', "gitteam run --allow-protected .gitteam.toml TASK")
    allowed = cli(repo, "plan", "tune the config", "--model", spec(path), "--allow-protected", ".gitteam.toml")
    assert allowed.returncode == 0, allowed.stderr


def test_allowed_on_the_command_line_with_yes_the_protected_file_lands(repo: Path) -> None:
    proc = run_cli(repo, config_script(), "--yes", "--allow-protected", ".gitteam.toml", "--json")

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["state"], result["protected"]) == ("merged", [".gitteam.toml"])
    assert blob(repo, "main", ".gitteam.toml") == PLANTED.encode()
    assert (repo / ".gitteam.toml").read_text() == PLANTED


def test_allowed_only_in_the_user_config_yes_leaves_the_run_pending(repo: Path) -> None:
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[protect]\nallow = [".gitteam.toml"]\n')
    base = sha(repo, "main")

    proc = run_cli(repo, config_script(), "--yes", "--json")

    assert proc.returncode == 3, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["state"], result["protected"]) == ("pending", [".gitteam.toml"])
    assert "gitteam approve" in result["message"] and "--allow-protected .gitteam.toml" in result["message"]
    assert sha(repo, "main") == base  # nothing reached the target
    run = result["run"]
    assert blob(repo, f"gitteam/{run}/integration", ".gitteam.toml") == PLANTED.encode()
    # `approve` without a terminal is unattended too: the file must be named
    plain = cli(repo, "approve", run)
    assert plain.returncode == 3, plain.stderr
    assert "protected files changed: .gitteam.toml" in plain.stdout
    assert sha(repo, "main") == base
    named = cli(repo, "approve", run, "--allow-protected", ".gitteam.toml")
    assert named.returncode == 0, named.stderr
    assert blob(repo, "main", ".gitteam.toml") == PLANTED.encode()


def test_resume_carries_on_with_the_refused_plan_once_allowed_and_keeps_the_allowance(repo: Path) -> None:
    refused = start(repo, config_script())
    assert refused.exit_code == 2, refused.message

    again = resume(repo, refused.run, config_script(),
                   RunOptions(yes=True, allow_protected=(".gitteam.toml",)))

    assert (again.exit_code, again.state) == (0, "merged"), again.message
    assert blob(repo, "main", ".gitteam.toml") == PLANTED.encode()
    assert run_state(repo, refused.run).allow_protected == [".gitteam.toml"]
    assert len(events(repo, refused.run, "plan")) == 1  # the stored plan, no second planner call


def test_the_runs_allowance_holds_on_resume_but_yes_needs_it_named_again(repo: Path) -> None:
    blocked = script(planner=config_script()["planner"], coder=config_script()["coder"], reviewer={"*": [block()]})
    first = start(repo, blocked, RunOptions(yes=True, allow_protected=(".gitteam.toml",)))
    assert first.exit_code == 3, first.message
    retry = config_script([turn(coder_edits(".gitteam.toml", '["sh"]', '["sh", "make"]'), done())])

    resumed = resume(repo, first.run, retry)  # no flag: the coder may still write it (journaled allowance)

    assert (resumed.exit_code, resumed.state) == (3, "pending"), resumed.message
    assert refused_calls(repo, first.run) == []
    integration = f"gitteam/{first.run}/integration"
    assert blob(repo, integration, ".gitteam.toml") == PLANTED.replace('"sh"]', '"sh", "make"]').encode()
    approved = decide(find_repository(repo), load_config(repo, {}), first.run, "approve",
                      allow_protected=(".gitteam.toml",))
    assert (approved.exit_code, approved.state) == (0, "merged"), approved.message
    assert approved.details["protected"] == [".gitteam.toml"]


def test_a_coder_owning_a_directory_cannot_write_a_protected_file_in_it(repo: Path) -> None:
    data = script(
        planner=[plan_turn([subtask("src", ["src/"])])],
        coder={"src": [turn(coder_writes("src/.gitattributes", "*.py filter=evil\n"),
                            coder_writes("./src/../src/.GITATTRIBUTES", "*.py filter=evil\n"),
                            coder_writes("src/lib.py", "X = 1\n")), done()]},
    )

    result = start(repo, data, RunOptions(yes=True, keep=True))

    assert result.exit_code == 0, result.message
    assert [e["tool"] for e in refused_calls(repo, result.run)] == ["write_file", "write_file"]
    assert blob(repo, "main", "src/lib.py") == b"X = 1\n"
    assert blob(repo, "main", "src/.gitattributes") is None
    worktree = Path(events(repo, result.run, "agent_started")[0]["worktree"])
    assert sorted(p.name for p in (worktree / "src").iterdir()) == ["app.py", "lib.py"]


def test_protected_files_a_command_leaves_are_stray_and_never_committed(repo: Path) -> None:
    maker = repo.parent / "maker.py"
    maker.write_text(
        "import pathlib\n"
        "for name in ('.github/workflows/x.yml', 'src/.gitattributes', 'src/gen.py'):\n"
        "    path = pathlib.Path(name)\n"
        "    path.parent.mkdir(parents=True, exist_ok=True)\n"
        "    path.write_text('planted = 1\\n')\n"
    )
    command = shlex.join([sys.executable, str(maker)])
    data = script(planner=[plan_turn([subtask("gen", ["src/"])])],
                  coder={"gen": [coder_runs(command), done("generated")]})

    result = start(repo, data, RunOptions(yes=True, keep=True),
                   config={"commands.allowed": [command], "sandbox.read_only": [str(maker.parent)]})

    assert result.exit_code == 0, result.message
    [committed] = [e for e in events(repo, result.run, "agent_committed")]
    assert committed["stray"] == [".github/workflows/x.yml", "src/.gitattributes"]
    assert blob(repo, "main", "src/gen.py") == b"planted = 1\n"
    for path in (".github/workflows/x.yml", "src/.gitattributes"):
        assert blob(repo, f"gitteam/{result.run}/gen", path) is None
        assert blob(repo, "main", path) is None
        assert not (repo / path).exists()
    worktree = Path(committed_worktree(repo, result.run))
    assert (worktree / ".github/workflows/x.yml").is_file()  # left where the command put it, for a look


def committed_worktree(repo: Path, run: str) -> str:
    return str(events(repo, run, "agent_started")[0]["worktree"])


def test_approve_at_a_terminal_asks_about_protected_files_instead_of_refusing(repo: Path) -> None:
    pending = start(repo, config_script(), RunOptions(no_merge=True, allow_protected=(".gitteam.toml",)))
    assert (pending.exit_code, pending.state, pending.details["protected"]) == (0, "pending", [".gitteam.toml"])
    asked: list[tuple[str, list[str]]] = []

    def person(request: ApprovalRequest) -> str:
        asked.append((request.run, request.protected))
        return "approve"

    result = decide(find_repository(repo), load_config(repo, {}), pending.run, "approve", approver=person)

    assert (result.exit_code, result.state, asked) == (0, "merged", [(pending.run, [".gitteam.toml"])])
    assert blob(repo, "main", ".gitteam.toml") == PLANTED.encode()

"""Protected paths: the matcher, the ownership predicate that uses it, and what runs do with them.

The run tests drive real runs with the replay model and assert what reached git: the target branch, the
agents' branches and worktrees, exit codes. Nothing of git or gitteam is mocked.
"""

from __future__ import annotations

import pytest

from gitteam.config import ProtectConfig
from gitteam.errors import UsageError
from gitteam.locks.ownership import Ownership
from gitteam.locks.protected import Protection, check_patterns, plan_refusals, refusal_error

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

"""`gitteam review` output for CI: text, JSON, GitHub annotations, SARIF 2.1.0, rdjson; the range it reads
(flags, pre-commit's variables), and the one-line answers for odd ranges.

The same verdict (a secret, conflict markers, a syntax error, a binary file and a reviewer's findings) is
rendered in every format and each is checked against the structure its consumer requires.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files, git
from gitteam.commands import review as review_command
from gitteam.config import load_config
from gitteam.errors import Exit, UsageError
from gitteam.git import find_repository
from scripts import finding, request_changes

ROOT = Path(__file__).resolve().parent.parent
AWS_KEY = "AKIA" + "Q3EGRT7BWZXK5M2P"
CONFLICT = "x = 1\n<<<<<<< HEAD\ny = 2\n=======\ny = 3\n>>>>>>> other\n"


def run_review(repo: Path, capsys: pytest.CaptureFixture[str], output: str, environ: dict[str, str] | None = None,
               **request: Any) -> tuple[int, str, str]:
    repository = find_repository(repo)
    config = load_config(repository.root, {}, env={})
    request_ = review_command.Request(output=output, **request)
    code = review_command.review_range(repository, config, request_, environ=environ or {})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def messy(repo: Path, tmp_path: Path) -> Path:
    """A feature branch whose one commit trips several checks, with a reviewer that asks for changes."""
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    commit_files(repo, {"deploy/settings.py": f'KEY = "{AWS_KEY}"\n', "src/merge.txt": CONFLICT,
                        "src/app.py": "def main(:\n    return 1\n", "src/ok.py": "A = 1\nB = 2\n"}, "messy")
    script = tmp_path / "reviewer.json"
    script.write_text(json.dumps({"gitteam_replay": 1, "reviewer": {"range": [request_changes("fix, please", [
        finding("src/ok.py", "B is unused, 100% sure: really", "minor", 2),
        finding("", "the change needs a changelog entry", "info")])]}}))
    (repo / ".git" / "info" / "exclude").write_text("/.gitteam.toml\n")
    (repo / ".gitteam.toml").write_text(f'[roles]\nreviewer = "replay:{script}"\n')
    return repo


def test_text_and_json_carry_the_same_findings(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"src/merge.txt": CONFLICT}, "half-merged")
    code, text, _ = run_review(repo, capsys, "text", base="main")
    assert code == Exit.REFUSED and text.startswith("REQUEST_CHANGES: deterministic checks failed\n")
    assert text.count("[major] src/merge.txt:") == 3
    code, out, _ = run_review(repo, capsys, "json", base="main")
    data = json.loads(out)
    assert (data["decision"], data["base"], data["head"]) == (
        "REQUEST_CHANGES", git(repo, "rev-parse", "main"), git(repo, "rev-parse", "HEAD"))
    assert [f["line"] for f in data["findings"]] == [2, 4, 6]


def test_github_annotations(messy: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    code, out, _ = run_review(messy, capsys, "github", environ={"GITHUB_STEP_SUMMARY": str(summary)}, base="main")
    assert code == Exit.REFUSED
    lines = out.splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert all(re.fullmatch(r"::(error|warning|notice)( [a-z]+=[^,:]*(,[a-z]+=[^,:]*)*)?::.*", a) for a in annotations)
    assert "::error file=deploy/settings.py,line=1,title=gitteam check%3Asecrets (critical)::possible secret" \
           in out
    assert "::error file=src/app.py,line=1,title=gitteam check%3Apython_syntax (major)::" in out
    assert "::error file=logo.png,title=gitteam check%3Alarge_files (major)::binary file added" in out
    assert AWS_KEY not in out
    # the reviewer is not asked once the checks BLOCK; its findings would be warnings and notices
    assert lines[-1].startswith("gitteam review ") and ": BLOCK (" in lines[-1]
    assert "### gitteam review: BLOCK" in summary.read_text() and "`deploy/settings.py`:1" in summary.read_text()


def test_github_annotations_escape_what_workflow_commands_cannot_carry(
        messy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(messy, "checkout", "-q", "-b", "tidy", "main")
    commit_files(messy, {"src/ok.py": "A = 1\nB = 2\n"}, "tidy")
    code, out, _ = run_review(messy, capsys, "github", base="main", fail_on="changes")
    assert code == Exit.OK  # the reviewer asked for changes with only minor findings: they do not refuse
    assert "::warning file=src/ok.py,line=2,title=gitteam reviewer (minor)::B is unused, 100%25 sure: really" in out
    assert "::notice title=gitteam reviewer (info)::the change needs a changelog entry" in out


def test_sarif_has_the_structure_code_scanning_requires(messy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_review(messy, capsys, "sarif", base="main")
    assert code == Exit.REFUSED
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "gitteam" and driver["version"]
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert run["results"]
    for result in run["results"]:
        assert result["message"]["text"]
        assert result["level"] in ("error", "warning", "note")
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] and not physical["artifactLocation"]["uri"].startswith("/")
        assert isinstance(physical["region"]["startLine"], int) and physical["region"]["startLine"] >= 1
    by_rule = {r["ruleId"]: r for r in run["results"]}
    secret = by_rule["check:secrets"]
    assert secret["level"] == "error" and AWS_KEY not in out
    assert secret["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "deploy/settings.py"
    binary = by_rule["check:large_files"]  # about a whole file: its first line, marked so
    assert binary["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert binary["properties"]["fileLevel"] is True
    assert run["properties"]["decision"] == "BLOCK"
    assert run["invocations"][0]["executionSuccessful"] is True


def test_rdjson_has_reviewdogs_shape(messy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(messy, "checkout", "-q", "-b", "tidy", "main")
    commit_files(messy, {"src/ok.py": "A = 1\nB = 2\n", "src/merge.txt": CONFLICT}, "tidy")
    code, out, _ = run_review(messy, capsys, "rdjson", base="main")
    assert code == Exit.REFUSED  # REQUEST_CHANGES from a failing check: refused even with --fail-on block
    data = json.loads(out)
    assert data["source"]["name"] == "gitteam" and data["severity"] == "ERROR"
    for diagnostic in data["diagnostics"]:
        assert diagnostic["message"] and isinstance(diagnostic["location"]["path"], str)
        assert diagnostic["severity"] in ("ERROR", "WARNING", "INFO")
        if "range" in diagnostic["location"]:
            assert diagnostic["location"]["range"]["start"]["line"] >= 1
    paths = [(d["location"]["path"], d["location"].get("range", {}).get("start", {}).get("line"), d["severity"])
             for d in data["diagnostics"]]
    assert ("src/merge.txt", 2, "ERROR") in paths and ("src/ok.py", 2, "WARNING") in paths
    assert ("", None, "INFO") in paths  # about the change as a whole
    assert {d["code"]["value"] for d in data["diagnostics"]} == {"check:conflict_markers", "reviewer"}


def test_an_empty_range_is_one_line_and_a_clean_report(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_review(repo, capsys, "sarif", base="HEAD")
    assert code == Exit.OK and err.count("\n") == 1 and "nothing to review" in err
    assert json.loads(out)["runs"][0]["results"] == []
    code, out, err = run_review(repo, capsys, "text", base="HEAD")
    assert (code, out) == (Exit.OK, "") and "nothing to review" in err


def test_a_binary_only_range_is_said_in_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    commit_files(repo, {}, "a logo")
    code, out, err = run_review(repo, capsys, "text", base="HEAD~1", fail_on="changes")
    assert err.strip() == ("gitteam review: only binary files changed in "
                           f"{git(repo, 'rev-parse', 'HEAD~1')[:10]}..{git(repo, 'rev-parse', 'HEAD')[:10]} (1): "
                           "the deterministic checks ran, no reviewer reads binary data")
    assert code == Exit.REFUSED and "binary file added" in out
    git(repo, "rm", "-q", "logo.png")
    commit_files(repo, {}, "no logo after all")
    code, out, err = run_review(repo, capsys, "text", base="HEAD~1", fail_on="changes")
    assert code == Exit.OK and out.startswith("APPROVE") and "only binary files" in err


def test_bad_revisions(repo: Path) -> None:
    repository = find_repository(repo)
    config = load_config(repository.root, {}, env={})
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    for request, needle in [(review_command.Request(base="nope"), "unknown revision for --base: nope"),
                            (review_command.Request(head=tree), f"unknown revision for --head: {tree}"),
                            (review_command.Request(base="--output=x"), "unknown revision for --base: --output=x")]:
        with pytest.raises(UsageError, match=re.escape(needle)) as caught:
            review_command.review_range(repository, config, request, environ={})
        assert "fetch-depth: 0" in str(caught.value) and "\n" not in str(caught.value)


def test_pre_commit_names_the_range_when_the_flags_do_not(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = commit_files(repo, {"src/merge.py": CONFLICT}, "half-merged")
    second = commit_files(repo, {"src/merge.py": "x = 1\n"}, "resolved")
    environ = {"PRE_COMMIT_FROM_REF": first, "PRE_COMMIT_TO_REF": second}
    code, out, _ = run_review(repo, capsys, "json", environ=environ, fail_on="changes")
    assert code == Exit.OK and json.loads(out)["head"] == second
    code, out, _ = run_review(repo, capsys, "json", environ={"PRE_COMMIT_SOURCE": f"{first}~1",
                                                           "PRE_COMMIT_ORIGIN": first}, fail_on="changes")
    assert code == Exit.REFUSED and json.loads(out)["head"] == first
    code, out, _ = run_review(repo, capsys, "json", environ=environ, base=f"{first}~1", head=first)
    assert json.loads(out)["head"] == first  # flags win


def _hooks(text: str) -> list[dict[str, str]]:
    """The block-style YAML of .pre-commit-hooks.yaml, read without a YAML library (none is a dependency)."""
    hooks: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.fullmatch(r"(- |  )(\w+): (.+)", line)
        assert match, line
        if match[1] == "- ":
            hooks.append({})
        hooks[-1][match[2]] = match[3]
    return hooks


def test_pre_commit_hooks_file_offers_the_gate_at_pre_push() -> None:
    hooks = {hook["id"]: hook for hook in _hooks((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"gitteam-review", "gitteam-review-checks"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["stages"] == "[pre-push]"
        assert hook["pass_filenames"] == "false" and hook["always_run"] == "true"
        assert hook["entry"].startswith("gitteam review")
    assert hooks["gitteam-review-checks"]["entry"] == "gitteam review --checks-only"


def test_cli_sarif_and_checks_only(messy: Path) -> None:
    """The options as the CLI parses them (--checks-only leaves out the configured reviewer)."""
    git(messy, "checkout", "-q", "-b", "tidy", "main")
    commit_files(messy, {"src/ok.py": "A = 1\nB = 2\n"}, "tidy")
    proc = subprocess.run([sys.executable, "-m", "gitteam", "review", "--format", "sarif", "--fail-on", "changes"],
                          cwd=messy, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == Exit.OK, proc.stderr  # minor findings only: approved, reported
    assert json.loads(proc.stdout)["runs"][0]["results"][0]["ruleId"] == "reviewer"
    proc = subprocess.run([sys.executable, "-m", "gitteam", "review", "--checks-only", "--fail-on", "changes"],
                          cwd=messy, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == Exit.OK and proc.stdout.startswith("APPROVE: deterministic checks passed"), proc.stderr


def test_the_documented_workflow_uses_options_that_exist() -> None:
    import typer.main

    from gitteam.cli import app

    review = typer.main.get_command(app).commands["review"]  # type: ignore[attr-defined]
    known = {opt for param in review.params for opt in getattr(param, "opts", [])}
    text = (ROOT / "docs" / "ci.md").read_text()
    workflow = text[text.index("```yaml\nname: gitteam review"):]
    assert "on:\n  pull_request:" in workflow and "fetch-depth: 0" in workflow
    assert "${{ github.event.pull_request.base.sha }}" in workflow
    used = set(re.findall(r"gitteam review ([^\n>|]*)", text))
    flags = {flag for line in used for flag in re.findall(r"(--[a-z-]+)", line)}
    assert flags and flags <= known, flags - known

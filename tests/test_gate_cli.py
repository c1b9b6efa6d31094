"""`gitteam review` on ranges and `gitteam hook install|uninstall`, driven through `python -m gitteam`.

The hook tests end with real `git push`es to a local bare remote, so the installed script, the chaining of a
foreign hook and the gate's exit codes are checked the way git itself sees them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files, git
from scripts import assert_error
from scripts import cli as gitteam

# Assembled at run time so this file holds no secret-shaped literal of its own.
AWS_KEY = "AKIA" + "Q3EGRT7BWZXK5M2P"
PRIVATE_KEY = (
    "-----BEGIN " + "RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
    "+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQz\n"
    "-----END " + "RSA PRIVATE KEY-----\n"
)
CONFLICT = "x = 1\n<<<<<<< HEAD\ny = 2\n=======\ny = 3\n>>>>>>> other\n"
MARKER = "# gitteam-hook"


@pytest.fixture
def feature(repo: Path) -> Path:
    """The repository on branch `feature`, one commit ahead of main."""
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"src/util.py": "def double(x: int) -> int:\n    return 2 * x\n"}, "add double")
    return repo


def reviewer_script(tmp_path: Path, decision: str, summary: str, findings: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"reviewer-{decision.lower()}.json"
    path.write_text(json.dumps({"gitteam_replay": 1, "reviewer": {"range": [
        {"call": "read_file", "args": {"path": "src/util.py"}},
        {"call": "submit_review", "args": {"decision": decision, "summary": summary, "findings": findings}},
    ]}}))
    return path


# -- review -----------------------------------------------------------------------------------------------


def test_review_passes_a_clean_feature_branch(feature: Path) -> None:
    proc = gitteam(feature, "review")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("APPROVE")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("files", "kind"), [
    ({"deploy/settings.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'}, "aws_access_key_id"),
    ({"keys/id_rsa": PRIVATE_KEY}, "private_key"),
])
def test_review_blocks_a_secret(feature: Path, files: dict[str, str], kind: str) -> None:
    commit_files(feature, files, "oops")
    proc = gitteam(feature, "review")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith("BLOCK")
    [path] = files
    assert f"[critical] {path}:1" in proc.stdout and kind in proc.stdout
    assert AWS_KEY not in proc.stdout and "MIIEow" not in proc.stdout  # the finding does not repeat the secret
    # the same range, given explicitly and as JSON
    data = json.loads(gitteam(feature, "review", "--base", "main", "--format", "json").stdout)
    assert data["decision"] == "BLOCK"
    assert any(f["file"] == path and f["severity"] == "critical" and kind in f["message"] for f in data["findings"])


@pytest.mark.parametrize(("files", "needle"), [
    ({"src/merge.py": CONFLICT}, "src/merge.py:2"),
    ({"src/broken.py": "def f(:\n    return 1\n"}, "src/broken.py:1"),
])
def test_a_failing_check_refuses_whatever_fail_on_says(feature: Path, files: dict[str, str], needle: str) -> None:
    """Conflict markers and syntax errors are facts, not opinions: the gate refuses them with --fail-on block too,
    checks-only or not."""
    commit_files(feature, files, "half-done")
    for args in (["--fail-on", "block"], ["--fail-on", "changes"], ["--checks-only"]):
        proc = gitteam(feature, "review", *args)
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
        assert proc.stdout.startswith("REQUEST_CHANGES") and needle in proc.stdout
        assert "does not lift a failing check" in proc.stderr or "--fail-on changes" in " ".join(args)


def test_a_binary_file_follows_fail_on(feature: Path) -> None:
    """A binary file is a judgement a person may make: it requests changes, and refuses only with --fail-on changes."""
    (feature / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    git(feature, "add", "logo.png")
    git(feature, "commit", "-q", "-m", "logo")
    lenient = gitteam(feature, "review", "--checks-only")
    assert lenient.returncode == 0, (lenient.stdout, lenient.stderr)
    assert lenient.stdout.startswith("REQUEST_CHANGES") and "logo.png" in lenient.stdout
    assert gitteam(feature, "review", "--checks-only", "--fail-on", "changes").returncode == 3


def test_review_json_and_model_flags(feature: Path, tmp_path: Path) -> None:
    as_flag = gitteam(feature, "review", "--json")
    assert as_flag.returncode == 0, as_flag.stderr
    assert json.loads(as_flag.stdout) == json.loads(gitteam(feature, "review", "--format", "json").stdout)
    assert_error(gitteam(feature, "review", "--json", "--format", "sarif"), 2, "--json and --format sarif")
    script = reviewer_script(tmp_path, "BLOCK", "not like this", [])
    blocked = gitteam(feature, "review", "--model", f"replay:{script}", "--json")
    assert blocked.returncode == 3, (blocked.stdout, blocked.stderr)
    assert json.loads(blocked.stdout)["decision"] == "BLOCK"


def test_review_json(feature: Path) -> None:
    commit_files(feature, {"src/merge.py": CONFLICT}, "half-merged")
    proc = gitteam(feature, "review", "--format", "json")
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["decision"] == "REQUEST_CHANGES"
    markers = [f for f in data["findings"] if f["source"] == "check:conflict_markers"]
    assert sorted(f["line"] for f in markers) == [2, 4, 6]
    assert {(f["file"], f["severity"]) for f in markers} == {("src/merge.py", "major")}
    assert all(set(f) >= {"file", "line", "severity", "message", "source"} for f in data["findings"])


def test_review_of_an_older_range_with_base_and_head(feature: Path) -> None:
    first = git(feature, "rev-parse", "HEAD")
    commit_files(feature, {"src/merge.py": CONFLICT}, "half-merged")
    ok = gitteam(feature, "review", "--base", "main", "--head", first, "--fail-on", "changes")
    assert ok.returncode == 0 and ok.stdout.startswith("APPROVE"), (ok.stdout, ok.stderr)
    bad = gitteam(feature, "review", "--base", first, "--fail-on", "changes")
    assert bad.returncode == 3, (bad.stdout, bad.stderr)


@pytest.mark.parametrize(("args", "needle"), [
    (["--base", "no-such-branch"], "unknown revision for --base: no-such-branch"),
    (["--head", "deadbeef"], "unknown revision for --head: deadbeef"),
    (["--format", "xml"], "--format must be one of text, json"),
    (["--fail-on", "never"], "--fail-on must be one of block, changes"),
])
def test_review_bad_input(feature: Path, args: list[str], needle: str) -> None:
    proc = gitteam(feature, "review", *args)
    assert_error(proc, 2, needle)
    assert proc.stdout == ""


def test_review_of_an_empty_range(feature: Path) -> None:
    proc = gitteam(feature, "review", "--base", "HEAD")
    assert proc.returncode == 0, proc.stderr
    assert "nothing to review" in proc.stderr and proc.stdout == ""
    # a branch with nothing beyond main, and main itself: nothing new, not an error
    git(feature, "checkout", "-q", "-b", "fresh", "main")
    for branch in ("fresh", "main"):
        git(feature, "checkout", "-q", branch)
        proc = gitteam(feature, "review")
        assert proc.returncode == 0, (branch, proc.stderr)
        assert "nothing to review" in proc.stderr


def test_review_without_a_base_to_find(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "lonely")
    commit_files(repo, {"other.txt": "unrelated history\n"}, "root")
    git(repo, "branch", "-q", "-D", "main")
    assert_error(gitteam(repo, "review"), 2, "--base")


def test_reviewer_agent_block_refuses(feature: Path, tmp_path: Path) -> None:
    script = reviewer_script(tmp_path, "BLOCK", "double() is the wrong abstraction here",
                             [{"file": "src/util.py", "line": 2, "severity": "critical", "message": "drop it"}])
    proc = gitteam(feature, "review", "--reviewer", f"replay:{script}")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith("BLOCK")
    assert "drop it" in proc.stdout and "src/util.py:2" in proc.stdout
    # no reviewer configured: only the deterministic checks, which pass
    assert gitteam(feature, "review").returncode == 0


def test_reviewer_agent_approval_cannot_overrule_the_checks(feature: Path, tmp_path: Path) -> None:
    script = reviewer_script(tmp_path, "APPROVE", "looks fine", [])
    approve = gitteam(feature, "review", "--reviewer", f"replay:{script}")
    assert approve.returncode == 0, (approve.stdout, approve.stderr)
    assert "looks fine" in approve.stdout
    commit_files(feature, {"deploy/settings.py": f'KEY = "{AWS_KEY}"\n'}, "oops")
    proc = gitteam(feature, "review", "--reviewer", f"replay:{script}")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert proc.stdout.startswith("BLOCK")


def test_reviewer_from_config_and_a_bad_reviewer_spec(feature: Path, tmp_path: Path) -> None:
    script = reviewer_script(tmp_path, "REQUEST_CHANGES", "name it twice()", [
        {"file": "src/util.py", "line": 1, "severity": "major", "message": "the name says nothing",
         "evidence": "def double(x: int) -> int:"}])
    (feature / ".gitteam.toml").write_text(f'[roles]\nreviewer = "replay:{script.as_posix()}"\n')
    git(feature, "add", ".gitteam.toml")
    git(feature, "commit", "-q", "-m", "configure the reviewer")
    proc = gitteam(feature, "review", "--fail-on", "changes")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "name it twice()" in proc.stdout
    assert_error(gitteam(feature, "review", "--reviewer", f"replay:{tmp_path / 'missing.json'}"), 2,
                 "replay script not found")


# -- hook install / uninstall -----------------------------------------------------------------------------


def hooks_dir(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")) / "hooks"


def test_hook_install_writes_an_executable_marked_hook(repo: Path) -> None:
    proc = gitteam(repo, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    hook = hooks_dir(repo) / "pre-push"
    assert str(hook) in proc.stdout
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n") and MARKER in text
    assert f"{sys.executable} -m gitteam review" in text
    assert hook.stat().st_mode & stat.S_IXUSR
    # installing again replaces our own hook, and keeps nothing of it as a "previous" hook
    assert gitteam(repo, "hook", "install").returncode == 0
    assert not (hooks_dir(repo) / "pre-push.gitteam-previous").exists()
    proc = gitteam(repo, "hook", "uninstall")
    assert proc.returncode == 0, proc.stderr
    assert not hook.exists()
    assert_error(gitteam(repo, "hook", "uninstall"), 2, "nothing to uninstall")


def test_hook_install_from_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    proc = gitteam(linked, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    hook = repo / ".git" / "hooks" / "pre-push"
    assert MARKER in hook.read_text() and os.access(hook, os.X_OK)
    assert not list((repo / ".git" / "worktrees" / "linked").glob("hooks/*"))
    assert gitteam(repo, "hook", "uninstall").returncode == 0
    assert not hook.exists()


def test_pre_merge_commit_hook(repo: Path) -> None:
    proc = gitteam(repo, "hook", "install", "--type", "pre-merge-commit")
    assert proc.returncode == 0, proc.stderr
    assert MARKER in (hooks_dir(repo) / "pre-merge-commit").read_text()
    git(repo, "checkout", "-q", "-b", "leaky")
    commit_files(repo, {"deploy/settings.py": f'KEY = "{AWS_KEY}"\n'}, "oops")
    git(repo, "checkout", "-q", "-b", "tidy", "main")
    commit_files(repo, {"docs/usage.md": "# Usage\n"}, "docs")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"src/app.py": "def main():\n    return 5\n"}, "main moves on")
    head = git(repo, "rev-parse", "HEAD")

    refused = subprocess.run(["git", "merge", "--no-edit", "leaky"], cwd=repo, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "aws_access_key_id" in refused.stdout + refused.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    git(repo, "merge", "--abort")

    git(repo, "merge", "--no-edit", "tidy")
    assert git(repo, "rev-parse", "HEAD^1") == head
    assert git(repo, "status", "--porcelain") == ""


def test_hook_install_refuses_core_hooks_path(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    assert_error(gitteam(repo, "hook", "install"), 2, "core.hooksPath", ".githooks", "gitteam review")
    assert not (repo / ".githooks").exists()
    assert not (repo / ".git" / "hooks" / "pre-push").exists()


def test_hook_install_unknown_type(repo: Path) -> None:
    assert_error(gitteam(repo, "hook", "install", "--type", "post-commit"), 2, "pre-push, pre-merge-commit")


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    """A bare remote that already has main (pushed before any hook exists)."""
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(path))
    git(repo, "remote", "add", "origin", str(path))
    git(repo, "push", "-q", "origin", "main")
    return path


def push(repo: Path, *refspec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", "origin", *refspec], cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def remote_head(remote: Path, branch: str) -> str:
    return git(remote, "for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}")


def test_pre_push_hook_refuses_a_private_key_and_allows_a_clean_change(repo: Path, remote: Path) -> None:
    assert gitteam(repo, "hook", "install").returncode == 0
    pushed = remote_head(remote, "main")
    commit_files(repo, {"keys/deploy": PRIVATE_KEY}, "add the deploy key")
    refused = push(repo, "main")
    assert refused.returncode != 0, refused.stderr
    assert "private_key" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert remote_head(remote, "main") == pushed
    # a new branch carrying the key is refused too (its range is found from main)
    assert push(repo, "main:refs/heads/keys").returncode != 0
    assert remote_head(remote, "keys") == ""

    git(repo, "reset", "-q", "--hard", "HEAD~1")
    clean = commit_files(repo, {"src/app.py": "def main():\n    return 2\n"}, "return 2")
    allowed = push(repo, "main")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert remote_head(remote, "main") == clean
    # a new branch with nothing new is allowed as well
    assert push(repo, "main:refs/heads/copy").returncode == 0
    assert remote_head(remote, "copy") == clean


def test_foreign_hook_is_chained_and_restored(repo: Path, remote: Path, tmp_path: Path) -> None:
    ran = tmp_path / "foreign-ran"
    foreign = f"#!/bin/sh\n# the team's own hook\ncat > '{ran}'\n"
    hook = hooks_dir(repo) / "pre-push"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(foreign)
    hook.chmod(0o755)

    proc = gitteam(repo, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    assert "pre-push.gitteam-previous" in proc.stdout
    assert (hooks_dir(repo) / "pre-push.gitteam-previous").read_text() == foreign
    assert MARKER in hook.read_text()

    commit_files(repo, {"src/app.py": "def main():\n    return 3\n"}, "return 3")
    head = git(repo, "rev-parse", "HEAD")
    result = push(repo, "main")
    assert result.returncode == 0, result.stdout + result.stderr
    assert head in ran.read_text()  # the foreign hook ran, and got git's input on stdin
    assert remote_head(remote, "main") == head

    # the foreign hook's verdict still counts
    hook_prev = hooks_dir(repo) / "pre-push.gitteam-previous"
    hook_prev.write_text(foreign + "exit 7\n")
    commit_files(repo, {"src/app.py": "def main():\n    return 4\n"}, "return 4")
    assert push(repo, "main").returncode != 0
    assert remote_head(remote, "main") == head

    hook_prev.write_text(foreign)
    proc = gitteam(repo, "hook", "uninstall")
    assert proc.returncode == 0, proc.stderr
    assert "restored" in proc.stdout
    assert hook.read_text() == foreign
    assert os.access(hook, os.X_OK)
    assert not hook_prev.exists()


def test_install_refuses_when_a_previous_hook_is_already_parked(repo: Path) -> None:
    hooks = hooks_dir(repo)
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "pre-push.gitteam-previous").write_text("#!/bin/sh\nexit 1\n")
    proc = gitteam(repo, "hook", "install")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "gitteam-previous" in proc.stderr
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\nexit 0\n"
    assert (hooks / "pre-push.gitteam-previous").read_text() == "#!/bin/sh\nexit 1\n"


def test_a_checks_only_hook_refuses_a_syntax_error_and_its_options_take_effect(repo: Path, remote: Path) -> None:
    """The checks-only pre-push hook, as git runs it: a syntax error does not reach the remote; a binary file does
    unless the hook was installed with --fail-on changes."""
    installed = gitteam(repo, "hook", "install", "--checks-only")
    assert installed.returncode == 0 and "deterministic checks" in installed.stdout, installed.stderr
    pushed = remote_head(remote, "main")
    commit_files(repo, {"src/app.py": "def main(:\n    return 2\n"}, "broken")
    refused = push(repo, "main")
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "syntax" in (refused.stdout + refused.stderr).lower()
    assert remote_head(remote, "main") == pushed

    git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    git(repo, "add", "logo.png")
    git(repo, "commit", "-q", "-m", "logo")
    assert push(repo, "main").returncode == 0
    assert remote_head(remote, "main") == git(repo, "rev-parse", "HEAD")

    assert gitteam(repo, "hook", "install", "--checks-only", "--fail-on", "changes").returncode == 0
    (repo / "logo2.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00other")
    git(repo, "add", "logo2.png")
    git(repo, "commit", "-q", "-m", "another logo")
    strict = push(repo, "main")
    assert strict.returncode != 0 and remote_head(remote, "main") != git(repo, "rev-parse", "HEAD")
    assert_error(gitteam(repo, "hook", "install", "--fail-on", "never"), 2, "--fail-on must be one of")


def test_a_refused_ref_refuses_the_push_even_when_a_later_ref_passes(repo: Path, remote: Path) -> None:
    """git runs the hook once for all pushed refs: a refusal of the first must not be lost in the loop."""
    assert gitteam(repo, "hook", "install", "--checks-only").returncode == 0
    git(repo, "checkout", "-q", "-b", "bad")
    commit_files(repo, {"src/app.py": "def main(:\n"}, "broken")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "good")
    commit_files(repo, {"src/app.py": "def main():\n    return 3\n"}, "fine")
    refused = push(repo, "bad", "good")
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert remote_head(remote, "bad") == "" and remote_head(remote, "good") == ""

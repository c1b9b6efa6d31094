"""Verdicts, review parsing, diff parsing on real `git diff` output, secrets, and each deterministic check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.config import Config
from gitteam.git import Repository, find_repository
from gitteam.locks.ownership import Ownership
from gitteam.review.checks import (
    DEFAULT_CHECKS,
    CheckContext,
    ConflictMarkerCheck,
    LargeFileCheck,
    OwnershipCheck,
    PythonSyntaxCheck,
    SecretsCheck,
    TestCommandCheck,
    run_checks,
)
from gitteam.review.diff import FileChange, parse_diff, unquote
from gitteam.review.verdict import (
    Finding,
    ReviewFormatError,
    Verdict,
    combine,
    gate_decision,
    parse_review,
)
from gitteam.run.context import command_runner
from gitteam.secrets import find_secrets, redact

# Test credentials are assembled at runtime so this file itself never looks like it leaks one.
AWS_ID = "AKIA" + "IOSFODNN7ABCDEFG"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
ANTHROPIC = "sk-ant-" + "api03-Zx8Qp2LmN4vR7tY1wK9sD3fG6hJ0aB5cE"
OPENAI = "sk-proj-" + "Qz7Lm2Np4Rs6Tu8Vw0Xy1Za3Bc5De7Fg9"
SLACK = "xoxb-" + "123456789012-abcdefABCDEF"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
RANDOM = "Zx8Qp2LmN4vR7tY1wK9sD3fG6hJ0aB5cEw"
SHA = "3f2a9c1e5b7d8f0a1c2e3b4d5f6a7b8c9d0e1f2a"


# -- verdicts -------------------------------------------------------------------------------------------------


def test_finding_and_verdict_round_trip_through_json() -> None:
    finding = Finding("src/a.py", 3, "major", "off by one", "use <=", "check:x")
    verdict = Verdict("REQUEST_CHANGES", "fix it", (finding, Finding("", None, "info", "nice")))
    text = json.dumps(verdict.to_json())
    assert Verdict.from_json(json.loads(text)) == verdict
    assert Verdict.from_json(text) == verdict
    assert Finding.from_json(finding.to_json()) == finding
    with pytest.raises(ReviewFormatError):
        Finding.from_json({"file": "a", "severity": "huge", "message": "m"})


def test_combine_takes_the_strictest_decision_and_keeps_every_finding() -> None:
    a = Verdict("APPROVE", "ok", (Finding("a", 1, "info", "x"),))
    b = Verdict("REQUEST_CHANGES", "fix", (Finding("b", None, "major", "y"),))
    c = Verdict("BLOCK", "no", ())
    assert combine([a, a]).decision == "APPROVE"
    assert combine([a, b]).decision == "REQUEST_CHANGES"
    assert combine([a, b, c]).decision == "BLOCK"
    assert combine([a, b]).findings == a.findings + b.findings
    assert combine([]) == Verdict("APPROVE", "", ())


def test_gate_decision_from_severities() -> None:
    def at(severity: str) -> Finding:
        return Finding.from_json({"file": "f", "severity": severity, "message": "m"})

    assert gate_decision([]) == "APPROVE"
    assert gate_decision([at("info"), at("minor")]) == "APPROVE"
    assert gate_decision([at("minor"), at("major")]) == "REQUEST_CHANGES"
    assert gate_decision([at("major"), at("critical")]) == "BLOCK"


def test_parse_review_accepts_the_tool_arguments() -> None:
    verdict = parse_review({
        "decision": "request_changes",
        "summary": " needs work ",
        "findings": [{"file": "src/a.py", "line": 4, "severity": "Major", "message": "bug", "suggestion": "fix"},
                     {"file": "src/b.py", "severity": "info", "message": "style"}],
    })
    assert verdict.decision == "REQUEST_CHANGES"
    assert verdict.summary == "needs work"
    assert verdict.findings[0] == Finding("src/a.py", 4, "major", "bug", "fix", "reviewer")
    assert verdict.findings[1].line is None
    assert parse_review('{"decision": "APPROVE", "summary": "fine"}') == Verdict("APPROVE", "fine", ())


def test_parse_review_lists_every_problem() -> None:
    with pytest.raises(ReviewFormatError) as caught:
        parse_review({"decision": "MAYBE", "findings": [
            {"file": "a.py", "line": 0, "severity": "urgent", "message": ""}, "not an object"]})
    problems = caught.value.problems
    assert any("decision must be one of APPROVE, REQUEST_CHANGES, BLOCK" in p for p in problems)
    assert any(p.startswith("summary is required") for p in problems)
    assert any("findings[0].line" in p for p in problems)
    assert any("findings[0].severity" in p for p in problems)
    assert any("findings[0].message" in p for p in problems)
    assert any("findings[1]" in p for p in problems)
    assert "findings[0].severity" in str(caught.value)
    for bad in (None, "not json", [1, 2], {"decision": "APPROVE", "summary": "x", "findings": "none"}):
        with pytest.raises(ReviewFormatError):
            parse_review(bad)


# -- diffs ------------------------------------------------------------------------------------------------------


def _diff(repo: Path, base: str, head: str) -> list[FileChange]:
    return parse_diff(find_repository(repo).diff(base, head))


def test_parse_diff_of_real_git_output(repo: Path) -> None:
    base = commit_files(repo, {"old.py": "one\ntwo\nthree\nfour\nfive\n", "gone.txt": "bye\n", "run.sh": "echo\n",
                               "with space.txt": "s\n", "é.py": "u\n", "keep.txt": "a\nb\n"})
    git(repo, "rm", "-q", "gone.txt")
    git(repo, "mv", "old.py", "new.py")
    (repo / "new.py").write_text("one\ntwo\nthree\nfour\nfive\nsix\n")
    git(repo, "mv", "with space.txt", "also space.txt")
    (repo / "run.sh").chmod(0o755)
    (repo / "é.py").write_text("u\nv\n")
    (repo / "keep.txt").write_text("a\nB\nc")  # no newline at the end
    (repo / "img.bin").write_bytes(b"\x00\x01\x02binary")
    (repo / "crlf.txt").write_bytes(b"x\r\ny\r\n")
    (repo / "empty").write_text("")
    head = commit_files(repo, {})
    changes = {change.path: change for change in _diff(repo, base, head)}
    assert changes["gone.txt"] == FileChange("gone.txt", None, "deleted", False, ())
    assert changes["new.py"] == FileChange("new.py", "old.py", "renamed", False, ((6, "six"),))
    assert changes["also space.txt"] == FileChange("also space.txt", "with space.txt", "renamed", False, ())
    assert changes["run.sh"] == FileChange("run.sh", None, "modified", False, ())
    assert changes["é.py"].added == ((2, "v"),)
    assert changes["keep.txt"].added == ((2, "B"), (3, "c"))
    assert changes["img.bin"] == FileChange("img.bin", None, "added", True, ())
    assert changes["crlf.txt"].added == ((1, "x"), (2, "y"))
    assert changes["empty"] == FileChange("empty", None, "added", False, ())
    assert parse_diff("") == []
    assert unquote('"a/\\303\\251 \\"q\\".py"') == 'a/é "q".py'


# -- secrets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\n-----END RSA PRIVATE KEY-----", "private_key"),
    (f"id = {AWS_ID}", "aws_access_key_id"),
    (f"token: {GITHUB}", "github_token"),
    (f"key={ANTHROPIC}", "anthropic_key"),
    (f"client = OpenAI(api_key='{OPENAI}')", "openai_key"),
    (f"SLACK={SLACK}", "slack_token"),
    (f"maps = '{GOOGLE}'", "google_api_key"),
    ('DB_PASSWORD = "hunter2-Hunter2"', "generic_secret"),
    ('"client_secret": "9f8e7d6c5b4a3210"', "generic_secret"),
    ("export API_TOKEN=q8Zr2LmN4vR7tY1wK9s", "generic_secret"),
    (f"blob = '{RANDOM}'", "high_entropy"),
    (f'x = "{SHA}"', "high_entropy_hex"),
])
def test_find_secrets_detects(text: str, kind: str) -> None:
    matches = find_secrets("first line\n" + text)
    assert [m.kind for m in matches] == [kind]
    assert matches[0].line >= 2


@pytest.mark.parametrize("text", [
    f"commit {SHA}\nMerge: {SHA[:7]}",
    f"rev: {SHA}",
    f'checksum = "{SHA}{SHA[:24]}"',
    '"integrity": "sha512-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"',
    "golang.org/x/text v0.3.0 h1:g61tztE5qeGQ89tm6NTjjM9VIfy9FkzzZ/aT8dQZw2o=",
    'password = "changeme"',
    'cache_key = "user:1234:profile"',
    "SECRET_KEY = settings.DJANGO_SECRET_KEY",
    "def test_parse_diff_handles_renames_and_deletions_correctly(): pass",
    "class AbstractSingletonProxyFactoryBean2Impl99: pass",
    'api_key = os.environ["OPENAI_API_KEY"]',
    'token = "${GITHUB_TOKEN}"',
])
def test_find_secrets_leaves_ordinary_text_alone(text: str) -> None:
    assert find_secrets(text) == []


def test_redact_replaces_matches_and_secret_environment_values() -> None:
    text = f"using {ANTHROPIC} and hunter2hunter2 and short1 and {AWS_ID}\nnothing here"
    env = {"MY_SERVICE_PASSWORD": "hunter2hunter2", "OTHER_TOKEN": "short1", "PLAIN": "nothing here"}
    out = redact(text, env)
    assert out == ("using [REDACTED:anthropic_key] and [REDACTED:env:MY_SERVICE_PASSWORD] and short1 and "
                   "[REDACTED:aws_access_key_id]\nnothing here")
    assert redact(out, env) == out


# -- checks -------------------------------------------------------------------------------------------------------


def _context(path: Path, base: str, head: str, owned: list[str] | None = None, **kwargs: object) -> CheckContext:
    repo = find_repository(path)
    changes = parse_diff(repo.diff(base, head))
    ownership = Ownership(owned) if owned is not None else None
    kwargs.setdefault("commands", command_runner(repo, Config()))
    return CheckContext(repo, base, head, changes, ownership, **kwargs)  # type: ignore[arg-type]


def test_ownership_check_covers_both_sides_of_a_rename(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "docs").mkdir()
    git(repo, "mv", "README.md", "docs/README.md")
    head = commit_files(repo, {"src/app.py": "def main():\n    return 2\n", "src/new.py": "x = 1\n"})
    findings = OwnershipCheck().run(_context(repo, base, head, ["src/", "docs/README.md"]))
    assert [(f.file, f.severity) for f in findings] == [("README.md", "critical")]
    assert "README.md" in findings[0].message
    assert OwnershipCheck().run(_context(repo, base, head, None)) == []


def test_secrets_check_reports_the_line_but_not_the_secret(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"src/conf.py": f"A = 1\nKEY = '{ANTHROPIC}'\n",
                               "package-lock.json": f'{{"x": "{RANDOM}"}}\n'})
    findings = SecretsCheck().run(_context(repo, base, head))
    assert [(f.file, f.line, f.severity) for f in findings] == [("src/conf.py", 2, "critical")]
    assert ANTHROPIC not in findings[0].message and "anthropic_key" in findings[0].message


def test_conflict_marker_check(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    conflict = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> topic\n"
    head = commit_files(repo, {"src/x.py": conflict, "doc.md": "Title\n=======\n", "ok.txt": "<<<<<<<no space\n"})
    findings = ConflictMarkerCheck().run(_context(repo, base, head))
    assert [(f.file, f.line, f.severity) for f in findings] == [
        ("src/x.py", 2, "major"), ("src/x.py", 4, "major"), ("src/x.py", 6, "major")]


def test_python_syntax_check(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"src/app.py": "def main(:\n    pass\n", "src/fine.py": "x = '\\d'\n",
                               "notes.txt": "def (:\n"})
    findings = PythonSyntaxCheck().run(_context(repo, base, head))
    assert [(f.file, f.line, f.severity) for f in findings] == [("src/app.py", 1, "major")]
    assert "syntax" in findings[0].message


def test_large_file_check(repo: Path) -> None:
    commit_files(repo, {"data/already.csv": "x" * 2000})
    base = git(repo, "rev-parse", "HEAD")
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    head = commit_files(repo, {"big.txt": "y" * 1500, "data/already.csv": "x" * 2100, "small.txt": "s"})
    findings = LargeFileCheck().run(_context(repo, base, head, max_file_bytes=1000))
    assert sorted((f.file, f.severity) for f in findings) == [("big.txt", "major"), ("logo.png", "major")]


def test_test_command_check_runs_in_the_worktree(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"check.py": "import sys\nprint('checking')\nsys.exit(len(sys.argv) - 1)\n"})
    ok = _context(repo, base, head, worktree=repo, test_command=f"{sys.executable} check.py")
    assert TestCommandCheck().run(ok) == []
    failing = _context(repo, base, head, worktree=repo, test_command=f"{sys.executable} check.py --fail")
    [finding] = TestCommandCheck().run(failing)
    assert finding.severity == "major" and "exit 1" in finding.message and "checking" in finding.message
    assert TestCommandCheck().run(_context(repo, base, head, test_command="pytest")) == []  # no worktree


def test_run_checks_stamps_sources_and_runs_every_default_check(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"src/app.py": "def main(:\n", "other.txt": f"k = '{GITHUB}'\n"})
    findings = run_checks(_context(repo, base, head, ["src/app.py"]))
    assert {f.source for f in findings} == {"check:ownership", "check:secrets", "check:python_syntax"}
    assert gate_decision(findings) == "BLOCK"
    assert [c.name for c in DEFAULT_CHECKS] == ["ownership", "secrets", "conflict_markers", "python_syntax",
                                                "large_files", "test_command"]
    assert run_checks(_context(repo, base, head, ["src/app.py"]), [OwnershipCheck()])[0].file == "other.txt"


def test_diff_of_gateway_matches_changed_paths(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "src/app.py", "src/main.py")
    head = commit_files(repo, {"a b/c.txt": "hi\n"})
    gateway: Repository = find_repository(repo)
    paths = {p for c in parse_diff(gateway.diff(base, head)) for p in (c.path, c.old_path) if p}
    assert paths == set(gateway.changed_paths(base, head))
    assert subprocess.run(["git", "diff", "--quiet", base, head], cwd=repo).returncode == 1


def test_parse_diff_is_not_fooled_by_hunk_lines_that_look_like_headers(repo: Path) -> None:
    base = commit_files(repo, {"q.sql": "-- a/comment\nselect 1;\n", "bin.dat": "\x00old", "b/x b/y": "1\n"})
    git(repo, "rm", "-q", "bin.dat")
    head = commit_files(repo, {"q.sql": "++ b/odd\nselect 1;\n\x0cpage\n", "b/x b/y": "2\n"})
    changes = {change.path: change for change in _diff(repo, base, head)}
    assert changes["q.sql"].added == ((1, "++ b/odd"), (3, "\x0cpage"))
    assert changes["bin.dat"] == FileChange("bin.dat", None, "deleted", True, ())
    assert changes["b/x b/y"].added == ((1, "2"),)


def test_parse_diff_reads_a_plain_unified_diff() -> None:
    plain = "--- a/f.txt\n+++ b/f.txt\n@@ -1 +1,2 @@\n x\n+y\n"
    assert parse_diff(plain) == [FileChange("f.txt", None, "modified", False, ((2, "y"),))]

"""The deterministic checks' edges that test_review_units leaves open: the test command timing out or not
parsing, the file size limit from config, secrets only in added lines, prose that looks like a conflict."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import commit_files, git
from gitteam.config import Config, load_config
from gitteam.git import find_repository
from gitteam.review.checks import CheckContext, ConflictMarkerCheck, SecretsCheck, TestCommandCheck, run_checks
from gitteam.review.diff import parse_diff
from gitteam.review.policy import decide, floor
from gitteam.run.context import command_runner

GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # assembled: no secret-shaped literal here


def context(repo: Path, base: str, head: str, **kwargs: object) -> CheckContext:
    repository = find_repository(repo)
    kwargs.setdefault("commands", command_runner(repository, Config()))
    return CheckContext(repository, base, head, parse_diff(repository.diff(base, head)), None,
                        **kwargs)  # type: ignore[arg-type]


def test_test_command_that_hangs_or_does_not_parse(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"slow.py": "import time\nprint('started', flush=True)\ntime.sleep(30)\n"})
    [slow] = TestCommandCheck().run(context(repo, base, head, worktree=repo, command_timeout=0.5,
                                            test_command=f"{sys.executable} slow.py"))
    assert slow.severity == "major" and "timed out after 0.5s" in slow.message and "started" in slow.message
    [broken] = TestCommandCheck().run(context(repo, base, head, worktree=repo, test_command="pytest 'unclosed"))
    assert broken.severity == "major" and broken.suggestion and "[commands] test" in broken.suggestion


def test_secrets_count_only_in_added_lines(repo: Path) -> None:
    base = commit_files(repo, {"old.cfg": f"token = {GITHUB}\n", "keep.cfg": f"token = {GITHUB}\nx = 1\n"})
    git(repo, "rm", "-q", "old.cfg")
    head = commit_files(repo, {"keep.cfg": f"token = {GITHUB}\nx = 2\n"})  # the old line only stays
    assert SecretsCheck().run(context(repo, base, head)) == []
    # a finding that ends up blocking is critical, whatever else the change holds
    newer = commit_files(repo, {"new.cfg": f"a = 1\ntoken = {GITHUB}\n"})
    [found] = SecretsCheck().run(context(repo, head, newer))
    assert (found.file, found.line, found.severity) == ("new.cfg", 2, "critical")
    assert decide([found], lambda: floor([])).decision == "BLOCK"


def test_markdown_underlines_are_not_conflicts_but_real_markers_in_prose_are(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"doc.rst": "Title\n=======\n", "notes.md": "a\n<<<<<<< HEAD\nb\n=======\nc\n"})
    findings = ConflictMarkerCheck().run(context(repo, base, head))
    assert [(f.file, f.line) for f in findings] == [("notes.md", 2), ("notes.md", 4)]


def test_the_size_limit_comes_from_the_review_section(repo: Path) -> None:
    (repo / ".gitteam.toml").write_text("[review]\nmax_file_bytes = 1000\n")
    config = load_config(repo, env={})
    base = git(repo, "rev-parse", "HEAD")
    head = commit_files(repo, {"data.csv": "x" * 1500})
    findings = run_checks(context(repo, base, head, max_file_bytes=config.review.max_file_bytes))
    assert [(f.file, f.source) for f in findings] == [("data.csv", "check:large_files")]
    assert "over the limit of 1,000" in findings[0].message

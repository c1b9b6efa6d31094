"""Hermetic tests on real git: every test gets its own HOME, no system config, fixed identities."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitteam.git import Repository

pytest_plugins = ("crews",)  # the loopback crews' fixtures: crew, api, loopback_env, sleeps


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)  # worktrees go under this test's HOME
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.com")
    monkeypatch.setenv("GIT_EDITOR", "false")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    monkeypatch.delenv("GIT_INDEX_FILE", raising=False)
    for name in list(os.environ):
        if name.startswith("GITTEAM_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name, raising=False)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n[user]\n\tname = Test\n\temail = t@example.com\n")
    yield


def git(cwd: Path, *args: str) -> str:
    """Run git in a test; tests use it to set up and inspect, never gitteam's gateway."""
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def commit_files(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for rel, content in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository on branch main with one commit."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commit_files(path, {"README.md": "# project\n", "src/app.py": "def main():\n    return 1\n"}, "initial")
    return path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that is also the current one, so config messages show `.gitteam.toml` as written."""
    path = tmp_path / "repo"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def side_commit(r: Repository, tmp_path: Path, files: dict[str, str | None],
                author: tuple[str, str] = ("Agent One", "agent1@example.com")) -> tuple[str, str]:
    """A commit descending from main, made on a side worktree (None deletes a file); returns (main, the commit)."""
    old = r.rev_parse("main")
    assert old is not None
    wt = tmp_path / "side"
    r.create_worktree(wt, "side", "main")
    for rel, content in files.items():
        if content is None:
            (wt / rel).unlink()
        else:
            (wt / rel).parent.mkdir(parents=True, exist_ok=True)
            (wt / rel).write_text(content)
    new = r.commit_paths(wt, list(files), "side work", author)
    assert new is not None
    return old, new


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argument list of every process started from here on (subprocess.run goes through Popen too)."""
    calls: list[list[str]] = []

    class Counted(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, args: list[str], *rest: object, **options: object) -> None:
            calls.append([str(arg) for arg in args])
            super().__init__(args, *rest, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess, "Popen", Counted)
    return calls

"""Commands run contained: time limits kill the whole group, output is capped, the environment holds no keys."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from gitteam.errors import GitteamError
from gitteam.sandbox import check_command, parse_command, run_command, safe_env

PY = sys.executable


def _env(tmp_path: Path) -> dict[str, str]:
    return safe_env(tmp_path, {}, ())


def _gone(pid: int) -> bool:
    """True once pid has exited (a zombie left for a non-reaping init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def test_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = run_command([PY, "-c", script], tmp_path, _env(tmp_path), timeout=1.0, max_output=1000)
    assert time.monotonic() - started < 5
    assert result.timed_out and result.exit_code is None
    assert "started" in result.output
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


def test_leftover_background_processes_do_not_hold_the_command_open(tmp_path: Path) -> None:
    script = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])"
    started = time.monotonic()
    result = run_command([PY, "-c", script + "; print('done')"], tmp_path, _env(tmp_path), 30, 1000)
    assert time.monotonic() - started < 5
    assert result == result.__class__(0, "done\n", False, result.duration, False)


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    script = "print('HEAD'); print('x' * 200000); print('TAIL')"
    result = run_command([PY, "-c", script], tmp_path, _env(tmp_path), 30, 500)
    assert result.truncated and result.exit_code == 0
    assert len(result.output) <= 500
    assert result.output.startswith("HEAD\n") and result.output.endswith("TAIL\n")
    assert "characters cut ...]" in result.output
    small = run_command([PY, "-c", "print('a' * 600)"], tmp_path, _env(tmp_path), 30, 500)
    assert small.truncated and len(small.output) <= 500


def test_stdout_and_stderr_are_combined_and_stdin_is_closed(tmp_path: Path) -> None:
    script = "import sys; print('out', flush=True); print('err', file=sys.stderr, flush=True); " \
             "print(repr(sys.stdin.read())); sys.exit(3)"
    result = run_command([PY, "-c", script], tmp_path, _env(tmp_path), 30, 1000)
    assert result.exit_code == 3 and not result.timed_out and not result.truncated
    assert result.output == "out\nerr\n''\n"


def test_missing_executable_is_exit_127(tmp_path: Path) -> None:
    result = run_command(["no-such-program-gitteam"], tmp_path, _env(tmp_path), 30, 1000)
    assert result.exit_code == 127 and "no-such-program-gitteam" in result.output
    missing_dir = run_command([PY, "-V"], tmp_path / "nope", _env(tmp_path), 30, 1000)
    assert missing_dir.exit_code == 126 and "no such directory" in missing_dir.output


def test_safe_env_holds_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {"ANTHROPIC_API_KEY": "a" * 20, "OPENAI_BASE_URL": "http://x", "AWS_REGION": "eu",
              "GITHUB_TOKEN": "t" * 20, "DB_PASSWORD": "p" * 20, "MY_SECRET": "s" * 20, "NPM_TOKEN": "n" * 20}
    for name, value in secret.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VIRTUAL_ENV", "/venv")
    env = safe_env(tmp_path, {"FOO": "1", "EXTRA_KEY": "k" * 20}, ["GITHUB_TOKEN"])
    assert env["GITHUB_TOKEN"] == "t" * 20
    assert env["FOO"] == "1" and env["VIRTUAL_ENV"] == "/venv" and env["TERM"] == "dumb"
    assert env["PATH"] == os.environ["PATH"]
    assert not {"ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "AWS_REGION", "DB_PASSWORD", "MY_SECRET", "NPM_TOKEN",
                "EXTRA_KEY"} & set(env)
    shown = run_command([PY, "-c", "import os; print(sorted(os.environ))"], tmp_path, env, 30, 10000).output
    assert "ANTHROPIC_API_KEY" not in shown and "GITHUB_TOKEN" in shown


def test_parse_command() -> None:
    assert parse_command("pytest -q 'tests/a b.py'") == ["pytest", "-q", "tests/a b.py"]
    assert parse_command("   ") == []
    with pytest.raises(GitteamError, match="quotes"):
        parse_command("pytest 'unclosed")


# entries are whole argument patterns (tests/test_allow.py): an entry allows more words only with a last `...`
@pytest.mark.parametrize(("command", "allowed", "ok"), [
    ("pytest -q tests/x.py", ["pytest ..."], True),
    ("pytest -q tests/x.py", ["pytest"], False),
    ("pytest", ["pytest"], True),
    ("pytestx", ["pytest"], False),
    ("python -m pytest -q", ["python -m pytest ..."], True),
    ("python -m pytest -q", ["python -m pytest"], False),
    ("python evil.py", ["python -m pytest"], False),
    ("python -m", ["python -m pytest"], False),
    ("npm test", ["pytest", "npm test"], True),
    ("npm install", ["npm test"], False),
    ("ruff check .", [], False),
    ("", ["pytest"], False),
])
def test_command_allowed(command: str, allowed: list[str], ok: bool) -> None:
    assert (check_command(parse_command(command), allowed) is None) is ok


def test_a_command_linked_from_path_brings_where_it_is_installed(tmp_path: Path) -> None:
    """pipx / `uv tool` / npm link a command on PATH to its installation: the sandbox shows that installation
    (a virtualenv, an npm prefix's node_modules), but follows no link a private tree holds or that is no program."""
    from gitteam.sandbox.bwrap import toolchain_paths

    bin_dir = tmp_path / "prefix" / "bin"
    bin_dir.mkdir(parents=True)
    package = tmp_path / "prefix" / "lib" / "node_modules" / "@acme" / "cli" / "bin"
    package.mkdir(parents=True)
    (package / "cli.js").write_text("#!/usr/bin/env node\n")
    (package / "cli.js").chmod(0o755)
    (bin_dir / "acme").symlink_to(package / "cli.js")
    venv = tmp_path / "venvs" / "tool"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("version = 3.11.0\n")
    (venv / "bin" / "tool").write_text("#!/bin/sh\n")
    (venv / "bin" / "tool").chmod(0o755)
    (bin_dir / "tool").symlink_to(venv / "bin" / "tool")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("KEY")
    (bin_dir / "key").symlink_to(secret / "id_rsa")
    checkout = tmp_path / "checkout"
    (checkout / "tools").mkdir(parents=True)
    (checkout / "tools" / "run").symlink_to(package / "cli.js")
    env = {"PATH": f"{checkout / 'tools'}:{bin_dir}"}

    def shown(command: str) -> list[str]:
        return toolchain_paths([command], env, tmp_path / "home", (checkout,))

    assert str(tmp_path / "prefix" / "lib" / "node_modules") in shown("acme")
    assert str(venv) in shown("tool")
    assert str(secret) not in shown("key")
    assert str(package) not in shown("run")  # found in the checkout first: not followed

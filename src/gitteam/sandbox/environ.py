"""The environment a contained command gets: a safe base, the variables the user passes, nothing secret."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from gitteam.secrets import is_secret_name

# Variables a build or test tool commonly needs and that hold no credentials.
BASE_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TEMP", "TMP",
    "VIRTUAL_ENV", "PYTHONPATH", "CONDA_PREFIX", "GOPATH", "GOROOT", "GOCACHE", "GOMODCACHE", "CARGO_HOME",
    "RUSTUP_HOME", "JAVA_HOME", "NODE_PATH", "NVM_DIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
)
# Nothing may wait for a terminal or page its output.
FIXED_ENV = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}

__all__ = ["BASE_ENV", "FIXED_ENV", "is_secret_name", "safe_env"]  # is_secret_name: the one rule, in secrets.py


def safe_env(worktree: Path, extra: Mapping[str, str], pass_env: Sequence[str]) -> dict[str, str]:
    """A minimal environment for commands run in `worktree`.

    BASE_ENV from os.environ, then the variables named in `pass_env`, then `extra`, then FIXED_ENV. A name
    that looks like a credential (is_secret_name) is kept only when `pass_env` names it, even in `extra`.
    """
    passed = set(pass_env)
    env = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
    env.update({name: os.environ[name] for name in pass_env if name in os.environ})
    env.update(extra)
    env = {name: value for name, value in env.items() if name in passed or not is_secret_name(name)}
    env.update(FIXED_ENV)
    env["PWD"] = str(worktree)
    return env

"""The one user-facing error type and the exit codes of the contract."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit codes fixed by the contract for run, resume, approve and review."""

    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    BUDGET = 4
    REJECTED = 5
    INTERRUPTED = 130


class GitteamError(Exception):
    """An error the user can act on: its message says what happened and what to do next.

    The top-level handler in cli.py prints it as one line and exits with `exit_code`.
    """

    exit_code: int = Exit.FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(GitteamError):
    """Bad arguments, bad configuration, not a repository: exit 2."""

    exit_code = Exit.USAGE


class ConfigError(UsageError):
    """A configuration value is wrong; the message names the key and the file."""

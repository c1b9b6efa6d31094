"""Which command lines the coder's `run` tool may start."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from gitteam.errors import GitteamError


def parse_command(line: str) -> list[str]:
    """Split a command line the way a POSIX shell would, without running a shell; [] for a blank line."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise GitteamError(f"cannot parse the command {line!r}: {exc} (check its quotes)") from None


def command_allowed(argv: Sequence[str], allowed: Sequence[str]) -> bool:
    """True when argv begins with all the words of one allowed entry ("pytest" allows "pytest -q x.py")."""
    if not argv:
        return False
    for entry in allowed:
        try:
            words = shlex.split(entry)
        except ValueError:
            continue
        if words and list(argv[:len(words)]) == words:
            return True
    return False

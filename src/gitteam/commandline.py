"""Command-line syntax, checked the same way everywhere: a line splits the way a POSIX shell would split it
(no shell ever runs), and an allow-list entry of `[commands] allowed` is such a line whose first word names the
program and whose only `...` is its last word.

A bottom module: it imports nothing of gitteam, so the config's validation and the sandbox's matching of
commands (`sandbox.allow`) share these definitions without importing each other.
"""

from __future__ import annotations

import re
import shlex

MORE = "..."  # the last word of an entry that allows more arguments
GLOB = re.compile(r"[*?\[]")  # a word holding one of these is a glob


def splits(line: str) -> bool:
    """Whether the line splits into words: its quotes are balanced."""
    try:
        shlex.split(line)
    except ValueError:
        return False
    return True


def entry_problem(entry: str) -> str | None:
    """Why `entry` cannot be an allow-list entry, or None; config validation and check_command share it."""
    try:
        words = shlex.split(entry)
    except ValueError:
        return "unbalanced quotes"
    if not words:
        return "an empty command line"
    if words[0] == MORE or GLOB.search(words[0]):
        return "its first word must name the program, not a pattern"
    if MORE in words[:-1]:
        return f"{MORE} may only be its last word"
    return None

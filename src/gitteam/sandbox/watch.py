"""Defence in depth around each contained command: the git files that make git run programs must not change.

The sandbox shows the git dir read-only, so with bubblewrap a change here means containment failed; with
`[sandbox] mode = "none"` it is the only line left. The files are compared, never restored: the user or git
itself may have written them meanwhile, and only a person can tell which change to keep.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from gitteam.errors import GitteamError

Snapshot = dict[str, tuple[int, str]]  # relative path -> (mode, content digest)

# Where a command could plant config, hooks or attributes that git (gitteam's, or the user's next one) obeys.
_FILES = ("config", "config.worktree", "commondir", "objects/info/alternates")
_TREES = ("hooks", "info")


class ContainmentBreach(GitteamError):
    """A contained command changed what it must not; the run stops, and a person has to look."""


@dataclass(frozen=True, slots=True)
class GitDirWatch:
    """The files of one repository's git dir (and one worktree's `.git` link) that no command may change."""

    git_dir: Path
    worktree: Path | None = None

    def snapshot(self) -> Snapshot:
        found: Snapshot = {}
        for name in _FILES:
            self._add(found, name)
        for top in _TREES:
            for parent, _, files in os.walk(self.git_dir / top):
                for name in files:
                    self._add(found, os.path.relpath(os.path.join(parent, name), self.git_dir))
        for config in sorted((self.git_dir / "worktrees").glob("*/config.worktree")):
            self._add(found, os.path.relpath(config, self.git_dir))
        if self.worktree is not None:
            found[".git (worktree link)"] = _digest(self.worktree / ".git")
        return found

    def _add(self, found: Snapshot, relative: str) -> None:
        entry = _digest(self.git_dir / relative)
        if entry[0]:
            found[relative] = entry

    def check(self, before: Snapshot, command: str) -> None:
        """Raise ContainmentBreach naming every watched file the command added, changed or removed."""
        after = self.snapshot()
        changed = sorted(name for name in before.keys() | after.keys()
                         if before.get(name) != after.get(name) and not _gone_worktree(name, after))
        if changed:
            shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
            raise ContainmentBreach(
                f"containment breach: while `{command}` ran, {shown} in {self.git_dir} changed; the subtask is "
                "stopped and nothing was restored: inspect these files (they can make git run programs) "
                "before you run git in this repository again")


def _gone_worktree(name: str, after: Snapshot) -> bool:
    """Another agent's worktree removed meanwhile takes its config with it: that is gitteam, not the command."""
    return name.startswith("worktrees/") and name not in after


def _digest(path: Path) -> tuple[int, str]:
    try:
        info = os.lstat(path)
    except OSError:
        return (0, "")
    if os.path.islink(path):
        return (info.st_mode, "link:" + os.readlink(path))
    if not os.path.isfile(path):
        return (info.st_mode, "")
    try:
        return (info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    except OSError:
        return (info.st_mode, "unreadable")

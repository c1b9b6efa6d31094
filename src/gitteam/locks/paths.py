"""The one path resolution every agent tool uses: repo-relative, posix, inside the root, never in `.git`.

Two layers. `normalize_repo_path` is lexical and pure (plans and ownership use it without a filesystem).
`resolve_path` adds what only the filesystem knows: symlinks that lead out of the repository, and
symlinks that a write would go through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gitteam.errors import GitteamError
from gitteam.terminal import control_character

# Windows drive paths ("C:\x", "C:/x", "C:x") are absolute or drive-relative where they are read.
_DRIVE = re.compile(r"^[A-Za-z]:")

# Code points HFS+ ignores in names, so ".g\u200cit" opens ".git" there (git refuses them for that reason).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


class PathRefused(GitteamError):
    """A path an agent or a plan gave that gitteam will not touch; the message says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"refused: {show_path(path)} {reason}")
        self.path = path
        self.reason = reason


def show_path(path: str) -> str:
    """The path as typed when it prints cleanly, else escaped (NUL, newlines) so messages stay one line."""
    return path if path.isprintable() and path.strip() == path and path else repr(path)


def fold_name(name: str) -> str:
    """A name as the most forgiving filesystem reads it: any case (macOS, Windows), trailing dots or
    spaces dropped (Windows), ignorable code points removed (HFS+). Equal folds may open the same file."""
    return name.translate(_HFS_IGNORED).rstrip(". ").casefold()


def is_git_dir_name(name: str) -> bool:
    """True for names some filesystem opens as `.git`: any case, trailing dots or spaces
    (Windows), ignorable code points (HFS+), and the 8.3 short name `git~1` (NTFS)."""
    folded = fold_name(name)
    return folded == ".git" or folded == "git~1"


def normalize_repo_path(path: str) -> str:
    """Lexically normalize `path` to a repo-relative posix path, or raise PathRefused.

    Strips `./`, collapses `//`, resolves `.` and `..`; refuses the empty path, NUL bytes and every other
    control character (C0, DEL, C1: a newline in a name breaks every line-based tool, an escape rewrites the
    terminal that lists it) and the bidirectional overrides that reorder how a name reads, absolute and drive
    paths, backslashes, escapes above the root, any `.git` component and the root itself.
    """
    if not isinstance(path, str) or not path:
        raise PathRefused(str(path), "is empty: give a file path relative to the repository root")
    if "\0" in path:
        raise PathRefused(path, "contains a NUL byte")
    hostile = control_character(path)
    if hostile is not None:
        raise PathRefused(path, f"contains a control or bidirectional character ({hostile}): file names may "
                                "hold only printable characters")
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise PathRefused(path, "is absolute: give a path relative to the repository root, with /")
    if "\\" in path:
        raise PathRefused(path, "contains a backslash: separate directories with /")
    parts: list[str] = []
    for part in path.split("/"):
        if is_git_dir_name(part):
            raise PathRefused(path, "is inside .git, which agents may not touch")
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(path, "is outside the repository")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise PathRefused(path, "is the repository root, not a file")
    return "/".join(parts)


def normalize_entry(entry: str) -> str:
    """Normalize an ownership entry: like normalize_repo_path, but a trailing `/` (a directory) is kept."""
    normalized = normalize_repo_path(entry)
    return normalized + "/" if entry.endswith("/") else normalized


def resolve_path(root: Path, path: str, *, for_write: bool = False, for_delete: bool = False) -> str:
    """Normalize `path` and check it against the filesystem under `root`; return the normalized path.

    Refused: a component that is a symlink resolving outside `root` (or into a `.git` under it), and,
    when `for_write`, any symlink on the way: writing through one changes another file than the one named
    (whose owner may differ), and git will not stage a path beyond a symlink anyway. `for_delete` is the
    same except that the final component may be a symlink (inside the root): unlinking removes the link only.
    Components that do not exist yet are fine: writes create them.
    """
    relative = normalize_repo_path(path)
    real_root = Path(os.path.realpath(root))
    parts = relative.split("/")
    current = Path(root)
    for index, part in enumerate(parts):
        current = current / part
        if os.path.islink(current):
            if for_write and index == len(parts) - 1:
                raise PathRefused(path, "is a symlink: writing through it would change another file")
            target = Path(os.path.realpath(current))
            if not target.is_relative_to(real_root):
                raise PathRefused(path, "goes through a symlink that points outside the repository")
            inside = target.relative_to(real_root)
            if any(is_git_dir_name(name) for name in inside.parts):
                raise PathRefused(path, "goes through a symlink that points into .git")
            if (for_write or for_delete) and index < len(parts) - 1:
                link, real = "/".join(parts[: index + 1]), "/".join([*inside.parts, *parts[index + 1 :]])
                raise PathRefused(path, f"goes through the symlink {link}: use {real}")
        elif not os.path.lexists(current):
            break  # nothing below a missing component exists, so nothing below can be a link
    return relative

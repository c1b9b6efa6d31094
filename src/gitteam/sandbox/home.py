"""A `command:` coder's private HOME: copies of the login files the user named, never the real HOME.

An agent CLI must be able to refresh its token and write its state, so it gets a writable HOME of its own,
seeded once per agent from `[sandbox] home_files`; nothing goes back unless `home_write_back` says so.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path


def prepare_home(home: Path, real_home: Path, files: Sequence[str]) -> Path:
    """Create `home` (once) with copies of `files` (relative to `real_home`); symlinks are copied as links."""
    if home.is_dir():
        return home  # a later round, or a resume: the CLI's own state since then is kept
    seeded = home.with_name(home.name + ".seeding")
    shutil.rmtree(seeded, ignore_errors=True)
    seeded.mkdir(parents=True, mode=0o700)
    for name in files:
        _copy(real_home / _relative(name), seeded / _relative(name))
    os.replace(seeded, home)  # a kill mid-copy leaves no half-seeded home behind
    return home


def write_back(home: Path, real_home: Path, files: Sequence[str]) -> list[str]:
    """Copy `files` from the private `home` over the real ones (a refreshed token); returns what changed."""
    changed = []
    for name in files:
        source, target = home / _relative(name), real_home / _relative(name)
        if source.is_file() and not source.is_symlink():
            if not target.is_file() or target.read_bytes() != source.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                temporary = target.with_name(f".{target.name}.gitteam-{os.getpid()}")
                shutil.copy2(source, temporary)
                os.replace(temporary, target)
                changed.append(name)
        elif source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
            changed.append(name)
    return changed


def _relative(name: str) -> str:
    """A home file's name as configured ("~/.claude.json", ".claude/") relative to HOME; never outside it."""
    relative = os.path.normpath(name.removeprefix("~/").strip("/"))
    if relative.startswith("..") or os.path.isabs(relative):
        raise ValueError(f"home file {name!r} is not inside HOME")
    return relative


def _copy(source: Path, target: Path) -> None:
    if source.is_symlink() or source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True)

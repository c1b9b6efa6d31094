"""gitteam's own OS lock around the git operations that can leave git's lock files behind, and the clearing of
those a killed gitteam left.

git's lock files (`index.lock`, `HEAD.lock`, `refs/heads/x.lock`, `packed-refs.lock`) record no owner: after a
kill nothing tells a stale one from one a live git holds, and every later git that needs it refuses to run
("Unable to create '.../index.lock': File exists"). So each such operation gitteam runs holds a shared `flock`
on `<state>/locks/git.lock` and, before git starts, writes a record of the lock files it may leave
(`<state>/locks/ops/*.json`, removed when the operation ends). Recovery takes that lock exclusively: while it
holds it no gitteam is inside such an operation, so every record still there is a dead process's, and each lock
file the record names that exists, and was made after the record, is stale and removed. Lock files in places
other git users write too (the target branch, the user's own checkout, notes refs, `packed-refs`) must also be
SHARED_AGE seconds old, so a git the user has just started keeps its lock. Nothing but the named files (and a
`locked` file that `git worktree add` left saying "initializing", with the whole admin dir when the kill came
before git had written its `gitdir` and `commondir`) is ever removed.

Paths are recorded relative to the common git dir, so a record still applies after the repository was moved.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # no flock (Windows): operations run unguarded and nothing is ever cleared
    fcntl = None  # type: ignore[assignment]

SHARED_AGE = 2.0  # seconds: a lock in a shared place younger than this may be a live git's
SLACK = 1.0  # seconds: file times and the record's clock may differ by this much
ADMIN_LOCKS = ("index.lock", "HEAD.lock", "ORIG_HEAD.lock")  # what git makes in a worktree's git dir
INITIALIZING = "initializing"  # what `git worktree add` writes to `locked` until the worktree is made
# Tests only: "<point>:<n>" makes this process kill itself (and the git it runs) at the n-th time it reaches
# `point`, with git holding its locks; see kill_point.
KILL_AT = "GITTEAM_TEST_KILL_AT"
_sequence = itertools.count(1)
_reached: dict[str, int] = {}
_reached_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LockFile:
    """A lock file a git operation may make: its path relative to the common dir, and whether others write there."""

    path: str
    shared: bool


class GitLocks:
    """The guard of one repository's git operations (`held`), and the clearing of what dead ones left
    (`clear_stale`)."""

    def __init__(self, common_dir: Path, state_dir: Path) -> None:
        self.common_dir = common_dir
        self.dir = state_dir / "locks"

    @contextmanager
    def held(self, files: Sequence[LockFile] = (), adding: str = "") -> Iterator[None]:
        """Run a git operation that may leave `files` (or, `adding`, a new worktree's admin dir of that name)."""
        fd = self._guard()
        if fd is None:  # no state dir to write (a read-only repository): unguarded, as git itself is
            yield
            return
        record: Path | None = None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if files or adding:
                record = self._record(files, adding)
            yield
        finally:
            if record is not None:
                with suppress(OSError):
                    record.unlink()
            os.close(fd)

    @contextmanager
    def worktree_admin(self) -> Iterator[None]:
        """One `git worktree` command on the repository at a time, across processes: git reads every admin dir in
        `.git/worktrees/` on add, remove, prune, repair and list, and dies on one another git is deleting
        ("fatal: Invalid path '.git/worktrees/b'")."""
        with self.exclusive("worktrees"):
            yield

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """One holder of `<state>/locks/<name>.lock` at a time, across threads and processes."""
        fd = None
        if fcntl is not None:
            with suppress(OSError):
                self.dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)

    def clear_stale(self, wait: float = 10.0) -> list[Path]:
        """Remove the lock files that dead gitteam operations left; the paths removed. Waits up to `wait`
        seconds for a moment when no gitteam is inside an operation on this repository, then gives up."""
        ops = self.dir / "ops"
        if fcntl is None or not ops.is_dir():
            return []
        fd = self._guard()
        if fd is None:
            return []
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return []
                    time.sleep(0.02)
            removed: list[Path] = []
            for record in sorted(ops.glob("*.json")):
                removed += self._clear(record)
                with suppress(OSError):
                    record.unlink()
            return removed
        finally:
            os.close(fd)

    def _guard(self) -> int | None:
        if fcntl is None:
            return None
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            return os.open(self.dir / "git.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None

    def _record(self, files: Sequence[LockFile], adding: str) -> Path | None:
        data = {"pid": os.getpid(), "start": time.time(), "adding": adding,
                "files": [[lock.path, lock.shared] for lock in files]}
        path = self.dir / "ops" / f"{os.getpid()}-{threading.get_ident()}-{next(_sequence)}.json"
        try:
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(data), encoding="utf-8")
        except OSError:
            return None
        return path

    def _clear(self, record: Path) -> list[Path]:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            start = float(data["start"])
            files = [(str(path), bool(shared)) for path, shared in data["files"]]
            adding = str(data.get("adding") or "")
        except (OSError, ValueError, KeyError, TypeError):
            return []  # torn by the kill before git started: nothing of git's to clear
        removed = []
        for rel, shared in files:
            path = self.common_dir / rel
            if _remove_if_stale(path, start, shared):
                removed.append(path)
        if adding:
            removed += self._half_added(adding, start)
        return removed

    def _half_added(self, name: str, start: float) -> list[Path]:
        """A `git worktree add` killed midway leaves its admin dir `locked` ("initializing"), which keeps
        `git worktree prune` and `remove` off it; that mark and the locks in the dir go."""
        removed = []
        name = _admin_name(name)
        for admin in (self.common_dir / "worktrees").glob(f"{glob.escape(name)}*"):
            if admin.name != name and not admin.name[len(name):].isdigit():
                continue
            locked = admin / "locked"
            try:
                says = locked.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if says == INITIALIZING and _remove_if_stale(locked, start, shared=False):
                removed.append(locked)
                removed += [admin / lock for lock in ADMIN_LOCKS if _remove_if_stale(admin / lock, start, shared=False)]
                if not all(_read_something(admin / name) for name in ("gitdir", "commondir")):
                    # killed before it had written where the worktree is and whose it is: every later `git
                    # worktree` command dies reading it ("failed to read .../commondir"); it never held anything
                    shutil.rmtree(admin, ignore_errors=True)
                    removed.append(admin)
        return removed


def _read_something(path: Path) -> bool:
    try:
        return bool(path.read_bytes().strip())
    except OSError:
        return False


def _admin_name(name: str) -> str:
    """The admin dir `git worktree add` names after a worktree called `name`: made a valid ref name component,
    a dot that starts it or follows a dot becoming "-" (`.gate-1` and `.spare-1` are `-gate-1`, `-spare-1`)."""
    return "".join("-" if ch == "." and (i == 0 or name[i - 1] == ".") else ch for i, ch in enumerate(name))


def _remove_if_stale(path: Path, start: float, shared: bool) -> bool:
    """Remove `path` when it is a lock file made since `start`, left by nobody alive; whether it was removed."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if not path.is_file() or path.is_symlink() or info.st_mtime < start - SLACK:
        return False  # older than the operation: not its lock
    if shared:
        age = time.time() - info.st_mtime
        if age < SHARED_AGE:
            time.sleep(SHARED_AGE - age)
        try:
            again = path.lstat()
        except OSError:
            return False  # its git finished meanwhile
        if (again.st_ino, again.st_mtime_ns) != (info.st_ino, info.st_mtime_ns):
            return False  # a live git is at work on it
    try:
        path.unlink()
    except OSError:
        return False
    return True


def kill_point(point: str, child: subprocess.Popen[bytes] | None = None) -> None:
    """Tests only (`GITTEAM_TEST_KILL_AT=<point>:<n>`): the n-th time this process reaches `point`, it dies by
    SIGKILL, and so does `child`, the git it is running (holding its locks): a kill inside a git operation,
    deterministic. A process that leads its process group (started in a session of its own) kills the whole
    group, as a kill of a terminal's job would."""
    wanted = os.environ.get(KILL_AT, "")
    name, _, count = wanted.partition(":")
    if name != point or not count.isdigit():
        return
    with _reached_lock:
        _reached[point] = _reached.get(point, 0) + 1
        if _reached[point] != int(count):
            return
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    if child is not None:
        child.kill()
        child.wait()
    os.kill(os.getpid(), signal.SIGKILL)

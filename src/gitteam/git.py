"""The one gateway to git: every git call in gitteam goes through a `Repository` method.

git runs as short-lived subprocesses (one per call, stdin closed, no prompts), so a `Repository` holds only
paths and agents in threads can share one. Object reads (blobs, notes) are the exception: a read borrows one
of the repository's long-lived `git cat-file --batch-command` processes (`_CatFile`, lent by `_Readers`, as many
as reads at once), so it costs a round trip on a pipe, not a process. GitPython is no longer used.
Refs move by compare-and-swap; the user's index, working tree and branches are touched only by the
methods whose job that is.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gitteam import gittree
from gitteam.cone import Cone
from gitteam.errors import GitteamError, UsageError
from gitteam.gitgrep import GrepMatch, stream_grep
from gitteam.gitlocks import ADMIN_LOCKS, GitLocks, LockFile, kill_point
from gitteam.gitmerge import DisjointMerges, Step
from gitteam.gittree import BadPath, TreeEdit, components
from gitteam.gittree import Entry as TreeEntry
from gitteam.names import BRANCH_PREFIX

# Location variables inherited from a hook or an outer git would redirect every call away from the repository
# (and from each worktree's own index): every call sets GIT_DIR and GIT_WORK_TREE itself, and the caller's `env`
# can still set the others, e.g. a temporary index. GIT_EXTERNAL_DIFF runs a program for every patch git
# writes: the user set it for the diffs they read, while gitteam parses its own (and passes --no-ext-diff).
_DROPPED_ENV = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX",
                          "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE",
                          "GIT_EXTERNAL_DIFF"})
# Config on the command-line scope, which wins over every config file (the repository's, files it includes, a
# config dir a worktree's `.git` points at), so nothing written into a repository makes gitteam's git run a
# program. Also pinned: what would otherwise run one during the calls gitteam makes.
_PINNED_CONFIG = (
    ("core.fsmonitor", "false"),         # runs on every index refresh: status, reset, merge, update-index
    ("core.hooksPath", "/dev/null"),     # every hook: reference-transaction on each ref update, post-merge, ...
    ("core.editor", "false"),            # no call edits a message; if one ever did, fail instead of running one
    ("commit.gpgSign", "false"),         # commit-tree honours it and runs gpg.program: agents' commits are not
                                         # the user's to sign (and pinentry has no terminal here)
    ("log.showSignature", "false"),      # `git log` would verify signatures with gpg.program
    ("merge.verifySignatures", "false"),  # so would the fast-forward of the user's branch
    ("push.gpgSign", "false"),           # and a push of the memory refs
    ("protocol.ext.allow", "never"),     # an ext:: URL (or an insteadOf rewrite to one) is a command line
    ("sparse.expectFilesOutsideOfPatterns", "false"),  # a file written outside a sparse worktree's cone is
                                         # seen (git clears its skip-worktree bit), never hidden from status
)
# Left alone, on purpose:
# - diff.external, diff.<driver>.command and .textconv: no config value unsets them (an empty diff.external is a
#   program named ""), so every call that writes patches passes --no-ext-diff --no-textconv; the other calls
#   (--name-only, --name-status, log --format) write no patch;
# - core.pager, pager.<cmd>: stdout is always a pipe, so git starts no pager; sequence.editor: only `rebase -i`;
# - filter.<driver>.* and merge.<driver>.driver: the user's Git LFS and merge drivers must keep working; a
#   contained command cannot write the shared config that defines them, and a worktree's own `.git` is never read;
# - transport settings (core.sshCommand, credential.helper, core.askPass, remote.<name>.uploadpack/receivepack):
#   only fetch_refs/push_refs use them, towards a remote the user configured; they are the user's authentication
#   (a deploy key in .git/config is common) and nothing tells theirs from a planted one.
_PINNED_PARAMETERS = "".join(f" '{key}'='{value}'" for key, value in _PINNED_CONFIG)
# Replace refs and grafts would make gitteam read other content than the objects' own (a path that cannot
# exist: git reads no graft file and, unlike with /dev/null, prints no deprecation hint).
_SEEN_AS_STORED = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": "/dev/null/no-grafts"}
# Concurrent writers (agents, notes) contend for ref locks; wait for them instead of failing at once.
_REF_LOCKS = ("-c", "core.filesRefLockTimeout=2000", "-c", "core.packedRefsTimeout=2000")
# Refs only gitteam writes: their lock files are never another git user's (gitlocks: not a shared place).
_OWN_REFS = (f"refs/heads/{BRANCH_PREFIX}/", "refs/gitteam/")
_NOTE_ATTEMPTS = 100
_BY_ID = 16  # read_blobs asks this many paths or more by object id
_WORKTREE_ADMIN = threading.Lock()  # `git worktree` commands of one process's threads, one at a time
_WORKTREE_CONFIG: set[Path] = set()  # common dirs whose config allows per-worktree config (sparse worktrees)
# A sparse worktree's own config, as `git sparse-checkout set --cone --sparse-index` leaves it
SPARSE_CONFIG = "[core]\n\tsparseCheckout = true\n\tsparseCheckoutCone = true\n[index]\n\tsparse = true\n"
_HEX = re.compile(r"[0-9a-f]+")
# A push refused by the remote's policy (a hook, permissions, a protected ref), which no retry changes
_POLICY_REFUSAL = re.compile(r"hook declined|denied|permission|protected|not allowed|forbidden", re.I)
_SHOWN = 5  # paths named in a refusal, then "and N more"
# Attributes that change the bytes git stores for a file (convert.c): a committed file is converted only where
# the base commit's `.gitattributes` set one of them.
_CONVERTING = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")
# What a contained command's git needs from the shared config to read the repository (`git config --list`
# writes section and key names in lower case).
_CONTAINED_KEY = re.compile(rb"core\.(repositoryformatversion|bare|filemode|symlinks|ignorecase|precomposeunicode)"
                            rb"|extensions\.[a-z][a-z0-9-]*")


class GitError(GitteamError):
    """A git command failed; the message shows the command, its exit code and git's first complaint."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        first = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
        shown = shlex.join(self.command)
        if len(shown) > 200:  # long path lists would bury the reason
            shown = shown[:197] + "..."
        super().__init__(f"{shown}: exit {returncode}: {first}")


class GrepPatternError(GitteamError):
    """git grep could not compile the pattern; the message is its reason."""


@dataclass(frozen=True, slots=True)
class Grep:
    matches: list[GrepMatch]
    flavour: str  # "perl" (git grep -P) or "extended" (-E, a git without PCRE)
    stopped: str  # "" searched everything; "time" the time limit; "matches" the cap; "engine" PCRE's own limit
    detail: str = ""  # the engine's complaint


_NO_PCRE = threading.Event()  # set once a git without PCRE support said so
_ENGINE_LIMITS = ("match limit", "stack limit", "depth limit", "heap limit", "pcre2_match", "pcre2_jit_match",
                  "pcre_exec")
_BATCH_BYTES = 100_000  # paths per git grep, by their length: far below any system's argument limit


def _batches(paths: Sequence[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for path in paths:
        if batch and size + len(path) > _BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += len(path) + 1
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class Worktree:
    path: Path
    head: str | None
    branch: str | None  # "refs/heads/x", None when detached


@dataclass(frozen=True, slots=True)
class FastForward:
    moved: bool
    checked_out: Path | None
    detail: str


@dataclass(frozen=True, slots=True)
class PushedRef:
    status: str  # git push --porcelain's flag: " " fast-forward, "*" new, "=" up to date, "!" refused, ...
    source: str
    destination: str
    summary: str


@dataclass(frozen=True, slots=True)
class Merging:
    """One merge of `Repository.merge_chain`: `theirs` onto the chain, with `message`; `base`, when the caller
    knows it, is the commit `theirs` began at (a merge made without git needs it)."""

    theirs: str
    message: str
    base: str | None = None


@dataclass(frozen=True, slots=True)
class MergedChain:
    heads: list[str]  # the branch's head after each merge made, in order
    conflict: bool = False  # the next merge does not merge cleanly
    moved: bool = False  # the branch moved under the chain: read it again for the rest


def find_repository(path: Path | None = None) -> Repository:
    """Open the repository containing `path` (default: the current directory); bare ones are refused.

    Found by git's own discovery in one `rev-parse` (not an explicit GIT_DIR, as every later call has): that
    keeps git's safe.directory check, which refuses a repository another user owns (its config could run
    programs), and GIT_CEILING_DIRECTORIES; and it costs one git process, where importing GitPython to walk
    the directories took longer than the process."""
    start = Path(path) if path is not None else Path.cwd()
    message = f"not a git repository: {start} (run gitteam inside one, or pass --repo)"
    args = ["git", "rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir", "--show-toplevel"]
    try:
        proc = subprocess.run(args, cwd=start, env=_environ(None), capture_output=True, stdin=subprocess.DEVNULL)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(message) from None
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    if proc.returncode != 0 or len(lines) != 4 or lines[0] != "false":
        error = proc.stderr.decode(errors="replace")
        if proc.returncode == 0 or "not a git repository" in error or "must be run in a work tree" in error:
            raise UsageError(message)  # none, a bare one, or inside a git dir
        raise GitError(args, proc.returncode, error)  # one git refuses (dubious ownership): it says why
    git_dir, common, top = lines[1:]
    return Repository(root=Path(top).resolve(), git_dir=Path(git_dir).resolve(),
                      common_dir=(start / common).resolve())


def init_repository(path: Path, branch: str = "main") -> Repository:
    """A new repository at `path` (the demo's throwaway one); hooks templates are not copied."""
    path.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(["git", "init", "-q", "--template=", "-b", branch, str(path)],
                               capture_output=True, env=_environ(None), stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise GitError(["git", "init", str(path)], completed.returncode, completed.stderr.decode(errors="replace"))
    return find_repository(path)


def clone_scratch(source: Repository, path: Path, base: str, branch: str) -> Repository:
    """A private copy of `source` at `path` (objects copied, not linked; hooks templates not copied) with
    `branch` checked out at commit `base`: `gitteam replay` works there and never in `source`."""
    steps = [["git", "clone", "-q", "--no-local", "--no-checkout", "--template=", "--", str(source.common_dir),
              str(path)],
             ["git", "-C", str(path), "checkout", "-q", "-B", branch, base]]
    for args in steps:
        completed = subprocess.run(args, capture_output=True, env=_environ(None), stdin=subprocess.DEVNULL)
        if completed.returncode != 0:
            raise GitError(args, completed.returncode, completed.stderr.decode(errors="replace"))
    return find_repository(path)


def tree_of(repo: Repository, rev: str) -> str | None:
    """The tree id of commit `rev`, None when it does not exist."""
    return repo.rev_parse(f"{rev}^{{tree}}")


def _environ(extra: Mapping[str, str] | None, dirs: tuple[Path, Path] | None = None,
             pinned: bool = True) -> dict[str, str]:
    """The environment of one git call: the caller's `extra`, then `dirs` (GIT_DIR, GIT_WORK_TREE) and the
    hardening, which nothing inherited or passed overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    env.update(extra or {})
    if dirs is not None:
        env.update(GIT_DIR=str(dirs[0]), GIT_WORK_TREE=str(dirs[1]))
    env.update(_SEEN_AS_STORED)
    if pinned:
        _pin_config(env)
    return env


def _pin_config(env: dict[str, str]) -> None:
    """Append the pinned config after the entries `env` already has, so they win over those too."""
    inherited = env.get("GIT_CONFIG_COUNT") or "0"
    if not inherited.isdigit():
        raise UsageError(f"GIT_CONFIG_COUNT={inherited!r} is not a count: fix or unset it")
    count = int(inherited)
    for index, (key, value) in enumerate(_PINNED_CONFIG, count):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(_PINNED_CONFIG))
    if env.get("GIT_CONFIG_PARAMETERS"):
        # an outer `git -c ...` (e.g. `git -c x=y team run`): git reads these after GIT_CONFIG_COUNT's entries
        env["GIT_CONFIG_PARAMETERS"] += _PINNED_PARAMETERS


def _split_z(out: str) -> list[str]:
    return [item for item in out.split("\0") if item]


def _token(value: str) -> str:
    """Refuse whitespace in a ref or value headed for `update-ref --stdin`, whose protocol it would break."""
    if not value or any(ch.isspace() for ch in value):
        raise GitteamError(f"invalid ref or object name: {value!r}")
    return value


class _LinkedWorktrees:
    """Each linked worktree's admin dir, as the common dir records it: `worktrees/<id>/gitdir` holds
    `<worktree>/.git`. Never found from the worktree's own `.git` file, which a command in the worktree can
    rewrite. A hit is checked against its `gitdir` file (one small read), so a worktree removed, moved or
    re-added under the same id, by this process or another, is looked up again."""

    def __init__(self) -> None:
        # the worktree path as a caller gave it -> (admin dir, worktree path as registered, the gitdir file)
        self._known: dict[Path, tuple[Path, Path, bytes]] = {}

    def find(self, common_dir: Path, path: Path) -> tuple[Path, Path] | None:
        hit = self._known.get(path)
        if hit is None or _read(hit[0] / "gitdir") != hit[2]:
            known = _scan_worktrees(common_dir)
            hit = known.get(path) or known.get(path.resolve())
            if hit is not None:
                known[path] = hit
            self._known = known  # replaced whole: threads sharing the repository never see it half-built
        return None if hit is None else (hit[0], hit[1])


def _scan_worktrees(common_dir: Path) -> dict[Path, tuple[Path, Path, bytes]]:
    found: dict[Path, tuple[Path, Path, bytes]] = {}
    try:
        admins = [Path(entry.path) for entry in os.scandir(common_dir / "worktrees") if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return found
    for admin in admins:
        recorded = _read(admin / "gitdir")
        if not recorded or not recorded.strip():
            continue
        dot_git = admin / os.fsdecode(recorded.strip())  # absolute, or relative to the admin dir (git 2.48+)
        worktree = Path(os.path.normpath(dot_git.parent))
        found[worktree] = (admin, worktree, recorded)
    return found


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class _AttributeTree:
    """git run in a scratch work tree (`Repository._attributes_of`): only the attributes put there apply."""

    repo: Repository
    tree: Path
    env: dict[str, str]
    has_files: bool  # whether any .gitattributes was put there

    def git(self, *args: str, input: bytes | str | None = None) -> bytes:
        proc = self.repo._run(args, None, self.env, input, work_tree=self.tree)
        if proc.returncode != 0:
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout


@dataclass(frozen=True, slots=True)
class _Edited:
    """A tree built from a commit's tree and some paths on disk (`Repository._edit`)."""

    tree: str
    base: str | None  # the tree it was built from; None: the empty tree
    changes: dict[str, TreeEntry | None]  # each changed path's entry; None: deleted
    hex_width: int  # the length of an object id in hex


def _kept_mode(entry: TreeEntry | None) -> str:
    """A regular file's mode where the executable bit on disk is not trusted: the one it had."""
    return entry.mode if entry is not None and entry.mode in ("100644", "100755") else "100644"


def _on_disk(path: Path) -> tuple[str, bytes] | str | None:
    """(mode, content) of a file or symlink, "other" for a directory (a submodule), None when it is gone."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(mode):
        return "120000", os.fsencode(os.readlink(path))
    if not stat.S_ISREG(mode):
        return "other"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # replaced by a link since lstat: fail, never follow
    with os.fdopen(fd, "rb") as handle:
        return ("100755" if mode & stat.S_IXUSR else "100644"), handle.read()


_CAT_FILE = ("cat-file", "--batch-command", "--buffer", "-z")  # -z: git 2.38+, as gitteam requires
_TREE_CACHE = 65_536  # tree entries a reader keeps parsed (notes trees: an id names the same tree forever)
_HEX_NAME = re.compile(rb"[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class _Object:
    oid: str
    kind: str  # "blob", "tree", "commit", "tag"
    data: bytes | None  # None when only its info was asked


class _Died(Exception):
    """The cat-file process ended, or its answer was not what the protocol says."""


class _CatFile:
    """One long-lived `git cat-file --batch-command --buffer -z`, lent to one thread at a time (`_Readers`).

    Every name is resolved when it is asked, so refs and objects written after the process started are seen
    (git looks loose objects up on disk each time and rescans the packs when an object is not found). Requests
    go NUL-terminated, then `flush`: with --buffer git answers nothing before the flush, so writing never waits
    on an answer nobody reads. A process that died (a broken pipe, an answer cut short) is started again once,
    and the request asked again; a second failure is a GitError with git's complaint.
    """

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._cwd = cwd
        self._env = env  # the hardened environment of every other call (`Repository._setting`)
        self._lock = threading.Lock()  # this thread's requests against a `close` from another thread
        self._proc: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None  # its stderr: a file, so a chatty git never blocks on it
        self._end: Callable[[], object] | None = None  # the weakref.finalize that closes it
        self._owner = 0  # the process that started it: a forked child starts its own
        self._trees: OrderedDict[str, dict[str, tuple[int, str]]] = OrderedDict()
        self._cached = 0

    def query(self, requests: Sequence[tuple[str, str]]) -> list[_Object | None]:
        """The answers to ("contents" or "info", object name) requests, in order; None where the name names
        no object (missing, ambiguous) or cannot be asked (a newline, whose "missing" answer would span lines,
        or a NUL)."""
        asked = [(verb, name) for verb, name in requests if _askable(name)]
        answers = iter(self._ask(asked) if asked else [])
        return [next(answers) if _askable(name) else None for _, name in requests]

    def tree(self, oid: str) -> dict[str, tuple[int, str]] | None:
        """The entries of tree `oid` whose names are hex digits (lower-cased) -> (mode, object); None when it
        is not a tree. Parsed once and kept, least recently used out first."""
        entries = self._trees.get(oid)
        if entries is not None:
            self._trees.move_to_end(oid)
            return entries
        found = self.query([("contents", oid)])[0]
        if found is None or found.kind != "tree" or found.data is None:
            return None
        try:
            entries = _hex_entries(found.data, len(oid) // 2)
        except ValueError:  # git checks trees as it writes them: a corrupt one names nothing here
            return None
        self._trees[oid] = entries
        self._cached += len(entries) + 1
        while self._cached > _TREE_CACHE and len(self._trees) > 1:
            self._cached -= len(self._trees.popitem(last=False)[1]) + 1
        return entries

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, requests: Sequence[tuple[str, str]]) -> list[_Object | None]:
        payload = b"".join(f"{verb} {name}\0".encode("utf-8", "surrogateescape") for verb, name in requests)
        with self._lock:
            for attempt in range(2):
                if self._proc is None or self._owner != os.getpid():
                    self._start()
                try:
                    answers = self._exchange(payload + b"flush\0", requests)
                except _Died:
                    returncode, stderr = self._stop()
                    if attempt:
                        raise GitError(["git", *_CAT_FILE], returncode, stderr) from None
                    continue
                except BaseException:
                    self._stop()  # an answer half read: whatever asks next must not read its rest
                    raise
                self._trim_errors()
                return answers
        raise AssertionError("unreachable")

    def _exchange(self, payload: bytes, requests: Sequence[tuple[str, str]]) -> list[_Object | None]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(payload)
            proc.stdin.flush()
        except OSError:  # BrokenPipeError: it is gone
            raise _Died from None
        out = proc.stdout
        answers: list[_Object | None] = []
        for verb, name in requests:
            line = out.readline()
            if not line.endswith(b"\n"):
                raise _Died
            header = line[:-1].decode("utf-8", "surrogateescape")
            if header in (f"{name} missing", f"{name} ambiguous"):
                answers.append(None)
                continue
            fields = header.split(" ")
            if len(fields) != 3 or not fields[2].isdigit():
                raise _Died  # out of step with the protocol: start afresh
            data = None
            if verb == "contents":
                size = int(fields[2])
                data = out.read(size)  # exactly the content, then the newline that ends it
                if len(data) != size or out.read(1) != b"\n":
                    raise _Died
            answers.append(_Object(fields[0], fields[1], data))
        return answers

    def _start(self) -> None:
        self._stop()
        errors = tempfile.TemporaryFile(prefix="gitteam-cat-file-")  # noqa: SIM115 (open as long as git runs)
        try:
            proc = subprocess.Popen(["git", *_CAT_FILE], cwd=self._cwd, env=self._env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=errors)
        except BaseException:
            errors.close()
            raise
        self._proc, self._errors, self._owner = proc, errors, os.getpid()
        # at close, when this reader is collected (its thread ended, or its repository), or at interpreter exit
        self._end = weakref.finalize(self, _end_cat_file, proc, errors, self._owner)

    def _stop(self) -> tuple[int, str]:
        """End the process, if any; its exit code and the end of its stderr."""
        proc, errors, end = self._proc, self._errors, self._end
        self._proc = self._errors = self._end = None
        if proc is None or errors is None or end is None:
            return 0, ""
        stderr = ""
        if self._owner == os.getpid():
            with suppress(OSError, ValueError):
                errors.seek(0)
                stderr = errors.read()[-4096:].decode(errors="replace")
        end()
        return (-1 if proc.returncode is None else proc.returncode), stderr

    def _trim_errors(self) -> None:
        """Empty the stderr file now and then (warnings about ambiguous names would pile up)."""
        if self._errors is not None and os.fstat(self._errors.fileno()).st_size > 1 << 20:
            os.ftruncate(self._errors.fileno(), 0)
            os.lseek(self._errors.fileno(), 0, os.SEEK_SET)  # the offset git writes at: one shared file


def _askable(name: str) -> bool:
    return "\n" not in name and "\0" not in name


def _plain_name(rev: str) -> bool:
    """A name cat-file resolves without dying: no newline, no reflog or upstream (`@{...}`: "no upstream
    configured" ends the process), no search for a message (`:/text`, `^{/text}`)."""
    return _askable(rev) and "@{" not in rev and not rev.startswith(":") and "^{/" not in rev


def _hex_entries(data: bytes, width: int) -> dict[str, tuple[int, str]]:
    """Entries of a raw tree whose names are hex digits (a notes tree's fan-out and notes), lowercased."""
    entries: dict[str, tuple[int, str]] = {}
    for name, entry in gittree.parse(data, width).items():
        if _HEX_NAME.fullmatch(name):
            entries.setdefault(name.decode().lower(), (int(entry.mode, 8), entry.oid))
    return entries


def _end_cat_file(proc: subprocess.Popen[bytes], errors: IO[bytes], owner: int) -> None:
    """End a cat-file process: end of input makes it exit, and it is reaped (no zombie). A forked child only
    drops its copies of the pipes: the process is its parent's."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with suppress(OSError):
                stream.close()
    if owner == os.getpid():
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    errors.close()


def _note_blob(reader: _CatFile, tree: str, key: str) -> str | None:
    """The blob of `key`'s note in notes tree `tree`, found as git's notes.c finds it, whatever the fanout: at
    each level an entry named the rest of the key, a file, is the note; one named its next two digits, a
    directory, is a fanout level to descend. (A note stored under two layouts at once, which git would
    concatenate, is read from the shallowest: `commit_notes` never leaves one.)"""
    depth = 0
    while depth < len(key):
        entries = reader.tree(tree)
        if entries is None:
            return None
        note = entries.get(key[depth:])
        if note is not None and stat.S_ISREG(note[0]):
            return note[1]
        fanout = entries.get(key[depth:depth + 2])
        if fanout is None or not stat.S_ISDIR(fanout[0]):
            return None
        tree, depth = fanout[1], depth + 2
    return None


class _Readers:
    """The `_CatFile`s of one repository, each lent to one thread at a time: a thread that reads borrows an idle
    one, or starts one when every one is busy, and gives it back when its read is done. So there are as many
    processes as reads at once, not as threads that ever read: the eight agents of a wave starting at once, the
    threads that make their worktrees and the ones that remove them had each started a process of its own. They
    end at `close`, when the repository is collected, or at interpreter exit."""

    def __init__(self) -> None:
        self._idle: list[_CatFile] = []
        self._all: weakref.WeakSet[_CatFile] = weakref.WeakSet()
        self._lock = threading.Lock()

    @contextmanager
    def borrowed(self, new: Callable[[], _CatFile]) -> Iterator[_CatFile]:
        with self._lock:
            reader = self._idle.pop() if self._idle else None
        if reader is None:
            reader = new()
            with self._lock:
                self._all.add(reader)
        try:
            yield reader
        finally:
            with self._lock:
                self._idle.append(reader)

    def close(self) -> None:
        with self._lock:
            readers = list(self._all)
        for reader in readers:
            reader.close()


class _Listings:
    """The last few whole-tree listings, by tree id (a tree's files never change). A thread asking for a tree
    another is listing waits for that listing instead of making its own."""

    KEPT = 4  # a run lists its start and, now and then, a merged head: 100,000 paths are about 10 MB

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    def get(self, tree: str, listing: Callable[[], tuple[str, ...]]) -> tuple[str, ...]:
        with self._lock:
            found = self._kept.get(tree)
            if found is None:
                found = self._kept[tree] = listing()
                while len(self._kept) > self.KEPT:
                    self._kept.popitem(last=False)
            self._kept.move_to_end(tree)
            return found


class _SharedReads:
    """Reads of the same thing asked at once share one git process, as eight agents starting together list the
    memory's refs. A caller is only ever given a read that began after it asked, never an older one in flight:
    what it gets is what a read of its own would have found at some moment of its call, its own writes before
    it included. Callers that arrive during a read wait for it to end, then share the next."""

    @dataclass
    class _Key:
        asked: int = 0  # callers so far
        answered: int = 0  # callers the last finished read covers (those that asked before it began)
        reading: bool = False
        inside: int = 0  # callers not yet returned: the key is dropped, with its result, when none is left
        result: object = None

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._keys: dict[object, _SharedReads._Key] = {}

    def read(self, key: object, fetch: Callable[[], object]) -> object:
        with self._cond:
            shared = self._keys.setdefault(key, self._Key())
            shared.asked += 1
            shared.inside += 1
            ticket = shared.asked
            while shared.answered < ticket and shared.reading:
                self._cond.wait()
            mine = shared.answered < ticket
            if mine:
                shared.reading, covers = True, shared.asked
            result = shared.result
        try:
            if mine:
                result = fetch()
                with self._cond:
                    shared.answered, shared.result = covers, result
            return result
        finally:
            with self._cond:
                if mine:
                    shared.reading = False
                    self._cond.notify_all()
                shared.inside -= 1
                if not shared.inside and not shared.reading:
                    del self._keys[key]


@dataclass(frozen=True)
class Repository:
    """One repository seen from the worktree at `root`: paths, a cache of worktrees' admin dirs, and each
    thread's `git cat-file` process for reads, so threads may share it. `close` ends those processes (so
    does collecting the repository, and interpreter exit); a later read starts its thread's again."""

    root: Path
    git_dir: Path
    common_dir: Path
    _worktrees: _LinkedWorktrees = field(default_factory=_LinkedWorktrees, init=False, repr=False, compare=False)
    _readers: _Readers = field(default_factory=_Readers, init=False, repr=False, compare=False)
    _settings: dict[str, bool] = field(default_factory=dict, init=False, repr=False, compare=False)
    _listings: _Listings = field(default_factory=lambda: _Listings(), init=False, repr=False, compare=False)
    _shared_reads: _SharedReads = field(default_factory=_SharedReads, init=False, repr=False, compare=False)

    @property
    def state_dir(self) -> Path:
        return self.common_dir / "gitteam"

    @property
    def locks(self) -> GitLocks:
        """gitteam's guard around the git operations that can leave git's lock files (gitlocks.py)."""
        return GitLocks(self.common_dir, self.state_dir)

    @contextmanager
    def _worktree_admin(self) -> Iterator[None]:
        """`git worktree` commands one at a time: across this process's threads, and across processes."""
        with _WORKTREE_ADMIN, self.locks.worktree_admin():
            yield

    def clear_stale_locks(self, wait: float = 10.0) -> list[Path]:
        """Remove the git lock files that killed gitteam processes left in this repository; the paths removed."""
        return self.locks.clear_stale(wait)

    def _lock_file(self, path: Path, shared: bool) -> LockFile:
        """`path`, a lock file in this repository's git dirs, as gitlocks records it (relative to the common dir)."""
        return LockFile(os.path.relpath(path, self.common_dir), shared)

    def _ref_lock(self, ref: str) -> LockFile:
        return LockFile(f"{ref}.lock", shared=not ref.startswith(_OWN_REFS))

    def _admin_locks(self, worktree: Path, shared: bool = False) -> list[LockFile]:
        """The lock files git makes in `worktree`'s own git dir (its index, HEAD, ORIG_HEAD)."""
        git_dir = self._dirs(worktree)[0]
        return [self._lock_file(git_dir / name, shared) for name in ADMIN_LOCKS]

    # -- the runner ---------------------------------------------------------------------------------------

    def run_git(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                input: bytes | str | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run git once in `cwd` (a worktree of this repository; default: root) and return the completed
        process, whatever its exit code."""
        return self._run(args, cwd, env, input)

    def _run(self, args: Sequence[str], cwd: Path | None, env: Mapping[str, str] | None,
             input: bytes | str | None, pinned: bool = True,
             work_tree: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        where, environ = self._setting(cwd, env, pinned, work_tree)
        data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
        stdin = subprocess.DEVNULL if data is None else None  # nothing may wait on a terminal
        return subprocess.run(["git", *args], cwd=where, env=environ, input=data,
                              stdin=stdin, capture_output=True, check=False)

    def _setting(self, cwd: Path | None, env: Mapping[str, str] | None, pinned: bool = True,
                 work_tree: Path | None = None) -> tuple[Path, dict[str, str]]:
        """The directory a git call runs in and its environment (GIT_DIR, GIT_WORK_TREE, the hardening)."""
        dirs = self._dirs(cwd) if work_tree is None else (self.git_dir, work_tree)
        return dirs[1], _environ(env, dirs, pinned)

    def _reader(self) -> AbstractContextManager[_CatFile]:
        """A cat-file process for this thread's read, lent by `_Readers` (started in root, as a call with no
        cwd, when none is idle)."""
        return self._readers.borrowed(lambda: _CatFile(*self._setting(None, None)))

    def close(self) -> None:
        """End every `git cat-file` process; the repository stays usable (a read starts one again)."""
        self._readers.close()

    def _dirs(self, cwd: Path | None) -> tuple[Path, Path]:
        """GIT_DIR and GIT_WORK_TREE of a call in `cwd`: what git would find by itself, except that a linked
        worktree's git dir comes from the common dir, never from the worktree's `.git` (a command that ran in
        the worktree may have pointed it at a config that runs programs, or replaced it with one)."""
        if cwd is None or cwd == self.root:
            return self.git_dir, self.root
        linked = self._worktrees.find(self.common_dir, cwd)
        if linked is not None:
            return linked
        real = cwd.resolve()
        if real == self.root:
            return self.git_dir, self.root
        if self.common_dir.name == ".git" and real == self.common_dir.parent:  # the main worktree
            return self.common_dir, real
        raise GitteamError(f"{cwd} is not a worktree of the repository at {self.root}: gitteam runs git "
                           "only in this repository's worktrees (see `git worktree list`)")

    def git_bytes(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                  input: bytes | str | None = None, check: bool = True) -> bytes:
        proc = self.run_git(*args, cwd=cwd, env=env, input=input)
        if check and proc.returncode != 0:
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout

    def git(self, *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            input: bytes | str | None = None, check: bool = True) -> str:
        out = self.git_bytes(*args, cwd=cwd, env=env, input=input, check=check)
        return out.decode("utf-8", "surrogateescape")

    @contextmanager
    def _attributes_of(self, rev: str | None, paths: Sequence[str] = ()) -> Iterator[_AttributeTree]:
        """Run git where the only in-tree attributes are those of commit `rev` for `paths` (none: rev None).

        git 2.39 reads `.gitattributes` from the work tree it runs in (else from the index) and has no
        `--attr-source`: a scratch work tree holding only those files, with an empty index, is where no other
        checkout's attributes (the change's own, in an agent's worktree or a CI checkout) can reach. The user's
        own (info/attributes, core.attributesFile) still apply. When there are none to put there (a diff, a
        commit where no `.gitattributes` applies: nearly always), every call shares one empty work tree in
        gitteam's state dir instead of making its own in the temporary dir (a disk's directories cost).
        """
        found: dict[str, bytes] = {}
        if rev is not None and paths:
            files = sorted({"/".join([*path.split("/")[:depth], ".gitattributes"])
                            for path in paths for depth in range(path.count("/") + 1)})
            found = self.read_blobs(rev, files)
        empty = None if found else self._empty_work_tree()
        if empty is not None:  # its index is in a directory that does not exist: read as empty, never written
            yield _AttributeTree(self, empty, {"GIT_INDEX_FILE": str(empty / "absent" / "index")}, False)
            return
        with tempfile.TemporaryDirectory(prefix="gitteam-attributes-") as tmp:
            tree = Path(tmp) / "tree"
            tree.mkdir()
            for rel, data in found.items():
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                (tree / rel).write_bytes(data)
            yield _AttributeTree(self, tree, {"GIT_INDEX_FILE": str(Path(tmp) / "index")}, bool(found))

    def _empty_work_tree(self) -> Path | None:
        """The empty directory `_attributes_of` shares, made on first use; None when it cannot be made or is not
        empty (then each call makes its own)."""
        path = self.state_dir / "empty-work-tree"
        try:
            path.mkdir(parents=True, exist_ok=True)
            with os.scandir(path) as entries:
                return None if next(entries, None) is not None else path
        except OSError:
            return None

    # -- queries ------------------------------------------------------------------------------------------

    def _oid(self, rev: str, cwd: Path | None = None) -> str | None:
        """The object `rev` names, if it exists. Names read from root go to a lent cat-file process (no
        process of their own: a run reads refs hundreds of times), and so does a linked worktree's HEAD (git
        names it `worktrees/<id>/HEAD` from any worktree); other names of another worktree go to `rev-parse`
        there."""
        if cwd is None or cwd == self.root:
            return self._oids([rev])[0]
        admin = self._dirs(cwd)[0]
        if rev == "HEAD" and admin.parent == self.common_dir / "worktrees":
            return self._oids([f"worktrees/{admin.name}/HEAD"])[0]
        proc = self.run_git("rev-parse", "--verify", "-q", "--end-of-options", rev, cwd=cwd)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def _oids(self, revs: Sequence[str]) -> list[str | None]:
        """The objects `revs` name, in one round trip to a lent cat-file process for the plain names
        (refs, object ids, peeled with ^{...}); the others each through `rev-parse`."""
        plain = [rev for rev in revs if _plain_name(rev)]
        with self._reader() as reader:
            answers = dict(zip(plain, reader.query([("info", rev) for rev in plain]), strict=True))
        found: list[str | None] = []
        for rev in revs:
            if rev in answers:
                answer = answers[rev]
                found.append(answer.oid if answer is not None else None)
            else:
                proc = self.run_git("rev-parse", "--verify", "-q", "--end-of-options", rev)
                found.append(proc.stdout.decode().strip() if proc.returncode == 0 else None)
        return found

    def rev_parse(self, rev: str) -> str | None:
        """Full sha of the commit `rev` names (tags peeled), else of whatever object it names."""
        commit, anything = self._oids([f"{rev}^{{commit}}", rev])
        return commit or anything

    def head_branch(self, worktree: Path | None = None) -> str | None:
        proc = self.run_git("symbolic-ref", "-q", "--short", "HEAD", cwd=worktree)
        return proc.stdout.decode().strip() if proc.returncode == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = self.run_git("merge-base", "--is-ancestor", ancestor, descendant)
        if proc.returncode > 1:
            raise GitError(["git", "merge-base", "--is-ancestor", ancestor, descendant], proc.returncode,
                           proc.stderr.decode(errors="replace"))
        return proc.returncode == 0

    def _merge_base(self, one: str, other: str) -> str | None:
        """A best common ancestor of two commits (the one itself when it is an ancestor of the other); None
        when they share no history."""
        proc = self.run_git("merge-base", one, other)
        if proc.returncode > 1:
            raise GitError(["git", "merge-base", one, other], proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout.decode().strip() or None

    def tracked_files(self, rev: str) -> list[str]:
        """Every file of commit (or tree) `rev`. A whole-tree listing costs what the tree does (0.5 s at 100,000
        files), and the planner's overview, the maps and the agents' tools all ask for the run's start: each
        tree is listed once per Repository (`_Listings`)."""
        tree = self._oid(f"{rev}^{{tree}}") if _plain_name(rev) and ":" not in rev else None
        if tree is None:  # not a tree-ish cat-file resolves: ls-tree says what is wrong with it
            return _split_z(self.git("ls-tree", "-r", "-z", "--name-only", "--full-tree", rev))
        return list(self._listings.get(tree, lambda: tuple(_split_z(
            self.git("ls-tree", "-r", "-z", "--name-only", "--full-tree", tree)))))

    def read_blob(self, rev: str, path: str) -> bytes | None:
        return self.read_blobs(rev, [path]).get(path)

    def read_blobs(self, rev: str, paths: Sequence[str]) -> dict[str, bytes]:
        """Contents of many files at `rev`, from this thread's `git cat-file`; missing paths are left out.

        Many are asked by object id, found here from the trees along their paths (a level at a time): git
        resolves each `rev:path` through those trees again, and 20,000 such names took it 0.65 s where their
        ids took 0.03 s (a coder's map reads that many at 100,000 files)."""
        tree = self._oid(f"{rev}^{{tree}}") if len(paths) >= _BY_ID and _plain_name(rev) and ":" not in rev else None
        if tree is None:
            return self._read_named(rev, paths)
        edit = TreeEdit(tree, self._raw_trees, "sha256" if len(tree) == 64 else "sha1")
        named = [path for path in dict.fromkeys(paths) if _tree_path(path)]
        edit.load(named)
        ids = {path: entry.oid for path in named if (entry := edit.entry(path)) is not None and entry.kind == "blob"}
        found = self._cat_blobs(sorted(set(ids.values())))
        asked = set(named)
        rest = [path for path in dict.fromkeys(paths) if path not in asked]  # git's own reading of them
        return {**{path: found[oid] for path, oid in ids.items() if oid in found}, **self._read_named(rev, rest)}

    def _read_named(self, rev: str, paths: Sequence[str]) -> dict[str, bytes]:
        found = self._cat_blobs([f"{rev}:{path}" for path in paths])
        return {path: found[f"{rev}:{path}"] for path in paths if f"{rev}:{path}" in found}

    def file_modes(self, rev: str, paths: Sequence[str]) -> dict[str, str]:
        """The mode ("100644", "100755", "120000", "160000") of each of `paths` that the tree of `rev` has."""
        if not paths:
            return {}
        return {path: mode for path, (mode, _) in self._tree_entries(rev, paths).items()}

    def _cat_blobs(self, names: Sequence[str]) -> dict[str, bytes]:
        """The blobs `names` name, in one round trip to a lent cat-file process; names that name no
        blob are left out."""
        if not names:
            return {}
        with self._reader() as reader:
            answers = reader.query([("contents", name) for name in names])
        blobs = {name: found.data for name, found in zip(names, answers, strict=True)
                 if found is not None and found.kind == "blob" and found.data is not None}
        for name in names:  # the batch cannot tell such a name's "missing" apart: one process each
            if "\n" in name and "\0" not in name:
                proc = self.run_git("cat-file", "blob", name)
                if proc.returncode == 0:
                    blobs[name] = proc.stdout
        return blobs

    def diff(self, base: str, head: str, paths: Sequence[str] = ()) -> str:
        """The patch from `base` to `head` as reviewers, checks and people read it: made without any in-tree
        `.gitattributes`, so neither side can mark a text file binary (`-diff`), pick a diff driver or hide
        content; git tells binary files by their content."""
        with self._attributes_of(None) as scratch:
            out = scratch.git("--literal-pathspecs", "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M",
                              "--full-index", "--src-prefix=a/", "--dst-prefix=b/", base, head, "--", *paths)
        return out.decode("utf-8", "surrogateescape")

    def grep(self, pattern: str, paths: Sequence[str], *, rev: str | None = None, worktree: Path | None = None,
             seconds: float, max_matches: int, max_line: int) -> Grep:
        """Lines matching `pattern` in `paths`: as committed at `rev`, else as they are on disk in `worktree`
        (followed as given: the caller has checked them). Binary files are skipped. A Perl-compatible pattern
        where git has PCRE, else POSIX extended. Stops after `seconds` or `max_matches`, and says so; keeps the
        first `max_line` bytes of a line. A pattern git cannot compile raises GrepPatternError."""
        deadline = time.monotonic() + seconds
        found: list[GrepMatch] = []
        wanted = set(paths)
        perl = not _NO_PCRE.is_set()
        for batch in _batches(paths):
            while True:
                args = ["--literal-pathspecs", "grep", "-z", "-n", "-I", "--no-color", "--no-column",
                        "-P" if perl else "-E", "-e", pattern]
                args += [rev, "--", *batch] if rev is not None else ["--no-index", "--", *batch]
                dirs = self._dirs(worktree)
                outcome = stream_grep(["git", *args], dirs[1], _environ(None, dirs), deadline,
                                      prefix=f"{rev}:" if rev is not None else "", max_line=max_line,
                                      limit=max_matches, keep=wanted.__contains__, into=found)
                if perl and outcome.returncode not in (0, 1) and "Perl-compatible" in outcome.stderr:
                    _NO_PCRE.set()  # this git was built without PCRE: extended regular expressions it is
                    perl = False
                    continue
                break
            flavour = "perl" if perl else "extended"
            if outcome.stopped:
                return Grep(found, flavour, outcome.stopped)
            if outcome.returncode not in (0, 1):
                complaint = next((line.strip() for line in outcome.stderr.splitlines() if line.strip()), "")
                if any(mark in complaint for mark in _ENGINE_LIMITS):  # PCRE gave up on a line: it says so
                    return Grep(found, flavour, "engine", complaint.removeprefix("fatal: "))
                if f", '{pattern}': " in complaint:  # "-e option, 'PATTERN': reason", "command line, ..."
                    raise GrepPatternError(complaint.rpartition(f"'{pattern}': ")[2] or complaint)
                raise GitError(["git", *args[:12], "..."], outcome.returncode or 0, outcome.stderr)
        return Grep(found, "perl" if perl else "extended", "")

    def changed_paths(self, base: str, head: str) -> list[str]:
        return _split_z(self.git("diff", "--name-only", "-z", "--no-renames", base, head, "--"))

    def _changes(self, base: str, head: str) -> dict[str, str]:
        """What base..head does to each path: "A" adds it, "D" deletes it, "M" or "T" changes it."""
        items = _split_z(self.git("diff", "--name-status", "-z", "--no-renames", base, head, "--"))
        return dict(zip(items[1::2], items[::2], strict=True))

    def worktree_changes(self, worktree: Path, exclude: Sequence[str] = ()) -> list[str]:
        """Paths with uncommitted changes in `worktree`, untracked ones included, ignored ones not; a submodule
        counts as changed when its checked-out commit differs, not for changes inside it. `exclude`: more
        ignore patterns (gitignore syntax) for the untracked files, on top of the repository's own."""
        # --no-optional-locks: status must not take the index lock an agent or the user may hold.
        # --ignore-submodules=dirty: otherwise git runs `git status` inside each submodule, through the
        # submodule's `.git`, which a command in an agent's worktree can plant (with a config that runs programs)
        out = self.git("--no-optional-locks", "status", "--porcelain", "-z", "--untracked-files=all",
                       "--ignore-submodules=dirty", cwd=worktree)
        kept: set[str] | None = None
        if exclude and (out.startswith("??") or "\0??" in out):  # git status takes no patterns of its own;
            # ls-files adds them to the standard ones (asked only when there are untracked files to filter)
            listing = self.git("ls-files", "-z", "--others", "--exclude-standard",
                               *(f"--exclude={pattern}" for pattern in exclude), cwd=worktree)
            kept = set(_split_z(listing))
        items = out.split("\0")
        paths: list[str] = []
        i = 0
        while i < len(items):
            entry = items[i]
            i += 1
            if not entry:
                continue
            if kept is None or not entry.startswith("??") or entry[3:] in kept:
                paths.append(entry[3:])
            if "R" in entry[:2] or "C" in entry[:2]:  # a rename carries its source in the next field
                paths.append(items[i])
                i += 1
        return paths

    def write_blob(self, data: bytes) -> str:
        return self.git("hash-object", "-w", "--no-filters", "--stdin", input=data).strip()

    def write_blobs(self, contents: Sequence[bytes]) -> list[str]:
        """Blobs of `contents`, in order, written by one `git fast-import` (one pack: neither a scratch file nor a
        loose object for each, which cost a file system that is slow to create files a few ms apiece)."""
        if len(contents) < 2:
            return [self.write_blob(data) for data in contents]
        stream: list[bytes] = []
        for mark, data in enumerate(contents, 1):
            stream += [f"blob\nmark :{mark}\ndata {len(data)}\n".encode(), data, b"\n"]
        stream += [f"get-mark :{mark}\n".encode() for mark in range(1, len(contents) + 1)] + [b"done\n"]
        oids = self.git_bytes("fast-import", "--quiet", "--done", input=b"".join(stream)).decode().split()
        if len(oids) != len(contents):
            raise GitError(["git", "fast-import"], 0, f"{len(oids)} blob ids for {len(contents)} blobs")
        return oids

    # -- branches, worktrees ------------------------------------------------------------------------------

    def create_worktree(self, path: Path, branch: str, start: str, cone: Cone | None = None) -> None:
        """A new branch at `start`, checked out in a new worktree at `path`: whole, or only `cone` (sparse)."""
        if self._oid(f"refs/heads/{branch}") is not None:
            raise GitteamError(f"branch {branch} already exists: choose another name or delete it "
                               f"(git branch -D {branch})")
        self._add_worktree(path, cone, "-b", branch, str(path), start)

    def add_worktree(self, path: Path, branch: str, cone: Cone | None = None) -> None:
        """Check out the existing branch `branch` in a new worktree at `path`, e.g. to resume its work."""
        if self._oid(f"refs/heads/{branch}") is None:
            raise GitteamError(f"branch {branch} does not exist: nothing to check out")
        self.prune_worktrees()  # a worktree deleted by hand holds its branch until pruned
        self._add_worktree(path, cone, str(path), branch)

    def adopt_worktree(self, spare: Path, path: Path, branch: str, start: str) -> None:
        """Make the detached checkout `spare` of `start` (`add_detached_worktree`) what `create_worktree(path,
        branch, start)` makes, without checking anything out again: on the new branch, moved to `path`. A
        GitError from the move leaves it a worktree of the branch where it was."""
        if self._oid(f"refs/heads/{branch}") is not None:
            raise GitteamError(f"branch {branch} already exists: choose another name or delete it "
                               f"(git branch -D {branch})")
        ref = f"refs/heads/{branch}"
        commit = self.rev_parse(start)
        with self.locks.held([*self._admin_locks(spare), self._ref_lock(ref)]):
            if commit is not None and self._oid("HEAD", cwd=spare) == commit:
                # already there: the branch made and HEAD pointed at it, as `checkout -b` would without
                # reading the index and every file's stat (a contended 15-25 ms per coder as a wave starts)
                self.git("branch", "--no-track", "--end-of-options", branch, commit)  # refuses one that exists
                self.git("symbolic-ref", "-m", f"gitteam: {branch} at {commit[:12]}", "HEAD", ref, cwd=spare)
            else:
                self.git("checkout", "-q", "-b", branch, start, cwd=spare)
        self.move_worktree(spare, path)

    def move_worktree(self, worktree: Path, path: Path) -> None:
        with self._worktree_admin(), self.locks.held():
            self.git("worktree", "move", str(worktree), str(path))

    def add_detached_worktree(self, path: Path, commit: str) -> None:
        """A worktree at `path` with `commit` checked out and no branch (e.g. to test a result, then remove)."""
        self._add_worktree(path, None, "--detach", str(path), commit)

    def _add_worktree(self, path: Path, cone: Cone | None, *args: str) -> None:
        """Register the worktree under a lock, then check it out outside it, so checkouts run in parallel.

        Concurrent `git worktree add` calls race on `.git/worktrees/` ("failed to read .../commondir"),
        while the checkout itself, the expensive part, is private to each worktree. A sparse one gets its cone
        (its own config.worktree and info/sparse-checkout, as `git sparse-checkout set --cone` writes them)
        before that checkout, which then writes only the cone and a sparse index.
        """
        branch = [self._ref_lock(f"refs/heads/{args[1]}")] if args[0] == "-b" else []
        with self._worktree_admin(), self.locks.held(branch, adding=path.name):
            if cone is not None:
                self._allow_worktree_config()
            self.git("worktree", "add", "-q", "--no-checkout", *args)
        if cone is not None:
            self._write_cone(path, cone)
        with self.locks.held(self._admin_locks(path)):
            self.git("reset", "-q", "--hard", cwd=path)

    def _allow_worktree_config(self) -> None:
        """Let each worktree have a config of its own (where its sparse checkout is set), as `git sparse-checkout
        init` does: `extensions.worktreeConfig`, which needs repository format 1. Once per repository: the
        shared config is written only while it lacks them. Called under the worktree admin lock."""
        if self.common_dir in _WORKTREE_CONFIG:
            return
        with self.locks.held([self._lock_file(self.common_dir / "config.lock", shared=True)]):
            if self.git("config", "--get", "core.repositoryformatversion", check=False).strip() in ("", "0"):
                self.git("config", "core.repositoryformatversion", "1")
            if self.git("config", "--bool", "--get", "extensions.worktreeConfig", check=False).strip() != "true":
                self.git("config", "extensions.worktreeConfig", "true")
        _WORKTREE_CONFIG.add(self.common_dir)

    def _write_cone(self, path: Path, cone: Cone) -> None:
        """Make the registered, not yet checked-out worktree at `path` sparse: cone mode, a sparse index."""
        admin = self._dirs(path)[0]
        (admin / "info").mkdir(exist_ok=True)
        (admin / "info" / "sparse-checkout").write_text(cone.patterns(), encoding="utf-8", errors="surrogateescape")
        (admin / "config.worktree").write_text(SPARSE_CONFIG, encoding="utf-8")

    def sparse_cone(self, worktree: Path) -> Cone | None:
        """The cone of `worktree` when it is a sparse checkout in cone mode (gitteam's, or the user's), else None."""
        admin = self._dirs(worktree)[0]
        try:
            config = (admin / "config.worktree").read_text(encoding="utf-8", errors="replace")
            patterns = (admin / "info" / "sparse-checkout").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return None
        cone_mode = "sparsecheckoutcone=true" in "".join(config.lower().split())
        return Cone.parse(patterns) if cone_mode else None

    def finish_checkout(self, path: Path) -> bool:
        """Check out a worktree left registered but never checked out (a kill between the two steps of
        `_add_worktree`, or inside the checkout): it has no index yet, so nothing in it can be anyone's work.
        True if it did. A sparse one whose cone was written stays sparse."""
        if self.has_index(path):
            return False
        with self.locks.held(self._admin_locks(path)):
            self.git("reset", "-q", "--hard", cwd=path)
        return True

    def switch_detached(self, worktree: Path, commit: str) -> None:
        """Put the detached worktree `worktree` at `commit`, its files exactly the commit's: changed files
        rewritten, untracked ones removed, ignored ones (installed dependencies, caches) kept."""
        with self.locks.held(self._admin_locks(worktree)):
            self.git("checkout", "-q", "--force", "--detach", commit, "--", cwd=worktree)
            self.git("clean", "-q", "-f", "-d", cwd=worktree)

    def has_index(self, worktree: Path) -> bool:
        """Whether `worktree` was ever checked out: git writes its index at the end of the first checkout."""
        return (self._dirs(worktree)[0] / "index").is_file()

    def remove_worktree(self, path: Path, force: bool = False) -> None:
        """Remove a linked worktree; without `force` one with uncommitted changes is refused (a GitError), as
        `git worktree remove` refuses it.

        git refuses to remove a worktree whose `.git` no longer points back (a command that ran in it may have
        rewritten it), and its own check for changes runs `git status` through that `.git`, which a process
        still running in the worktree could rewrite in between: the check is made here, through the admin dir,
        and the `.git` file is put back before git removes the worktree.
        """
        linked = self._worktrees.find(self.common_dir, path)
        if linked is None:  # as git says it, for callers that remove what may no longer be registered
            raise GitError(["git", "worktree", "remove", str(path)], 128, f"fatal: '{path}' is not a working tree")
        admin, registered = linked
        if registered.is_dir():  # one deleted by hand has nothing left to lose
            if not force and self.worktree_changes(registered):
                raise GitError(["git", "worktree", "remove", str(path)], 128,
                               f"fatal: '{path}' contains modified or untracked files, use --force to delete it")
            _point_back(registered, admin)
        locks = [self._lock_file(admin / name, shared=False) for name in ADMIN_LOCKS]
        with self._worktree_admin(), self.locks.held(locks):
            self.git("worktree", "remove", "--force", str(registered))

    def delete_worktree_files(self, path: Path) -> None:
        """Delete a linked worktree's directory and leave its admin dir to the next `prune_worktrees`: many
        worktrees go side by side, then one prune (git's only admin-locked step), where `remove_worktree` runs
        one `git worktree remove` after another under the lock. Whatever it holds goes (as with --force): save
        what matters first. A GitError when it is not a registered worktree or cannot be deleted."""
        linked = self._worktrees.find(self.common_dir, path)
        if linked is None:
            raise GitError(["git", "worktree", "remove", str(path)], 128, f"fatal: '{path}' is not a working tree")
        registered = linked[1]
        if not os.path.lexists(registered):
            return  # deleted by hand already
        try:
            shutil.rmtree(registered)
        except OSError as exc:  # a directory a command made read-only, a symlink put in its place: kept, as git
            raise GitError(["git", "worktree", "remove", str(path)], 1, str(exc)) from None

    def prune_worktrees(self) -> None:
        with self._worktree_admin(), self.locks.held():
            self.git("worktree", "prune")

    def reconnect_worktrees(self, candidates: Sequence[Path] = ()) -> list[Path]:
        """Reconnect worktrees whose links to this repository broke when it or they were moved (`git worktree
        repair`): every registered worktree whose `.git` file names another git dir, and each of `candidates`
        (a worktree moved along with the repository: its `.git` and its admin dir name each other's old place).
        Returns those repaired."""
        broken = [path for path, (admin, _, _) in _scan_worktrees(self.common_dir).items()
                  if path.is_dir() and _linked_to(path) != admin.resolve()]
        broken += [path for path in candidates
                   if (path / ".git").is_file() and self._worktrees.find(self.common_dir, path) is None]
        if not broken:
            return []
        with self._worktree_admin(), self.locks.held():
            self.run_git("worktree", "repair", *(str(path) for path in broken))
        return [path for path in broken if self._worktrees.find(self.common_dir, path) is not None]

    def list_worktrees(self) -> list[Worktree]:
        with self._worktree_admin():
            out = self.git("worktree", "list", "--porcelain", "-z")
        return [self._worktree(record) for record in _records(out)]

    @staticmethod
    def _worktree(fields: list[str]) -> Worktree:
        attrs = dict(field.partition(" ")[::2] for field in fields)
        head = attrs.get("HEAD")
        return Worktree(Path(attrs["worktree"]), head if head and head.strip("0") else None,
                        attrs.get("branch"))

    def worktree_of_branch(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if one has: each worktree's HEAD file read, as git finds
        a branch's worktree (no process: a run asks once per subtask). From a linked worktree the main
        worktree's place is git's to say: `worktree list`."""
        ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        if self.git_dir != self.common_dir:
            return next((wt.path for wt in self.list_worktrees() if wt.branch == ref), None)
        wanted = f"ref: {ref}".encode("utf-8", "surrogateescape")
        with self._worktree_admin():
            heads = [(self.common_dir, self.root)]
            heads += sorted((admin, path) for path, (admin, _, _) in _scan_worktrees(self.common_dir).items())
            return next((path for admin, path in heads if (_read(admin / "HEAD") or b"").strip() == wanted), None)

    def included_files(self) -> list[str]:
        """The ignored files of root that `.worktreeinclude` names (e.g. `.env`): what new worktrees get."""
        include = self.root / ".worktreeinclude"
        if not include.is_file():
            return []
        listing = ("ls-files", "-z", "--others", "--ignored")
        ignored = set(_split_z(self.git(*listing, "--exclude-standard")))
        return [rel for rel in _split_z(self.git(*listing, f"--exclude-from={include}")) if rel in ignored]

    def copy_included_files(self, worktree: Path) -> list[str]:
        """Copy the included files (`included_files`) into a new worktree; returns those copied."""
        copied = []
        for rel in self.included_files():
            target = worktree / rel
            if target.exists() or target.is_symlink():
                continue  # never overwrite what the worktree already has
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.root / rel, target, follow_symlinks=False)
            copied.append(rel)
        return copied

    # -- commits ------------------------------------------------------------------------------------------

    def commit_paths(self, worktree: Path, paths: Sequence[str], message: str, author: tuple[str, str],
                     attributes_from: str | None = None) -> str | None:
        """Commit exactly `paths` as they are in `worktree` on its HEAD; None when that changes nothing.

        Each file is stored as the bytes on disk (a symlink as its target), converted (line endings, a filter
        driver such as Git LFS) only where the `.gitattributes` of commit `attributes_from` (default: HEAD) say
        so: `git add` would apply the worktree's own, which the change itself may have rewritten. The new tree
        is HEAD's with `paths` changed, built from the trees along those paths alone (gittree.py), so whatever
        else is staged or modified stays out of the commit and a commit costs what its paths cost, whatever
        the size of the repository; no hooks run (commit-tree runs none). The worktree's index then takes the
        committed entries of `paths`, so `git status` there shows them as committed.
        """
        head = self._oid("HEAD", cwd=worktree)
        edited = self._edit(worktree, paths, attributes_from or head, head)
        if head is not None and edited.tree == edited.base:
            self._index_follows(worktree, edited)  # a kill after HEAD moved left the index behind
            return None
        new = self._commit_tree(edited.tree, [head] if head else [], message, author)
        if not self._transaction([("HEAD", new, head)], cwd=worktree):
            raise GitteamError(f"HEAD of {worktree} moved while committing; nothing was committed, retry")
        self._index_follows(worktree, edited)
        return new

    def snapshot(self, worktree: Path, paths: Sequence[str], message: str, author: tuple[str, str]) -> str | None:
        """A commit of `paths` exactly as they are on disk in `worktree` (the bytes: no attributes apply), whose
        parent is its HEAD; it moves no ref and touches neither the worktree nor its index. None when it would
        change nothing. (What an agent left in its worktree, kept before the worktree goes.)"""
        head = self._oid("HEAD", cwd=worktree)
        edited = self._edit(worktree, paths, None, head)
        if head is not None and edited.tree == edited.base:
            return None
        return self._commit_tree(edited.tree, [head] if head else [], message, author)

    def _edit(self, worktree: Path, paths: Sequence[str], attributes_from: str | None, head: str | None) -> _Edited:
        """The tree of `head` with `paths` as they are on disk in `worktree`, written (its blobs and the trees
        on the way to them, in three processes at most: hash-object, mktree, and for submodules update-index)."""
        base = self._oid(f"{head}^{{tree}}") if head else None
        algorithm = ("sha256" if len(head) == 64 else "sha1") if head else self.object_format()
        edit = TreeEdit(base, self._raw_trees, algorithm)
        wanted = list(dict.fromkeys(paths))
        try:
            edit.load(wanted)
            changes = self._entries_on_disk(worktree, wanted, attributes_from, edit)
            tree, written = edit.build(changes)
        except BadPath as err:
            raise GitteamError(str(err)) from None
        self._write_trees(written, tree)
        return _Edited(tree, base, changes, hashlib.new(algorithm).digest_size * 2)

    def _entries_on_disk(self, worktree: Path, paths: Sequence[str], attributes_from: str | None,
                         edit: TreeEdit) -> dict[str, TreeEntry | None]:
        """Each path's new entry (its blob written), or None where it is gone."""
        found = {path: _on_disk(worktree / path) for path in paths}
        files = {path: entry for path, entry in found.items() if isinstance(entry, tuple)}
        if not self._filemode():  # like git: the executable bit is not trusted; keep what HEAD has
            files = {path: (mode if mode == "120000" else _kept_mode(edit.entry(path)), data)
                     for path, (mode, data) in files.items()}
        oids = self._store_blobs(files, attributes_from)
        changes: dict[str, TreeEntry | None] = {path: None for path, entry in found.items() if entry is None}
        changes.update({path: TreeEntry(files[path][0], oid) for path, oid in oids.items()})
        changes.update(self._gitlinks(worktree, [path for path, entry in found.items() if entry == "other"]))
        return changes

    def _gitlinks(self, worktree: Path, paths: Sequence[str]) -> dict[str, TreeEntry]:
        """The entries git gives directories (a submodule's checked-out commit), as `update-index --add` makes
        them, in a temporary index of their own (git refuses a directory that is not a repository)."""
        if not paths:
            return {}
        with tempfile.TemporaryDirectory(prefix="gitteam-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("update-index", "--add", "-z", "--stdin", cwd=worktree, env=env,
                     input="".join(f"{path}\0" for path in paths))
            out = self.git("ls-files", "-s", "-z", cwd=worktree, env=env)
        entries = {}
        for item in _split_z(out):
            meta, _, path = item.partition("\t")
            mode, oid, _ = meta.split(" ")
            entries[path] = TreeEntry(mode, oid)
        return entries

    def _raw_trees(self, oids: Sequence[str]) -> list[bytes | None]:
        """The raw content of trees, in one round trip to a lent cat-file process."""
        with self._reader() as reader:
            answers = reader.query([("contents", oid) for oid in oids])
        return [found.data if found is not None and found.kind == "tree" else None for found in answers]

    def _write_trees(self, trees: Sequence[tuple[str, Mapping[bytes, TreeEntry]]], root: str) -> None:
        """Write the trees a `TreeEdit` built, children first, in one `mktree --batch`: git checks every entry
        (its object exists, with the kind its mode says) and the ids must be those the edit computed."""
        if not trees:
            return
        stream = b"".join(b"".join(f"{entry.mode} {entry.kind} {entry.oid}\t".encode() + name + b"\0"
                                   for name, entry in entries.items()) + b"\0" for _, entries in trees)
        written = self.git("mktree", "--batch", "-z", input=stream).split()
        expected = [oid for oid, _ in trees]
        if written != expected or expected[-1] != root:
            raise GitteamError(f"git wrote trees {written[-3:]} where {expected[-3:]} were computed: "
                               "nothing was committed")

    def _index_follows(self, worktree: Path, edited: _Edited) -> None:
        """The worktree's own index takes the committed entries of the changed paths (and drops the deleted
        ones), so `git status` shows them as committed. Only those entries are written: a sparse index stays
        sparse, and the cost is that of the paths."""
        zero = "0" * edited.hex_width
        lines = [f"0 {zero}\t{path}\0" if entry is None else f"{entry.mode} {entry.oid}\t{path}\0"
                 for path, entry in edited.changes.items()]
        if not lines:
            return
        with self.locks.held(self._admin_locks(worktree)):
            self.git_bytes("update-index", "-z", "--index-info", cwd=worktree,
                           input="".join(lines).encode("utf-8", "surrogateescape"))

    def _store_blobs(self, files: Mapping[str, tuple[str, bytes]], attributes_from: str | None) -> dict[str, str]:
        """Write each file's blob: converted where the attributes of `attributes_from` say so, else as it is."""
        converted: set[str] = set()
        regular = [path for path, (mode, _) in files.items() if mode != "120000"]  # git never converts links
        oids: dict[str, str] = {}
        with self._attributes_of(attributes_from, regular) as scratch:
            if scratch.has_files:  # none in the base for these paths: nothing of theirs converts
                out = scratch.git("check-attr", "-z", "--stdin", *_CONVERTING,
                                  input="".join(f"{path}\0" for path in regular)).decode("utf-8", "surrogateescape")
                fields = out.split("\0")
                converted = {path for path, _, value in zip(fields[0::3], fields[1::3], fields[2::3], strict=False)
                             if value != "unspecified"}
            for path in sorted(converted):  # as `git add` would with the base's attributes (and filter drivers)
                oids[path] = scratch.git("hash-object", "-w", "--stdin", f"--path={path}",
                                         input=files[path][1]).decode().strip()
        plain = [path for path in files if path not in converted]
        # what is stored is what was read (links or not), from memory: one process, no scratch copies
        oids.update(zip(plain, self.write_blobs([files[path][1] for path in plain]), strict=True))
        return oids

    def _filemode(self) -> bool:
        """core.filemode, read once per Repository (every commit asks)."""
        if "filemode" not in self._settings:
            values = self.config_values("core.filemode")
            self._settings["filemode"] = not values or values[-1].strip().lower() not in ("false", "no", "off", "0")
        return self._settings["filemode"]

    def _commit_tree(self, tree: str, parents: Sequence[str], message: str, author: tuple[str, str]) -> str:
        name, email = author
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        text = message if message.endswith("\n") else message + "\n"
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self.git("commit-tree", tree, *parent_args, "-F", "-", env=env, input=text).strip()

    def merge(self, ours: str, theirs: str, message: str, author: tuple[str, str]) -> str | None:
        """Merge commit of ours and theirs made in memory (no worktree); None on conflict."""
        ours_sha, theirs_sha = self.rev_parse(ours), self.rev_parse(theirs)
        if ours_sha is None or theirs_sha is None:
            raise GitteamError(f"cannot merge {ours} and {theirs}: unknown revision")
        base = self._merge_base(ours_sha, theirs_sha)  # one process tells both ancestries
        if base == theirs_sha:
            return ours_sha
        if base == ours_sha:
            return theirs_sha
        args = ["merge-tree", "--write-tree", "--no-messages", ours_sha, theirs_sha]
        proc = self.run_git(*args)
        if proc.returncode == 1:
            return None
        if proc.returncode != 0:
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        tree = proc.stdout.decode().split("\n", 1)[0].strip()
        return self._commit_tree(tree, [ours_sha, theirs_sha], message, author)

    def merge_chain(self, ref: str, merges: Sequence[Merging], author: tuple[str, str]) -> MergedChain:
        """Merge each of `merges` in turn onto the branch `ref`, each merge on the one before, moving `ref` as
        `merge` and `update_ref` one merge at a time would: the same trees, parents and messages. The merges
        `DisjointMerges` can tell (gitmerge.py) are written, and `ref` moved, in one `git fast-import`; git
        makes the others. Stops at the first merge that conflicts, or when `ref` moved under the chain."""
        heads: list[str] = []
        head = self._oid(ref)
        if head is None:
            raise GitteamError(f"cannot merge into {ref}: it does not exist")
        width = len(head) // 2
        chain = DisjointMerges(head, self._commit_links, self._raw_trees, width)
        steps: list[tuple[Merging, Step]] = []
        for merging in merges:
            step = chain.next(merging.theirs, merging.base)
            if step is not None:
                steps.append((merging, step))
                continue
            if steps:
                written = self._write_merges(ref, head, steps, author)
                if written is None:
                    return MergedChain(heads, moved=True)
                heads += written
                head, steps = heads[-1], []
            new = self.merge(head, merging.theirs, merging.message, author)
            if new is None:
                return MergedChain(heads, conflict=True)
            if not self.update_ref(ref, new, head):
                return MergedChain(heads, moved=True)
            heads.append(new)
            head = new
            chain = DisjointMerges(head, self._commit_links, self._raw_trees, width)
        if steps:
            written = self._write_merges(ref, head, steps, author)
            if written is None:
                return MergedChain(heads, moved=True)
            heads += written
        return MergedChain(heads)

    def _write_merges(self, ref: str, head: str, steps: Sequence[tuple[Merging, Step]],
                      author: tuple[str, str]) -> list[str] | None:
        """Make `steps` on `ref` (at `head`) in one fast-import; the head after each, or None when `ref` was not
        at `head` (fast-import moves a branch only forward from where it finds it, by compare-and-swap)."""
        name, email = author
        stamp = f"{_fast_import_ident(name, email)} {int(time.time())} {time.strftime('%z')}\n"
        stream: list[bytes] = []
        heads: list[str | int] = []  # a commit id, or the mark of a merge fast-import makes
        tip: str | int = head
        for mark, (merging, step) in enumerate(steps, 1):
            if step.kind == "same":
                heads.append(tip)
                continue
            if step.kind == "forward":
                tip = step.theirs
                stream.append(f"reset {ref}\nfrom {_token(tip)}\n\n".encode())
                heads.append(tip)
                continue
            text = (merging.message if merging.message.endswith("\n") else merging.message + "\n").encode()
            parent = f":{tip}" if isinstance(tip, int) else _token(tip)
            stream += [f"commit {ref}\nmark :{mark}\nauthor {stamp}committer {stamp}data {len(text)}\n".encode(),
                       text, f"from {parent}\nmerge {_token(step.theirs)}\n".encode()]
            stream += [f"M {entry.mode} {_token(entry.oid)} ".encode() + _fast_import_path(path) + b"\n"
                       for path, entry in sorted(step.changes.items())]
            stream.append(b"\n")
            tip = mark
            heads.append(mark)
        marks = sorted({value for value in heads if isinstance(value, int)})
        if not stream:
            return [str(value) for value in heads]
        stream += [f"get-mark :{mark}\n".encode() for mark in marks] + [b"done\n"]
        args = [*_REF_LOCKS, "fast-import", "--quiet", "--done"]
        with self.locks.held([self._ref_lock(ref)]):
            proc = self.run_git(*args, input=b"".join(stream))
        if proc.returncode != 0:
            if self._oid(ref) != head:
                return None
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        made = dict(zip(marks, proc.stdout.decode().split(), strict=True))
        return [made[value] if isinstance(value, int) else value for value in heads]

    def _commit_links(self, oids: Sequence[str]) -> list[tuple[str, tuple[str, ...]] | None]:
        """(tree, parents) of each commit, through a lent cat-file process; None for what is no commit."""
        found: list[tuple[str, tuple[str, ...]] | None] = []
        with self._reader() as reader:
            answers = reader.query([("contents", oid) for oid in oids])
        for answer in answers:
            if answer is None or answer.kind != "commit" or answer.data is None:
                found.append(None)
                continue
            header = answer.data.split(b"\n\n", 1)[0].split(b"\n")
            tree = [line[5:].decode() for line in header if line.startswith(b"tree ")]
            parents = tuple(line[7:].decode() for line in header if line.startswith(b"parent "))
            found.append((tree[0], parents) if tree else None)
        return found

    # -- refs -----------------------------------------------------------------------------------------------

    def update_ref(self, ref: str, new: str, old: str | None) -> bool:
        """Point `ref` at `new` if it is at `old` (None: absent); False when it was not."""
        return self._transaction([(ref, new, old)])

    def delete_ref(self, ref: str, old: str) -> bool:
        return self._transaction([(ref, None, old)])

    def update_refs(self, updates: Sequence[tuple[str, str | None, str | None]]) -> bool:
        """All (ref, new or None=delete, old or None=absent) or none; False when any ref was not at old.

        (ref, None, None) applies nothing to `ref` and only requires it to be absent.
        """
        return self._transaction(updates)

    def _transaction(self, updates: Sequence[tuple[str, str | None, str | None]],
                     cwd: Path | None = None) -> bool:
        lines = []
        for ref, new, old in updates:
            if new is None:
                lines.append(f"delete {_token(ref)} {_token(old)}" if old else f"verify {_token(ref)}")
            else:
                lines.append(f"update {_token(ref)} {_token(new)} {_token(old)}" if old
                             else f"create {_token(ref)} {_token(new)}")
        args = [*_REF_LOCKS, "update-ref", "--stdin"]
        with self.locks.held(self._transaction_locks(updates, cwd)):
            returncode, stderr = self._two_phase(args, cwd, lines)
        if returncode == 0:
            return True
        for ref, _, old in updates:  # lost the race, or a real error (bad name, unknown object)?
            if self._oid(ref, cwd=cwd) != (self._oid(old) if old else None):
                return False
        raise GitError(["git", *args], returncode, stderr)

    def _two_phase(self, args: Sequence[str], cwd: Path | None, lines: Sequence[str]) -> tuple[int, str]:
        """`update-ref --stdin` as a prepared transaction: every ref locked and checked (`prepare: ok`), then
        committed. Between the two, git holds the ref locks: the one place a test can kill it holding them."""
        where, environ = self._setting(cwd, None)
        script = "".join(f"{line}\n" for line in ("start", *lines, "prepare")).encode("utf-8", "surrogateescape")
        with tempfile.TemporaryFile(prefix="gitteam-update-ref-") as errors:
            proc = subprocess.Popen(["git", *args], cwd=where, env=environ, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(script)
                proc.stdin.flush()
                if _answered(proc.stdout, "prepare"):
                    kill_point("transaction", proc)
                    proc.stdin.write(b"commit\n")
                proc.stdin.close()
            except BrokenPipeError:  # git stopped reading: it failed, and says why on stderr
                pass
            proc.stdout.read()
            returncode = proc.wait()
            errors.seek(0)
            return returncode, errors.read().decode(errors="replace")

    def _transaction_locks(self, updates: Sequence[tuple[str, str | None, str | None]],
                           cwd: Path | None) -> list[LockFile]:
        """The lock files a transaction makes: each ref's (HEAD's in its worktree, and the branch it names),
        and packed-refs' when it deletes."""
        files = []
        for ref, _, _ in updates:
            if ref != "HEAD":
                files.append(self._ref_lock(ref))
                continue
            git_dir = self._dirs(cwd)[0]
            files.append(self._lock_file(git_dir / "HEAD.lock", shared=git_dir == self.common_dir))
            head = _read(git_dir / "HEAD") or b""
            if head.startswith(b"ref: "):
                files.append(self._ref_lock(head[5:].decode("utf-8", "surrogateescape").strip()))
        if any(new is None and old for _, new, old in updates):
            files.append(LockFile("packed-refs.lock", shared=True))
        return files

    def refs(self, *prefixes: str) -> dict[str, str]:
        """Refs whose full name starts with one of `prefixes`, with the objects they point at (one listing)."""
        narrowed = [prefix.rpartition("/")[0] for prefix in prefixes]  # patterns match whole path components
        patterns = [] if not all(narrowed) else narrowed
        out = self._shared_reads.read(("for-each-ref", *patterns), lambda: self.git(
            "for-each-ref", "--format=%(refname)%00%(objectname)", *patterns))  # agents starting at once: one listing
        pairs = (line.split("\0") for line in str(out).splitlines())
        return {name: oid for name, oid in pairs if name.startswith(prefixes)}

    # -- notes ----------------------------------------------------------------------------------------------

    def set_note(self, notes_ref: str, obj: str, text: str) -> None:
        """Attach `text` to `obj`, replacing its note, without losing notes that others add concurrently.

        `git notes` moves its ref without checking its old value (concurrent writers silently lose notes), so
        the note is committed with `commit_notes`, which moves the ref by compare-and-swap; on a lost race,
        read the ref again and retry. This process's writers on one ref take turns, and whoever has the turn
        writes every note queued by then in one commit (agents ending their reviews at once made one
        fast-import each, one after another, and each agent waited for its own).
        """
        _check_notes_ref(notes_ref)
        resolved = self.rev_parse(obj) or obj
        queue = _note_queue(self.common_dir, notes_ref)
        mine = _QueuedNote(resolved, text.encode())
        with queue.lock:
            queue.pending.append(mine)
        with queue.turn:
            if not mine.written:  # else an earlier turn wrote it along with its own
                with queue.lock:
                    batch, queue.pending = queue.pending, []
                try:
                    self._write_notes(notes_ref, batch)
                except GitteamError as exc:
                    for note in batch:
                        note.failure = str(exc)
                    raise
                finally:
                    for note in batch:
                        note.written = True
        if mine.failure:
            raise GitteamError(mine.failure)

    def _write_notes(self, notes_ref: str, batch: Sequence[_QueuedNote]) -> None:
        notes = {note.obj: note.data for note in batch}  # a later note on one object replaces an earlier one
        message = f"note on {batch[0].obj[:12]}" if len(notes) == 1 else \
            "notes on " + ", ".join(obj[:12] for obj in notes)
        for attempt in range(_NOTE_ATTEMPTS):
            old = self._oid(notes_ref)
            if self.commit_notes(notes_ref, old, notes, message=message):
                return
            time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))  # jitter breaks lockstep retries
        raise GitteamError(f"could not update {notes_ref}: too many concurrent writers; retry")

    def read_note(self, notes_ref: str, obj: str) -> str | None:
        """The note `notes_ref` attaches to `obj` (None: none), as `git notes list` finds it, without starting
        a process when `obj` is a full object id: the notes ref is resolved afresh, then its tree walked,
        whatever its fanout, through a lent cat-file process."""
        _check_notes_ref(notes_ref)
        with self._reader() as reader:
            root = reader.query([("info", f"{notes_ref}^{{tree}}")])[0]
        if root is None:
            return None
        key = obj.lower() if len(obj) == len(root.oid) and _HEX.fullmatch(obj.lower()) else self._oid(obj)
        with self._reader() as reader:
            blob = _note_blob(reader, root.oid, key) if key else None
            found = reader.query([("contents", blob)])[0] if blob else None
        if found is None or found.kind != "blob" or found.data is None:
            return None
        return found.data.decode("utf-8", "replace")

    def notes(self, notes_ref: str) -> dict[str, str]:
        """Every annotated object of `notes_ref` with its note, read in one batch."""
        _check_notes_ref(notes_ref)
        pairs = [line.split() for line in self.git("notes", f"--ref={notes_ref}", "list").splitlines()]
        blobs = self._cat_blobs(sorted({blob for blob, _ in pairs}))
        return {obj: blobs[blob].decode("utf-8", "replace") for blob, obj in pairs if blob in blobs}

    # -- the target branch ------------------------------------------------------------------------------

    def fast_forward(self, branch: str, new: str, expected_old: str) -> FastForward:
        """Move refs/heads/<branch> from expected_old to new, as `git merge --ff-only` would; never forced."""
        ref = branch if branch.startswith("refs/heads/") else f"refs/heads/{branch}"
        new_sha, old_sha = self.rev_parse(new), self.rev_parse(expected_old)
        if new_sha is None or old_sha is None:
            raise GitteamError(f"cannot fast-forward {branch}: unknown revision {new} or {expected_old}")
        if not self.is_ancestor(old_sha, new_sha):
            return FastForward(False, None, f"{new_sha[:12]} does not descend from {old_sha[:12]}")
        worktree = self.worktree_of_branch(ref)
        if worktree is None:
            if self.update_ref(ref, new_sha, old_sha):
                return FastForward(True, None, f"{ref} moved to {new_sha[:12]}")
            return FastForward(False, None, f"{ref} is no longer at {old_sha[:12]}")
        return self._fast_forward_checked_out(worktree, new_sha, old_sha, ref)

    def _fast_forward_checked_out(self, worktree: Path, new: str, old: str, ref: str) -> FastForward:
        if not worktree.is_dir():
            return FastForward(False, worktree, f"checked out in {worktree}, which is missing "
                                                "(run `git worktree prune`, then retry)")
        head = self._oid("HEAD", cwd=worktree)
        if head != old:
            return FastForward(False, worktree, f"HEAD of {worktree} is not at {old[:12]}")
        if new == old:
            return FastForward(True, worktree, "already up to date")
        changes = self._changes(old, new)
        applied = self._half_applied(worktree, old, new, changes)
        overlap = sorted(set(changes) & set(self.worktree_changes(worktree)) - set(applied))
        if overlap:
            return FastForward(False, worktree, f"uncommitted changes in {worktree} touch files the update "
                                                f"changes: {_listed(overlap)} (commit or stash them, then retry)")
        in_the_way = [path for path in _in_the_way(worktree, changes) if path not in applied]
        if in_the_way:
            return FastForward(False, worktree, f"the update would overwrite untracked or ignored files in "
                                                f"{worktree}: {_listed(in_the_way)} (move them away, then retry)")
        locks = [*self._admin_locks(worktree, shared=True), self._ref_lock(ref)]
        with self.locks.held([LockFile(lock.path, shared=True) for lock in locks]):
            if applied:  # staged as the update has them, the merge keeps them (git's two-way merge: index = new)
                self.git_bytes("update-index", "-z", "--index-info", cwd=worktree,
                               input="".join(applied.values()).encode("utf-8", "surrogateescape"))
            proc = self.run_git("merge", "--ff-only", "--no-edit", "--no-autostash", "--no-stat",
                                "-q", new, cwd=worktree)
        if proc.returncode != 0:
            first = proc.stderr.decode(errors="replace").strip().split("\n", 1)[0]
            return FastForward(False, worktree, f"git merge --ff-only refused in {worktree}: {first}")
        if self._oid("HEAD", cwd=worktree) != new:
            return FastForward(False, worktree, f"HEAD of {worktree} moved during the update")
        return FastForward(True, worktree, f"{worktree} moved to {new[:12]}")

    def _half_applied(self, worktree: Path, old: str, new: str, changes: Mapping[str, str]) -> dict[str, str]:
        """What a fast-forward killed midway (`git merge --ff-only` writes the files, then the index, then the
        ref) left done: each changed path whose index entry is still `old`'s while the file on disk is already
        exactly `new`'s (or gone, where `new` deletes it), as `update-index --index-info` lines. Nothing of the
        user's is among them: their content is the update's own."""
        if not changes:
            return {}
        paths = sorted(changes)
        before, after = self._tree_entries(old, paths), self._tree_entries(new, paths)
        out = self.git("--literal-pathspecs", "ls-files", "-s", "-z", "--", *paths, cwd=worktree)
        staged = {item.partition("\t")[2]: (item.split(" ")[0], item.split(" ")[1]) for item in _split_z(out)
                  if item.split(" ")[2].startswith("0")}
        candidates = [path for path in paths if staged.get(path) == before.get(path)]
        files = [path for path in candidates if path in after and after[path][0] != "120000"
                 and os.path.isfile(worktree / path) and not os.path.islink(worktree / path)]
        hashed = self.git("hash-object", "--stdin-paths", cwd=worktree,
                          input="".join(f"{path}\n" for path in files)).split() if files else []
        on_disk = dict(zip(files, hashed, strict=True))
        zero = "0" * len(old)
        done = {}
        for path in candidates:
            if path not in after and not os.path.lexists(worktree / path):
                done[path] = f"0 {zero}\t{path}\0"
            elif path in after and on_disk.get(path) == after[path][1]:
                done[path] = f"{after[path][0]} {after[path][1]}\t{path}\0"
        return done

    def _tree_entries(self, rev: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(mode, object) of each of `paths` in the tree of `rev` that has it."""
        out = self.git("--literal-pathspecs", "ls-tree", "-z", "--full-tree", rev, "--", *paths)
        found = {}
        for item in _split_z(out):
            meta, _, path = item.partition("\t")
            mode, _, oid = meta.split(" ")
            found[path] = (mode, oid)
        return found

    # -- notes written in one process, and notes refs shared with remotes (the team's memory) -------------

    def object_format(self) -> str:
        """The hash of this repository's object ids: "sha1" or "sha256" (so ids can be computed without git)."""
        return self.git("rev-parse", "--show-object-format").strip() or "sha1"

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits; None when they share no history."""
        proc = self.run_git("merge-base", a, b)
        sha = proc.stdout.decode().strip()
        return sha if proc.returncode == 0 and sha else None

    def commits_between(self, base: str, head: str) -> list[str]:
        """Commits reachable from head but not from base, oldest first."""
        return self.git("rev-list", "--reverse", f"{base}..{head}").split()

    def commit_messages(self, base: str, head: str) -> str:
        """Subjects and bodies of the commits in base..head, newest first, as a reviewer reads them."""
        return self.git("log", "--format=%s%n%n%b", f"{base}..{head}")

    def read_objects(self, oids: Sequence[str]) -> dict[str, bytes]:
        """Contents of many blobs by id, from this thread's `git cat-file`; missing ones are left out."""
        return self._cat_blobs(list(oids))

    def note_pairs(self, rev: str) -> list[tuple[str, str]]:
        """(note blob, annotated object) of every note in the notes commit `rev` (a notes ref or a commit),
        whatever its fanout; files that are not notes are left out, as `git notes list` leaves them out."""
        out = self.git("ls-tree", "-r", "-z", "--full-tree", rev)
        pairs = []
        for item in _split_z(out):
            meta, _, path = item.partition("\t")
            kind, blob = meta.split()[1:3]
            obj = path.replace("/", "")
            if kind == "blob" and len(obj) == len(blob) and _HEX.fullmatch(obj):
                pairs.append((blob, obj))
        return pairs

    def commit_notes(self, notes_ref: str, old: str | None, notes: Mapping[str, bytes],
                     remove: Sequence[str] = (), message: str = "notes", merge: Sequence[str] = ()) -> str | None:
        """Write `notes` (annotated object -> note content) and drop the notes of `remove`, as one commit on
        `notes_ref`, in one `git fast-import` process; returns the new commit, or None when the ref was not at
        `old` (None: absent): read it again and retry.

        The ref only ever moves from `old` to a descendant (fast-import refuses anything else and updates the
        ref by compare-and-swap), so concurrent writers never lose each other's notes. The commit reads only
        the tree paths it changes, so its cost does not grow with the number of notes. Notes are stored at
        the 2/38 fanout `git notes` uses for thousands of notes (other layouts of the same object are removed).
        `merge` adds parents (a union of diverged copies of the ref).
        """
        _check_notes_ref(notes_ref)
        when = int(time.time())
        text = message if message.endswith("\n") else message + "\n"
        body = text.encode("utf-8")
        stream = [f"commit {notes_ref}\nmark :1\ncommitter gitteam <gitteam@gitteam.invalid> {when} +0000\n"
                  f"data {len(body)}\n".encode(), body]
        if old is not None:
            stream.append(f"from {_token(old)}\n".encode())
        stream += [f"merge {_token(parent)}\n".encode() for parent in merge]
        for obj in [*remove, *notes]:
            for path in (obj, f"{obj[:2]}/{obj[2:4]}/{obj[4:]}", f"{obj[:2]}/{obj[2:]}"):
                stream.append(f"D {_token(path)}\n".encode())
        for obj, data in notes.items():
            stream.append(f"M 100644 inline {obj[:2]}/{obj[2:]}\ndata {len(data)}\n".encode())
            stream += [data, b"\n"]
        stream.append(b"\nget-mark :1\ndone\n")
        args = [*_REF_LOCKS, "fast-import", "--quiet", "--done"]
        with self.locks.held([self._ref_lock(notes_ref)]):
            proc = self.run_git(*args, input=b"".join(stream))
        if proc.returncode == 0:
            return proc.stdout.decode().strip().split("\n")[-1]
        if self._oid(notes_ref) != old:
            return None  # another writer moved the ref first; fast-import left it alone
        raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))

    def remote_names(self) -> list[str]:
        return self.git("remote").split()

    def config_values(self, key: str) -> list[str]:
        """Every value of a (multi-valued) config key, as git resolves it; [] when unset."""
        # without the pinned config (reading config runs nothing): the caller asks what the user configured
        proc = self._run(("config", "--get-all", key), None, None, None, pinned=False)
        if proc.returncode == 1:
            return []
        if proc.returncode != 0:
            raise GitError(["git", "config", "--get-all", key], proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout.decode("utf-8", "surrogateescape").splitlines()

    def contained_config(self) -> bytes:
        """The text of a config file for the git of a contained command: only the keys reading this repository
        needs (its format, extensions, how its files are checked out), from the common dir's own `config`.

        Includes are not followed, so nothing an included file says is ever copied; everything else stays out:
        remote URLs and `http.<url>.extraheader` (which CI checkouts leave) can carry tokens, credential
        helpers, hooks and drivers run programs.
        """
        out = self.git_bytes("config", "--file", str(self.common_dir / "config"), "--no-includes", "--list", "-z")
        sections: dict[bytes, list[bytes]] = {}
        for record in out.split(b"\0"):
            key, has_value, value = record.partition(b"\n")
            if not _CONTAINED_KEY.fullmatch(key):
                continue
            section, _, name = key.partition(b".")
            line = b"\t" + name + (b" = " + _config_quoted(value) if has_value else b"")  # no "=": boolean true
            sections.setdefault(section, []).append(line + b"\n")
        return b"".join(b"[" + section + b"]\n" + b"".join(lines) for section, lines in sections.items())

    def add_config(self, key: str, value: str) -> None:
        """Add a value to a multi-valued key of this repository's own config (.git/config)."""
        self.git("config", "--local", "--add", key, value)

    def fetch_refs(self, remote: str, refspecs: Sequence[str]) -> None:
        """`git fetch` of exactly `refspecs` from `remote`: no tags, no FETCH_HEAD, no submodules, and none of
        the remote's configured refspecs (`--refmap=`), so only the refs named here move."""
        self.git(*_REF_LOCKS, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules",
                 "--no-auto-maintenance", "--refmap=", _remote(remote), *refspecs)

    def push_refs(self, remote: str, refspecs: Sequence[str]) -> list[PushedRef]:
        """`git push` of `refspecs` (never forced; no hooks: these are data refs, not code) with each ref's fate.

        A ref the remote refuses (not a fast-forward) comes back with status "!" instead of raising.
        """
        args = ["push", "--porcelain", "--no-verify", _remote(remote), *refspecs]
        proc = self.run_git(*args)
        pushed = []
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and len(fields[0]) == 1 and ":" in fields[1]:
                source, _, destination = fields[1].partition(":")
                pushed.append(PushedRef(fields[0], source, destination, fields[2]))
        if proc.returncode != 0 and not any(p.status == "!" for p in pushed):
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        return pushed

    # -- a shared namespace on a remote (gitteam.remote: the distributed mode's ref protocol) ------------------

    def fetch_mirror(self, remote: str, pattern: str, into: str) -> None:
        """One `git fetch --prune` of the remote's refs matching `pattern` (a refspec source, `*` allowed) into
        `into` (under refs/gitteam/), forced: a read-only copy of part of the remote's namespace, where refs
        deleted there go too.

        Mirror fetches run one at a time per repository (threads and processes alike), so a ref lock file found
        in the mirror before one starts is a killed fetch's, and is removed: it would block every later fetch.
        """
        if not into.startswith("refs/gitteam/"):
            raise GitteamError(f"a mirror lives under refs/gitteam/, not at {into!r}")
        with self.locks.exclusive("mirror"):
            mirror = self.common_dir / into.rstrip("*").rstrip("/")
            if mirror.is_dir():
                for stale in mirror.rglob("*.lock"):
                    stale.unlink(missing_ok=True)
            with self.locks.held([LockFile("packed-refs.lock", shared=True)]):  # --prune may rewrite it
                self.git(*_REF_LOCKS, "fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head",
                         "--no-recurse-submodules", "--no-auto-maintenance", "--refmap=", _remote(remote),
                         f"+{pattern}:{into}")

    def push_atomic(self, remote: str, updates: Sequence[tuple[str, str | None, str | None]],
                    extra: Sequence[str] = ()) -> bool:
        """One `git push --atomic`: every update lands or none does; False when the remote refused it.

        updates are (ref, new oid or None to delete, expected): expected an oid (the remote's ref must be at it),
        "" (it must not exist), both checked by `--force-with-lease`, or None (no check: forced). `extra` are
        plain refspecs that travel in the same push (never forced unless they say `+`). A compare-and-swap lost
        ("stale info", a ref that moved since git read it) is False; a remote git cannot reach, or one whose
        policy refuses the refs (a hook declined, permission denied, a protected ref), raises GitError.
        """
        leases = [f"--force-with-lease={ref}:{expected}" for ref, _, expected in updates if expected is not None]
        refspecs = [f"{'+' if expected is None else ''}{new or ''}:{ref}" for ref, new, expected in updates]
        args = ["push", "--porcelain", "--atomic", "--no-verify", *leases, _remote(remote), *refspecs, *extra]
        proc = self.run_git(*args)
        if proc.returncode == 0:
            return True
        refused = [line.split("\t") for line in proc.stdout.decode("utf-8", "replace").splitlines()
                   if line.startswith("!\t")]
        if not refused:
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode(errors="replace"))
        policy = [f"{fields[1].partition(':')[2]} {fields[2]}" for fields in refused
                  if len(fields) >= 3 and _POLICY_REFUSAL.search(fields[2])]
        if policy:  # the remote will never take these refs: an error, not a lost race
            raise GitError(["git", *args], proc.returncode, "\n".join(policy))
        return False

    def commit_file(self, name: str, data: bytes, parents: Sequence[str], message: str,
                    author: tuple[str, str], date: str) -> str:
        """A commit whose tree holds one file, `name` with `data`, made by `author` at `date` (git's "<seconds>
        <offset>") as author and committer: the same arguments make the same commit, on any machine."""
        blob = self.write_blob(data)
        tree = self.git("mktree", "-z", input=f"100644 blob {blob}\t{name}\0").strip()
        name_, email = author
        env = {"GIT_AUTHOR_NAME": name_, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
               "GIT_COMMITTER_NAME": name_, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date}
        text = message if message.endswith("\n") else message + "\n"
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self.git("commit-tree", tree, *parent_args, "-F", "-", env=env, input=text).strip()

    def read_paths(self, names: Sequence[str]) -> dict[str, bytes]:
        """Files named `<rev>:<path>`, of many revisions, in one round trip; names of no file are left out."""
        return self._cat_blobs(names)

    def has_commit(self, oid: str) -> bool:
        """Whether the commit and its tree are here (its ancestors may not be: a shallow clone)."""
        return self._oid(f"{oid}^{{tree}}") is not None


def _in_the_way(worktree: Path, changes: Mapping[str, str]) -> list[str]:
    """What of the user's in `worktree`, tracked by no commit, the update `changes` would overwrite or remove:
    an untracked or ignored file, or a directory holding some, where the update adds a path, and such a file
    where it needs a directory. `git merge --ff-only` refuses the untracked ones but silently replaces ignored
    ones (a `.gitignore` line removed and the file added: the user's only copy is gone). Paths the update
    modifies or deletes are tracked: the check for uncommitted changes covers them."""
    found = {_blocking(worktree, path, changes) for path, status in changes.items() if status == "A"}
    return sorted(path for path in found if path)


def _blocking(worktree: Path, path: str, changes: Mapping[str, str]) -> str | None:
    """What stands where the update adds `path`: the file where it needs a directory, the file at `path`,
    or the directory at `path` (shown with a trailing /) with files in it; None when nothing does."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        rel = "/".join(parts[:depth])
        try:
            mode = os.lstat(worktree / rel).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None  # nothing there, so nothing below it either
        if depth < len(parts):
            if stat.S_ISDIR(mode):
                continue
            return None if rel in changes else rel  # a tracked file the update deletes is git's to replace
        if not stat.S_ISDIR(mode):
            return rel
        return f"{rel}/" if _holds_files(worktree / rel, rel, changes) else None
    return None


def _holds_files(directory: Path, rel: str, changes: Mapping[str, str]) -> bool:
    """Whether `directory` holds anything but directories and files the update deletes (git removes those)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return True  # unreadable: it may hold anything
    for entry in entries:
        inner = f"{rel}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            if _holds_files(Path(entry.path), inner, changes):
                return True
        elif changes.get(inner) != "D":
            return True
    return False


def _listed(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more


def _linked_to(worktree: Path) -> Path | None:
    """The git dir a worktree's `.git` file names (resolved), None when it names none."""
    text = _read(worktree / ".git")
    if text is None or not text.startswith(b"gitdir: "):
        return None
    named = Path(os.fsdecode(text[len(b"gitdir: "):].strip()))
    return (worktree / named).resolve() if not named.is_absolute() else named.resolve()


@dataclass(eq=False)
class _QueuedNote:
    obj: str
    data: bytes
    written: bool = False  # set under the turn: by the writer whose commit took it, or failed to
    failure: str = ""


@dataclass(eq=False)
class _NoteQueue:
    """`set_note`'s writers on one notes ref in this process: the turn, and the notes waiting for it."""

    turn: threading.Lock = field(default_factory=threading.Lock)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `pending`
    pending: list[_QueuedNote] = field(default_factory=list)


_NOTE_QUEUES: dict[tuple[Path, str], _NoteQueue] = {}
_NOTE_QUEUES_LOCK = threading.Lock()


def _note_queue(common_dir: Path, notes_ref: str) -> _NoteQueue:
    with _NOTE_QUEUES_LOCK:
        return _NOTE_QUEUES.setdefault((common_dir, notes_ref), _NoteQueue())


def _point_back(worktree: Path, admin: Path) -> None:
    """Make the worktree's `.git` the file git wrote, pointing at its admin dir, whatever replaced it."""
    dot_git = worktree / ".git"
    wanted = f"gitdir: {admin}\n".encode()
    if dot_git.is_file() and not dot_git.is_symlink() and _read(dot_git) == wanted:
        return
    if dot_git.is_dir() and not dot_git.is_symlink():
        shutil.rmtree(dot_git)
    else:
        dot_git.unlink(missing_ok=True)
    dot_git.write_bytes(wanted)


def _config_quoted(value: bytes) -> bytes:
    """`value` as a double-quoted config value that git reads back byte for byte (a newline or a quote in it
    cannot end the value and start a key of its own)."""
    escaped = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    return b'"' + escaped.replace(b"\t", b"\\t").replace(b"\b", b"\\b") + b'"'


def _answered(out: IO[bytes], command: str) -> bool:
    """Read `update-ref --stdin`'s reports up to `<command>: ok`; False when it ended first (it failed)."""
    while True:
        line = out.readline()
        if not line:
            return False
        if line.strip() == f"{command}: ok".encode():
            return True


def _records(out: str) -> Iterator[list[str]]:
    """Split `worktree list --porcelain -z` output: fields end with NUL, records with an empty field."""
    fields: list[str] = []
    for item in out.split("\0"):
        if item:
            fields.append(item)
        elif fields:
            yield fields
            fields = []


def _check_notes_ref(notes_ref: str) -> None:
    if not notes_ref.startswith("refs/notes/"):
        raise GitteamError(f"notes ref must be a full ref under refs/notes/, got {notes_ref!r}")


def _remote(remote: str) -> str:
    """A remote name, URL or path; never something git would read as an option."""
    if not remote or remote.startswith("-"):
        raise UsageError(f"invalid remote {remote!r}: give a remote name, URL or path")
    return remote


def _tree_path(path: str) -> bool:
    """A path a tree can hold (read_blobs finds its id in the trees); any other goes to git as `rev:path`."""
    try:
        components(path)
    except BadPath:
        return False
    return True


def _fast_import_ident(name: str, email: str) -> str:
    """`name <email>` for a fast-import author or committer line, which neither may break."""
    if any(ch in name + email for ch in "<>\n"):
        raise GitteamError(f"invalid identity for a commit: {name} <{email}>")
    return f"{name} <{email}>"


def _fast_import_path(path: str) -> bytes:
    """A path as fast-import reads it: C-quoted, so that spaces, quotes, newlines and any byte stay the path's."""
    raw = path.encode("utf-8", "surrogateescape")
    quoted = bytearray(b'"')
    for byte in raw:
        if byte in (0x22, 0x5C):
            quoted += b"\\" + bytes([byte])
        elif byte < 0x20 or byte >= 0x7F:
            quoted += b"\\%03o" % byte
        else:
            quoted.append(byte)
    return bytes(quoted + b'"')

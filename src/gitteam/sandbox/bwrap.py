"""Bubblewrap: the command line that contains one command, and whether bubblewrap works on this machine.

The new root is empty; the command sees only what is bound into it: the system directories read-only
(with /etc's root-only files masked), the toolchain its PATH names, its worktree read-write (but for its `.git`
link), the repository's git dir read-only with a filtered copy of its config (its other configs, submodules'
included, empty), a private HOME and /tmp. Every namespace is new (no network unless asked, a fresh /proc
without gitteam's environment, no host sockets), every capability is dropped (as root bubblewrap would otherwise
keep the ones that remount a read-only bind writable), nested user namespaces are refused, the kernel keyrings
(not namespaced) are out of reach (gitteam.sandbox.seccomp), and the whole process tree dies with the command.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitteam.sandbox import seccomp

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix/store")
# System git config can carry credential helpers and tokens; the command's git needs none of it.
ALWAYS_MASKED = ("/etc/gitconfig",)
SCANNED_FOR_SECRETS = "/etc"  # where root-only files that root itself could still read live
# Version managers keep their toolchains in a directory of HOME whose shims need all of it; these are shown
# read-only when the command's PATH goes through them (HOME itself never is).
TOOLCHAIN_HOMES = (".pyenv", ".rbenv", ".nodenv", ".goenv", ".nvm", ".volta", ".asdf", ".sdkman", ".rustup",
                   ".cargo", ".bun", ".deno", ".pixi", ".juliaup")
TOOLCHAIN_SECRETS = (".cargo/credentials", ".cargo/credentials.toml")  # registry tokens


@dataclass(frozen=True, slots=True)
class Containment:
    """What one contained command may reach."""

    worktree: Path  # read-write, and the working directory
    git_dir: Path | None = None  # the common git dir: read-only
    git_config: bytes = b""  # what the git dir's `config` shows inside
    hidden: tuple[Path, ...] = ()  # directories inside visible ones that stay empty (gitteam's state)
    network: bool = False
    home: Path = Path("/home/sandbox")  # HOME inside
    home_source: Path | None = None  # a real directory bound read-write at `home`; None: an empty tmpfs
    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class Invocation:
    argv: list[str]
    pass_fds: tuple[int, ...]
    data: Mapping[int, bytes]  # what to write into each passed pipe before the command starts


class Unavailable(Exception):
    """Bubblewrap is missing or cannot create namespaces here; the message says what failed."""


def invocation(bwrap: str, argv: Sequence[str], spec: Containment, env: Mapping[str, str],
               disable_userns: bool) -> Invocation:
    """The bwrap command line for `argv` contained by `spec` (`env` is the command's, for its PATH)."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if disable_userns:
        args.append("--disable-userns")
    if spec.network:
        args.append("--share-net")
    pass_fds: list[int] = []
    data: dict[int, bytes] = {}

    def pipe(content: bytes) -> str:
        """A descriptor bubblewrap reads `content` from (small: it fits the pipe's buffer)."""
        read, write = os.pipe()
        pass_fds.append(read)
        data[write] = content
        return str(read)

    args += ["--seccomp", pipe(seccomp.keyring_filter())]
    mounts: list[tuple[str, list[str]]] = []  # (destination, arguments), applied parents first

    def add(dest: Path | str, *words: str) -> None:
        mounts.append((os.path.normpath(dest), list(words)))

    for top in SYSTEM_DIRS:
        if os.path.islink(top):
            add(top, "--symlink", os.readlink(top), top)
        elif os.path.isdir(top):
            add(top, "--ro-bind", top, top)
    toolchain = toolchain_paths(argv, env, spec.home, private_trees(spec))
    secrets = [*ALWAYS_MASKED, *root_only_entries(SCANNED_FOR_SECRETS),
               *(os.path.join(real_home(), name) for name in TOOLCHAIN_SECRETS)]
    for secret in secrets:
        if os.path.isdir(secret) and not os.path.islink(secret):
            add(secret, "--tmpfs", secret, "--remount-ro", secret)
        elif os.path.lexists(secret):  # a device node would do, but bind mounts here are nodev
            add(secret, "--ro-bind", empty_file(), secret)
    add("/dev", "--dev", "/dev")
    add("/proc", "--proc", "/proc")
    add("/tmp", "--tmpfs", "/tmp")
    add("/var/tmp", "--tmpfs", "/var/tmp")
    if spec.home_source is not None:
        add(spec.home, "--bind", str(spec.home_source), str(spec.home))
    else:
        add(spec.home, "--tmpfs", str(spec.home))
    for tool in toolchain:
        add(tool, "--ro-bind", tool, tool)
    for extra in spec.read_only:
        add(extra, "--ro-bind-try", str(extra), str(extra))
    if spec.git_dir is not None:
        add(spec.git_dir, "--ro-bind", str(spec.git_dir), str(spec.git_dir))
        add(spec.git_dir / "config", "--ro-bind-data", pipe(spec.git_config), str(spec.git_dir / "config"))
        for config in other_configs(spec.git_dir):
            add(config, "--ro-bind", empty_file(), str(config))
    for hidden in spec.hidden:  # left writable: mount points for the worktree may have to be made in it
        if hidden.is_dir():
            add(hidden, "--tmpfs", str(hidden))
    for writable in spec.read_write:
        add(writable, "--bind-try", str(writable), str(writable))
    add(spec.worktree, "--bind", str(spec.worktree), str(spec.worktree))
    link = spec.worktree / ".git"
    if os.path.lexists(link) and not (spec.git_dir is not None and _same(link, spec.git_dir)):
        # The worktree's `.git` says which git dir git obeys: rewritten to one of the command's own (with a
        # core.fsmonitor or hooks), every git that later runs in the worktree outside the sandbox would run
        # them. A mount point cannot be replaced, renamed or removed, and this one cannot be written.
        add(link, "--ro-bind", str(link), str(link))
    # parents before children; at one path, in the order added (a tmpfs first, then what goes on it)
    for _, words in sorted(mounts, key=lambda item: _depth(item[0])):
        args += words
    args += ["--chdir", str(spec.worktree), "--", *argv]
    return Invocation(args, tuple(pass_fds), data)


def other_configs(git_dir: Path) -> list[Path]:
    """Config files in the git dir besides its own `config`: the main worktree's `config.worktree` and every
    submodule's (`modules/<name>/config`, nested ones too). A CI checkout leaves its token (an
    `http.extraheader`) in each; the command sees them empty."""
    found = [git_dir / "config.worktree"] if os.path.isfile(git_dir / "config.worktree") else []
    for parent, _, files in os.walk(git_dir / "modules"):
        found += [Path(parent) / name for name in ("config", "config.worktree") if name in files]
    return found


def _same(path: Path, other: Path) -> bool:
    return os.path.realpath(path) == os.path.realpath(other)


def _depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def toolchain_paths(argv: Sequence[str], env: Mapping[str, str], home: Path,
                    private: Sequence[Path] = ()) -> list[str]:
    """Directories outside the system ones that the command needs to start: its PATH's entries (a
    virtualenv's whole directory for its bin/), the directory of an absolute argv[0], VIRTUAL_ENV, and where a
    command named by its bare name really lives when PATH holds a link to it (`installed_at`).

    Never HOME itself or one of its ancestors, nor the root: that would show everything under them. Never a
    directory that holds one of the `private` trees (the user's checkout, the git dir, the worktree) or lies in
    one, unless it is a virtualenv: argv[0] may come from the repository's own config (its test command), and
    `<checkout>/run_tests.py` would otherwise show the whole checkout, ignored `.env` files included.
    """
    candidates = [entry for entry in env.get("PATH", "").split(os.pathsep) if entry]
    if argv and os.path.isabs(argv[0]):
        candidates.append(os.path.dirname(argv[0]))
    if env.get("VIRTUAL_ENV"):
        candidates.append(env["VIRTUAL_ENV"])
    user_home = real_home()
    trees = [os.path.realpath(tree) for tree in private]
    if argv:
        candidates += installed_at(argv[0], env.get("PATH", ""), trees)
    found: list[str] = []
    for entry in candidates:
        for path in _with_virtualenv(_toolchain_home(entry, user_home)):
            if (not os.path.isabs(path) or not os.path.isdir(path) or _under_system(path)
                    or _contains(path, user_home) or _contains(path, str(home)) or _exposes(path, trees)):
                continue
            if path not in found:
                found.append(path)
    return found


def installed_at(command: str, path: str, trees: Sequence[str]) -> list[str]:
    """Where a command found on PATH by its bare name really lives, when the PATH entry holds a link to it:
    pipx, `uv tool` and Claude Code's installer link `~/.local/bin/NAME` to a virtualenv or a versioned binary,
    npm links `PREFIX/bin/NAME` into `PREFIX/lib/node_modules`, whose packages need their siblings (their whole
    `node_modules`). Only the user's own PATH is followed, from an entry outside the private trees, to an
    executable file: a repository cannot name a link of its own here."""
    if not command or "/" in command:
        return []
    found = shutil.which(command, path=path)
    if found is None or not os.path.islink(found) or _exposes(os.path.dirname(found), trees):
        return []
    real = os.path.realpath(found)
    if not (os.path.isfile(real) and os.access(real, os.X_OK)):
        return []
    parts = real.split(os.sep)
    packages = [os.sep.join(parts[: parts.index("node_modules") + 1])] if "node_modules" in parts else []
    return [os.path.dirname(real), *packages]


def private_trees(spec: Containment) -> tuple[Path, ...]:
    """What no toolchain bind may show more of than the sandbox does: the worktree, the git dir, and the user's
    checkout around a `.git` directory."""
    trees = [spec.worktree]
    if spec.git_dir is not None:
        trees.append(spec.git_dir)
        if spec.git_dir.name == ".git":
            trees.append(spec.git_dir.parent)
    return tuple(trees)


def _exposes(path: str, trees: Sequence[str]) -> bool:
    """True when binding `path` would show one of `trees` (real paths), or a part of one that is no virtualenv."""
    real = os.path.realpath(path)
    for tree in trees:
        if _contains(real, tree):
            return True
        if real.startswith(tree.rstrip("/") + "/") and not os.path.isfile(os.path.join(real, "pyvenv.cfg")):
            return True
    return False


def real_home() -> str:
    return os.path.realpath(os.environ.get("HOME") or "/root")


def _toolchain_home(entry: str, user_home: str) -> str:
    """`~/.pyenv/shims` -> `~/.pyenv`: a version manager's shims exec what lies beside them."""
    path = os.path.normpath(entry)
    for name in TOOLCHAIN_HOMES:
        top = os.path.join(user_home, name)
        if path == top or path.startswith(top + "/"):
            return top
    return path


@functools.cache
def empty_file() -> str:
    """An empty, read-only file of this process's own, bound over files the command must not read."""
    fd, path = tempfile.mkstemp(prefix="gitteam-sandbox-empty-")
    os.close(fd)
    os.chmod(path, 0o444)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)


def _with_virtualenv(entry: str) -> list[str]:
    """A PATH entry, widened to its virtualenv (and that virtualenv's base Python) when it is one's bin/."""
    path = os.path.normpath(entry)
    parent = os.path.dirname(path)
    config = os.path.join(parent, "pyvenv.cfg")
    try:
        text = Path(config).read_text(errors="replace") if os.path.isfile(config) else None
    except OSError:  # a PATH entry this user may not look into (root's ~/.cargo/bin, kept by `su`)
        text = None
    if text is None:
        return [path]
    paths = [parent]
    for line in text.splitlines():
        key, _, value = line.partition("=")
        base = os.path.normpath(value.strip())
        # .../bin -> the installation; only where a Python is: a pyvenv.cfg is a file anyone may write (a
        # repository can hold one), and `home = ~/.ssh/x` must not show ~/.ssh
        if key.strip() == "home" and value.strip() and _has_python(base):
            paths.append(os.path.dirname(base))
    return paths


def _has_python(bin_dir: str) -> bool:
    return any(os.path.isfile(os.path.join(bin_dir, name)) and os.access(os.path.join(bin_dir, name), os.X_OK)
               for name in ("python3", "python"))


def _under_system(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == top or real.startswith(top + "/") for top in SYSTEM_DIRS if os.path.isdir(top))


def _contains(path: str, other: str) -> bool:
    """True when `path` is `other` or one of its ancestors (binding it would show `other` too)."""
    path = os.path.realpath(path)
    return path == "/" or other == path or other.startswith(path.rstrip("/") + "/")


@functools.cache
def root_only_entries(top: str) -> tuple[str, ...]:
    """Entries under `top` that others may not read (shadow, private keys): root would still read them,
    capabilities or not, as their owner. Directories are not entered once masked."""
    masked: list[str] = []
    for parent, dirs, files in os.walk(top, followlinks=False):
        for name in [*files, *dirs]:
            path = os.path.join(parent, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                continue
            if not mode & stat.S_IROTH or (stat.S_ISDIR(mode) and not mode & stat.S_IXOTH):
                masked.append(path)
        dirs[:] = [d for d in dirs if os.path.join(parent, d) not in masked]
    return tuple(masked)


@functools.cache
def probe(bwrap: str) -> bool:
    """Whether bubblewrap can contain a command here; True when it also refuses nested user namespaces.

    Raises Unavailable with bubblewrap's own complaint (user namespaces disabled, an AppArmor restriction,
    a container without the privileges).
    """
    base = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--cap-drop", "ALL",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    for disable in (True, False):
        words = [*base, "--disable-userns"] if disable else base
        try:
            done = subprocess.run([*words, "--", "true"], capture_output=True, stdin=subprocess.DEVNULL,
                                  timeout=30, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"{bwrap} did not run: {exc}") from None
        if done.returncode == 0:
            return disable
        complaint = done.stderr.decode(errors="replace").strip().splitlines()
        if disable and complaint and "disable-userns" in complaint[0]:
            continue  # an older bubblewrap: contain without that option
        raise Unavailable(complaint[0] if complaint else f"{bwrap} exited {done.returncode}")
    raise AssertionError("unreachable")


def find_bwrap() -> str | None:
    return shutil.which("bwrap")

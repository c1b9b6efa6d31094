"""The one way gitteam executes agent or repository code: `CommandRunner.run`.

The `run` tool, the gate's and the integration's test commands, the setup command and `command:` coders all
come here. A runner holds the run's sandbox (bubblewrap, or none when the user chose so) and what every
command of the run may reach; each call says which worktree, which network, which HOME.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gitteam.config import SandboxConfig
from gitteam.errors import UsageError
from gitteam.sandbox import bwrap
from gitteam.sandbox.process import CommandResult, run_command
from gitteam.sandbox.watch import GitDirWatch

NONE, BWRAP = "none", "bwrap"
# What a command is for: the coder's `run` tool, a test command, the setup command, a `command:` coder.
PURPOSES = ("run", "test", "setup", "agent")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), or set "
    '[sandbox] mode = "none" in ~/.config/gitteam/config.toml (or GITTEAM_SANDBOX=none) to run them uncontained'
)


class SandboxUnavailable(UsageError):
    """The configured sandbox cannot run here: exit 2, with how to fix it."""


class Sandbox(Protocol):
    name: str

    def run(self, argv: Sequence[str], spec: bwrap.Containment, env: Mapping[str, str], timeout: float,
            max_output: int, stdin: Path | None, cancel: Callable[[], bool] | None) -> CommandResult: ...


class Bubblewrap:
    """Every command in its own bubblewrap namespaces (see gitteam.sandbox.bwrap)."""

    name = BWRAP

    def __init__(self, path: str, disable_userns: bool) -> None:
        self.path = path
        self.disable_userns = disable_userns

    def run(self, argv: Sequence[str], spec: bwrap.Containment, env: Mapping[str, str], timeout: float,
            max_output: int, stdin: Path | None, cancel: Callable[[], bool] | None) -> CommandResult:
        inside = {**env, "HOME": str(spec.home), "TMPDIR": "/tmp", "PWD": str(spec.worktree)}
        call = bwrap.invocation(self.path, argv, spec, inside, self.disable_userns)
        try:
            for fd, data in call.data.items():  # small (a filtered config): fits the pipe's buffer
                os.write(fd, data)
                os.close(fd)
            # bwrap's own environment is the command's: its pid 1 in the new /proc shows nothing more
            return run_command(call.argv, spec.worktree, inside, timeout, max_output, stdin=stdin, cancel=cancel,
                               pass_fds=call.pass_fds)
        finally:
            for fd in call.pass_fds:
                os.close(fd)


class Uncontained:
    """`[sandbox] mode = "none"`: the user's choice, said at the top of every run."""

    name = NONE

    def run(self, argv: Sequence[str], spec: bwrap.Containment, env: Mapping[str, str], timeout: float,
            max_output: int, stdin: Path | None, cancel: Callable[[], bool] | None) -> CommandResult:
        return run_command(argv, spec.worktree, env, timeout, max_output, stdin=stdin, cancel=cancel)


def make_sandbox(mode: str) -> Sandbox:
    """The sandbox `mode` names, checked to work here (SandboxUnavailable otherwise: never a silent fallback)."""
    if mode == NONE:
        return Uncontained()
    path = bwrap.find_bwrap()
    if path is None:
        raise SandboxUnavailable(f"gitteam runs agent and test commands in bubblewrap, which is not installed: "
                                 f"{INSTALL_HINT}")
    try:
        disable_userns = bwrap.probe(path)
    except bwrap.Unavailable as exc:
        raise SandboxUnavailable(
            f"bubblewrap cannot create a sandbox on this machine ({exc}); user namespaces may be disabled (Ubuntu "
            "24.04 restricts them unless bwrap has an AppArmor profile: see docs/security.md); or "
            f"{INSTALL_HINT.split(', or ', 1)[1]}") from None
    return Bubblewrap(path, disable_userns)


@dataclass(frozen=True)
class Reach:
    """What the commands of one run may reach besides their worktree."""

    git_dir: Path  # the repository's common git dir: read-only
    git_config: Callable[[], bytes]  # its config as commands see it (no remotes, tokens or helpers)
    hidden: tuple[Path, ...] = ()  # gitteam's state inside the git dir: journals, other agents' worktrees
    read_only: tuple[Path, ...] = ()
    read_write: tuple[Path, ...] = ()
    networked: frozenset[str] = frozenset()  # the purposes (PURPOSES) given the host's network
    home: Path = field(default_factory=lambda: sandbox_home(os.environ.get("HOME", "")))


def sandbox_home(home: str) -> Path:
    """HOME inside: the user's own path (tools that remember absolute paths keep working), never the root."""
    return Path(home) if home and os.path.isabs(home) and os.path.normpath(home) != "/" else Path("/home/sandbox")


class CommandRunner:
    """Runs a run's agent and repository commands contained, and checks the git dir around each one."""

    def __init__(self, mode: str, reach: Reach, sandbox: Sandbox | None = None) -> None:
        self.mode = mode
        self.reach = reach
        self._sandbox = sandbox
        self._config: tuple[tuple[int, int, int], bytes] | None = None

    @property
    def sandbox(self) -> Sandbox:
        """Made on first use, so a run that executes nothing never needs bubblewrap."""
        if self._sandbox is None:
            self._sandbox = make_sandbox(self.mode)
        return self._sandbox

    def check(self) -> None:
        """Fail now (exit 2) when commands will need a sandbox that cannot run here."""
        _ = self.sandbox

    def run(self, argv: Sequence[str], worktree: Path, env: Mapping[str, str], timeout: float, max_output: int,
            *, purpose: str, home: Path | None = None, read_only: Sequence[Path] = (),
            stdin: Path | None = None, cancel: Callable[[], bool] | None = None) -> CommandResult:
        """Run argv in `worktree`, contained; ContainmentBreach when the git dir changed meanwhile.

        `purpose` (one of PURPOSES) decides the network. `home`: a private directory the command sees as HOME
        (an agent CLI's login and state); default: an empty one. `read_only`: more paths it may read.
        """
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        reach = self.reach
        spec = bwrap.Containment(
            worktree=worktree, git_dir=reach.git_dir, git_config=self._git_config(), hidden=reach.hidden,
            network=purpose in reach.networked, home=reach.home, home_source=home,
            read_only=(*reach.read_only, *read_only), read_write=reach.read_write)
        watch = GitDirWatch(reach.git_dir, worktree)
        before = watch.snapshot()
        result = self.sandbox.run(argv, spec, env, timeout, max_output, stdin, cancel)
        watch.check(before, shlex.join(argv)[:120])
        return result

    def _git_config(self) -> bytes:
        """The filtered config, made again only when the file changed (a git process saved per command)."""
        try:
            info = os.stat(self.reach.git_dir / "config")
            key = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            key = (0, 0, 0)
        if self._config is None or self._config[0] != key:
            self._config = (key, self.reach.git_config())
        return self._config[1]



def from_config(settings: SandboxConfig, git_dir: Path, git_config: Callable[[], bytes],
                hidden: Sequence[Path] = ()) -> CommandRunner:
    """The runner `[sandbox]` describes for a repository whose common git dir is `git_dir`."""
    networked = {"run": settings.network, "test": settings.network, "setup": settings.setup_network,
                 "agent": settings.agent_network}
    reach = Reach(git_dir=git_dir, git_config=git_config, hidden=tuple(hidden),
                  read_only=tuple(expand(p) for p in settings.read_only),
                  read_write=tuple(expand(p) for p in settings.read_write),
                  networked=frozenset(purpose for purpose, network in networked.items() if network == "host"))
    return CommandRunner(settings.mode, reach)


def expand(path: str) -> Path:
    return Path(os.path.expanduser(path)).absolute()


def describe(settings: SandboxConfig) -> dict[str, object]:
    """What a run's header says about containment: the mode and which commands get the host's network."""
    networked = [name for name, value in (("run/test", settings.network), ("setup", settings.setup_network),
                                          ("command: coder", settings.agent_network)) if value == "host"]
    return {"mode": settings.mode, "host_network": networked}

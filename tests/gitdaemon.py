"""A real network remote for tests: `git daemon` on loopback serving bare repositories, pushable.

    with git_daemon(tmp_path / "served") as daemon:
        url = daemon.bare("origin.git", seed_repo)     # git://127.0.0.1:<port>/origin.git
        clone(url, tmp_path / "worker", tmp_path / "worker-home")

Clients reach the repositories only through the `git://` URL (no path of the server's), and each clone gets a
HOME of its own, as on separate machines. The daemon is stopped when the block ends, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_READY_SECONDS = 20.0
_PORT_ATTEMPTS = 20


@dataclass
class Daemon:
    base: Path  # the directory it serves (--base-path)
    port: int
    process: subprocess.Popen[bytes]
    probe: str  # a repository served from the start, named for this daemon: it answers once this one is listed

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def bare(self, name: str, seed: Path | None = None) -> str:
        """A bare repository `name` served read-write (empty, or a bare clone of `seed`); its URL."""
        path = self.base / name
        if seed is None:
            _git(self.base, "init", "-q", "--bare", "-b", "main", str(path))
        else:
            _git(self.base, "clone", "-q", "--bare", "--no-local", str(seed), str(path))
        _git(path, "config", "daemon.receivepack", "true")
        return self.url(name)

    def path(self, name: str) -> Path:
        """The served repository's directory (for the test's own inspection, never for a client)."""
        return self.base / name


@contextmanager
def git_daemon(base: Path) -> Iterator[Daemon]:
    """`git daemon --enable=receive-pack --export-all` on 127.0.0.1, serving `base`; stopped on exit."""
    base.mkdir(parents=True, exist_ok=True)
    probe = f"probe-{secrets.token_hex(6)}.git"  # no other daemon that got the port first serves this one
    _git(base, "init", "-q", "--bare", str(base / probe))
    for _ in range(_PORT_ATTEMPTS):
        daemon = _start(base, _free_port(), probe)
        if daemon is not None:
            break
    else:
        raise RuntimeError(f"git daemon found no free port in {_PORT_ATTEMPTS} attempts")
    try:
        yield daemon
    finally:
        daemon.process.terminate()
        try:
            daemon.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()


def clone(url: str, path: Path, home: Path, *args: str) -> Path:
    """A clone of `url` at `path` whose git sees `home` as HOME (its own identity and config); extra clone
    options in `args` (e.g. "--depth", "1")."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text(f"[user]\n\tname = {path.name}\n\temail = {path.name}@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    _git(path.parent, "clone", "-q", *args, url, str(path), env=home_env(home))
    return path


def home_env(home: Path) -> dict[str, str]:
    """The environment of a git (or gitteam) process that lives in `home`."""
    env = dict(os.environ)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1"})
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        env.pop(name, None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(base: Path, port: int, probe: str) -> Daemon | None:
    """The daemon on `port`, once it answers; None when it could not listen there (another took the port)."""
    # git-daemon itself, not `git daemon` (a wrapper process): stopping the process stops the daemon
    program = str(Path(_git(base, "--exec-path")) / "git-daemon")
    process = subprocess.Popen(
        [program, "--reuseaddr", "--enable=receive-pack", "--export-all", "--informative-errors",
         f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = Daemon(base, port, process, probe)
    deadline = time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None  # it exited: the port was taken between our probe and its bind
        answer = subprocess.run(["git", "ls-remote", daemon.url(probe)], capture_output=True, check=False,
                                stdin=subprocess.DEVNULL)
        if answer.returncode == 0:
            return daemon
        time.sleep(0.05)  # polling readiness (the test's own probe answers), not racing an event
    process.kill()
    process.wait()
    raise RuntimeError(f"git daemon on port {port} did not answer within {_READY_SECONDS:.0f}s")


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                         env=dict(env) if env is not None else None)
    return out.stdout.strip()

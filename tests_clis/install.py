"""The agent CLIs under test, installed once per version into a cache shared by test sessions and workers.

`GITTEAM_TEST_CLIS` names the cache (default `~/.cache/gitteam-test-clis`). Each CLI gets a directory of its own,
`NAME-VERSION/`: npm packages with `npm install --prefix`, Python ones in a virtualenv of their own (aider pins
exact versions of openai, typer, rich and GitPython that would break gitteam's environment), and `path/NAME`, a
link to the installed program, for PATH: the way pipx, `uv tool` and npm's global bin install a command.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REAL_HOME = Path.home()  # read at import, before any test gives HOME a temporary directory
CACHE = Path(os.environ.get("GITTEAM_TEST_CLIS") or REAL_HOME / ".cache" / "gitteam-test-clis")
INSTALL_SECONDS = 900


class InstallFailed(Exception):
    """The CLI could not be installed (no registry, no npm): the message says what failed."""


@dataclass(frozen=True)
class Package:
    command: str  # the program's name: codex, claude, gemini, aider
    version: str
    registry: str  # "npm" or "pypi"
    package: str  # the registry's name of it

    @property
    def home(self) -> Path:
        return CACHE / f"{self.command}-{self.version}"

    @property
    def path_dir(self) -> Path:
        """The directory to put on PATH: it holds one link, to the installed program."""
        return self.home / "path"

    @property
    def program(self) -> Path:
        if self.registry == "npm":
            return self.home / "node_modules" / ".bin" / self.command
        return self.home / "bin" / self.command


def install(package: Package) -> Path:
    """Install `package` unless the cache has it (one installer at a time per version); returns its PATH dir."""
    CACHE.mkdir(parents=True, exist_ok=True)
    done = package.home / ".installed"
    with open(CACHE / f"{package.command}-{package.version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(package.home, ignore_errors=True)  # a half-done earlier attempt
            package.home.mkdir(parents=True)
            try:
                _install(package)
            except InstallFailed:
                shutil.rmtree(package.home, ignore_errors=True)
                raise
            package.path_dir.mkdir()
            (package.path_dir / package.command).symlink_to(package.program)
            done.write_text(package.version)
    return package.path_dir


def _install(package: Package) -> None:
    env = {**os.environ, "HOME": str(REAL_HOME)}
    if package.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise InstallFailed("npm is not installed (Debian: apt-get install nodejs npm)")
        argv = [npm, "install", "--prefix", str(package.home), "--no-audit", "--no-fund", "--no-save",
                "--loglevel=error", f"{package.package}@{package.version}"]
        _call(argv, env, package)
    else:
        _call([sys.executable, "-m", "venv", str(package.home)], env, package)
        _call([str(package.home / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
               f"{package.package}=={package.version}"], env, package)
    if not package.program.exists():
        raise InstallFailed(f"{package.package} {package.version} installed no {package.program}")


def _call(argv: list[str], env: dict[str, str], package: Package) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=INSTALL_SECONDS,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallFailed(f"installing {package.package} {package.version}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise InstallFailed(f"installing {package.package} {package.version}: {' '.join(argv[:3])} ... exited "
                            f"{done.returncode}: {' / '.join(tail)}")


def version(path_dir: Path, command: str, home: Path) -> str:
    """What `COMMAND --version` prints (its first line), run with `home` as its HOME."""
    done = subprocess.run([str(path_dir / command), "--version"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(home)})
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[0] if done.stdout or done.stderr else ""

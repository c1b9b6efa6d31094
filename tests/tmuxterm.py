"""A real terminal for tests: a command run in a tmux pane of its own server, driven by keys, read from the screen.

`tmux capture-pane` gives what a person sees (`screen`), with the colours (`styled`), or the whole scrollback
(`history`): a line redrawn in place is there once, a line printed again is there twice. Tests wait for what
they control (text on the screen, a marker file, the command's exit) and never for a fixed time.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

WIDTH, HEIGHT = 120, 40


class Terminal:
    def __init__(self, tmp: Path, cwd: Path, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 width: int = WIDTH, height: int = HEIGHT) -> None:
        # a socket path of its own, short (a unix socket's path has at most 107 bytes; pytest's can be longer)
        self.socket = Path(tempfile.mkdtemp(prefix="gitteam-tmux-")) / "sock"
        self.exit_file = tmp / "exit-code"
        self.exit_file.unlink(missing_ok=True)
        environment = {k: v for k, v in os.environ.items() if k not in ("TMUX", "NO_COLOR")}
        environment.update({"TERM": "xterm-256color", **(env or {})})
        command = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(self.exit_file))}"
        subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", "new-session", "-d", "-x", str(width),
                        "-y", str(height), "-c", str(cwd), "sh", "-c", command], env=environment, check=True)
        self.tmux("set-option", "-g", "remain-on-exit", "on")
        self.tmux("set-option", "-g", "history-limit", "10000")

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True,
                              check=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def styled(self) -> str:
        """The screen with its colours, as SGR escape sequences."""
        return self.tmux("capture-pane", "-p", "-e")

    def history(self) -> str:
        """Everything printed so far: the scrollback and the screen."""
        return self.tmux("capture-pane", "-p", "-S", "-")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", *keys)

    def wait_for(self, check: Callable[[str], bool], what: str, seconds: float = 60.0) -> str:
        """Until the screen shows what `check` looks for; returns that screen."""
        deadline = time.monotonic() + seconds
        while True:
            shown = self.screen()
            if check(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"not on the screen after {seconds:.0f} s: {what}\n{shown}")
            time.sleep(0.05)

    def wait_text(self, text: str, seconds: float = 60.0) -> str:
        return self.wait_for(lambda shown: text in shown, repr(text), seconds)

    def exit_code(self, seconds: float = 60.0) -> int:
        deadline = time.monotonic() + seconds
        while not self.exit_file.exists() or not self.exit_file.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"the command did not end in {seconds:.0f} s:\n{self.screen()}")
            time.sleep(0.05)
        return int(self.exit_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True)
        shutil.rmtree(self.socket.parent, ignore_errors=True)


def gitteam(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitteam", *args]

"""Telling the person when a run needs them: it ended failed, refused or out of budget, or waits for approval.

At a terminal the final line says it. Beyond that, for runs nobody watches: the user's `[run] notify` command
(a desktop notification, a chat hook), and in GitHub Actions a workflow annotation. Nothing waits on either:
a notification that fails or hangs is reported in one line and the run's result stands.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

from gitteam.terminal import one_line

NEEDS_A_PERSON = {"failed": "error", "refused": "error", "budget": "error", "pending": "notice"}
NOTIFY_SECONDS = 30.0


def escalate(run: str, state: str, message: str, notify: str, environ: Mapping[str, str] | None = None) -> None:
    """Notify for a run that ended in `state`, when that state needs a person; never raises."""
    level = NEEDS_A_PERSON.get(state)
    if level is None:
        return
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":  # an annotation on the workflow run: one line, escaped as GitHub asks;
        text = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")  # on stderr: stdout is --json's
        print(f"::{level} title=gitteam run {run} {state}::{text}", file=sys.stderr, flush=True)
    if notify.strip():
        run_notify(notify, run, state, message, env)


def run_notify(command: str, run: str, state: str, message: str, env: Mapping[str, str]) -> None:
    """The user's own command (user config only: it runs with their authority, uncontained), its words'
    `{run}`, `{state}` and `{message}` filled in, and GITTEAM_RUN, GITTEAM_STATE, GITTEAM_MESSAGE set."""
    values = {"run": run, "state": state, "message": one_line(message)}
    try:
        argv = [word.format_map(values) for word in shlex.split(command)]
        subprocess.run(argv, env={**env, "GITTEAM_RUN": run, "GITTEAM_STATE": state, "GITTEAM_MESSAGE": message},
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=NOTIFY_SECONDS, check=True)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        print(f"gitteam: [run] notify failed ({one_line(str(exc))[:200]}); the run's result stands",
              file=sys.stderr)

"""What every command a run executes in a worktree gets: its environment, the setup command, secrets learnt.

One place for the subtasks' worktrees and the integration review's throwaway checkout alike, so the
setup a coder's tests ran after is the setup the integrated tree's tests run after.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gitteam.names import INTEGRATION
from gitteam.run.context import RunContext
from gitteam.sandbox import parse_command, safe_env
from gitteam.secrets import assigned_values, learn, redact

BASE_PORT = 41000  # GITTEAM_PORT of the plan's first subtask; each next one 10 higher, the integration 10 lower
INTEGRATION_SLOT = -1


def agent_env(ctx: RunContext, agent: str, worktree: Path, slot: int, also: Sequence[str] = ()) -> dict[str, str]:
    """The safe environment plus what tells a command whose it is: run, agent, worktree, and a port range of
    its own (`slot`: the subtask's position in the plan, INTEGRATION_SLOT for the integrated tree) so parallel
    test servers do not collide."""
    extra = {
        "GITTEAM_RUN": ctx.run,
        "GITTEAM_AGENT": agent,
        "GITTEAM_WORKTREE": str(worktree),
        "GITTEAM_PORT": str(BASE_PORT + 10 * slot),
    }
    return safe_env(worktree, extra, (*ctx.config.commands.pass_env, *also))


def integration_env(ctx: RunContext, worktree: Path) -> dict[str, str]:
    return agent_env(ctx, INTEGRATION, worktree, INTEGRATION_SLOT)


def setup_problem(ctx: RunContext, worktree: Path, env: dict[str, str]) -> str | None:
    """Run the configured setup command in `worktree`, contained; why it failed, or None (also: none set)."""
    setup = ctx.config.run.setup
    if not setup:
        return None
    result = ctx.commands.run(parse_command(setup), worktree, env, ctx.config.run.setup_timeout, 4000,
                              purpose="setup")
    if not result.timed_out and result.exit_code == 0:
        return None
    status = "timed out" if result.timed_out else f"exited {result.exit_code}"
    return f"the setup command {setup!r} {status}: {redact(result.output).strip()[-300:]}"


def learn_secret_files(ctx: RunContext, where: Path, included: Sequence[str]) -> None:
    """The values in the secret files `.worktreeinclude` copies (a `.env`) are redacted from then on, wherever
    they appear: a command the coder runs may print them, and their shape may fit no pattern."""
    policy = ctx.config.secret_files()
    for rel in included:
        if policy.hides(rel):
            try:
                learn(assigned_values((where / rel).read_bytes().decode("utf-8", errors="replace")))
            except OSError:
                continue  # gone already, or not a file: nothing to learn

"""Running agent and repository code contained: one seam every command that can execute it goes through."""

from gitteam.sandbox.allow import command_allowed, parse_command
from gitteam.sandbox.environ import is_secret_name, safe_env
from gitteam.sandbox.process import CommandResult, run_command

__all__ = ["CommandResult", "command_allowed", "is_secret_name", "parse_command", "run_command", "safe_env"]

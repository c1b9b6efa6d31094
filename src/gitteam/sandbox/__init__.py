"""Running agent and repository code contained: one seam every command that can execute it goes through."""

from gitteam.sandbox.allow import check_command, parse_command
from gitteam.sandbox.environ import is_secret_name, safe_env
from gitteam.sandbox.process import CommandResult, run_command

__all__ = ["CommandResult", "check_command", "is_secret_name", "parse_command", "run_command", "safe_env"]

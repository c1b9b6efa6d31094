"""gitteam: a team of coding agents on a git repository."""

from gitteam import dataclass_cache

dataclass_cache.install()  # first: every dataclass made from here on (typer's, rich's, ours) compiles through it

__version__ = "0.1.0"

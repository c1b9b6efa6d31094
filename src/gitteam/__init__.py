"""gitteam: a team of coding agents on a git repository."""

__version__ = "0.1.0"

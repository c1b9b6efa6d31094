"""How an agent's work ends early: a refused tool call (the model reads it) or a failed agent."""

from __future__ import annotations

from gitteam.errors import GitteamError


class ToolRefused(GitteamError):
    """The call is not allowed or cannot be done; its message goes back to the model."""


class AgentFailed(GitteamError):
    """The agent cannot finish: a limit, a model that will not use its tools, a provider error.

    Raised through tool handlers too: it ends the loop instead of becoming a tool result.
    """

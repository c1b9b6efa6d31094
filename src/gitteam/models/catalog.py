"""What gitteam knows about current models besides their prices: the default model of each role per
provider, and context windows.

The defaults serve a person who has set only ANTHROPIC_API_KEY or OPENAI_API_KEY: the planner and the
reviewer get a strong model (the reviewer is the gate, so it is stronger than the coders), the coders a
capable cheaper one, and each role names a cheaper economy model for the last part of a budget. Every id
here is listed by the installed SDK's model types and priced by `prices.py`; docs/models.md says why.
"""

from __future__ import annotations

from collections.abc import Mapping

# provider -> role -> (model id, economy model id)
DEFAULTS: dict[str, dict[str, tuple[str, str]]] = {
    "anthropic": {
        "planner": ("claude-opus-4-8", "claude-sonnet-4-6"),
        "coder": ("claude-sonnet-4-6", "claude-haiku-4-5"),
        "reviewer": ("claude-opus-4-8", "claude-sonnet-4-6"),
    },
    "openai": {
        "planner": ("gpt-5.5", "gpt-5.4"),
        "coder": ("gpt-5.4", "gpt-5.4-mini"),
        "reviewer": ("gpt-5.5", "gpt-5.4"),
    },
}
# When both keys are set, Anthropic's models serve (either order is defensible; this one is documented).
KEY_VARIABLES = (("ANTHROPIC_API_KEY", "anthropic"), ("OPENAI_API_KEY", "openai"))

# Context windows in tokens by longest model-id prefix; conservative where a model offers more only
# behind a beta flag or a surcharge. OpenAI's GPT-5 windows are 400k of which 128k are output.
CONTEXT: dict[str, int] = {
    "claude-": 200_000,
    "gpt-5": 272_000,
    "gpt-4.1": 1_000_000,
    "gpt-4o": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
}
# An unknown model (most often a local one): Ollama's and llama.cpp's defaults are smaller still, and
# they truncate silently rather than refuse; set [models.NAME] context_tokens to the server's value.
UNKNOWN_CONTEXT = 32_768


def default_spec(role: str, economy: bool, environ: Mapping[str, str]) -> str:
    """The built-in spec for a role, from the first provider whose key is set; "" when none is."""
    for variable, provider in KEY_VARIABLES:
        if environ.get(variable, "").strip():
            model, cheaper = DEFAULTS[provider][role]
            return f"{provider}:{cheaper if economy else model}"
    return ""


def context_tokens(model: str) -> int:
    """The context window of a provider model id, by longest known prefix."""
    key = model.strip().lower().rsplit("/", 1)[-1]
    best = max((prefix for prefix in CONTEXT if key.startswith(prefix)), key=len, default=None)
    return CONTEXT[best] if best is not None else UNKNOWN_CONTEXT

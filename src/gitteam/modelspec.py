"""The model-spec grammar, in one place: what `[roles]`, `--model`/`--planner`/`--coder`/`--reviewer`,
`GITTEAM_MODEL` and the like, `[models.NAME] fallbacks` and `[[review.reviewers]] model` hold.

A spec is one of

- `anthropic:MODEL`, `openai:MODEL`: a provider's model id;
- `replay:PATH`: a replay script (a path, or the name of a script bundled with gitteam);
- `command:COMMAND LINE`: an external coding agent, split like a shell would (for the coder only);
- `NAME`: a `[models.NAME]` table (a name never contains ':').

`parse_spec` never fails: the config reports what is wrong with a spec (`ModelSpec.problem`, and whether a NAME
is defined), the model registry resolves what the config accepted. A bottom module, like `commandline`: the
config, the models and the run modules all import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitteam.commandline import splits

ROLES = ("planner", "coder", "reviewer")
"""The roles a spec serves (each also has an economy spec, `economy_<role>` in [roles])."""
PROVIDERS = ("anthropic", "openai", "replay")
"""Providers of models: a spec's prefix, and a [models.NAME] provider."""
COMMAND = "command:"
"""The prefix of an agent command."""
KINDS = (*PROVIDERS, "command")
FORMS = "anthropic:MODEL, openai:MODEL, replay:PATH"
OLLAMA_HINT = (
    'an OpenAI-compatible server (Ollama, vLLM) is a [models.NAME] with provider = "openai" and base_url'
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A parsed spec: `PROVIDER:REST`, or the NAME of a [models.NAME] (`named`)."""

    text: str
    """The spec as written."""
    provider: str
    """The word before the first ':' ("command" for an agent command; any word, for `problem` to report);
    "" for a NAME."""
    rest: str
    """What follows the first ':': a model id, a script path or a command line; "" for a NAME."""
    named: bool
    """No ':': the NAME of a [models.NAME]."""

    @property
    def is_command(self) -> bool:
        """An external agent command (`command:...`), not a model."""
        return self.provider == "command"

    def problem(self, allow_command: bool) -> str | None:
        """What is wrong with its form, or None (a NAME's form is fine: whether it is defined is the config's)."""
        if self.named:
            return None
        if self.provider not in KINDS:
            return f'unknown provider "{self.provider}" in "{self.text}" (use {FORMS}; {OLLAMA_HINT})'
        if self.is_command and not allow_command:
            return f'"{self.text}" is an agent command, not a model'
        if not self.rest.strip() or (self.is_command and not splits(self.rest)):
            wanted = "command line with balanced quotes" if self.is_command else "model"
            return f'"{self.text}" needs a {wanted} after ":"'
        return None


def parse_spec(text: str) -> ModelSpec:
    """The parts of a spec; never fails (see ModelSpec.problem)."""
    provider, colon, rest = text.partition(":")
    if not colon:
        return ModelSpec(text, "", "", named=True)
    return ModelSpec(text, provider, rest, named=False)


def is_command(text: str) -> bool:
    """Whether a spec is an agent command (`command:...`)."""
    return parse_spec(text).is_command

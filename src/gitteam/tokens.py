"""Token estimates for budgets that must hold before a model has counted anything."""

from __future__ import annotations

# About four characters a token for English prose and source code in current tokenizers; used only to
# keep prompts within budgets, never to bill: billing uses the usage each provider reports.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN

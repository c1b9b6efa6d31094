"""Money from token usage. Prices are USD per million tokens."""

from __future__ import annotations

from dataclasses import dataclass

from gitteam.models.base import Usage


@dataclass(frozen=True, slots=True)
class Prices:
    input: float
    output: float
    cache_read: float | None = None  # defaults to a tenth of input, the usual discount
    cache_write: float | None = None  # defaults to 1.25 x input, Anthropic's five-minute cache write

    def cost(self, usage: Usage) -> float:
        cache_read = self.cache_read if self.cache_read is not None else self.input * 0.1
        cache_write = self.cache_write if self.cache_write is not None else self.input * 1.25
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * cache_read
            + usage.cache_write_tokens * cache_write
        ) / 1_000_000

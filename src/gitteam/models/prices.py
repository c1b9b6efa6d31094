"""Money from token usage: `Prices` (USD per million tokens) and the built-in prices of current Anthropic and
OpenAI models, overridable per model in `.gitteam.toml`.

USD per million tokens: input (uncached), output, cache read, cache write. A model id matches the
longest prefix in the table, so dated ids ("claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06") and
minor versions find their family; a bare family prefix ("claude-opus-4") carries the family's current
price, the best guess for a release newer than this table. Prices are list prices for standard-tier,
non-batch use; a wrong or missing one is fixed in config ([models.NAME] input_price, output_price, ...).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from gitteam.config import ModelDef
from gitteam.models.base import Usage
from gitteam.modelspec import parse_spec

log = logging.getLogger("gitteam")


@dataclass(frozen=True, slots=True)
class Prices:
    """What a model charges, in USD per million tokens; `cost(usage)` is the money a reply's usage costs."""

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


def _anthropic(input: float, output: float) -> Prices:
    # Anthropic: cache reads cost a tenth of input, five-minute cache writes 1.25 x input.
    return Prices(input, output, cache_read=input * 0.1, cache_write=input * 1.25)


def _openai(input: float, output: float, cache_read: float) -> Prices:
    # OpenAI caches automatically and charges nothing extra to write the cache.
    return Prices(input, output, cache_read=cache_read, cache_write=input)


ANTHROPIC: dict[str, Prices] = {
    "claude-opus-4": _anthropic(5.0, 25.0),  # Opus 4.5 to 4.8
    "claude-opus-4-0": _anthropic(15.0, 75.0),
    "claude-opus-4-2025": _anthropic(15.0, 75.0),  # claude-opus-4-20250514, i.e. Opus 4.0
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-sonnet-4": _anthropic(3.0, 15.0),  # Sonnet 4 to 4.6 (4 and 4.5 charge more past 200k tokens)
    "claude-haiku-4": _anthropic(1.0, 5.0),
    "claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-haiku": _anthropic(0.8, 4.0),
}

OPENAI: dict[str, Prices] = {
    "gpt-5": _openai(1.25, 10.0, 0.125),  # and gpt-5.1
    "gpt-5-mini": _openai(0.25, 2.0, 0.025),
    "gpt-5-nano": _openai(0.05, 0.4, 0.005),
    "gpt-5.2": _openai(1.75, 14.0, 0.175),
    "gpt-5.3": _openai(1.75, 14.0, 0.175),
    "gpt-5.4": _openai(2.5, 15.0, 0.25),
    "gpt-5.4-mini": _openai(0.75, 4.5, 0.075),
    "gpt-5.4-nano": _openai(0.2, 1.25, 0.02),
    "gpt-5.5": _openai(5.0, 30.0, 0.5),
    "gpt-4.1": _openai(2.0, 8.0, 0.5),
    "gpt-4.1-mini": _openai(0.4, 1.6, 0.1),
    "gpt-4.1-nano": _openai(0.1, 0.4, 0.025),
    "gpt-4o": _openai(2.5, 10.0, 1.25),
    "gpt-4o-mini": _openai(0.15, 0.6, 0.075),
    "o3": _openai(2.0, 8.0, 0.5),
    "o3-mini": _openai(1.1, 4.4, 0.55),
    "o3-pro": _openai(20.0, 80.0, 20.0),
    "o4-mini": _openai(1.1, 4.4, 0.275),
}

TABLE: dict[str, Prices] = {**ANTHROPIC, **OPENAI}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def builtin_prices(model: str) -> Prices | None:
    """The table's prices for a model id, by longest matching prefix; None when unknown."""
    # Routers and proxies prefix the vendor ("openai/gpt-4o", "anthropic/claude-sonnet-4-5").
    key = model.strip().lower().rsplit("/", 1)[-1]
    best = max((prefix for prefix in TABLE if key.startswith(prefix)), key=len, default=None)
    return TABLE[best] if best is not None else None


def prices_for(definition: ModelDef) -> Prices | None:
    """Config prices over the built-in table; None (cost unknown, warned once per model) when either the
    input or the output price is missing."""
    table = builtin_prices(definition.model)
    input_price = _pick(definition.input_price, table.input if table else None)
    output_price = _pick(definition.output_price, table.output if table else None)
    if input_price is None or output_price is None:
        _warn_unknown(definition)
        return None
    return Prices(
        input_price,
        output_price,
        cache_read=_pick(definition.cache_read_price, table.cache_read if table else None),
        cache_write=_pick(definition.cache_write_price, table.cache_write if table else None),
    )


def _pick(configured: float | None, builtin: float | None) -> float | None:
    return configured if configured is not None else builtin


def _warn_unknown(definition: ModelDef) -> None:
    key = f"{definition.provider}:{definition.model}"
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    where = f"[models.{definition.name}]" if parse_spec(definition.name).named else "a [models.NAME] for it"
    log.warning(
        "no price known for %s: its tokens are counted but its cost is reported as unknown; "
        "set input_price and output_price in %s (0 for a local model)",
        key,
        where,
    )

"""Fallback chains: when a model stays unavailable, the conversation continues on the next one.

The chain is resolved through the registry on the first call, not when the model is created: two
models may name each other as fallbacks, and resolving eagerly would recurse forever. A misconfigured
fallback still fails the first call, so the error comes early. Once an agent has moved down the chain it
stays there for the rest of its conversation (no retry storm on a dead primary at every turn).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gitteam.models.base import CallContext, Message, Model, Reply, ToolSpec
from gitteam.models.retry import ModelUnavailable

if TYPE_CHECKING:
    from gitteam.config import ModelDef
    from gitteam.models.registry import Registry

log = logging.getLogger("gitteam")


class FallbackModel:
    """A primary model and the names of its fallbacks, tried in order."""

    def __init__(self, primary: Model, fallbacks: Sequence[str], resolve: Callable[[str], Model]) -> None:
        self.name = primary.name
        self.primary = primary
        self.fallbacks = tuple(fallbacks)
        self._resolve = resolve
        self._chain: tuple[Model, ...] | None = None
        self._lock = threading.Lock()
        self._position: dict[tuple[str, str, str], int] = {}  # agent -> index in the chain it is on

    @property
    def context_tokens(self) -> int | None:
        # The primary's: resolving the chain here could recurse; a smaller fallback that refuses a long
        # conversation makes the agent compact it and try again.
        return getattr(self.primary, "context_tokens", None)

    @property
    def max_output_tokens(self) -> int:
        return int(getattr(self.primary, "max_output_tokens", 0) or 0)

    def chain(self) -> tuple[Model, ...]:
        """The models tried in order, a fallback's own fallbacks after it, each once."""
        with self._lock:
            if self._chain is None:
                unique: dict[str, Model] = {}
                for model in self._flatten(set()):
                    unique.setdefault(model.name, model)
                self._chain = tuple(unique.values())
            return self._chain

    def _flatten(self, seen: set[str]) -> list[Model]:
        seen.add(self.name)
        models: list[Model] = [self.primary]
        for name in self.fallbacks:
            if name in seen:  # a cycle (A -> B -> A), or a model already in the chain
                continue
            seen.add(name)
            model = self._resolve(name)
            models.extend(model._flatten(seen) if isinstance(model, FallbackModel) else [model])
        return models

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        chain = self.chain()
        agent = (context.run, context.role, context.agent)
        with self._lock:
            start = self._position.get(agent, 0)
        failures: list[ModelUnavailable] = []
        for index in range(start, len(chain)):
            try:
                reply = chain[index].complete(system, messages, tools, require_tool=require_tool, context=context)
            except ModelUnavailable as exc:
                failures.append(exc)
                if index + 1 < len(chain):
                    log.warning("%s; continuing on %s", exc, chain[index + 1].name)
                continue
            if index != start:
                with self._lock:
                    self._position[agent] = index
            return reply  # its .model names the member that answered
        raise ModelUnavailable(
            f"{self.name}: every model of the fallback chain failed; last: {failures[-1]}",
            model=self.name,
            overloaded=all(exc.overloaded for exc in failures),
        ) from failures[-1]


def with_fallbacks(model: Model, definition: ModelDef, registry: Registry) -> Model:
    """The model itself, or a FallbackModel when its definition names fallbacks."""
    if not definition.fallbacks:
        return model
    return FallbackModel(model, definition.fallbacks, registry.resolve)

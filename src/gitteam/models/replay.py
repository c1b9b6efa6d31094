"""The `replay:` provider: a deterministic scripted model for the demo, tests and benchmarks.

A replay script is JSON (see docs/replay.md):

    {
      "gitteam_replay": 1,
      "prices": {"input": 3.0, "output": 15.0},          # optional, USD per million tokens
      "planner":  [TURN, ...],
      "coder":    {"<subtask id>": [TURN, ...], "*": [TURN, ...]},
      "reviewer": {"<subtask id>": [TURN, ...], "integration": [...], "*": [...]}
    }

A TURN is {"say": "text", "tool_calls": [{"name": ..., "arguments": {...}}], "delay": seconds,
"usage": {"input_tokens": N, "output_tokens": N}}; {"call": NAME, "args": {...}} is shorthand for one
tool call. Each agent (role + subtask) reads its own list from the start; later review rounds continue
where the previous round stopped. Without "usage", tokens are estimated from the text sizes, so cost
and budget accounting work the same as with a real provider.

A TURN may also hold "pause": PATH, for tests that must act while a model call is in flight (interrupt the
run, kill it, look at it) instead of sleeping and hoping the run got there: on reaching that turn the model
creates PATH.reached, then waits until PATH.go exists (the test creates it), then answers with the rest of the
turn ("delay" included). A relative PATH is relative to the script's directory. The wait ends early only as
any sleep does: in the thread that handles signals, a Ctrl-C (SIGINT) raises KeyboardInterrupt out of it; an
agent on a worker thread waits for PATH.go. A pause never released gives up after PAUSE_LIMIT seconds with
ReplayPaused, so a process a test forgot does not wait forever.
"""

from __future__ import annotations

import json
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

from gitteam.errors import GitteamError, UsageError
from gitteam.models.base import CallContext, Message, Reply, ToolCall, ToolSpec, Usage
from gitteam.models.prices import Prices
from gitteam.models.window import estimate
from gitteam.tokens import estimate_tokens

PAUSE_POLL = 0.01  # seconds between two looks for PATH.go
PAUSE_LIMIT = 300.0  # seconds a "pause" waits for PATH.go before it fails the call


class ReplayExhausted(GitteamError):
    """The script has no turn left for this agent."""


class ReplayPaused(GitteamError):
    """A "pause" turn was not released (PATH.go never appeared) within PAUSE_LIMIT seconds."""


def find_script(path_text: str, base_dir: Path | None = None) -> Path:
    """A script path, relative to base_dir (or the cwd), or the name of a script bundled with gitteam."""
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
        return (base_dir / path).resolve()
    if path.is_file():
        return path.resolve()
    bundled = resources.files("gitteam") / "data" / f"{path_text.removesuffix('.json')}.json"
    if bundled.is_file():
        return Path(str(bundled))
    raise UsageError(f"replay script not found: {path_text} (give a path to a JSON replay script, or 'demo')")


def load_script(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read replay script {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"replay script {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict) or data.get("gitteam_replay") != 1:
        raise UsageError(f'replay script {path} must be a JSON object with "gitteam_replay": 1')
    return data


def turn_problem(turn: Any) -> str | None:
    """What is wrong with a scripted turn's shape, said for the script's author; None when it is usable."""
    if not isinstance(turn, dict):
        return "is not an object"
    calls = turn.get("tool_calls", [])
    if not isinstance(calls, list):
        return '"tool_calls" must be a list'
    if "call" in turn:
        calls = [*calls, {"name": turn["call"], "arguments": turn.get("args", {})}]
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return 'has a tool call that is not an object with a "name" string'
        if not isinstance(call.get("arguments", {}), dict | str):
            return f"has arguments for {call['name']} that are neither an object nor a string"
    if isinstance(turn.get("delay", 0), bool) or not isinstance(turn.get("delay", 0), int | float):
        return '"delay" must be a number of seconds'
    if "pause" in turn and not (isinstance(turn["pause"], str) and turn["pause"].strip()):
        return '"pause" must be the path of a marker file'
    usage = turn.get("usage", {})
    if not isinstance(usage, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in usage.values()):
        return '"usage" must be an object of token counts'
    return None


class ReplayModel:
    """Answers each agent from its list of scripted turns, in order."""

    def __init__(self, spec: str, path: Path) -> None:
        self.name = spec
        self.path = path
        self.script = load_script(path)
        prices = self.script.get("prices")
        if prices and not (isinstance(prices, dict) and all(
                isinstance(prices.get(k), int | float) and not isinstance(prices.get(k), bool)
                for k in ("input", "output"))):
            raise UsageError(f'replay script {path}: "prices" must be {{"input": USD, "output": USD}} per million '
                             "tokens")
        self.prices = Prices(float(prices["input"]), float(prices["output"])) if prices else None
        self._cursors: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def complete(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        *,
        require_tool: bool,
        context: CallContext,
    ) -> Reply:
        turns = self._turns(context)
        key = (context.run, context.role, context.agent)
        with self._lock:
            index = self._cursors.get(key, 0)
            self._cursors[key] = index + 1
        if index >= len(turns):
            raise ReplayExhausted(
                f"replay script {self.path.name} has no turn {index + 1} for {context.role} '{context.agent}'"
            )
        turn = turns[index]
        problem = turn_problem(turn)
        if problem:
            raise UsageError(f"replay script {self.path.name}: {context.role} turn {index + 1} {problem}")
        if "pause" in turn:
            self._pause(str(turn["pause"]), context, index)
        delay = float(turn.get("delay", 0))
        if delay > 0:
            time.sleep(delay)
        calls = tuple(self._tool_calls(turn, context, index))
        text = str(turn.get("say", ""))
        usage = self._usage(turn, system, messages, tools, text, calls)
        cost = self.prices.cost(usage) if self.prices else 0.0
        return Reply(text=text, tool_calls=calls, usage=usage, model=self.name, cost=cost)

    def _pause(self, marker: str, context: CallContext, index: int) -> None:
        """Create MARKER.reached, then wait for MARKER.go (see the module's docstring)."""
        path = Path(marker).expanduser()
        if not path.is_absolute():
            path = self.path.parent / path
        go = path.with_name(path.name + ".go")
        path.with_name(path.name + ".reached").touch()
        deadline = time.monotonic() + PAUSE_LIMIT
        while not go.exists():
            if time.monotonic() >= deadline:
                raise ReplayPaused(f"replay script {self.path.name}: {context.role} '{context.agent}' turn "
                                   f"{index + 1} paused at {path} and {go.name} did not appear within "
                                   f"{PAUSE_LIMIT:.0f} s")
            time.sleep(PAUSE_POLL)

    def _turns(self, context: CallContext) -> list[Any]:
        section = self.script.get(context.role)
        if context.role == "planner":
            turns = section if section is not None else []
        elif isinstance(section, dict):
            turns = section.get(context.agent, section.get("*", []))
        else:
            turns = []
        if not isinstance(turns, list):
            raise UsageError(f"replay script {self.path.name}: the {context.role} turns must be a list")
        return turns

    @staticmethod
    def _tool_calls(turn: dict[str, Any], context: CallContext, index: int) -> list[ToolCall]:
        raw_calls = list(turn.get("tool_calls", []))
        if "call" in turn:
            raw_calls.append({"name": turn["call"], "arguments": turn.get("args", {})})
        calls = []
        for n, raw in enumerate(raw_calls):
            call_id = f"{context.role}-{context.agent}-{index + 1}-{n + 1}"
            arguments = raw.get("arguments", {})
            if isinstance(arguments, str):  # a script may reproduce a provider's malformed arguments
                calls.append(ToolCall(call_id, str(raw["name"]), {}, malformed=arguments))
            else:
                calls.append(ToolCall(call_id, str(raw["name"]), dict(arguments)))
        return calls

    @staticmethod
    def _usage(
        turn: dict[str, Any],
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        text: str,
        calls: tuple[ToolCall, ...],
    ) -> Usage:
        if "usage" in turn:
            return Usage.from_json(turn["usage"])
        answer = text + "".join(json.dumps(c.arguments) for c in calls)
        # The prompt counted as the context window counts it (models/window.py), so a replay run shows
        # what a provider would be sent.
        return Usage(input_tokens=estimate(system, tools, messages), output_tokens=estimate_tokens(answer))

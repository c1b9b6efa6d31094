"""A whole team scripted behind the loopback servers of fakeapi: each request is answered from the script of
the agent that sent it, in the wire format of the server (Anthropic Messages, OpenAI Chat Completions or the
OpenAI Responses API; streamed, as gitteam asks for every reply).

The real SDKs talk to it and everything between them and git runs for real. The agent is told by the
request itself: its tools name the role (submit_plan, done, submit_review), and its first message names
the subtask. Agents run in parallel, so each has its own queue; reviewers approve unless scripted.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakeapi import FakeAPI, Recorded, Scripted, anthropic_message, openai_completion, responses_response, serve
from gitteam.config import load_config
from gitteam.git import find_repository
from gitteam.run.context import RunOptions, RunResult
from gitteam.run.orchestrator import resume_run, start_run

ROLE_TOOLS = {"submit_plan": "planner", "done": "coder", "submit_review": "reviewer"}
_ids = itertools.count(1)


@dataclass(frozen=True)
class Turn:
    """One scripted model turn: tool calls (name, arguments; a str argument is sent as raw JSON text by
    the OpenAI flavors) and text, with the usage the server reports; `thinking` is the provider's own
    blocks of the turn (Anthropic thinking blocks, Responses reasoning items), sent before the rest."""

    calls: Sequence[tuple[str, Any]] = ()
    text: str = ""
    input_tokens: int = 100
    output_tokens: int = 20
    thinking: Sequence[dict[str, Any]] = ()


def call(name: str, **args: Any) -> tuple[str, Any]:
    return (name, args)


def turn(*calls: tuple[str, Any], text: str = "", input_tokens: int = 100, output_tokens: int = 20,
         thinking: Sequence[dict[str, Any]] = ()) -> Turn:
    return Turn(calls, text, input_tokens, output_tokens, thinking)


def subtask(id: str, files: Sequence[str], depends_on: Sequence[str] = ()) -> dict[str, Any]:
    data: dict[str, Any] = {"id": id, "title": f"Subtask {id}", "instructions": f"Do {id}.", "files": list(files)}
    if depends_on:
        data["depends_on"] = list(depends_on)
    return data


def plan(*subtasks: dict[str, Any], **usage: int) -> Turn:
    return turn(call("submit_plan", subtasks=list(subtasks), summary="the plan"), **usage)


def approve(**usage: int) -> Turn:
    return turn(call("submit_review", decision="APPROVE", summary="looks right", findings=[]), **usage)


Step = Turn | Scripted


@dataclass
class Team:
    """The scripts of every agent behind one server; `flavor` is "anthropic", "openai" (Chat Completions) or
    "responses" (the OpenAI Responses API). `usage` False: the server reports no usage in its streams."""

    api: FakeAPI
    flavor: str
    approve_by_default: bool = True
    usage: bool = True
    scripts: dict[tuple[str, str], deque[Step]] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (role, agent, model) per request
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.api.route = self.answer

    def script(self, role: str, agent: str, *steps: Step) -> Team:
        self.scripts.setdefault((role, agent), deque()).extend(steps)
        return self

    def planner(self, *steps: Step) -> Team:
        return self.script("planner", "planner", *steps)

    def coder(self, agent: str, *steps: Step) -> Team:
        return self.script("coder", agent, *steps)

    def reviewer(self, agent: str, *steps: Step) -> Team:
        return self.script("reviewer", agent, *steps)

    def answer(self, request: Recorded) -> Scripted | None:
        body = request.body if isinstance(request.body, dict) else {}
        role, agent = self.identify(body)
        with self._lock:
            self.seen.append((role, agent, str(body.get("model", ""))))
            queue = self.scripts.get((role, agent))
            step = queue.popleft() if queue else None
        if step is None:
            if role != "reviewer" or not self.approve_by_default:
                return None  # fakeapi's 418: the test forgot a turn
            step = approve()
        return step if isinstance(step, Scripted) else self.reply(step, str(body.get("model", "")))

    def identify(self, body: Mapping[str, Any]) -> tuple[str, str]:
        names = tool_names(body)
        role = next((ROLE_TOOLS[name] for name in names if name in ROLE_TOOLS), "?")
        if role == "planner":
            return role, "planner"
        first = first_user_text(body)
        found = re.search(r'<subtask id="([^"]+)"', first) if role == "coder" else None
        if found:
            return role, found[1]
        known = [agent for (r, agent) in self.scripts if r == role]
        return role, next((a for a in known if re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", first)), "?")

    def reply(self, step: Turn, model: str) -> Scripted:
        prefix = "toolu" if self.flavor == "anthropic" else "call"
        calls = [(f"{prefix}_{next(_ids)}", name, args) for name, args in step.calls]
        if self.flavor == "anthropic":
            scripted = anthropic_message(step.text, calls, model=model, input_tokens=step.input_tokens,
                                         output_tokens=step.output_tokens, thinking=step.thinking)
        elif self.flavor == "responses":
            scripted = responses_response(step.text, calls, model=model, reasoning=step.thinking,
                                          input_tokens=step.input_tokens, output_tokens=step.output_tokens)
        else:
            scripted = openai_completion(step.text or None, calls, model=model, prompt_tokens=step.input_tokens,
                                         completion_tokens=step.output_tokens)
        return scripted if self.usage else dataclasses.replace(scripted, usage=False)

    def models(self, role: str) -> list[str]:
        return [model for r, _, model in self.seen if r == role]

    def bodies(self, role: str, agent: str | None = None) -> list[dict[str, Any]]:
        """What the server received from `role` (from its `agent` only, when named): the request bodies, in the
        order they arrived."""
        found = []
        for request in self.api.requests:
            sender_role, sender = self.identify(request.body)
            if sender_role == role and agent in (None, sender):
                found.append(request.body)
        return found


def tool_names(body: Mapping[str, Any]) -> list[str]:
    names = []
    for entry in body.get("tools") or []:
        names.append(str(entry.get("name") or (entry.get("function") or {}).get("name") or ""))
    return names


def first_user_text(body: Mapping[str, Any]) -> str:
    for message in body.get("messages") or body.get("input") or []:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "\n\n".join(str(block.get("text", "")) for block in content or [] if isinstance(block, dict))
    return ""


def tool_results(body: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(call id, content, is_error) of every tool result in a request, in any of the wire formats."""
    found = []
    for message in body.get("messages") or body.get("input") or []:
        if message.get("type") == "function_call_output":
            output = str(message.get("output", ""))
            found.append((str(message.get("call_id")), output, output.lower().startswith("error")))
        elif message.get("role") == "tool":
            content = str(message.get("content", ""))
            found.append((str(message.get("tool_call_id")), content, content.lower().startswith("error")))
        elif isinstance(message.get("content"), list):
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    text = block.get("content", "")
                    found.append((str(block["tool_use_id"]), str(text), bool(block.get("is_error"))))
    return found


@contextmanager
def team(flavor: str) -> Iterator[Team]:
    with serve() as api:
        yield Team(api, flavor)


# --- configuration and runs --------------------------------------------------------------------------


def model_table(name: str, flavor: str, url: str, model: str, **keys: Any) -> str:
    """A [models.NAME] table for a model behind the loopback server."""
    base = url if flavor == "anthropic" else f"{url}/v1"
    provider = "openai" if flavor == "responses" else flavor
    lines = [f"[models.{name}]", f'provider = "{provider}"', f'model = "{model}"', f'base_url = "{base}"']
    if flavor == "responses":
        lines.append('api = "responses"')
    keys.setdefault("input_price", 3.0)
    keys.setdefault("output_price", 15.0)
    lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def toml_value(value: Any) -> str:
    """A TOML value: JSON's spelling serves but for tables, which TOML writes inline as {key = value}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def write_user_config(home: Path, text: str) -> None:
    """The user config ($XDG_CONFIG_HOME, a temp dir per test): the repository's checkout stays untouched."""
    path = home / ".config" / "gitteam" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def roles(planner: str, coder: str | None = None, reviewer: str | None = None,
          economy: Mapping[str, str] | None = None) -> str:
    lines = ["[roles]", f'planner = "{planner}"', f'coder = "{coder or planner}"',
             f'reviewer = "{reviewer or planner}"']
    lines += [f'economy_{role} = "{spec}"' for role, spec in (economy or {}).items()]
    return "\n".join(lines) + "\n"


def run(root: Path, task: str = "do the task", options: RunOptions | None = None,
        **overrides: object) -> RunResult:
    repo = find_repository(root)
    config = load_config(repo.root, {key.replace("__", "."): value for key, value in overrides.items()})
    return start_run(repo, config, task, options or RunOptions(yes=True))


def resume(root: Path, run_id: str, **overrides: object) -> RunResult:
    repo = find_repository(root)
    config = load_config(repo.root, {key.replace("__", "."): value for key, value in overrides.items()})
    return resume_run(repo, config, run_id, RunOptions(yes=True))

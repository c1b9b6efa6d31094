"""Keeping a conversation under the model's context window.

Before each call the agent loop estimates the prompt (gitteam.tokens: about four characters a token) and,
past HIGH_WATER of what the model can take, compacts it down to LOW_WATER in one go, so the cached prefix
stays stable for several turns instead of shifting at every call:

1. old tool outputs are trimmed first (the latest turns stay verbatim): a file read twenty turns ago can
   be read again;
2. then earlier turns are folded into one digest message: the tool calls made and how they ended, the
   files each touched, the model's own notes, and the instructions received. The first message (the
   brief) always stays. The digest is deterministic (no extra model call) and bounded;
3. last, if the recent turns alone are too big, their tool outputs are trimmed too.

A cut never separates a tool call from its result: the kept part starts at an assistant message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitteam import fences
from gitteam.models.base import Message, ToolSpec
from gitteam.tokens import CHARS_PER_TOKEN, estimate_tokens

HIGH_WATER = 0.85
LOW_WATER = 0.6
KEEP_RECENT = 4  # messages kept verbatim at step 1 (the latest turn and its results)
TRIMMED_CHARS = 300  # what is left of an old tool output
DIGEST_SHARE = 0.25  # of the window, at most, for the digest
MESSAGE_OVERHEAD = 6  # tokens a message costs beyond its text (roles, ids, framing)
DIGEST_MARK = "[gitteam: earlier turns of this conversation were summarized"


@dataclass(frozen=True, slots=True)
class Compaction:
    messages: list[Message]
    before: int  # estimated prompt tokens
    after: int
    trimmed: int  # tool outputs shortened
    summarized: int  # messages folded into the digest


def prompt_limit(model: object) -> int | None:
    """Tokens a prompt to `model` may take: its context window less room for the reply; None = unknown."""
    context = getattr(model, "context_tokens", None)
    if not context:
        return None
    reply = int(getattr(model, "max_output_tokens", 0) or 0) or context // 8
    return int(context - min(reply, context // 4))


def fixed_tokens(system: str, tools: Sequence[ToolSpec]) -> int:
    schemas = json.dumps([[t.name, t.description, t.parameters] for t in tools])
    return estimate_tokens(system) + estimate_tokens(schemas)


def message_tokens(message: Message) -> int:
    calls = "".join(c.name + json.dumps(c.arguments) + (c.malformed or "") for c in message.tool_calls)
    return estimate_tokens(message.content + calls) + MESSAGE_OVERHEAD


def estimate(system: str, tools: Sequence[ToolSpec], messages: Sequence[Message]) -> int:
    return fixed_tokens(system, tools) + sum(map(message_tokens, messages))


def compact(messages: Sequence[Message], limit: int, fixed: int, force: bool = False) -> Compaction | None:
    """The conversation shrunk to fit `limit` prompt tokens (`fixed`: system prompt and tools), or None
    when it fits (force: shrink at least by half, after the provider refused it as too long)."""
    before = fixed + sum(map(message_tokens, messages))
    if not force and before <= limit * HIGH_WATER:
        return None
    target = int(limit * LOW_WATER) if not force else min(int(limit * LOW_WATER), before // 2)
    kept = list(messages)
    trimmed = _trim_tool_outputs(kept, target - fixed, keep_recent=KEEP_RECENT)
    summarized = 0
    if _size(kept) > target - fixed:
        kept, summarized = _summarize(kept, target - fixed, int(limit * DIGEST_SHARE))
    if _size(kept) > target - fixed:
        trimmed += _trim_tool_outputs(kept, target - fixed, keep_recent=0)
    after = fixed + _size(kept)
    if after >= before:
        return None
    return Compaction(kept, before, after, trimmed, summarized)


def _size(messages: Sequence[Message]) -> int:
    return sum(map(message_tokens, messages))


def _trim_tool_outputs(messages: list[Message], budget: int, keep_recent: int) -> int:
    """Shorten tool outputs in place, oldest first, until the messages fit `budget`; how many were cut."""
    size, count = _size(messages), 0
    for index in range(max(0, len(messages) - keep_recent)):
        if size <= budget:
            break
        message = messages[index]
        if message.role != "tool" or len(message.content) <= TRIMMED_CHARS + 120:
            continue
        cut = len(message.content) - TRIMMED_CHARS
        text = (f"{message.content[:TRIMMED_CHARS]}\n[... {cut} characters trimmed to save context; "
                "call the tool again if you need them]")
        shorter = Message("tool", text, tool_call_id=message.tool_call_id, is_error=message.is_error)
        size += message_tokens(shorter) - message_tokens(message)
        messages[index] = shorter
        count += 1
    return count


def _summarize(messages: list[Message], budget: int, digest_budget: int) -> tuple[list[Message], int]:
    """The first message, a digest of the turns after it, and the latest turns that fit `budget`."""
    if len(messages) < 3:
        return messages, 0
    head = messages[0]
    starts = [i for i in range(2, len(messages)) if messages[i].role == "assistant"]
    if not starts:
        return messages, 0
    cut = starts[-1]
    for start in starts:  # the earliest cut that fits keeps the most of the conversation
        digest = _digest(messages[1:start], digest_budget)
        if message_tokens(head) + message_tokens(digest) + _size(messages[start:]) <= budget:
            cut = start
            break
    return [head, _digest(messages[1:cut], digest_budget), *messages[cut:]], cut - 1


def _digest(folded: Sequence[Message], budget: int) -> Message:
    results = {m.tool_call_id: m for m in folded if m.role == "tool"}
    calls: list[str] = []
    paths: dict[str, list[str]] = {}
    notes: list[str] = []
    instructions: list[str] = []
    earlier = ""
    for message in folded:
        if message.role == "user" and message.content.startswith(DIGEST_MARK):
            earlier = message.content.split("\n", 1)[-1]
        elif message.role == "user":
            instructions.append(message.content)
        elif message.role == "assistant":
            if message.content.strip():
                notes.append(_short(message.content, 200))
            for call in message.tool_calls:
                result = results.get(call.id)
                calls.append(f"- {call.name} {_arguments(call.arguments)} -> {_outcome(result)}")
                path = call.arguments.get("path")
                if isinstance(path, str) and (result is None or not result.is_error):
                    paths.setdefault(path, []).append(call.name)
    return Message("user", _render(len(folded), earlier, calls, paths, notes, instructions, budget))


def _render(count: int, earlier: str, calls: list[str], paths: dict[str, list[str]], notes: list[str],
            instructions: list[str], budget: int) -> str:
    """The digest as one message with one nonce: gitteam's earlier messages keep their fences (moved to this
    nonce, closed again where shortened); tool calls, paths and the model's notes are fenced as data, since
    they echo what tools returned and files said."""
    used = [f"- {path}: {', '.join(dict.fromkeys(names))}" for path, names in paths.items()]
    nonce = fences.new_nonce([earlier, *instructions, *calls, *used, *notes])
    earlier = fences.renonce(earlier, nonce)
    instructions = [fences.renonce(text, nonce) for text in instructions]
    sections: list[str | fences.Fence] = []
    if instructions:
        latest = fences.shorten(instructions[-1], 3000)
        older = [f"- {fences.shorten(text, 300)}" for text in instructions[:-1]]
        sections.append("Instructions received in those turns (latest in full):\n" + "\n".join([*older, latest]))
    if paths:
        sections.append(fences.data("files_used", "\n".join(used), note="files used, with the tools that used them"))
    if notes:
        sections.append(fences.data("notes", "\n".join(f"- {note}" for note in notes[-10:]), note="your notes"))
    header = (f"{DIGEST_MARK} to stay within the model's context window ({count} messages folded). Their tool "
              "outputs are gone; call a tool again for anything you still need.]\n")
    fixed = header + ("Summary of still earlier turns:\n" + fences.shorten(earlier, 2000) + "\n" if earlier else "")
    tail = fences.render(*sections, sep="\n", nonce=nonce)
    room = budget * CHARS_PER_TOKEN - len(fixed) - len(tail) - 120
    shown: list[str] = []
    for line in reversed(calls):  # the latest calls matter most; older ones are counted
        if room - len(line) - 1 < 0:
            break
        shown.append(line)
        room -= len(line) + 1
    dropped = len(calls) - len(shown)
    listing = ([f"- ... {dropped} earlier calls"] if dropped else []) + shown[::-1]
    body = fences.render(fences.data("tool_calls", "\n".join(listing), note="tool calls made, oldest first"),
                         nonce=nonce) + "\n" if calls else ""
    return fences.shorten(fixed + body + tail, max(400, budget * CHARS_PER_TOKEN))


def _arguments(arguments: dict[str, Any]) -> str:
    shown = {k: (v if not isinstance(v, str) or len(v) <= 80 else f"<{len(v)} characters>")
             for k, v in arguments.items()}
    return _short(json.dumps(shown, ensure_ascii=False), 200)


def _outcome(result: Message | None) -> str:
    if result is None:
        return "no result"
    first = result.content.strip().split("\n", 1)[0]
    return ("error: " if result.is_error and not first.lower().startswith("error") else "") + _short(first, 120)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."

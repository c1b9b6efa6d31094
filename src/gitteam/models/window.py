"""Keeping a conversation under the model's context window.

Before each call the agent loop estimates the prompt (gitteam.tokens: about four characters a token). Past
`at` of what the model can take (COMPACT_AT; `[limits] compact_at`), well before the hard limit, it compacts
the conversation in one go, down to TARGET_SHARE of that mark, so the cached prefix stays stable for several
turns instead of shifting at every call. In order, until it fits:

1. old tool results longer than TRIM_ABOVE are trimmed, oldest first, to a head and a tail with a marker in
   between that says how much was cut and how to see it again. A command's output keeps little of its head
   (the exit status is its first line) and most of its tail, where a test run's failures and summary are;
2. old tool results are aged out, oldest first: each is replaced by a one-line stub that names the tool, its
   arguments and the size of what it returned, so the model knows what to call again;
3. earlier turns are folded into one digest message: the tool calls made and how they ended, the files each
   touched, the model's own notes, and the instructions received. The first message (the brief) always
   stays. The digest is deterministic (no extra model call) and bounded;
4. last, only when the result would still not fit the model's limit (or the provider refused the prompt as
   too long), the latest turns' tool results are trimmed too.

The latest KEEP_TURNS assistant turns and everything after them are otherwise never altered. Assistant
messages are never altered at all (their text, tool calls and any thinking blocks stay byte for byte: a
digest drops whole old turns, never part of one), and a tool result is only ever shortened in place, so
every tool call keeps its result right after it, as providers require.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gitteam import fences
from gitteam.models.base import Message, ToolCall, ToolSpec
from gitteam.tokens import CHARS_PER_TOKEN, estimate_tokens

COMPACT_AT = 0.7  # of the prompt limit: past it, the conversation is compacted
TARGET_SHARE = 0.7  # compacted down to this share of that mark (0.49 of the limit by default)
KEEP_TURNS = 2  # the latest assistant turns (and their results) stay verbatim
TRIM_ABOVE = 2500  # characters: a shorter tool result is never trimmed
HEAD_CHARS, TAIL_CHARS = 600, 900  # what a trimmed tool result keeps
COMMAND_HEAD_CHARS, COMMAND_TAIL_CHARS = 200, 1800  # ... and a trimmed command output: the end matters
COMMAND_TOOLS = frozenset({"run"})
DIGEST_SHARE = 0.25  # of the window, at most, for the digest
MESSAGE_OVERHEAD = 6  # tokens a message costs beyond its text (roles, ids, framing)
DIGEST_MARK = "[gitteam: earlier turns of this conversation were summarized"
TRIM_MARK = "characters cut here to save context"
AGED_MARK = "[gitteam: output removed to save context"


@dataclass(frozen=True, slots=True)
class Compaction:
    messages: list[Message]
    before: int  # estimated prompt tokens
    after: int
    trimmed: int  # tool outputs shortened to a head and a tail
    summarized: int  # messages folded into the digest
    aged: int = 0  # tool outputs replaced by a one-line stub


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


def compact(messages: Sequence[Message], limit: int, fixed: int, force: bool = False,
            at: float = COMPACT_AT) -> Compaction | None:
    """The conversation shrunk to fit `limit` prompt tokens (`fixed`: system prompt and tools), or None while it
    is under `at` of it (force: shrink at least by half, after the provider refused it as too long)."""
    before = fixed + _size(messages)
    mark = int(limit * at)
    if not force and before <= mark:
        return None
    target = int(mark * TARGET_SHARE) if not force else min(int(mark * TARGET_SHARE), before // 2)
    budget = target - fixed
    kept = list(messages)
    calls = {call.id: call for message in kept for call in message.tool_calls}
    recent = _recent_start(kept)
    trimmed = _trim_tool_outputs(kept, budget, recent, calls)
    aged = _age_tool_outputs(kept, budget, recent, calls)
    summarized = 0
    if _size(kept) > budget:
        kept, summarized = _summarize(kept, budget, int(limit * DIGEST_SHARE), recent)
    if _size(kept) > (budget if force else limit - fixed):  # the latest turns alone are too big for the model
        trimmed += _trim_tool_outputs(kept, budget, len(kept), calls)
    after = fixed + _size(kept)
    if after >= before:
        return None
    return Compaction(kept, before, after, trimmed, summarized, aged)


def _size(messages: Sequence[Message]) -> int:
    return sum(map(message_tokens, messages))


def _recent_start(messages: Sequence[Message]) -> int:
    """Where the latest KEEP_TURNS assistant turns begin: the messages from there on stay as they are."""
    turns = [i for i, message in enumerate(messages) if message.role == "assistant"]
    return turns[-KEEP_TURNS] if len(turns) >= KEEP_TURNS else 0


def _trim_tool_outputs(messages: list[Message], budget: int, end: int, calls: Mapping[str, ToolCall]) -> int:
    """Shorten long tool outputs before index `end` in place, oldest first, to a head and a tail, until the
    messages fit `budget`; how many were cut."""
    size, count = _size(messages), 0
    for index in range(min(end, len(messages))):
        if size <= budget:
            break
        message = messages[index]
        if message.role != "tool" or len(message.content) <= TRIM_ABOVE or _compacted(message.content):
            continue
        shorter = replace(message, content=trim_output(message.content, calls.get(message.tool_call_id or "")))
        if len(shorter.content) >= len(message.content):
            continue
        size += message_tokens(shorter) - message_tokens(message)
        messages[index] = shorter
        count += 1
    return count


def _age_tool_outputs(messages: list[Message], budget: int, end: int, calls: Mapping[str, ToolCall]) -> int:
    """Replace tool outputs before index `end` in place, oldest first, by a one-line stub, until the messages
    fit `budget`; how many were replaced."""
    size, count = _size(messages), 0
    for index in range(min(end, len(messages))):
        if size <= budget:
            break
        message = messages[index]
        if message.role != "tool" or message.content.startswith(AGED_MARK):
            continue
        stub = replace(message, content=_stub(message, calls.get(message.tool_call_id or "")))
        if message_tokens(stub) >= message_tokens(message):
            continue
        size += message_tokens(stub) - message_tokens(message)
        messages[index] = stub
        count += 1
    return count


def _compacted(content: str) -> bool:
    return content.startswith(AGED_MARK) or TRIM_MARK in content


def trim_output(content: str, call: ToolCall | None) -> str:
    """A tool's output cut to its head and tail, with a marker that says what was cut and how to see it again."""
    command = call is not None and call.name in COMMAND_TOOLS
    head_chars, tail_chars = (COMMAND_HEAD_CHARS, COMMAND_TAIL_CHARS) if command else (HEAD_CHARS, TAIL_CHARS)
    if len(content) <= head_chars + tail_chars + 200:
        return content
    head = _line_end(content, head_chars)
    tail = _line_start(content, len(content) - tail_chars)
    marker = f"\n[... {tail - head:,} {TRIM_MARK}; {_how_to_see(call)} ...]\n"
    return content[:head] + marker + content[tail:]


def _line_end(text: str, at: int) -> int:
    """A cut near `at` (no later): just after a newline if one is within 200 characters before it."""
    newline = text.rfind("\n", max(at - 200, 0), at)
    return newline + 1 if newline != -1 else at


def _line_start(text: str, at: int) -> int:
    """A cut near `at` (no earlier): just after a newline if one is within 200 characters after it."""
    newline = text.find("\n", at, at + 200)
    return newline + 1 if newline != -1 else at


def _how_to_see(call: ToolCall | None) -> str:
    if call is None:
        return "call the tool again to see them"
    if call.name in COMMAND_TOOLS:
        return "run the command again to see all of its output"
    if call.name == "read_file":
        return "read_file with start_line and end_line shows them"
    if call.name == "search":
        return "search again with a narrower pattern or glob to see them"
    return f"call {call.name} again to see them"


def _stub(message: Message, call: ToolCall | None) -> str:
    what = f"{call.name} {_arguments(call.arguments)}" if call is not None else "a tool call"
    error = " (an error)" if message.is_error else ""
    return (f"{AGED_MARK}: {what} returned {_original_length(message.content):,} characters{error}; "
            "call it again if you still need them]")


_TRIMMED = re.compile(rf"\n\[\.\.\. ([\d,]+) {TRIM_MARK}; [^\n]*\]\n")


def _original_length(content: str) -> int:
    """The length of a tool output before it was trimmed (the marker says how much was cut)."""
    marker = _TRIMMED.search(content)
    if marker is None:
        return len(content)
    return len(content) - len(marker.group()) + int(marker.group(1).replace(",", ""))


def _summarize(messages: list[Message], budget: int, digest_budget: int,
               recent: int) -> tuple[list[Message], int]:
    """The first message, a digest of the turns after it, and the latest turns that fit `budget` (at least
    those from `recent` on)."""
    if len(messages) < 3:
        return messages, 0
    head = messages[0]
    starts = [i for i in range(2, min(recent, len(messages) - 1) + 1) if messages[i].role == "assistant"]
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
    if result.content.startswith(AGED_MARK):
        return "an error (its output was removed)" if result.is_error else "ok (its output was removed)"
    first = result.content.strip().split("\n", 1)[0]
    return ("error: " if result.is_error and not first.lower().startswith("error") else "") + _short(first, 120)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4] + " ..."

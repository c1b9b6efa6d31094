"""Each agent CLI's wire: how its requests read and how the scripted model's steps are written back to it.

Codex CLI speaks the OpenAI Responses API and edits with `apply_patch` through its shell tool; Claude Code
speaks the Anthropic Messages API with its Read/Write/Edit tools (absolute paths); Gemini CLI speaks Gemini's
generateContent with read_file/write_file/replace; aider sends Chat Completions without tools and reads its
SEARCH/REPLACE edit format from the reply's text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

from fakeapi import Recorded, Scripted, openai_completion, openai_error, responses_response
from scripted import MAIN_USAGE, SIDE_USAGE, SUMMARY, Action, Conversation, Edit, Read, Write

_ids = itertools.count(1)


def _texts(content: Any, kinds: Sequence[str] = ("text", "input_text")) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [str(block.get("text", "")) for block in content or []
            if isinstance(block, dict) and block.get("type") in kinds]


class Codex:
    """Codex CLI: the Responses API; its shell tool `exec_command` runs `apply_patch` itself (the patch never
    reaches a shell), and `cat` to read."""

    name = "codex"

    def read(self, request: Recorded) -> Conversation | None:
        body = request.body
        if request.method != "POST" or not isinstance(body, dict) or not request.path.endswith("/responses"):
            return None
        items = [item for item in body.get("input") or [] if isinstance(item, dict)]
        prompt = "\n".join(text for item in items if item.get("role") == "user"
                           for text in _texts(item.get("content")))
        results = [str(item.get("output", "")) for item in items
                   if item.get("type") in ("function_call_output", "custom_tool_call_output")]
        tools: list[str] = []
        for tool in body.get("tools") or []:
            tools.append(str(tool.get("name") or tool.get("type")))
            tools += [str(inner.get("name")) for inner in tool.get("tools") or [] if isinstance(inner, dict)]
        workdir = re.search(r"<cwd>([^<]+)</cwd>", prompt)
        return Conversation(prompt, results, tools, workdir[1] if workdir else "", str(body.get("model", "")))

    def side(self, request: Recorded) -> Scripted:
        if request.method == "GET" and request.path.split("?")[0].endswith("/models"):
            return Scripted(body={"object": "list", "data": [], "models": []})
        return Scripted(404, {"error": {"message": f"no such route: {request.method} {request.path}",
                                        "type": "invalid_request_error"}})

    def reply(self, actions: Sequence[Action], conversation: Conversation) -> Scripted:
        step = len(conversation.results)
        if step >= len(actions):
            return responses_response(SUMMARY, model=conversation.model, input_tokens=MAIN_USAGE[0],
                                      output_tokens=MAIN_USAGE[1])
        call = ("exec_command", {"cmd": self.command(actions[step])})
        return responses_response("", [(f"call_{next(_ids)}", *call)], model=conversation.model,
                                  input_tokens=MAIN_USAGE[0], output_tokens=MAIN_USAGE[1])

    @staticmethod
    def command(action: Action) -> str:
        if isinstance(action, Read):
            return f"cat {action.path}"
        if isinstance(action, Write):
            body = "".join(f"+{line}\n" for line in action.content.splitlines())
            patch = f"*** Begin Patch\n*** Add File: {action.path}\n{body}*** End Patch\n"
        else:
            patch = (f"*** Begin Patch\n*** Update File: {action.path}\n@@\n-{action.old}\n+{action.new}\n"
                     "*** End Patch\n")
        return f"apply_patch <<'PATCH'\n{patch}PATCH\n"

    def refuse(self, message: str) -> Scripted:
        return Scripted(400, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                        "code": "model_not_allowed"}})


class Aider:
    """aider: Chat Completions without tools; its edit format (`--edit-format diff`) is SEARCH/REPLACE blocks in
    the reply's text, every step at once (it has the subtask's files in the chat: nothing to read)."""

    name = "aider"

    def read(self, request: Recorded) -> Conversation | None:
        body = request.body
        if request.method != "POST" or not isinstance(body, dict) or "/chat/completions" not in request.path:
            return None
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        prompt = "\n".join(text for m in messages if m.get("role") == "user" for text in _texts(m.get("content")))
        return Conversation(prompt, (), (), "", str(body.get("model", "")))

    def side(self, request: Recorded) -> Scripted:
        return openai_completion("ok", model="side", prompt_tokens=SIDE_USAGE[0], completion_tokens=SIDE_USAGE[1])

    def reply(self, actions: Sequence[Action], conversation: Conversation) -> Scripted:
        # Every request gets every block: aider asks again only when it did not apply them (it first adds the
        # files they name to its chat, then wants them once more), and stops once they applied
        blocks = [self.block(action) for action in actions if not isinstance(action, Read)]
        text = "\n\n".join([SUMMARY, *blocks])
        return openai_completion(text, model=conversation.model, prompt_tokens=MAIN_USAGE[0],
                                 completion_tokens=MAIN_USAGE[1])

    @staticmethod
    def block(action: Write | Edit) -> str:
        old, new = ("", action.content.rstrip("\n")) if isinstance(action, Write) else (action.old, action.new)
        search = f"{old}\n" if old else ""
        return f"{action.path}\n```\n<<<<<<< SEARCH\n{search}=======\n{new}\n>>>>>>> REPLACE\n```"

    def refuse(self, message: str) -> Scripted:
        return openai_error(400, message, code="model_not_allowed")

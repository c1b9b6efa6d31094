"""Each agent CLI's wire: how its requests read and how the scripted model's steps are written back to it.

Codex CLI speaks the OpenAI Responses API and edits with `apply_patch` through its shell tool; Claude Code
speaks the Anthropic Messages API with its Read/Write/Edit tools (absolute paths); Gemini CLI speaks Gemini's
generateContent with read_file/write_file/replace; aider sends Chat Completions without tools and reads its
SEARCH/REPLACE edit format from the reply's text.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from fakeapi import (
    Recorded,
    Scripted,
    anthropic_error,
    anthropic_message,
    gemini_response,
    openai_completion,
    openai_error,
    responses_response,
)
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


EDIT_FORMAT = "SEARCH/REPLACE"


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
        system = "\n".join(text for m in messages if m.get("role") == "system" for text in _texts(m.get("content")))
        # no tools: the edit format its system prompt teaches stands for them
        formats = tuple(name for name in (EDIT_FORMAT,) if name in system)
        return Conversation(prompt, (), formats, "", str(body.get("model", "")))

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


class Gemini:
    """Gemini CLI: Gemini's generateContent (`GOOGLE_GEMINI_BASE_URL`), streamed; its own tools read_file,
    write_file and replace take paths in the workspace."""

    name = "gemini"

    def read(self, request: Recorded) -> Conversation | None:
        body = request.body
        path = request.path.split("?", 1)[0]
        if request.method != "POST" or not isinstance(body, dict) or "GenerateContent" not in path \
                and not path.endswith(":generateContent"):
            return None
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        parts = [(c.get("role"), p) for c in contents for p in c.get("parts") or [] if isinstance(p, dict)]
        prompt = "\n".join(str(p["text"]) for role, p in parts if role == "user" and "text" in p)
        results = [json.dumps(p["functionResponse"]) for _, p in parts if "functionResponse" in p]
        tools = [str(d.get("name")) for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        if not tools:
            return None  # a side request: the next-speaker check, loop detection, a summary
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        return Conversation(prompt, results, tools, "", model)

    def side(self, request: Recorded) -> Scripted:
        path = request.path.split("?", 1)[0]
        if path.endswith(":countTokens"):
            return Scripted(body={"totalTokens": SIDE_USAGE[0]})
        if "GenerateContent" in path or path.endswith(":generateContent"):
            # its model router asks for a complexity score, its next-speaker check who speaks next: one JSON
            # answer serves both
            answer = json.dumps({"complexity_reasoning": "one file", "complexity_score": 20,
                                 "next_speaker": "user", "reasoning": "the task is done"})
            return gemini_response(answer, input_tokens=SIDE_USAGE[0], output_tokens=SIDE_USAGE[1])
        return Scripted(404, {"error": {"code": 404, "message": f"no such route: {request.path}",
                                        "status": "NOT_FOUND"}})

    def reply(self, actions: Sequence[Action], conversation: Conversation) -> Scripted:
        step = len(conversation.results)
        if step >= len(actions):
            return gemini_response(SUMMARY, model=conversation.model, input_tokens=MAIN_USAGE[0],
                                   output_tokens=MAIN_USAGE[1])
        return gemini_response("", [self.call(actions[step])], model=conversation.model,
                               input_tokens=MAIN_USAGE[0], output_tokens=MAIN_USAGE[1])

    @staticmethod
    def call(action: Action) -> tuple[str, dict[str, Any]]:
        if isinstance(action, Read):
            return "read_file", {"file_path": action.path}
        if isinstance(action, Write):
            return "write_file", {"file_path": action.path, "content": action.content}
        return "replace", {"file_path": action.path, "old_string": action.old, "new_string": action.new,
                           "instruction": f"Change {action.old!r} to {action.new!r}."}

    def refuse(self, message: str) -> Scripted:
        return Scripted(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


class Claude:
    """Claude Code: the Messages API (`ANTHROPIC_BASE_URL`), streamed; its tools Read, Write and Edit take
    absolute paths (its system prompt says the working directory), and Write or Edit of a file that exists needs
    a Read of it first."""

    name = "claude"

    def read(self, request: Recorded) -> Conversation | None:
        body = request.body
        path = request.path.split("?", 1)[0]
        if request.method != "POST" or not isinstance(body, dict) or not path.endswith("/v1/messages"):
            return None
        tools = [str(tool.get("name")) for tool in body.get("tools") or [] if isinstance(tool, dict)]
        if not tools:
            return None  # a side request: a title, a quota check, a topic
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        prompt = "\n".join(text for m in messages if m.get("role") == "user" for text in _texts(m.get("content")))
        results = [json.dumps(block.get("content")) for m in messages if isinstance(m.get("content"), list)
                   for block in m["content"] if isinstance(block, dict) and block.get("type") == "tool_result"]
        # its environment block (a system message among the messages) names the working directory
        texts = [*_texts(body.get("system")), *(text for m in messages for text in _texts(m.get("content")))]
        context = "\n".join(texts)
        workdir = re.search(r"[Ww]orking directory: (\S+)", context)
        return Conversation(prompt, results, tools, workdir[1] if workdir else "", str(body.get("model", "")))

    def side(self, request: Recorded) -> Scripted:
        path = request.path.split("?", 1)[0]
        if path.endswith("/v1/messages/count_tokens"):
            return Scripted(body={"input_tokens": SIDE_USAGE[0]})
        if path.endswith("/v1/messages") and isinstance(request.body, dict):
            return anthropic_message("Gitteam subtask", model=str(request.body.get("model", "")),
                                     input_tokens=SIDE_USAGE[0], output_tokens=SIDE_USAGE[1])
        return Scripted(404, {"type": "error", "error": {"type": "not_found_error",
                                                         "message": f"no such route: {request.path}"}})

    def reply(self, actions: Sequence[Action], conversation: Conversation) -> Scripted:
        step = len(conversation.results)
        if step >= len(actions):
            return anthropic_message(SUMMARY, model=conversation.model, input_tokens=MAIN_USAGE[0],
                                     output_tokens=MAIN_USAGE[1])
        name, args = self.call(actions[step], conversation.workdir)
        return anthropic_message("", [(f"toolu_{next(_ids)}", name, args)], model=conversation.model,
                                 input_tokens=MAIN_USAGE[0], output_tokens=MAIN_USAGE[1])

    @staticmethod
    def call(action: Action, workdir: str) -> tuple[str, dict[str, Any]]:
        path = f"{workdir.rstrip('/')}/{action.path}"
        if isinstance(action, Read):
            return "Read", {"file_path": path}
        if isinstance(action, Write):
            return "Write", {"file_path": path, "content": action.content}
        return "Edit", {"file_path": path, "old_string": action.old, "new_string": action.new}

    def refuse(self, message: str) -> Scripted:
        return anthropic_error(400, "invalid_request_error", message)

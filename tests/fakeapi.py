"""A loopback HTTP server that speaks the Anthropic Messages, OpenAI Chat Completions and OpenAI Responses
wire formats, whole or streamed.

Tests point the real SDKs at it (base_url=server.url) and script it per test: a queue of responses,
each a status with headers and a JSON (or raw) body, or a dropped connection, or a stall past the
client's timeout. A successful answer to a request with `"stream": true` goes out as the server-sent events
of its path's format (`sse_events`: the events the real API sends for that reply), optionally without its
usage, cut off after some events, or with an error event in place of the rest. Every request is recorded
with its parsed JSON body for assertions. Fakes at the transport edge only: everything between the SDK and
our code runs for real.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ids = itertools.count(1)


Event = tuple[str | None, Any]  # one server-sent event: its name (None: a data-only line) and its data


@dataclass(frozen=True)
class Scripted:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # JSON-encoded, unless bytes (sent as they are)
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    stall: float = 0.0  # seconds to wait before answering: past the client's timeout
    # Streamed answers (the request asked for a stream, status 200, a JSON body):
    usage: bool = True  # False: the events carry no usage (a server that ignores stream_options)
    error_event: Event | None = None  # sent after `after` events instead of the rest of the stream
    cut: bool = False  # close the connection after `after` events, short of the announced length
    short: bool = False  # end the stream cleanly after `after` events, before its last one
    after: int = 2


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body (None when it was not JSON)


class FakeAPI:
    """Answers requests from `route` (when set and it has an answer), else from a queue, then with
    `default` (or a 418 that no client retries)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default: Scripted | None = None
        self.route: Callable[[Recorded], Scripted | None] | None = None
        self._queue: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for one, at every test's teardown.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, *answers: Scripted) -> None:
        with self._lock:
            self._queue.extend(answers)

    def bodies(self) -> list[Any]:
        return [request.body for request in self.requests]

    def start(self) -> FakeAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes stalled handlers
        self._server.shutdown()
        self._server.server_close()

    def _next(self, request: Recorded) -> Scripted:
        with self._lock:
            self.requests.append(request)
            routed = self.route(request) if self.route is not None else None
            if routed is not None:
                return routed
            if self._queue:
                return self._queue.popleft()
        if self.default is not None:
            return self.default
        return Scripted(418, {"error": {"type": "fakeapi", "message": "fakeapi: no scripted response left"}})


def _handler(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            self._answer(body)

        def do_GET(self) -> None:  # agent CLIs list models, check quotas or try a websocket first
            self._answer(None)

        def _answer(self, body: Any) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            answer = api._next(Recorded(self.command, self.path, headers, body))
            if answer.stall and api._stop.wait(answer.stall):
                return
            if answer.drop:
                self.close_connection = True
                return  # the handler closes the socket without a byte of response
            if answer.status == 200 and streamed(self.path, body) and isinstance(answer.body, dict):
                self._stream(answer, sse_events(self.path, answer.body, usage=answer.usage))
                return
            payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stall past its timeout)

        def _stream(self, answer: Scripted, events: list[Event]) -> None:
            if answer.error_event is not None:
                events = [*events[: answer.after], answer.error_event]
            elif answer.short:
                events = events[: answer.after]
            payload = b"".join(map(_sse, events))
            sent = b"".join(map(_sse, events[: answer.after])) if answer.cut else payload
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))  # a cut stream falls short of it
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(sent)
                self.wfile.flush()
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _sse(event: Event) -> bytes:
    name, data = event
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode()


def streamed(path: str, body: Any) -> bool:
    """Whether the request asked for a stream: `"stream": true`, or Gemini's streaming method in the path."""
    return (isinstance(body, dict) and bool(body.get("stream"))) or ":streamGenerateContent" in path


def sse_events(path: str, body: dict[str, Any], *, usage: bool = True) -> list[Event]:
    """A whole reply as the events its API streams: Anthropic Messages, Chat Completions, Responses or Gemini."""
    path = path.split("?", 1)[0]
    if path.endswith("/messages"):
        return anthropic_events(body, usage)
    if path.endswith("/responses"):
        return responses_events(body, usage)
    if path.endswith(":streamGenerateContent"):
        return gemini_events(body, usage)
    return chat_events(body, usage)


def _halves(text: str) -> list[str]:
    """Text in two pieces, as a stream would split it (at least one piece)."""
    middle = len(text) // 2
    return [piece for piece in (text[:middle], text[middle:]) if piece] or [""]


@contextmanager
def serve() -> Iterator[FakeAPI]:
    api = FakeAPI().start()
    try:
        yield api
    finally:
        api.close()


# --- Anthropic Messages -------------------------------------------------------------------------------

Call = tuple[str, str, Any]  # (id, name, arguments); arguments a dict, or a str sent as it is (OpenAI)


def anthropic_message(
    text: str = "",
    calls: Sequence[Call] = (),
    *,
    model: str = "claude-test",
    input_tokens: int = 10,
    output_tokens: int = 5,
    cache_read: int | None = None,
    cache_write: int | None = None,
    thinking: Sequence[dict[str, Any]] = (),
) -> Scripted:
    """A Messages reply; `thinking` blocks (thinking_block, redacted_thinking_block) come first."""
    content: list[dict[str, Any]] = list(thinking)
    content += [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": id_, "name": name, "input": args} for id_, name, args in calls]
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
    return Scripted(
        body={
            "id": f"msg_{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
    )


def anthropic_error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> Scripted:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return Scripted(status, body, headers or {})


def thinking_block(thinking: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def redacted_thinking_block(data: str) -> dict[str, Any]:
    return {"type": "redacted_thinking", "data": data}


def anthropic_error_event(error_type: str = "overloaded_error", message: str = "Overloaded") -> Event:
    """What the Messages API sends mid-stream when it fails after the 200."""
    return ("error", {"type": "error", "error": {"type": error_type, "message": message}})


def anthropic_events(body: dict[str, Any], usage: bool = True) -> list[Event]:
    """message_start, a ping, each block's start, deltas and stop, message_delta, message_stop."""
    final = dict(body.get("usage") or {})
    started = {**final, "output_tokens": 1}
    message = {**{k: v for k, v in body.items() if k != "usage"}, "content": [], "stop_reason": None}
    events: list[Event] = [("message_start", {"type": "message_start",
                                              "message": {**message, "usage": started} if usage else message}),
                           ("ping", {"type": "ping"})]
    for index, block in enumerate(body.get("content") or []):
        kind = block.get("type")
        deltas: list[dict[str, Any]] = []
        start = dict(block)
        if kind == "text":
            start["text"] = ""
            deltas = [{"type": "text_delta", "text": piece} for piece in _halves(block["text"])]
        elif kind == "thinking":
            start.update(thinking="", signature="")
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _halves(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            start["input"] = {}
            deltas = [{"type": "input_json_delta", "partial_json": piece}
                      for piece in _halves(json.dumps(block["input"]))]
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                   for delta in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": body.get("stop_reason"),
                                                                 "stop_sequence": None}}
    if usage:
        delta["usage"] = {"output_tokens": final.get("output_tokens", 0)}
    return [*events, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]


# --- OpenAI Chat Completions --------------------------------------------------------------------------


def openai_completion(
    text: str | None = None,
    calls: Sequence[Call] = (),
    *,
    model: str = "gpt-test",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cached_tokens: int | None = None,
    usage: bool = True,
) -> Scripted:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [
            {
                "id": id_,
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for id_, name, args in calls
        ]
    body: dict[str, Any] = {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if cached_tokens is not None:
            body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return Scripted(body=body)


def openai_error_chunk(message: str = "The server had an error", error_type: str = "server_error") -> Event:
    """What Chat Completions servers send mid-stream when they fail after the 200."""
    return (None, {"error": {"message": message, "type": error_type, "param": None, "code": None}})


def chat_events(body: dict[str, Any], usage: bool = True) -> list[Event]:
    """chat.completion.chunk lines: the role, content pieces, each tool call's id and name then its
    arguments in pieces, the finish_reason, the usage chunk (no choices), [DONE]."""
    base = {k: body[k] for k in ("id", "created", "model") if k in body}
    base["object"] = "chat.completion.chunk"
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> Event:
        return (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [chunk({"role": "assistant", "content": ""})]
    if isinstance(message.get("content"), str):
        events += [chunk({"content": piece}) for piece in _halves(message["content"])]
    calls = message.get("tool_calls") or []
    for index, raw in enumerate(calls):
        function = raw.get("function") or {}
        head = {"index": index, "type": "function", "function": {"name": function.get("name"), "arguments": ""}}
        if "id" in raw:
            head["id"] = raw["id"]
        events.append(chunk({"tool_calls": [head]}))
        arguments = function.get("arguments")
        pieces = _halves(arguments) if isinstance(arguments, str) else [arguments]
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}) for piece in pieces]
    events.append(chunk({}, choice.get("finish_reason") or ("tool_calls" if calls else "stop")))
    if usage and body.get("usage"):
        events.append((None, {**base, "choices": [], "usage": body["usage"]}))
    return [*events, (None, "[DONE]")]


def openai_error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Scripted:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return Scripted(status, body, headers or {})


# --- OpenAI Responses ---------------------------------------------------------------------------------


def reasoning_item(id_: str, encrypted: str, summary: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "id": id_,
                            "summary": [{"type": "summary_text", "text": summary}] if summary else []}
    item["encrypted_content"] = encrypted
    return item


def responses_response(
    text: str = "",
    calls: Sequence[Call] = (),
    *,
    model: str = "gpt-test",
    reasoning: Sequence[dict[str, Any]] = (),
    input_tokens: int = 10,
    output_tokens: int = 5,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Scripted:
    """A Responses API response object: reasoning items first, then the message, then function calls."""
    number = next(_ids)
    output: list[dict[str, Any]] = list(reasoning)
    if text:
        output.append({"type": "message", "id": f"msg_{number}", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]})
    output += [{"type": "function_call", "id": f"fc_{id_}", "call_id": id_, "name": name, "status": "completed",
                "arguments": args if isinstance(args, str) else json.dumps(args)} for id_, name, args in calls]
    return Scripted(body={
        "id": f"resp_{number}", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached_tokens},
                  "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                  "total_tokens": input_tokens + output_tokens},
    })


def responses_error_event(code: str = "server_error", message: str = "The server had an error") -> Event:
    return ("error", {"type": "error", "code": code, "message": message, "param": None, "sequence_number": 3})


def responses_failed_event(code: str = "server_error", message: str = "The server had an error") -> Event:
    response = {"id": "resp_failed", "object": "response", "status": "failed", "output": [],
                "error": {"code": code, "message": message}}
    return ("response.failed", {"type": "response.failed", "sequence_number": 3, "response": response})


def responses_events(body: dict[str, Any], usage: bool = True) -> list[Event]:
    """response.created, in_progress, each item added / its deltas / done, response.completed."""
    numbers = itertools.count()
    events: list[Event] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": next(numbers), **data}))

    begun = {**body, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=begun)
    emit("response.in_progress", response=begun)
    for index, item in enumerate(body.get("output") or []):
        kind, item_id = item.get("type"), item.get("id", "")
        if kind == "message":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "content": []})
            for part_index, part in enumerate(item.get("content") or []):
                emit("response.content_part.added", item_id=item_id, output_index=index, content_index=part_index,
                     part={**part, "text": ""})
                for piece in _halves(part.get("text", "")):
                    emit("response.output_text.delta", item_id=item_id, output_index=index,
                         content_index=part_index, delta=piece, logprobs=[])
                emit("response.output_text.done", item_id=item_id, output_index=index, content_index=part_index,
                     text=part.get("text", ""), logprobs=[])
                emit("response.content_part.done", item_id=item_id, output_index=index, content_index=part_index,
                     part=part)
        elif kind == "function_call":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            for piece in _halves(item.get("arguments", "")):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
            emit("response.function_call_arguments.done", item_id=item_id, output_index=index,
                 arguments=item.get("arguments", ""), name=item.get("name"))
        else:  # reasoning: the added item's encrypted_content may be incomplete; the done one is whole
            emit("response.output_item.added", output_index=index,
                 item={k: v for k, v in item.items() if k != "encrypted_content"})
        emit("response.output_item.done", output_index=index, item=item)
    final = body if usage else {**body, "usage": None}
    emit("response.completed", response=final)
    return events


# --- Gemini (generateContent) -------------------------------------------------------------------------


def gemini_response(
    text: str = "",
    calls: Sequence[tuple[str, Any]] = (),
    *,
    model: str = "gemini-test",
    input_tokens: int = 10,
    output_tokens: int = 5,
) -> Scripted:
    """A generateContent reply: a text part, then one functionCall part per (name, args)."""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    parts += [{"functionCall": {"name": name, "args": args}} for name, args in calls]
    return Scripted(body={
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": input_tokens, "candidatesTokenCount": output_tokens,
                          "totalTokenCount": input_tokens + output_tokens},
        "modelVersion": model,
        "responseId": f"gemini-{next(_ids)}",
    })


def gemini_events(body: dict[str, Any], usage: bool = True) -> list[Event]:
    """streamGenerateContent?alt=sse: one data-only event per part, the last with finishReason and usage."""
    candidate = (body.get("candidates") or [{}])[0]
    parts = (candidate.get("content") or {}).get("parts") or [{"text": ""}]
    common = {k: v for k, v in body.items() if k not in ("candidates", "usageMetadata")}
    events: list[Event] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        chunk: dict[str, Any] = {"content": {"role": "model", "parts": [part]}, "index": 0}
        if last:
            chunk["finishReason"] = candidate.get("finishReason", "STOP")
        data: dict[str, Any] = {**common, "candidates": [chunk]}
        if last and usage and body.get("usageMetadata"):
            data["usageMetadata"] = body["usageMetadata"]
        events.append((None, data))
    return events

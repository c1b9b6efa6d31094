"""A loopback HTTP server that speaks the Anthropic Messages and OpenAI Chat Completions wire formats.

Tests point the real SDKs at it (base_url=server.url) and script it per test: a queue of responses,
each a status with headers and a JSON (or raw) body, or a dropped connection, or a stall past the
client's timeout. Every request is recorded with its parsed JSON body for assertions. Fakes at the
transport edge only: everything between the SDK and our code runs for real.
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


@dataclass(frozen=True)
class Scripted:
    """One scripted answer."""

    status: int = 200
    body: Any = None  # JSON-encoded, unless bytes (sent as they are)
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    stall: float = 0.0  # seconds to wait before answering: past the client's timeout


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
            headers = {key.lower(): value for key, value in self.headers.items()}
            answer = api._next(Recorded("POST", self.path, headers, body))
            if answer.stall and api._stop.wait(answer.stall):
                return
            if answer.drop:
                self.close_connection = True
                return  # the handler closes the socket without a byte of response
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

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


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
) -> Scripted:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
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


def openai_error(
    status: int,
    message: str,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Scripted:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return Scripted(status, body, headers or {})

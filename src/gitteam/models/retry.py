"""One table of provider errors and one retry layer, shared by every provider.

The SDKs are created with `max_retries=0`: they retry twice by default, and stacking our attempts on
theirs would multiply them (5 x 3 = 15 calls to an overloaded API). Here an SDK exception is reduced to
a `Failure` (the same shape for both SDKs), the first matching rule of `RULES` names its `Kind`, and the
kind decides: retry after a backoff, or raise one `GitteamError` whose single line says what to do.

Replies are streamed, so a failure can also come after the HTTP status said 200: an error event in the
stream (Anthropic's `overloaded_error`, a Responses `error` or `response.failed`, a Chat Completions chunk
holding `error`), a connection dropped half way, or a stream that ends before its last event. Each is a
`Failure` without a status, read from the event's body, and goes through the same table: the whole call is
made again.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from gitteam.errors import GitteamError, UsageError

log = logging.getLogger("gitteam")
T = TypeVar("T")


class ContextTooLong(GitteamError):
    """The conversation no longer fits the model's context window: compact it and call again."""


class ModelUnavailable(GitteamError):
    """Retries are exhausted, or the provider is overloaded: a fallback model may take over."""

    def __init__(self, message: str, *, model: str, overloaded: bool) -> None:
        super().__init__(message)
        self.model = model
        self.overloaded = overloaded


class StreamError(Exception):
    """A streamed reply that failed after its HTTP status: an error event, or an end before the last event.
    Raised by the providers while they read a stream; `body` has the shape of an API error body."""

    def __init__(self, message: str, *, error_type: str = "", code: str = "") -> None:
        super().__init__(message)
        self.body = {"message": message, "type": error_type, "code": code}


class Kind(Enum):
    CONTEXT = "context too long"
    QUOTA = "quota exhausted"
    OVERLOADED = "overloaded"
    TRANSIENT = "transient"
    AUTH = "credentials refused"
    MODEL = "unknown model"
    TOOLS = "tool calling rejected"
    BAD_REQUEST = "request rejected"


RETRYABLE = frozenset({Kind.OVERLOADED, Kind.TRANSIENT})


@dataclass(frozen=True)
class Failure:
    """A provider error reduced to what the rules look at."""

    # None: no HTTP error status: a timeout, a refused or dropped connection, or an error in a stream
    # whose status was 200 (then error_type or code say which)
    status: int | None
    message: str
    error_type: str = ""
    code: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timed_out: bool = False

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        """Read an anthropic or openai SDK exception (both carry status_code, response and body), an httpx
        error raised while a stream is read, or a `StreamError`."""
        response = getattr(exc, "response", None)
        status = getattr(exc, "status_code", None) if response is not None else None
        headers = {str(k).lower(): str(v) for k, v in response.headers.items()} if response is not None else {}
        body = getattr(exc, "body", None)
        message, error_type, code = _error_fields(body)
        if status is not None and status < 400:  # an error event in a stream that had begun with 200
            status = None
        if status is None and body is not None:  # the server said what went wrong, mid-stream
            return cls(None, _one_line(message or str(exc)), error_type, code, headers)
        if status is None:
            # The SDKs name their timeout classes APITimeoutError (httpx: ReadTimeout); matching the name
            # keeps this SDK-neutral.
            timed_out = "timeout" in type(exc).__name__.lower()
            cause = exc.__cause__ or exc.__context__
            message = "timed out" if timed_out else f"connection failed ({cause or exc})"
            return cls(None, _one_line(message), timed_out=timed_out)
        return cls(status, _one_line(message or str(exc)), error_type, code, headers)

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (`retry-after-ms`, `retry-after` seconds or HTTP date)."""
        millis = self.headers.get("retry-after-ms")
        if millis is not None:
            try:
                return max(0.0, float(millis) / 1000)
            except ValueError:
                pass
        text = self.headers.get("retry-after")
        if text is None:
            return None
        try:
            return max(0.0, float(text))
        except ValueError:
            pass
        import email.utils  # an HTTP date: rare, and the email package is not worth loading at every start

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())

    def describe(self) -> str:
        if self.status is None:
            kind = self.error_type or self.code
            return f"mid-stream {kind}: {self.message}" if kind else self.message
        kind = f" {self.error_type}" if self.error_type else ""
        return f"HTTP {self.status}{kind}: {self.message}" if self.message else f"HTTP {self.status}{kind}"


def _error_fields(body: object) -> tuple[str, str, str]:
    """(message, type, code) from an error body: Anthropic nests them under "error"; the openai SDK
    passes the inner object; sloppy servers send {"error": "text"} or plain text."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail") or ""
        return str(message), str(body.get("type") or ""), str(body.get("code") or "")
    if isinstance(body, str | bytes):
        return body.decode(errors="replace") if isinstance(body, bytes) else body, "", ""
    return "", "", ""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Anthropic: "prompt is too long: N tokens > M maximum", "input length and `max_tokens` exceed context
# limit"; OpenAI: code context_length_exceeded; vLLM: "maximum context length is N tokens"; llama.cpp:
# "exceeds the available context size" (exceed_context_size_error).
_CONTEXT = re.compile(
    r"prompt is too long|context[_ ]length|maximum context|context window|exceeds? (the )?(available )?context"
    r"|exceed_context_size|context limit",
    re.IGNORECASE,
)
_TOOLS = re.compile(r"\btool", re.IGNORECASE)


def _is_context(f: Failure) -> bool:
    if f.code == "context_length_exceeded":
        return True
    # A 429 may talk about tokens per minute; that is a rate limit, not a full context.
    return f.status is not None and f.status != 429 and bool(_CONTEXT.search(f"{f.message} {f.error_type}"))


def _is_transient(f: Failure) -> bool:
    # No status, or one below 400: the connection failed, or the stream broke after a 200.
    return f.status is None or f.status < 400 or f.status in (408, 409, 429) or f.status >= 500


# The one table: the first rule that matches names the kind. Order matters (a context error is a 400,
# an overloaded error is a 5xx, insufficient_quota is a 429 that no wait will cure).
RULES: tuple[tuple[Kind, Callable[[Failure], bool]], ...] = (
    (Kind.CONTEXT, _is_context),
    (Kind.QUOTA, lambda f: "insufficient_quota" in (f.code, f.error_type)),
    (Kind.OVERLOADED, lambda f: f.status == 529 or f.error_type == "overloaded_error"),
    (Kind.TRANSIENT, _is_transient),
    (Kind.AUTH, lambda f: f.status in (401, 403)),
    (Kind.MODEL, lambda f: f.status == 404),
    (Kind.TOOLS, lambda f: f.status in (400, 422) and bool(_TOOLS.search(f.message))),
    (Kind.BAD_REQUEST, lambda f: True),
)


def classify(failure: Failure) -> Kind:
    return next(kind for kind, matches in RULES if matches(failure))


@dataclass(frozen=True)
class Endpoint:
    """What an error message names: the spec, the provider's model id, the key variable, the server."""

    spec: str
    model: str
    key_variable: str
    base_url: str
    tools_hint: str = ""  # how to enable tool calling on this kind of server ("" = a 400 is our bug)


def error_for(kind: Kind, failure: Failure, endpoint: Endpoint) -> GitteamError:
    """The one-line error a non-retryable failure becomes."""
    spec, detail = endpoint.spec, failure.describe()
    if kind is Kind.CONTEXT:
        return ContextTooLong(f"{spec}: the conversation is too long for the model's context ({detail})")
    if kind is Kind.AUTH:
        return UsageError(
            f"{spec}: {endpoint.base_url} refused the credentials ({detail}): "
            f"set {endpoint.key_variable} to a valid API key with access to {endpoint.model}"
        )
    if kind is Kind.MODEL:
        return UsageError(
            f"{spec}: model {endpoint.model!r} not found at {endpoint.base_url} ({detail}): check the model id "
            "(--model PROVIDER:MODEL or [models.NAME].model) and the base URL"
        )
    if kind is Kind.QUOTA:
        return GitteamError(f"{spec}: the account's quota is exhausted ({detail}): add credit or change the key")
    if kind is Kind.TOOLS and endpoint.tools_hint:
        return UsageError(f"{spec}: the server rejected tool calling ({detail}): {endpoint.tools_hint}")
    return GitteamError(f"{spec}: the request was rejected ({detail})")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; sleep and jitter are injectable so tests run instantly."""

    attempts: int = 5  # calls in all, the first one included
    base: float = 1.0
    cap: float = 30.0
    # A server asking for a longer wait (a daily limit) is treated as unavailable, so a fallback can take over.
    max_retry_after: float = 120.0
    # With a fallback to go to, an overloaded provider is left after this many overloaded answers.
    overloaded_attempts: int | None = None
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, retry: int, failure: Failure) -> float | None:
        """Seconds before retry number `retry` (1-based), or None when waiting is pointless."""
        asked = failure.retry_after
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        return self.jitter() * min(self.cap, self.base * 2.0 ** (retry - 1))


BASE_VARIABLE = "GITTEAM_RETRY_BASE_SECONDS"


def policy_for(fallbacks: bool, environ: Mapping[str, str] | None = None) -> RetryPolicy:
    """The policy of one provider model. GITTEAM_RETRY_BASE_SECONDS scales the backoff (tests, CI with
    a local server); with a fallback to go to, two overloaded answers are enough to move on."""
    text = (os.environ if environ is None else environ).get(BASE_VARIABLE, "").strip()
    try:
        base = float(text) if text else 1.0
    except ValueError:
        raise UsageError(f"{BASE_VARIABLE} must be a number of seconds (got {text!r})") from None
    if not base >= 0 or base == float("inf"):
        raise UsageError(f"{BASE_VARIABLE} must be a number of seconds >= 0 (got {text!r})")
    return RetryPolicy(base=base, overloaded_attempts=2 if fallbacks else None)


def call_with_retries(
    call: Callable[[], T],
    *,
    endpoint: Endpoint,
    policy: RetryPolicy,
    errors: tuple[type[BaseException], ...],
) -> T:
    """Run `call`, retrying what the table calls retryable; `errors` are the SDK's API error classes
    (anything else is a bug and propagates untouched)."""
    overloaded = 0
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except errors as exc:
            failure = Failure.of(exc)
            kind = classify(failure)
            if kind not in RETRYABLE:
                raise error_for(kind, failure, endpoint) from exc
            overloaded += kind is Kind.OVERLOADED
            wait = policy.delay(attempt, failure)
            enough_overload = policy.overloaded_attempts is not None and overloaded >= policy.overloaded_attempts
            if attempt >= policy.attempts or wait is None or enough_overload:
                raise _unavailable(endpoint, failure, attempt, overloaded > 0) from exc
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                endpoint.spec,
                failure.describe(),
                wait,
                attempt + 1,
                policy.attempts,
            )
            policy.sleep(wait)


def _unavailable(endpoint: Endpoint, failure: Failure, attempts: int, overloaded: bool) -> ModelUnavailable:
    plural = "s" if attempts > 1 else ""
    # No status: the server was never reached, or dropped the connection: which server is what to check.
    # No command to rerun is named here: a run's ending says `gitteam resume RUN`, review's is run again.
    where = f" at {endpoint.base_url}" if failure.status is None and endpoint.base_url else ""
    return ModelUnavailable(
        f"{endpoint.spec}{where}: gave up after {attempts} attempt{plural} ({failure.describe()}): try again "
        "later, or name fallbacks in [models.NAME].fallbacks",
        model=endpoint.spec,
        overloaded=overloaded,
    )

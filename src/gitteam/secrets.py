"""The one place that detects and redacts secrets: review checks, memory and tool output all come here.

Detection is conservative: known token formats, secret-named assignments with a literal value, and
high-entropy strings. Hex strings (commit ids, checksums in lockfiles) count only when they are 40+
characters long and assigned to a name that does not say they are a hash or a revision.
"""

from __future__ import annotations

import math
import os
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# Specific token formats, most specific first: when matches overlap, the earlier pattern wins.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private_key", re.compile(
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
        r"|(?:\r?\n(?:[A-Za-z0-9+/=]{8,}|Proc-Type:[^\n]*|DEK-Info:[^\n]*)?)*)")),
    ("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("anthropic_key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai_key", re.compile(r"\bsk-(?!ant-)(?=[A-Za-z0-9_\-]*\d)[A-Za-z0-9_\-]{20,}")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("stripe_key", re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")),
)

# NAME = "value" / NAME: 'value' / "name": "value"; whether NAME says "secret" is `_assigned_secret`'s call.
_ASSIGNED_LITERAL = re.compile(  # the lookbehind starts names only at their start: linear time on long runs
    r"(?<![A-Za-z0-9_.\-])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?[ \t]*(?::=|=>|=|:)[ \t]*"
    r"(?P<q>[\"'`])(?P<value>[^\"'`\s]{8,})(?P=q)")
# Unquoted, as in .env files, shell and YAML: only at the start of a line.
_ASSIGNED_BARE = re.compile(
    r"(?m)^[ \t]*(?:export[ \t]+)?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[ \t]*[=:][ \t]*"
    r"(?P<value>[A-Za-z0-9+/=_\-.~]{16,})(?=[ \t]*(?:#|$))")
_NAME_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_NAME_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# Names ending in these hold a secret whatever the value looks like; "key" and "token" names (cache_key,
# sort_key, next_token) hold one only when the value looks random.
_SECRET_WORDS = frozenset({"secret", "password", "passwd", "pwd", "passphrase", "credential", "credentials"})
_KEY_WORDS = frozenset({"key", "token", "apikey", "secretkey", "accesskey", "privatekey", "authtoken"})
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|<.*>|none|null|nil|true|false|secret|password)$"
    r"|example|dummy|placeholder|changeme|change_me|your[_\-]|redacted|fake|sample|test|xxxx|\$\{|\{\{|%\(")

# Candidates for the entropy test: runs of base64/base64url characters, and runs of hex digits.
_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
_HEX = re.compile(r"\b[0-9a-fA-F]{40,}\b")
_HASH_NAME = re.compile(
    r"(?i)(?:sha|hash|checksum|digest|commit|rev|ref|integrity|etag|oid|tree|parent|object|fingerprint|"
    r"uuid|version|resolved|id)s?$")
_HASH_BEFORE = re.compile(r"(?i)(?:sha1|sha224|sha256|sha384|sha512|md5|h1|base64)[-:=,]$")
_HASH_PREFIX = re.compile(r"(?i)^(?:sha1|sha224|sha256|sha384|sha512|md5)[-_]")
_MAX_TOKEN = 200  # longer runs are data (minified code, embedded images), not credentials
_ENTROPY_SHARE = 0.8  # of the most a string of its length can have; random base64 has about 0.9
_MIN_CLASS_CHANGES = 0.45  # share of neighbours in different classes: ~0.64 random, ~0.35 CamelCase words
_MIN_VALUE_CLASS_CHANGES = 0.3  # for values assigned to secret names, which may be lowercase alphanumeric
_HEX_ENTROPY = 3.0

ENV_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
_MIN_ENV_VALUE = 8

# Files whose long strings are checksums by design; callers skip the entropy test for them.
LOCKFILE_NAMES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", "poetry.lock",
    "Pipfile.lock", "uv.lock", "pdm.lock", "Cargo.lock", "go.sum", "Gemfile.lock", "composer.lock",
    "flake.lock", "mix.lock", "pubspec.lock", "Package.resolved", "packages.lock.json", "gradle.lockfile",
})


@dataclass(frozen=True, slots=True)
class SecretMatch:
    line: int  # 1-based line of `start`
    kind: str
    start: int  # offsets into the text searched; text[start:end] is the secret
    end: int


def find_secrets(text: str, *, entropy: bool = True) -> list[SecretMatch]:
    """Secrets in `text`, in order, without overlaps; `entropy=False` skips the entropy test (lockfiles)."""
    starts: list[int] = []  # accepted spans, sorted and disjoint
    ends: list[int] = []
    kinds: list[str] = []
    for kind, start, end in _candidates(text, entropy):
        i = bisect_right(starts, start)
        if (i and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        kinds.insert(i, kind)
    lines = _line_starts(text)
    return [SecretMatch(bisect_right(lines, start), kind, start, end)
            for start, end, kind in zip(starts, ends, kinds, strict=True)]


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """`text` with every secret replaced by `[REDACTED:kind]`.

    Values of environment variables named *_KEY, *_TOKEN, *_SECRET, *_PASSWORD (8+ characters) are replaced
    wherever they appear, as `[REDACTED:env:NAME]`; `env` defaults to os.environ.
    """
    text = _redact_env(text, os.environ if env is None else env)
    pieces = []
    pos = 0
    for match in find_secrets(text):
        pieces += [text[pos:match.start], f"[REDACTED:{match.kind}]"]
        pos = match.end
    pieces.append(text[pos:])
    return "".join(pieces)


def is_lockfile(path: str) -> bool:
    return path.rsplit("/", 1)[-1] in LOCKFILE_NAMES


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s own character distribution."""
    if not value:
        return 0.0
    total = len(value)
    return -sum(count / total * math.log2(count / total) for count in Counter(value).values())


def _candidates(text: str, entropy: bool) -> Iterator[tuple[str, int, int]]:
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            yield kind, match.start(), match.end()
    for pattern in (_ASSIGNED_LITERAL, _ASSIGNED_BARE):
        for match in pattern.finditer(text):
            quoted = pattern is _ASSIGNED_LITERAL
            if _assigned_secret(match.group("name"), match.group("value"), quoted):
                yield "generic_secret", match.start("value"), match.end("value")
    if entropy:
        yield from _high_entropy(text)


def _assigned_secret(name: str, value: str, quoted: bool) -> bool:
    words = [word.lower() for word in _NAME_WORD.findall(name)]
    last = words[-1] if words else ""
    if (last not in _SECRET_WORDS and last not in _KEY_WORDS) or _PLACEHOLDER.search(value):
        return False
    if quoted and last in _SECRET_WORDS:
        # a password may be any string, but not an identifier or a path: that is a reference to one
        return len(set(value)) > 3 and not re.fullmatch(r"[A-Za-z_.:/\-]+", value)
    return _random_value(value)


def _random_value(value: str) -> bool:
    if _NAME_LIKE.fullmatch(value):
        return False  # settings.SECRET_KEY, DJANGO_SECRET_KEY_1: a reference to a secret
    has_digit = any(ch.isdigit() for ch in value)
    has_alpha = any(ch.isalpha() for ch in value)
    if len(value) < 16 or not (has_digit and has_alpha) or shannon_entropy(value) < 3.3:
        return False
    return _class_changes(value) >= _MIN_VALUE_CLASS_CHANGES  # "user:1234:profile" is made of words


def _high_entropy(text: str) -> Iterator[tuple[str, int, int]]:
    for match in _TOKEN.finditer(text):
        token = match.group()
        if len(token) > _MAX_TOKEN or _HASH_PREFIX.match(token):
            continue
        if _HASH_BEFORE.search(text, max(0, match.start() - 8), match.start()):
            continue
        if re.fullmatch(r"[0-9a-fA-F]+", token.rstrip("=")):
            continue  # hex: judged below, by the stricter rule
        if _looks_random(token):
            yield "high_entropy", match.start(), match.end()
    for match in _HEX.finditer(text):
        token = match.group()
        if len(token) > _MAX_TOKEN or shannon_entropy(token) < _HEX_ENTROPY:
            continue
        if _assigned_to_non_hash(text, match.start()):
            yield "high_entropy_hex", match.start(), match.end()


def _looks_random(token: str) -> bool:
    """Random base64 mixes case and digits everywhere; long identifiers, paths and words do not."""
    if not (any(ch.isupper() for ch in token) and any(ch.islower() for ch in token)
            and sum(ch.isdigit() for ch in token) >= 2):
        return False
    changes = _class_changes(token)
    ceiling = math.log2(min(len(token), 64))
    return changes >= _MIN_CLASS_CHANGES and shannon_entropy(token) >= _ENTROPY_SHARE * ceiling


def _class_changes(value: str) -> float:
    """Share of neighbouring characters of different classes (upper, lower, digit, other)."""
    classes = [_char_class(ch) for ch in value]
    return sum(a != b for a, b in zip(classes, classes[1:], strict=False)) / max(len(value) - 1, 1)


def _char_class(ch: str) -> int:
    return 0 if ch.isupper() else 1 if ch.islower() else 2 if ch.isdigit() else 3


def _assigned_to_non_hash(text: str, start: int) -> bool:
    """True when text[start:] is the value in `name = `, `name: `, `"name": "` and name is not hash-like.

    Read backwards by hand: a regex searched over the text before `start` would be quadratic on long lines.
    """
    window = max(start - 200, 0)
    line_start = text.rfind("\n", window, start) + 1 or window
    before = text[line_start:start].rstrip(" \t\"'`")
    if not before.endswith(("=", ":")):
        return False
    before = before[:-1].removesuffix(":").rstrip(" \t\"'")
    end = len(before)
    while end and (before[end - 1].isalnum() or before[end - 1] in "_.-"):
        end -= 1
    name = before[end:]
    return bool(name) and not _HASH_NAME.search(name)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts += [match.end() for match in re.finditer("\n", text)]
    return starts


def _redact_env(text: str, env: Mapping[str, str]) -> str:
    secrets = sorted(
        ((value, name) for name, value in env.items()
         if name.upper().endswith(ENV_SECRET_SUFFIXES) and len(value) >= _MIN_ENV_VALUE),
        key=lambda item: (-len(item[0]), item[1]),
    )
    for value, name in secrets:  # longest first, so a value containing another is replaced whole
        if value in text:
            text = text.replace(value, f"[REDACTED:env:{name}]")
    return text

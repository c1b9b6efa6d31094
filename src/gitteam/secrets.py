"""The one place that detects and redacts secrets: review checks, memory and tool output all come here.

Detection is conservative: known token formats, secret-named assignments with a literal value, and
high-entropy strings. Hex strings (commit ids, checksums in lockfiles) count only when they are 40+
characters long and assigned to a name that does not say they are a hash or a revision.

`redact` is the one function every text bound for a model, a note, a commit message or the journal goes
through. Besides the patterns it knows exact values: those of secret-named variables in gitteam's own
environment (`is_secret_name`, the same rule that keeps them out of contained commands) and those `learn`
was given (the values in secret files copied into a worktree). `SecretFiles` says which files the agents'
read tools refuse, and `added_markers` which redaction markers a write would put into a file.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import re
import threading
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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

# Environment names that hold credentials (is_secret_name): a part anywhere in the name, a word of it, or a
# provider's prefix (their base URLs and profiles say where credentials go, and contained commands need none).
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "PRIVATE")
SECRET_NAME_WORDS = frozenset({"AUTH", "PASS", "PAT", "DSN", "COOKIE", "SIGNATURE"})
SECRET_NAME_PREFIXES = ("ANTHROPIC_", "OPENAI_", "AWS_")
_MIN_ENV_VALUE = 8  # shorter values ("1", "true", "us") would be replaced all over the text
_PLAIN_URL = re.compile(r"[a-z][a-z0-9+.\-]*://[^@/?#\s]+(?:/[^?#@\s]*)?", re.IGNORECASE)  # no userinfo, no query
# The password of a URL's userinfo (postgres://user:PASSWORD@host): redacted, but not a finding of the check,
# where test fixtures and compose files hold such URLs with throwaway passwords.
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:(?P<value>[^\s@/]{3,})@", re.IGNORECASE)
# What `redact` writes: a bracketed kind, `env:NAME` for a variable's value, `file:NAME` for a learned one.
MARKER = re.compile(r"\[REDACTED:(?:[a-z0-9_]+|(?:env|file):[A-Za-z0-9_.\-]+)\]")

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
    """`text` with every secret replaced by a marker: the one redaction every path to a model goes through.

    Exact values first: those of secret-named variables (is_secret_name, 8+ characters) of `env` (default:
    os.environ) as `[REDACTED:env:NAME]`, and the learned ones (`learn`) as `[REDACTED:file:NAME]`, wherever
    they appear; then every pattern match as `[REDACTED:kind]`. Idempotent: redacting twice changes nothing.
    """
    if not text:
        return text
    return _redact(text, _known_values(os.environ if env is None else env))


Known = tuple[tuple[str, str], ...]


def _known_values(env: Mapping[str, str]) -> Known:
    """The exact values `redact` replaces, (value, label), longest first so a value containing another is
    replaced whole."""
    known = [(value, f"env:{name}") for name, value in _secret_values(env)]
    with _LEARNED_LOCK:
        known += _LEARNED
    return tuple(sorted(known, key=lambda item: (-len(item[0]), item[1])))


def _redact(text: str, known: Known) -> str:
    return _REMEMBERED.redacted(text, known) if len(text) >= _REMEMBERED_LENGTH else _redact_text(text, known)


class _Remembered:
    """Redactions of long texts, the most recently used kept within a budget of characters (texts and results).

    Long texts come again and again: an agent's system prompt and its conversation go into its transcript at
    every turn, a review's prompt holds the whole diff. Once per text and set of known values is enough; short
    ones (most of a journal event's strings) cost less to scan than to remember, and one too big for an eighth
    of the budget is not kept (a run on a big repository must not hold its largest diffs twice)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[tuple[str, Known], str] = OrderedDict()
        self._lock = threading.Lock()

    def redacted(self, text: str, known: Known) -> str:
        key = (text, known)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        result = _redact_text(text, known)
        size = _kept_size(text, result)
        if size <= self.budget // 8:
            with self._lock:
                if key not in self._items:
                    self._items[key] = result
                    self.used += size
                while self.used > self.budget:
                    (old, _), old_result = self._items.popitem(last=False)
                    self.used -= _kept_size(old, old_result)
        return result


def _kept_size(text: str, result: str) -> int:
    return len(text) + (0 if result is text else len(result))


_REMEMBERED_LENGTH = 512
_REMEMBERED = _Remembered(budget=8_000_000)


def _redact_text(text: str, known: Known) -> str:
    for value, label in known:
        if value in text:
            text = text.replace(value, f"[REDACTED:{label}]")
    found = _redactions(text)
    if not found:
        return text
    pieces = []
    pos = 0
    for match in found:
        pieces += [text[pos:match.start], f"[REDACTED:{match.kind}]"]
        pos = match.end
    pieces.append(text[pos:])
    return "".join(pieces)


def redact_data(value: Any) -> Any:
    """Every string in a JSON-like value redacted (keys stay): journal events, provenance notes. The values to
    replace are gathered once for the whole value, not once per string in it."""
    return _redact_data(value, _known_values(os.environ))


def _redact_data(value: Any, known: Known) -> Any:
    if isinstance(value, str):
        return _redact(value, known) if value else value
    if isinstance(value, dict):
        return {key: _redact_data(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_data(item, known) for item in value]
    return value


@functools.lru_cache(maxsize=4096)  # every `redact` asks it of each environment variable: once a name, not per call
def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential: the one rule, for what contained
    commands may not inherit and for which values `redact` replaces wherever they appear."""
    upper = name.upper()
    if any(part in upper for part in SECRET_NAME_PARTS) or upper.startswith(SECRET_NAME_PREFIXES):
        return True
    return any(word in SECRET_NAME_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def learn(values: Mapping[str, str]) -> None:
    """Remember secret values (name -> value) for every later `redact` in this process, e.g. those of a
    `.env` copied into a worktree: a command that prints them gets them replaced, whatever they look like."""
    fresh = [(value, f"file:{_label(name)}") for name, value in values.items() if _worth_replacing(value)]
    with _LEARNED_LOCK:
        _LEARNED.extend(item for item in fresh if item not in _LEARNED)


def assigned_values(text: str) -> dict[str, str]:
    """The values assigned to secret-named keys in a secret file, in whatever syntax it uses (.env, .npmrc,
    .netrc, .pypirc, JSON, YAML): name -> value."""
    found = {}
    for match in _ANY_ASSIGNMENT.finditer(text):
        name = match.group("name") or match.group("word")
        value = match.group("value") or match.group("word_value")
        if is_secret_name(name) and not value.startswith("-----") and not _PLACEHOLDER.search(value):
            found[name] = value
    return found


def added_markers(before: str, after: str) -> list[str]:
    """The redaction markers `after` holds more often than `before`: a write of them would put a marker where
    the file may hold the real secret (the agent saw a redacted copy). Markers the file already had are its own."""
    had = Counter(MARKER.findall(before))
    return sorted(marker for marker, count in Counter(MARKER.findall(after)).items() if count > had[marker])


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


_LEARNED: list[tuple[str, str]] = []  # (value, label), learned by this process; only ever added to
_LEARNED_LOCK = threading.Lock()
# `name = value`, `name: value`, `"name": "value"`, `name value` (.netrc), `//host/:_authToken=value` (.npmrc)
# `name = value`, `name: value`, `"name": "value"` (.env, .pypirc, JSON, YAML, `//host/:_authToken=value` in
# .npmrc), and .netrc's `password value`
_ANY_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)[\"']?[ \t]*[=:][ \t]*[\"']?(?P<value>[^\s\"',;]{8,})"
    r"|(?i:\b(?P<word>password|passwd|secret|token)[ \t]+(?P<word_value>[^\s\"',;]{8,}))")
_TEMPLATED = re.compile(r"[{}$<>%()]")


def _secret_values(env: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    for name, value in env.items():
        if is_secret_name(name) and _worth_replacing(value):
            yield name, value


def _worth_replacing(value: str) -> bool:
    """Long enough, and not a plain URL or an existing path (where a credential is, not what it is)."""
    if len(value) < _MIN_ENV_VALUE or not value.strip():
        return False
    if _PLAIN_URL.fullmatch(value):
        return False
    return not (value.startswith(("/", "~/")) and os.path.exists(os.path.expanduser(value)))


def _label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_.-") or "value"


def _redactions(text: str) -> list[SecretMatch]:
    """What `redact` replaces after the exact values: find_secrets, and passwords in URLs outside them."""
    found = find_secrets(text)
    taken = [(match.start, match.end) for match in found]
    for url in _URL_PASSWORD.finditer(text):
        start, end = url.span("value")
        value = url.group("value")
        if _TEMPLATED.search(value) or MARKER.fullmatch(value) or _PLACEHOLDER.search(value):
            continue
        if not any(a < end and start < b for a, b in taken):
            found.append(SecretMatch(0, "url_password", start, end))
    return sorted(found, key=lambda match: match.start)


# --- secret files ------------------------------------------------------------------------------------

# Files that hold credentials by their name; the agents' read tools refuse them ([secrets] files).
SECRET_FILES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".npmrc", ".pypirc", ".netrc", "_netrc",
    ".git-credentials", "credentials", "credentials*.json", "*.tfstate", "*.tfstate.backup", ".htpasswd",
)
# Of those, the ones that document rather than hold secrets ([secrets] allow_read).
READABLE_SECRET_FILES = ("*.example", "*.sample", "*.template", "*.dist", "*.pub")


@dataclass(frozen=True, slots=True)
class SecretFiles:
    """Which repository paths the agents' read tools refuse: one of `files` and none of `allow_read`.

    A pattern without "/" matches a file name at any depth; with "/", the whole path (`**/` spans
    directories); ending in "/", any path under such a directory. Matched without regard to case.
    """

    files: Sequence[str] = SECRET_FILES
    allow_read: Sequence[str] = READABLE_SECRET_FILES

    def hides(self, path: str) -> bool:
        folded = path.casefold()
        return _matcher(tuple(self.files))(folded) and not _matcher(tuple(self.allow_read))(folded)

    def refusal(self, path: str) -> str:
        return (f"refused: {path} is a secret file (credentials by its name): agents may not read it. If the "
                f"task needs to know what it holds, say so in your summary; a person can allow it with "
                f"[secrets] allow_read in their user config")


@functools.lru_cache(maxsize=32)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a case-folded path matches one of `patterns` (as SecretFiles reads them), as one compiled regular
    expression per kind of pattern: a map or a file listing asks it of every path of the repository."""
    names: list[str] = []
    paths: list[str] = []
    parts: list[str] = []
    prefixes: list[str] = []
    for pattern in (p.casefold() for p in patterns):
        if pattern.endswith("/"):
            directory = pattern.rstrip("/")
            (prefixes if "/" in directory else parts).append(fnmatch.translate(directory))
        elif "/" not in pattern:
            names.append(fnmatch.translate(pattern))
        else:
            paths.append(fnmatch.translate(pattern))
            if pattern.startswith("**/"):
                paths.append(fnmatch.translate(pattern[3:]))

    def one(translated: list[str]) -> Callable[[str], object] | None:
        return re.compile("|".join(translated)).match if translated else None

    name, whole, part, prefix = one(names), one(paths), one(parts), one(prefixes)

    def matches(path: str) -> bool:
        if name is not None and name(path.rpartition("/")[2]):
            return True
        if whole is not None and whole(path):
            return True
        if part is None and prefix is None:
            return False
        parents = path.split("/")[:-1]
        if part is not None and any(part(p) for p in parents):
            return True
        return prefix is not None and any(prefix("/".join(parents[:i])) for i in range(1, len(parents) + 1))

    return matches

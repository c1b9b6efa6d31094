"""Large diffs split into pieces a reviewer can read: by file, then by hunk, under a token budget.

Files are packed whole, in diff order, while they fit. A file too large for one piece is split between
hunks, each piece repeating the file's header; a hunk too large alone is split between its lines, each part
with a recomputed `@@ -a,b +c,d @@` header, so line numbers read from any piece are the file's own. A single
line longer than a whole piece is cut short (said so in the line). Every piece is a valid diff of part of
the change and, but for a file header alone past the budget, estimates at most `budget` tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gitteam.review.diff import file_sections, hunk_start
from gitteam.tokens import CHARS_PER_TOKEN, estimate_tokens

_HUNK_HEADER = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)")
_HUNK_HEADER_ROOM = 80  # characters kept free for a recomputed hunk header
_CUT_NOTE = " [... {n} characters cut by gitteam]\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str  # a valid git diff of part of the change
    files: tuple[str, ...]  # the files it shows (a file split by hunk appears in several chunks)
    tokens: int  # estimated, as budgets count them


@dataclass(frozen=True, slots=True)
class _Piece:
    path: str
    text: str


def chunk_diff(text: str, budget: int) -> list[Chunk]:
    """The diff as chunks of at most `budget` estimated tokens each, in diff order; [] for an empty diff."""
    limit = budget * CHARS_PER_TOKEN
    chunks: list[Chunk] = []
    parts: list[_Piece] = []
    size = 0
    for path, lines in file_sections(text):
        for piece in _pieces(path, lines, limit):
            if parts and size + len(piece.text) > limit:
                chunks.append(_chunk(parts))
                parts, size = [], 0
            parts.append(piece)
            size += len(piece.text)
    if parts:
        chunks.append(_chunk(parts))
    return chunks


def _chunk(parts: list[_Piece]) -> Chunk:
    text = "".join(part.text for part in parts)
    files = tuple(dict.fromkeys(part.path for part in parts))
    return Chunk(text, files, estimate_tokens(text))


def _pieces(path: str, lines: list[str], limit: int) -> Iterator[_Piece]:
    """The file whole if it fits, else its header with as many hunks (or hunk parts) as fit, repeatedly."""
    whole = "".join(lines)
    if len(whole) <= limit:
        yield _Piece(path, whole)
        return
    start = hunk_start(lines)
    header = "".join(lines[:start])
    room = max(limit - len(header), 1)
    body: list[str] = []
    size = 0
    for hunk in _hunks(lines[start:], room):
        if body and size + len(hunk) > room:
            yield _Piece(path, header + "".join(body))
            body, size = [], 0
        body.append(hunk)
        size += len(hunk)
    yield _Piece(path, header + "".join(body))


def _hunks(lines: list[str], room: int) -> Iterator[str]:
    """Each hunk as text; one larger than `room` comes as several smaller hunks with their own headers."""
    starts = [i for i, line in enumerate(lines) if line.startswith("@@")] + [len(lines)]
    for begin, end in zip(starts, starts[1:], strict=False):
        hunk = lines[begin:end]
        text = "".join(hunk)
        header = _HUNK_HEADER.match(hunk[0])
        if len(text) <= room or header is None:
            yield text
        else:
            yield from _split_hunk(header, hunk[1:], room)


def _split_hunk(header: re.Match[str], body: list[str], room: int) -> Iterator[str]:
    old_line = _first_line(header[1], header[2])
    new_line = _first_line(header[3], header[4])
    context = header[5].rstrip("\n")
    room = max(room - _HUNK_HEADER_ROOM, 1)
    part: list[str] = []
    size = old_count = new_count = 0
    for line in _fitted(body, room):
        if part and size + len(line) > room and not line.startswith("\\"):
            yield _hunk_text(part, old_line, old_count, new_line, new_count, context)
            old_line, new_line = old_line + old_count, new_line + new_count
            part, size, old_count, new_count = [], 0, 0, 0
        part.append(line)
        size += len(line)
        kind = line[:1]
        old_count += kind in (" ", "-", "\n")
        new_count += kind in (" ", "+", "\n")
    if part:
        yield _hunk_text(part, old_line, old_count, new_line, new_count, context)


def _first_line(start: str, count: str | None) -> int:
    """The first line a hunk side covers (an empty side names the line before it)."""
    return int(start) + (1 if count == "0" else 0)


def _hunk_text(lines: list[str], old_line: int, old_count: int, new_line: int, new_count: int,
               context: str) -> str:
    old_start = old_line if old_count else old_line - 1
    new_start = new_line if new_count else new_line - 1
    return f"@@ -{old_start},{old_count} +{new_start},{new_count} @@{context}\n" + "".join(lines)


def _fitted(lines: list[str], room: int) -> Iterator[str]:
    """Lines as they are, but one longer than `room` cut short, saying how much was cut."""
    for line in lines:
        if len(line) <= room:
            yield line
            continue
        keep = max(room - len(_CUT_NOTE) - 12, 1)
        yield line[:keep] + _CUT_NOTE.format(n=len(line) - keep - 1)

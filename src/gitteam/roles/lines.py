"""Text as the file tools show it: windows of numbered lines, the region an edit left, and where text that
was not found comes closest.

A line is what ends in "\\n" (as git grep counts them, so `search` and `read_file` agree on numbers); a
trailing "\\r" is not shown. Lines are numbered the way `cat -n` does it, a number and a tab, which Claude
Code's Read and SWE-agent's editor show too: models know not to copy the prefix into an edit.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from gitteam.roles.errors import ToolRefused

MAX_LINES = 2000  # of one read_file window: Claude Code's Read and opencode's read stop there too
MAX_CHARS = 60_000  # of one window (about 15k tokens), whichever comes first
MAX_LINE_CHARS = 2000  # a longer line (minified code, data) is cut in the window
SNIPPET_LINES = 4  # shown around an edit, as SWE-agent's editor does
NEAR_RATIO = 0.6  # below this the closest text is not worth showing
MAX_PLACES = 10  # occurrences listed when `old` matches several places
_NUMBERED = re.compile(r"^ *\d+\t")


def split_lines(text: str) -> list[str]:
    """The file's lines without their "\\n"; a last line without one is a line too."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def numbered(lines: list[str], first: int, last: int) -> str:
    """Lines first..last (1-based, inclusive) as `cat -n` shows them."""
    return "\n".join(_numbered_line(n, lines[n - 1]) for n in range(first, last + 1))


def _numbered_line(number: int, line: str) -> str:
    line = line.removesuffix("\r")
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS] + f" [... line cut: {len(line):,} characters]"
    return f"{number:>6}\t{line}"


def window(text: str, path: str, start_line: int | None, end_line: int | None) -> str:
    """read_file's answer: lines start_line..end_line of the text, at most MAX_LINES lines and about MAX_CHARS
    characters, headed by which lines of how many they are and ending with how to read on."""
    lines = split_lines(text)
    total = len(lines)
    if total == 0:
        return f"{path}: empty file (0 lines)"
    first = max(1, start_line or 1)
    if first > total:
        raise ToolRefused(f"read_file {path}: start_line {first} is past the end: the file has {total} lines; "
                          f"read from start_line={max(1, total - MAX_LINES + 1)} to see its end")
    last = total if end_line is None else min(end_line, total)
    if last < first:
        raise ToolRefused(f"read_file {path}: end_line {end_line} is before start_line {first}; give end_line >= "
                          "start_line, or leave end_line out to read to the end")
    shown: list[str] = []
    size = 0
    for number in range(first, min(last, first + MAX_LINES - 1) + 1):
        entry = _numbered_line(number, lines[number - 1])
        if shown and size + len(entry) + 1 > MAX_CHARS:
            break
        shown.append(entry)
        size += len(entry) + 1
    upto = first + len(shown) - 1
    whole = " (the whole file)" if first == 1 and upto == total else ""
    parts = [f"{path}: lines {first}-{upto} of {total}{whole}", *shown]
    if upto < last:
        parts.append(f"[cut at line {upto}: one read shows at most {MAX_LINES:,} lines or {MAX_CHARS:,} characters. "
                     f"{total - upto:,} more lines: read on with read_file(path={path!r}, start_line={upto + 1}), "
                     "or find what you need with search]")
    elif upto < total:
        parts.append(f"[{total - upto:,} more lines after line {upto}: read_file(path={path!r}, "
                     f"start_line={upto + 1}) reads on]")
    if any(len(lines[n - 1]) > MAX_LINE_CHARS for n in range(first, upto + 1)):
        parts.append(f"[lines longer than {MAX_LINE_CHARS:,} characters are cut; search finds text in them]")
    return "\n".join(parts)


def line_of(text: str, index: int) -> int:
    """The 1-based line holding character `index`."""
    return text.count("\n", 0, index) + 1


def edited_region(path: str, before: str, after: str, index: int, old: str, new: str) -> str:
    """edit_file's answer: which lines `old` held and `new` holds now, and those lines numbered with
    SNIPPET_LINES around them, as they are now."""
    first = line_of(after, index)
    old_last = first + old.count("\n") - (1 if old.endswith("\n") else 0)
    new_lines = new.count("\n") + (0 if new.endswith("\n") or not new else 1)
    lines = split_lines(after)
    if new_lines == 0:
        what = f"deleted `old` from {_span(first, old_last)}"
        low, high = first - SNIPPET_LINES, first + SNIPPET_LINES - 1
    else:
        new_last = first + new_lines - 1
        what = f"{_span(first, old_last)} replaced by {_span(first, new_last)}"
        low, high = first - SNIPPET_LINES, new_last + SNIPPET_LINES
    low, high = max(1, low), min(len(lines), high)
    if low > high:
        return f"edited {path}: {what}; the file is now empty"
    return (f"edited {path}: {what}. Lines {low}-{high} of {len(lines)} now:\n{numbered(lines, low, high)}\n"
            "[check the result; another edit_file fixes it if it is not what you meant]")


def _span(first: int, last: int) -> str:
    return f"line {first}" if last <= first else f"lines {first}-{last}"


def places(text: str, old: str) -> list[int]:
    """The lines where each occurrence of `old` starts."""
    found: list[int] = []
    start = text.find(old)
    while start != -1:
        found.append(line_of(text, start))
        start = text.find(old, start + 1)
    return found


def several(path: str, text: str, old: str, count: int) -> str:
    """Why `old` cannot be replaced when it matches several places, and where they are."""
    lines = split_lines(text)
    starts = places(text, old)
    shown = "\n".join(_numbered_line(n, lines[n - 1]) for n in starts[:MAX_PLACES])
    more = f"\n... and {len(starts) - MAX_PLACES} more" if len(starts) > MAX_PLACES else ""
    return (f"edit_file {path}: `old` matches {count} places, starting at lines "
            f"{', '.join(map(str, starts[:MAX_PLACES]))}{'...' if len(starts) > MAX_PLACES else ''}:\n"
            f"{shown}{more}\nNothing was changed. Include more of the surrounding lines in `old` (and in `new`) "
            "so that it matches exactly one place.")


@dataclass(frozen=True, slots=True)
class Near:
    first: int  # 1-based lines of the closest text
    last: int
    ratio: float


def closest(text: str, old: str) -> Near | None:
    """The run of lines, as many as `old` has, most like `old` (difflib), when it is alike enough to help."""
    lines = split_lines(text)
    wanted = old.strip("\n")
    size = max(1, len(split_lines(wanted)))
    if not lines or not wanted:
        return None
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(wanted)  # the matcher keeps what it learnt of seq2 across candidates
    best: Near | None = None
    for start in range(max(1, len(lines) - size + 1)):
        matcher.set_seq1("\n".join(lines[start:start + size]))
        floor = best.ratio if best else NEAR_RATIO
        if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
            continue
        ratio = matcher.ratio()
        if ratio >= floor and (best is None or ratio > best.ratio):
            best = Near(start + 1, min(len(lines), start + size), ratio)
    return best


def not_found(path: str, text: str, old: str) -> str:
    """Why `old` was not found, the closest text with its line numbers, and how to go on."""
    hints: list[str] = []
    old_lines = [line for line in split_lines(old) if line.strip()]
    if old_lines and all(_NUMBERED.match(line) for line in old_lines):
        hints.append("`old` starts its lines with read_file's line numbers: those are not part of the file; "
                     "leave out the number and the tab after it")
    if "\r\n" in text and "\r" not in old and "\n" in old:
        hints.append("the file's lines end in CRLF (\\r\\n)")
    near = closest(text, old)
    parts = [f"edit_file {path}: `old` was not found in the file; nothing was changed."]
    if near is not None:
        lines = split_lines(text)
        candidate = "\n".join(lines[near.first - 1:near.last])
        if _squeezed(candidate) == _squeezed(old):
            hints.append("the closest text differs from `old` only in whitespace (indentation, tabs or trailing "
                         "spaces)")
        parts.append(f"The closest text ({near.ratio:.0%} alike) is at {_span(near.first, near.last)}:\n"
                     f"{numbered(lines, near.first, near.last)}")
    parts.extend(f"Note: {hint}." for hint in hints)
    parts.append("Copy `old` exactly from the file as it is now (read_file the lines again: an earlier edit may "
                 "have changed them), without the line-number prefixes, then call edit_file again.")
    return "\n".join(parts)


def _squeezed(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.strip("\n").split("\n"))

"""Text as the file tools show it: windows of numbered lines.

A line is what ends in "\\n" (as git grep counts them, so `search` and `read_file` agree on numbers); a
trailing "\\r" is not shown. Lines are numbered the way `cat -n` does it, a number and a tab, which Claude
Code's Read and SWE-agent's editor show too: models know not to copy the prefix into an edit.
"""

from __future__ import annotations

from gitteam.roles.errors import ToolRefused

MAX_LINES = 2000  # of one read_file window: Claude Code's Read and opencode's read stop there too
MAX_CHARS = 60_000  # of one window (about 15k tokens), whichever comes first
MAX_LINE_CHARS = 2000  # a longer line (minified code, data) is cut in the window


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

"""Text from agents, models and repositories, made safe to show in a terminal.

A terminal obeys the bytes it is given: ESC and the C1 controls start sequences that move the cursor, erase
lines, hide text (`ESC[8m`) or write the clipboard (OSC 52); CR and backspace overwrite what was printed; and
the Unicode bidirectional overrides reorder what a person reads. Whatever an agent, a model or a repository
wrote is passed through `visible` (or `one_line`) before it reaches a terminal: such characters are shown,
never obeyed. C0 controls and DEL in caret notation as `cat -v` and `less` show them (ESC is `^[`, CR `^M`,
DEL `^?`), the others as `<U+009B>`. Newlines and tabs stay where the layout needs them.

`console()` is the rich console every command prints with: it passes every string it renders through the same
rule, so a field a caller forgot is still shown, not obeyed. JSON output stays exact data: `json_text` only
writes the same characters as JSON escapes.

The same characters are refused in file names (`locks/paths.py`), through `control_character`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# Each set below is (first, last) code point runs. Unicode's bidirectional formatting characters: embeddings and
# overrides (LRE, RLE, PDF, LRO, RLO), isolates (LRI, RLI, FSI, PDI), and the marks (LRM, RLM, ALM). "Trojan
# Source" (CVE-2021-42574) hides code with them.
BIDI = ((0x202A, 0x202E), (0x2066, 0x2069), (0x200E, 0x200F), (0x061C, 0x061C))
_C0 = ((0x00, 0x1F), (0x7F, 0x7F))
_C1 = ((0x80, 0x9F),)
_SEPARATORS = ((0x2028, 0x2029),)  # line and paragraph separators end a line for some readers, not for others
_SURROGATES = ((0xD800, 0xDFFF),)  # lone surrogates (from JSON or `surrogateescape`) cannot even be printed


def _class(runs: tuple[tuple[int, int], ...], but: str = "") -> re.Pattern[str]:
    """A character class of the code points in `runs`, less the characters `but`, written as ranges (from the
    runs, not from the 2,300 characters themselves: every command compiles these at its start)."""
    parts: list[tuple[int, int]] = []
    for first, last in sorted(runs):
        for code in sorted(ord(ch) for ch in but if first <= ord(ch) <= last):
            if first < code:
                parts.append((first, code - 1))
            first = code + 1
        if first <= last:
            parts.append((first, last))
    return re.compile("[" + "".join(re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")
                                    for first, last in parts) + "]")


def _shown(character: str) -> str:
    """How a control or bidi character is shown: C0 controls and DEL in caret notation (`^[`), the rest as
    `<U+202E>`."""
    code = ord(character)
    return f"^{chr(code ^ 0x40)}" if code < 0x20 or code == 0x7F else f"<U+{code:04X}>"


_ALL = (*_C0, *_C1, *BIDI, *_SEPARATORS, *_SURROGATES)


# Compiled at their first use: a class spanning the surrogates takes re 2 ms to compile, a cost every command paid
# at its start before it printed anything.
@cache
def _hostile() -> re.Pattern[str]:  # everything `one_line` shows
    return _class(_ALL)


@cache
def _in_text() -> re.Pattern[str]:  # what `visible` shows
    return _class(_ALL, but="\n\t")


@cache
def _in_line() -> re.Pattern[str]:
    return _class(_ALL, but="\t")


# rich markup: `[` then a tag; after `^[` (a shown ESC) such text would become one (see _SafeConsole)
_ESC_BEFORE_TAG = re.compile(r"\x1b(?=[a-z#/@][^\[]*?\])")


def _show(match: re.Match[str]) -> str:
    return _shown(match.group())


def visible(text: str) -> str:
    """`text` with every terminal control and bidi character shown instead of obeyed; newlines and tabs kept."""
    return _in_text().sub(_show, text) if _in_text().search(text) else text


def one_line(text: str) -> str:
    """Like `visible`, and newlines shown too (`^J`): a field that must stay one line (a name, a reason in a
    progress line, an error) cannot start a line of its own that looks like gitteam's."""
    return _in_line().sub(_show, text) if _in_line().search(text) else text


def markup(text: str) -> str:
    """`visible(text)`, then escaped for rich markup (`[bold]` in content stays text)."""
    from rich.markup import escape

    return escape(visible(text))


def markup_line(text: str) -> str:
    """`one_line(text)`, then escaped for rich markup."""
    from rich.markup import escape

    return escape(one_line(text))


def control_character(text: str) -> str | None:
    """The first terminal control or bidi character in `text` (newline and tab included), shown; else None."""
    found = _hostile().search(text)
    return None if found is None else _shown(found.group())


@cache
def _json_escaped() -> re.Pattern[str]:
    return _class(((0x7F, 0x7F), *_C1, *BIDI, *_SEPARATORS, *_SURROGATES))


def json_text(document: str) -> str:
    """A JSON document (from `json.dumps(..., ensure_ascii=False)`) with DEL, C1 controls, bidi characters, line
    separators (and lone surrogates, which cannot be printed) written as `\\uXXXX` escapes: the same data, and
    nothing a terminal obeys (json.dumps already escapes C0 controls). Outside strings JSON has only ASCII, so
    every such character is inside a string."""
    return _json_escaped().sub(lambda m: f"\\u{ord(m.group()):04x}", document)


def console(stderr: bool = False, **options: Any) -> Console:
    """The rich console gitteam prints with: markup for its own styles, no highlighting of content, long lines
    left whole, and every string shown by the rule above. `options` go to rich (a file, a forced terminal)."""
    if os.environ.get("NO_COLOR"):  # no-color.org: no styles at all, bold included
        options.setdefault("color_system", None)
    return _console_class()(stderr=stderr, highlight=False, soft_wrap=True, **options)


@cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class _SafeConsole(Console):
        """Every string rich renders (printed, or a table's cell) passes through `visible` first: the net under
        the callers' own `markup`/`markup_line`, which also keep fields on one line."""

        def render_str(self, text: str, **kwargs: Any) -> Text:
            if _in_text().search(text):
                markup_on = kwargs.get("markup")
                if markup_on is None:
                    markup_on = getattr(self, "_markup", True)
                if markup_on:  # `^[` + `bold]` must not become a `[bold]` tag
                    text = _ESC_BEFORE_TAG.sub("^\\\\[", text)
                text = visible(text)
            return super().render_str(text, **kwargs)

    return _SafeConsole


class _VisibleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


def show_warnings() -> None:
    """gitteam's log warnings (retries, unknown prices: they quote a provider's error text) on stderr, shown by the
    rule above; once, and only when nothing else handles the `gitteam` logger."""
    log = logging.getLogger("gitteam")
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_VisibleFormatter("%(message)s"))
    handler.setLevel(logging.WARNING)
    log.addHandler(handler)

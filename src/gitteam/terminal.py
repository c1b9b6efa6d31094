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

# Unicode's bidirectional formatting characters: embeddings and overrides (LRE, RLE, PDF, LRO, RLO), isolates
# (LRI, RLI, FSI, PDI), and the marks (LRM, RLM, ALM). "Trojan Source" (CVE-2021-42574) hides code with them.
BIDI = (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
_C0 = (*range(0x00, 0x20), 0x7F)
_C1 = tuple(range(0x80, 0xA0))
# Line and paragraph separators end a line for some readers and not for others.
_SEPARATORS = (0x2028, 0x2029)
_SURROGATES = range(0xD800, 0xE000)  # lone surrogates (from JSON or `surrogateescape`) cannot even be printed

_SHOWN: dict[str, str] = {chr(c): f"^{chr(c ^ 0x40)}" for c in _C0}
_SHOWN.update({chr(c): f"<U+{c:04X}>" for c in (*_C1, *BIDI, *_SEPARATORS, *_SURROGATES)})


def _class(codes: str) -> re.Pattern[str]:
    """A character class of `codes`, runs of consecutive ones as ranges: 2,000 single surrogates made every
    command spend 5 ms compiling these classes."""
    runs: list[list[int]] = []
    for code in sorted(set(map(ord, codes))):
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return re.compile("[" + "".join(re.escape(chr(first)) + (f"-{re.escape(chr(last))}" if last > first else "")
                                    for first, last in runs) + "]")


_HOSTILE = _class("".join(_SHOWN))  # everything `one_line` shows
_IN_TEXT = _class("".join(ch for ch in _SHOWN if ch not in "\n\t"))  # what `visible` shows
_IN_LINE = _class("".join(ch for ch in _SHOWN if ch != "\t"))
# rich markup: `[` then a tag; after `^[` (a shown ESC) such text would become one (see _SafeConsole)
_ESC_BEFORE_TAG = re.compile(r"\x1b(?=[a-z#/@][^\[]*?\])")


def _show(match: re.Match[str]) -> str:
    return _SHOWN[match.group()]


def visible(text: str) -> str:
    """`text` with every terminal control and bidi character shown instead of obeyed; newlines and tabs kept."""
    return _IN_TEXT.sub(_show, text) if _IN_TEXT.search(text) else text


def one_line(text: str) -> str:
    """Like `visible`, and newlines shown too (`^J`): a field that must stay one line (a name, a reason in a
    progress line, an error) cannot start a line of its own that looks like gitteam's."""
    return _IN_LINE.sub(_show, text) if _IN_LINE.search(text) else text


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
    found = _HOSTILE.search(text)
    return None if found is None else _SHOWN[found.group()]


_JSON_ESCAPED = _class("".join(chr(c) for c in (0x7F, *_C1, *BIDI, *_SEPARATORS, *_SURROGATES)))


def json_text(document: str) -> str:
    """A JSON document (from `json.dumps(..., ensure_ascii=False)`) with DEL, C1 controls, bidi characters, line
    separators (and lone surrogates, which cannot be printed) written as `\\uXXXX` escapes: the same data, and
    nothing a terminal obeys (json.dumps already escapes C0 controls). Outside strings JSON has only ASCII, so
    every such character is inside a string."""
    return _JSON_ESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


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
            if _IN_TEXT.search(text):
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

"""Verifying a reviewer's serious findings before they cost a round: the quoted code must be there.

A reviewer model can be wrong with confidence: a line it misremembers, a function it thinks is missing, an
issue the change did not introduce. A major or critical finding therefore carries `evidence`, the code it
rests on quoted exactly, and it is verified deterministically, with no second model call: the quote must
occur in the finding's file as the change leaves it, or in that file's part of the diff (a removed line is
evidence too); a finding about the change as a whole may quote the diff or what was asked (the request,
the subtask's instructions). Whitespace runs count as one space, and diff markers or the read tools' line
numbers in front of quoted lines are ignored. A finding that fails keeps its message, says why it was not
verified, and is lowered to minor: it reaches the backlog, never a round (see verdict.reviewer_decision).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from gitteam.review.diff import file_sections
from gitteam.review.verdict import Finding, Verdict

SERIOUS = ("major", "critical")
MIN_QUOTE_CHARS = 5  # a quote shorter than this ("x", "pass") proves nothing about where it is
_LINE_NUMBER = re.compile(r"^ *\d+(?:\t|: ?| \| ?)")  # read_file's "    12\t", and "12: " or "12 | " by hand
_SPACE = re.compile(r"\s+")


class Evidence:
    """Where quotes are looked for: each changed file at head (`read(path)`, None when it cannot be read),
    the diff, and the text of what was asked."""

    def __init__(self, diff: str, read: Callable[[str], str | None], asked: str = "") -> None:
        self.read = read
        self.sections = {path: _unmarked("".join(lines)) for path, lines in file_sections(diff)}
        self.whole = _normal(" ".join(self.sections.values()) + " " + asked)
        self._files: dict[str, str] = {}

    def verify(self, finding: Finding) -> Finding:
        """The finding as it stands when verified (or not serious), else lowered to minor, saying why."""
        if finding.severity not in SERIOUS:
            return finding
        problem = self.problem(finding)
        if problem is None:
            return finding
        return dataclasses.replace(finding, severity="minor",
                                   message=f"{finding.message} [not verified, so not a required change: {problem}]")

    def verify_all(self, verdict: Verdict) -> Verdict:
        return dataclasses.replace(verdict, findings=tuple(self.verify(f) for f in verdict.findings))

    def problem(self, finding: Finding) -> str | None:
        """Why the finding's evidence does not hold, or None when it does."""
        quote = (finding.evidence or "").strip()
        if not quote:
            return f"a {finding.severity} finding needs evidence: the code it is about, quoted exactly"
        candidates = [_normal(text) for text in (quote, _unmarked(quote), _unnumbered(quote))]
        candidates = [text for text in candidates if len(text) >= MIN_QUOTE_CHARS]
        if not candidates:
            return f"the evidence is shorter than {MIN_QUOTE_CHARS} characters"
        if finding.file:
            where = self._file(finding.file)
            place = finding.file
        else:
            where, place = self.whole, "the diff or the request"
        if any(text in where for text in candidates):
            return None
        return f"the evidence is not in {place}"

    def _file(self, path: str) -> str:
        if path not in self._files:
            text = self.read(path) or ""
            self._files[path] = _normal(text + " " + self.sections.get(path, ""))
        return self._files[path]


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _unmarked(text: str) -> str:
    """Diff lines without their marker (+, -, space); other lines (headers) as they are."""
    return "\n".join(line[1:] if line[:1] in ("+", "-", " ") else line for line in text.splitlines())


def _unnumbered(text: str) -> str:
    return "\n".join(_LINE_NUMBER.sub("", line, count=1) for line in text.splitlines())

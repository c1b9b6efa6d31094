"""Findings and verdicts: what reviewer models and deterministic checks say about a change.

A `Finding` with `file == ""` is about the change as a whole (a failing test command, a finding about a file
outside the diff); `line` is a line of the new version of `file`, or None. A reviewer's `evidence` is the code
it quotes for the finding: what review/evidence.py checks before a major finding may cost a round.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from gitteam.errors import GitteamError

Severity = Literal["info", "minor", "major", "critical"]
Decision = Literal["APPROVE", "REQUEST_CHANGES", "BLOCK"]

SEVERITIES: tuple[Severity, ...] = ("info", "minor", "major", "critical")
DECISIONS: tuple[Decision, ...] = ("APPROVE", "REQUEST_CHANGES", "BLOCK")


class ReviewFormatError(GitteamError):
    """Arguments of submit_review (or a stored verdict) that do not validate.

    `problems` are sentences a model can act on; str() lists them all, enough for a tool result.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems) or ["the review could not be read"]
        listed = "; ".join(self.problems)
        super().__init__(f"{len(self.problems)} problem(s): {listed}. Fix them and call submit_review again.")


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int | None
    severity: Severity
    message: str
    suggestion: str | None = None
    source: str = "reviewer"
    evidence: str | None = None  # the quoted code the finding rests on (reviewers'; checks quote in the message)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (json.dumps it); `from_json` reads it back."""
        data = {"file": self.file, "line": self.line, "severity": self.severity, "message": self.message,
                "suggestion": self.suggestion, "source": self.source}
        return data | ({"evidence": self.evidence} if self.evidence else {})

    @classmethod
    def from_json(cls, data: object) -> Finding:
        """Read what `to_json` wrote (a dict or its JSON text); ReviewFormatError if it does not validate."""
        problems: list[str] = []
        finding = _finding(_loads(data, problems), "finding", problems)
        if finding is None or problems:
            raise ReviewFormatError(problems)
        return finding


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    summary: str
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (json.dumps it); `from_json` reads it back."""
        return {"decision": self.decision, "summary": self.summary,
                "findings": [finding.to_json() for finding in self.findings]}

    @classmethod
    def from_json(cls, data: object) -> Verdict:
        """Read what `to_json` wrote (a dict or its JSON text); ReviewFormatError if it does not validate."""
        return _verdict(data)


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict from several: any BLOCK blocks, else any REQUEST_CHANGES requests, else APPROVE."""
    items = list(verdicts)
    decisions = {verdict.decision for verdict in items}
    decision: Decision = next((d for d in ("BLOCK", "REQUEST_CHANGES") if d in decisions), "APPROVE")
    summary = "\n".join(verdict.summary for verdict in items if verdict.summary)
    return Verdict(decision, summary, tuple(f for verdict in items for f in verdict.findings))


def reviewer_decision(verdict: Verdict) -> Verdict:
    """A reviewer's verdict with the decision its findings support: a BLOCK stands (harm is the reviewer's
    call, said in its summary); otherwise a major or critical finding requests changes and anything less
    approves, whatever the reviewer chose. Minor and info findings never cost a round: they go to the backlog."""
    if verdict.decision == "BLOCK":
        return verdict
    serious = any(finding.severity in ("major", "critical") for finding in verdict.findings)
    decision: Decision = "REQUEST_CHANGES" if serious else "APPROVE"
    if decision == verdict.decision:
        return verdict
    why = ("changes requested: a major finding" if serious
           else "approved: no major finding, the minor ones go to the backlog")
    return Verdict(decision, f"{verdict.summary} ({why}; the reviewer said {verdict.decision})".lstrip(),
                   verdict.findings)


def gate_decision(findings: Iterable[Finding]) -> Decision:
    """The decision deterministic findings force: critical blocks, major requests changes."""
    severities = {finding.severity for finding in findings}
    if "critical" in severities:
        return "BLOCK"
    if "major" in severities:
        return "REQUEST_CHANGES"
    return "APPROVE"


def parse_review(raw: object) -> Verdict:
    """Validate the arguments of the reviewer's submit_review tool call (a dict, or its JSON text).

    Lenient where intent is clear (decision and severity in any case, `findings` missing or null means none,
    a line number given as a digit string); every other problem is reported, all at once.
    """
    return _verdict(raw)


def _verdict(raw: object) -> Verdict:
    problems: list[str] = []
    data = _loads(raw, problems)
    if data is None:
        raise ReviewFormatError(problems)
    decision = _choice(data.get("decision"), DECISIONS, "decision", problems)
    summary = data.get("summary")
    if not isinstance(summary, str):
        problems.append("summary is required: a string that sums up the review")
    findings = _findings(data.get("findings"), problems)
    if problems or decision is None or not isinstance(summary, str):
        raise ReviewFormatError(problems)
    return Verdict(cast(Decision, decision), summary.strip(), findings)


def _loads(raw: object, problems: list[str]) -> Mapping[str, Any] | None:
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            problems.append("the arguments are not valid JSON: send an object")
            return None
    if not isinstance(raw, Mapping):
        problems.append(f"the arguments must be an object, not {_kind(raw)}")
        return None
    return raw


def _findings(raw: object, problems: list[str]) -> tuple[Finding, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        problems.append(f"findings must be a list of objects, not {_kind(raw)}")
        return ()
    found = []
    for index, item in enumerate(raw):
        where = f"findings[{index}]"
        data = item if isinstance(item, Mapping) else None
        if data is None:
            problems.append(f"{where} must be an object with file, severity and message, not {_kind(item)}")
            continue
        finding = _finding(data, where, problems)
        if finding is not None:
            found.append(finding)
    return tuple(found)


def _finding(data: Mapping[str, Any] | None, where: str, problems: list[str]) -> Finding | None:
    if data is None:
        return None
    before = len(problems)
    file = data.get("file")
    if not isinstance(file, str):
        problems.append(f"{where}.file is required: the path of the file the finding is about "
                        '("" for a finding about the change as a whole)')
    line = _line(data.get("line"), where, problems)
    severity = _choice(data.get("severity"), SEVERITIES, f"{where}.severity", problems)
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        problems.append(f"{where}.message is required: a non-empty string saying what is wrong")
    suggestion = data.get("suggestion")
    if suggestion is not None and not isinstance(suggestion, str):
        problems.append(f"{where}.suggestion must be a string when given")
    source = data.get("source", "reviewer")
    if not isinstance(source, str):
        problems.append(f"{where}.source must be a string when given")
    evidence = data.get("evidence")
    if evidence is not None and not isinstance(evidence, str):
        problems.append(f"{where}.evidence must be a string when given: the lines of code quoted exactly")
    if len(problems) > before:
        return None
    assert isinstance(file, str) and isinstance(message, str) and isinstance(source, str)
    hint = suggestion.strip() if isinstance(suggestion, str) else ""
    quoted = evidence.strip("\n") if isinstance(evidence, str) and evidence.strip() else None
    return Finding(file.strip(), line, cast(Severity, severity), message.strip(), hint or None, source, quoted)


def _line(raw: object, where: str, problems: list[str]) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    problems.append(f"{where}.line must be a line number (an integer from 1) in the new version of the file, "
                    "or left out")
    return None


def _choice(raw: object, allowed: tuple[str, ...], where: str, problems: list[str]) -> str | None:
    if isinstance(raw, str):
        normalized = raw.strip().replace(" ", "_").replace("-", "_")
        for option in allowed:
            if normalized.casefold() == option.casefold():
                return option
    shown = ", ".join(allowed)
    problems.append(f"{where} must be one of {shown}, not {raw!r}" if raw is not None
                    else f"{where} is required: one of {shown}")
    return None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def format_findings(findings: Sequence[Finding]) -> str:
    """Findings as lines a person or a coder reads: severity, place, message, suggestion."""
    if not findings:
        return "none"
    lines = []
    for f in findings:
        where = f"{f.file}:{f.line}" if f.line else f.file
        suggestion = f" Suggestion: {f.suggestion}" if f.suggestion else ""
        lines.append(f"- [{f.severity}] {where}: {f.message}{suggestion}")
    return "\n".join(lines)

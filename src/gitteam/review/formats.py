"""The gate's verdict for people and for CI: text, JSON, GitHub workflow annotations, SARIF 2.1.0, rdjson.

Every format carries every finding. Where a format needs a place in a file and a finding has none (it is
about the change as a whole), the finding goes where that format keeps such things: a GitHub annotation
without a file, a SARIF tool notification, an rdjson diagnostic with an empty path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gitteam import __version__
from gitteam.review.verdict import Finding, Severity, Verdict, format_findings

FORMATS = ("text", "json", "github", "sarif", "rdjson")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "gitteam"
TOOL_URL = "https://pypi.org/project/gitteam/"

_GITHUB_COMMAND: dict[Severity, str] = {"critical": "error", "major": "error", "minor": "warning", "info": "notice"}
_SARIF_LEVEL: dict[Severity, str] = {"critical": "error", "major": "error", "minor": "warning", "info": "note"}
_RDJSON_SEVERITY: dict[Severity, str] = {"critical": "ERROR", "major": "ERROR", "minor": "WARNING", "info": "INFO"}
_RULES = {
    "check:ownership": "A file changed outside the files the change may touch",
    "check:secrets": "A credential added in the change",
    "check:conflict_markers": "A merge conflict marker added",
    "check:python_syntax": "A Python file that does not compile",
    "check:large_files": "A binary or oversized file added",
    "check:test_command": "The configured test command failed",
    "check:empty": "Nothing was changed",
    "reviewer": "A reviewer agent's finding",
}


@dataclass(frozen=True, slots=True)
class Range:
    base: str
    head: str


def render(verdict: Verdict, output: str, where: Range) -> str:
    """The verdict in one of FORMATS, as the text to print (ending in a newline)."""
    renderers: dict[str, Callable[[Verdict, Range], str]] = {
        "text": text, "json": as_json, "github": github, "sarif": sarif, "rdjson": rdjson}
    return renderers[output](verdict, where)


def text(verdict: Verdict, where: Range) -> str:
    return f"{verdict.decision}: {verdict.summary}\n{format_findings(verdict.findings)}\n"


def as_json(verdict: Verdict, where: Range) -> str:
    return json.dumps({**verdict.to_json(), "base": where.base, "head": where.head}, indent=1,
                      ensure_ascii=False) + "\n"


def _full_message(finding: Finding) -> str:
    return finding.message + (f"\nSuggestion: {finding.suggestion}" if finding.suggestion else "")


# -- GitHub workflow commands -----------------------------------------------------------------------------

def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(verdict: Verdict, where: Range) -> str:
    """`::error file=F,line=N,title=T::message` lines, then the decision as one plain line."""
    lines = []
    for finding in verdict.findings:
        props = {"file": finding.file, "line": str(finding.line) if finding.line and finding.file else "",
                 "title": f"gitteam {finding.source} ({finding.severity})"}
        shown = ",".join(f"{key}={_escape_property(value)}" for key, value in props.items() if value)
        lines.append(f"::{_GITHUB_COMMAND[finding.severity]} {shown}::{_escape_data(_full_message(finding))}")
    count = len(verdict.findings)
    # one plain line that starts with our words: no text of a finding can begin a workflow command
    summary = " / ".join(part.strip() for part in verdict.summary.splitlines() if part.strip())
    lines.append(f"gitteam review {where.base[:10]}..{where.head[:10]}: {verdict.decision} ({count} finding(s)): "
                 + _escape_data(summary))
    return "\n".join(lines) + "\n"


def step_summary(verdict: Verdict, where: Range) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY."""
    rows = [f"| {f.severity} | `{f.file or '(the change)'}`{f':{f.line}' if f.line else ''} | "
            f"{_full_message(f).replace('|', '/').replace(chr(10), '<br>')} | {f.source} |"
            for f in verdict.findings]
    table = ["| severity | where | finding | source |", "|---|---|---|---|", *rows] if rows else []
    return "\n".join([f"### gitteam review: {verdict.decision}", "",
                      f"`{where.base[:10]}..{where.head[:10]}`: {verdict.summary}", "", *table, ""]) + "\n"


# -- SARIF 2.1.0 ----------------------------------------------------------------------------------------------

def _rule_id(finding: Finding) -> str:
    return finding.source or "reviewer"


def _rule_text(rule: str) -> str:
    if rule in _RULES:
        return _RULES[rule]
    return f"The {rule.partition(':')[2]} reviewer's finding" if rule.startswith("reviewer:") else rule


def _fingerprint(finding: Finding) -> str:
    key = "\0".join([_rule_id(finding), finding.file, finding.message])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def sarif(verdict: Verdict, where: Range) -> str:
    """One run of the `gitteam` tool; findings about a file are results, the others tool notifications."""
    rules = sorted({_rule_id(f) for f in verdict.findings})
    results, notes = [], []
    for finding in verdict.findings:
        if not finding.file:
            notes.append({"level": _SARIF_LEVEL[finding.severity], "message": {"text": _full_message(finding)},
                          "descriptor": {"id": _rule_id(finding)}})
            continue
        results.append({
            "ruleId": _rule_id(finding),
            "ruleIndex": rules.index(_rule_id(finding)),
            "level": _SARIF_LEVEL[finding.severity],
            "message": {"text": _full_message(finding)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": finding.file, "uriBaseId": "%SRCROOT%"},
                # a finding about a file as a whole points at its first line: code scanning needs a line
                "region": {"startLine": finding.line or 1},
            }}],
            "partialFingerprints": {"gitteamFinding/v1": _fingerprint(finding)},
            "properties": {"severity": finding.severity, "fileLevel": finding.line is None},
        })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "informationUri": TOOL_URL,
                            "rules": [{"id": rule, "shortDescription": {"text": _rule_text(rule)}}
                                      for rule in rules]}},
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
        "results": results,
        "properties": {"decision": verdict.decision, "summary": verdict.summary, "base": where.base,
                       "head": where.head},
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=1,
                      ensure_ascii=False) + "\n"


# -- reviewdog's rdjson ---------------------------------------------------------------------------------------

def rdjson(verdict: Verdict, where: Range) -> str:
    """reviewdog's Diagnostic Result: `reviewdog -f=rdjson` reads it."""
    diagnostics = [_diagnostic(finding) for finding in verdict.findings]
    severities = {d["severity"] for d in diagnostics}
    overall = next((s for s in ("ERROR", "WARNING", "INFO") if s in severities), "INFO")
    return json.dumps({"source": {"name": TOOL_NAME, "url": TOOL_URL}, "severity": overall,
                       "diagnostics": diagnostics}, indent=1, ensure_ascii=False) + "\n"


def _diagnostic(finding: Finding) -> Mapping[str, Any]:
    location: dict[str, Any] = {"path": finding.file}
    if finding.file and finding.line:
        location["range"] = {"start": {"line": finding.line}}
    return {"message": _full_message(finding), "location": location,
            "severity": _RDJSON_SEVERITY[finding.severity], "source": {"name": TOOL_NAME},
            "code": {"value": _rule_id(finding)}}

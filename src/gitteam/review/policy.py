"""The gate's one policy: deterministic findings set a floor no reviewer can lower.

Critical findings block, major ones request changes (`verdict.gate_decision`). Reviewers run only when the
floor allows it (`review_on`): the pipeline skips them once the checks fail (the coder has to fix those
first, and a reviewer's tokens would be wasted), `gitteam review` shows everything short of a BLOCK. A
reviewer's decision combines with the floor, strictest first, so an APPROVE cannot lift a check's
REQUEST_CHANGES or BLOCK, whatever the diff says to the reviewer. A reviewer's own decision reaches here already
calibrated (verdict.reviewer_decision over verified findings, see review.evidence): only a major finding
requests changes, so combining several reviewers strictest-first lets no nit sink a run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from gitteam.review.verdict import Decision, Finding, Verdict, combine, gate_decision

# Checks whose failure is a fact about the change, not a judgement: `gitteam review` refuses on them whatever
# --fail-on says (a binary or a large file is a judgement a person may make; those follow --fail-on).
HARD_CHECKS = frozenset({"check:ownership", "check:secrets", "check:conflict_markers", "check:python_syntax",
                         "check:test_command"})
CHECKS_FAILED = "deterministic checks failed"
CHECKS_PASSED = "deterministic checks passed"
WHEN_PASSING: tuple[Decision, ...] = ("APPROVE",)  # the pipeline's policy
SHORT_OF_BLOCK: tuple[Decision, ...] = ("APPROVE", "REQUEST_CHANGES")  # `gitteam review`'s


def floor(checks: Sequence[Finding]) -> Verdict:
    """The verdict of the deterministic checks alone."""
    decision = gate_decision(checks)
    return Verdict(decision, CHECKS_PASSED if decision == "APPROVE" else CHECKS_FAILED, tuple(checks))


def hard_failures(findings: Sequence[Finding]) -> list[Finding]:
    """The findings of HARD_CHECKS serious enough to refuse (major or critical)."""
    return [f for f in findings if f.source in HARD_CHECKS and f.severity in ("major", "critical")]


def decide(checks: Sequence[Finding], review: Callable[[], Verdict] | None,
           review_on: Collection[Decision] = WHEN_PASSING) -> Verdict:
    """The checks' verdict, combined with the reviewers' when the checks leave them a say."""
    base = floor(checks)
    if review is None or base.decision not in review_on:
        return base
    reviewed = review()
    if base.decision == "APPROVE":  # nothing to add but the (minor) findings; the reviewers' summary stands
        return combine([Verdict("APPROVE", "", base.findings), reviewed]) if base.findings else reviewed
    return combine([base, reviewed])

"""The gate's policy, every case written out: `review.gate.decide` and `review.verdict.gate_decision`/`combine`.

The deterministic checks set a floor (critical blocks, major requests changes, minor and info pass); the
reviewer is asked only when the floor is in `review_on` (the pipeline: WHEN_PASSING; `gitteam review`:
SHORT_OF_BLOCK); its decision combines with the floor, strictest first, so no reviewer lifts a failing check.
Findings of both are kept, the checks' first. The summary: the reviewer's when the checks passed, "deterministic
checks passed/failed" when the reviewer had no say, and the checks' line then the reviewer's when both spoke.

The expected outcome of each row is written in the table, not computed: a one-line change to the policy
changes some row's outcome and fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest

from gitteam.review.policy import CHECKS_FAILED, CHECKS_PASSED, SHORT_OF_BLOCK, WHEN_PASSING, decide, floor
from gitteam.review.verdict import DECISIONS, Decision, Finding, Verdict, combine, gate_decision

# --- the checks' findings, by the floor they set -----------------------------------------------------------

LONG_LINE = Finding("app.py", 3, "minor", "line too long", source="ruff")
TODO = Finding("", None, "info", "a TODO was added", source="checks")
TESTS_FAIL = Finding("", None, "major", "pytest -q exited 1", source="tests")
SECRET = Finding("config.py", 1, "critical", "an AWS secret key", source="secrets")

CHECKS: dict[str, tuple[Finding, ...]] = {
    "no findings": (),
    "minor/info": (LONG_LINE, TODO),
    "major": (LONG_LINE, TESTS_FAIL),
    "critical": (TESTS_FAIL, SECRET),
}

# --- what the reviewer says, when it is asked ---------------------------------------------------------------

APPROVING = Verdict("APPROVE", "reviewer: fine", (Finding("app.py", 5, "info", "could be shorter"),))
REVIEWS: dict[str, Verdict | None] = {
    "APPROVE": APPROVING,
    "REQUEST_CHANGES": Verdict("REQUEST_CHANGES", "reviewer: fix it",
                               (Finding("app.py", 6, "major", "off by one"),)),
    "BLOCK": Verdict("BLOCK", "reviewer: harmful", (Finding("app.py", 7, "critical", "deletes the user's data"),)),
    "no reviewer": None,  # decide(checks, None, ...): nothing to call
}

POLICIES: dict[str, Collection[Decision]] = {"WHEN_PASSING": WHEN_PASSING, "SHORT_OF_BLOCK": SHORT_OF_BLOCK}

# floor, reviewer, review_on -> decision, reviewer called, summary
TABLE: list[tuple[str, str, str, Decision, bool, str]] = [
    # the checks pass: the reviewer decides, under both policies
    ("no findings", "APPROVE", "WHEN_PASSING", "APPROVE", True, "reviewer: fine"),
    ("no findings", "REQUEST_CHANGES", "WHEN_PASSING", "REQUEST_CHANGES", True, "reviewer: fix it"),
    ("no findings", "BLOCK", "WHEN_PASSING", "BLOCK", True, "reviewer: harmful"),
    ("no findings", "no reviewer", "WHEN_PASSING", "APPROVE", False, CHECKS_PASSED),
    ("no findings", "APPROVE", "SHORT_OF_BLOCK", "APPROVE", True, "reviewer: fine"),
    ("no findings", "REQUEST_CHANGES", "SHORT_OF_BLOCK", "REQUEST_CHANGES", True, "reviewer: fix it"),
    ("no findings", "BLOCK", "SHORT_OF_BLOCK", "BLOCK", True, "reviewer: harmful"),
    ("no findings", "no reviewer", "SHORT_OF_BLOCK", "APPROVE", False, CHECKS_PASSED),
    # minor and info findings pass too; they are kept beside the reviewer's
    ("minor/info", "APPROVE", "WHEN_PASSING", "APPROVE", True, "reviewer: fine"),
    ("minor/info", "REQUEST_CHANGES", "WHEN_PASSING", "REQUEST_CHANGES", True, "reviewer: fix it"),
    ("minor/info", "BLOCK", "WHEN_PASSING", "BLOCK", True, "reviewer: harmful"),
    ("minor/info", "no reviewer", "WHEN_PASSING", "APPROVE", False, CHECKS_PASSED),
    ("minor/info", "APPROVE", "SHORT_OF_BLOCK", "APPROVE", True, "reviewer: fine"),
    ("minor/info", "REQUEST_CHANGES", "SHORT_OF_BLOCK", "REQUEST_CHANGES", True, "reviewer: fix it"),
    ("minor/info", "BLOCK", "SHORT_OF_BLOCK", "BLOCK", True, "reviewer: harmful"),
    ("minor/info", "no reviewer", "SHORT_OF_BLOCK", "APPROVE", False, CHECKS_PASSED),
    # a major finding: the pipeline does not ask the reviewer; `gitteam review` does, and it can only add
    ("major", "APPROVE", "WHEN_PASSING", "REQUEST_CHANGES", False, CHECKS_FAILED),
    ("major", "REQUEST_CHANGES", "WHEN_PASSING", "REQUEST_CHANGES", False, CHECKS_FAILED),
    ("major", "BLOCK", "WHEN_PASSING", "REQUEST_CHANGES", False, CHECKS_FAILED),
    ("major", "no reviewer", "WHEN_PASSING", "REQUEST_CHANGES", False, CHECKS_FAILED),
    ("major", "APPROVE", "SHORT_OF_BLOCK", "REQUEST_CHANGES", True, CHECKS_FAILED + "\nreviewer: fine"),
    ("major", "REQUEST_CHANGES", "SHORT_OF_BLOCK", "REQUEST_CHANGES", True, CHECKS_FAILED + "\nreviewer: fix it"),
    ("major", "BLOCK", "SHORT_OF_BLOCK", "BLOCK", True, CHECKS_FAILED + "\nreviewer: harmful"),
    ("major", "no reviewer", "SHORT_OF_BLOCK", "REQUEST_CHANGES", False, CHECKS_FAILED),
    # a critical finding blocks; no policy asks the reviewer
    ("critical", "APPROVE", "WHEN_PASSING", "BLOCK", False, CHECKS_FAILED),
    ("critical", "REQUEST_CHANGES", "WHEN_PASSING", "BLOCK", False, CHECKS_FAILED),
    ("critical", "BLOCK", "WHEN_PASSING", "BLOCK", False, CHECKS_FAILED),
    ("critical", "no reviewer", "WHEN_PASSING", "BLOCK", False, CHECKS_FAILED),
    ("critical", "APPROVE", "SHORT_OF_BLOCK", "BLOCK", False, CHECKS_FAILED),
    ("critical", "REQUEST_CHANGES", "SHORT_OF_BLOCK", "BLOCK", False, CHECKS_FAILED),
    ("critical", "BLOCK", "SHORT_OF_BLOCK", "BLOCK", False, CHECKS_FAILED),
    ("critical", "no reviewer", "SHORT_OF_BLOCK", "BLOCK", False, CHECKS_FAILED),
]


class Reviewer:
    """The `review` callable: answers with its verdict and counts how often it was asked."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict, self.calls = verdict, 0

    def __call__(self) -> Verdict:
        self.calls += 1
        return self.verdict


def reviewer_for(name: str) -> tuple[Reviewer | None, Callable[[], Verdict] | None]:
    verdict = REVIEWS[name]
    reviewer = Reviewer(verdict) if verdict is not None else None
    return reviewer, reviewer


def test_the_table_covers_every_combination_once() -> None:
    rows = [(checks, review, policy) for checks, review, policy, *_ in TABLE]
    assert sorted(rows) == sorted((c, r, p) for c in CHECKS for r in REVIEWS for p in POLICIES)


@pytest.mark.parametrize(("checks", "review", "policy", "decision", "called", "summary"), TABLE,
                         ids=[f"{c}-{r}-{p}" for c, r, p, *_ in TABLE])
def test_decide(checks: str, review: str, policy: str, decision: Decision, called: bool, summary: str) -> None:
    reviewer, call = reviewer_for(review)
    verdict = decide(CHECKS[checks], call, POLICIES[policy])
    assert verdict.decision == decision
    assert (reviewer.calls if reviewer else 0) == (1 if called else 0)
    assert verdict.summary == summary
    reviewed = reviewer.verdict.findings if reviewer and called else ()
    assert verdict.findings == CHECKS[checks] + reviewed  # both kept, the checks' first


RANK = {"APPROVE": 0, "REQUEST_CHANGES": 1, "BLOCK": 2}


@pytest.mark.parametrize("policy", [WHEN_PASSING, SHORT_OF_BLOCK, DECISIONS], ids=["when passing",
                                                                                  "short of block", "always"])
def test_no_reviewer_lifts_a_failing_check(policy: Collection[Decision]) -> None:
    """Whatever the reviewer says and whenever it is asked (even a policy that asks it on a BLOCK)."""
    for name, checks in CHECKS.items():
        for review in ("APPROVE", "REQUEST_CHANGES", "BLOCK"):
            reviewer, call = reviewer_for(review)
            verdict = decide(checks, call, policy)
            assert RANK[verdict.decision] >= RANK[floor(checks).decision], (name, review)
            assert RANK[verdict.decision] >= RANK[gate_decision(checks)], (name, review)


def test_asked_on_a_block_the_reviewer_is_heard_but_the_block_stands() -> None:
    reviewer = Reviewer(APPROVING)
    verdict = decide(CHECKS["critical"], reviewer, DECISIONS)
    assert reviewer.calls == 1
    assert verdict == Verdict("BLOCK", CHECKS_FAILED + "\nreviewer: fine", CHECKS["critical"] + APPROVING.findings)


def test_the_default_policy_is_the_pipelines() -> None:
    reviewer = Reviewer(Verdict("APPROVE", "fine"))
    assert decide(CHECKS["major"], reviewer).decision == "REQUEST_CHANGES"
    assert reviewer.calls == 0
    assert decide(CHECKS["minor/info"], reviewer).decision == "APPROVE"
    assert reviewer.calls == 1


def test_a_reviewer_without_a_summary_after_passing_checks() -> None:
    """The checks' own "passed" line is not added to a reviewer's verdict, even one without a summary."""
    quiet = Verdict("REQUEST_CHANGES", "", (Finding("a.py", 1, "major", "wrong"),))
    assert decide((), Reviewer(quiet)) == quiet
    assert decide(CHECKS["minor/info"], Reviewer(quiet)) == Verdict("REQUEST_CHANGES", "",
                                                                     CHECKS["minor/info"] + quiet.findings)


# --- floor and gate_decision ---------------------------------------------------------------------------------

def at(severity: str) -> Finding:
    return Finding("x.py", 1, severity, f"a {severity} finding")  # type: ignore[arg-type]


@pytest.mark.parametrize(("severities", "decision"), [
    ((), "APPROVE"),
    (("info",), "APPROVE"),
    (("minor",), "APPROVE"),
    (("info", "minor", "minor"), "APPROVE"),
    (("major",), "REQUEST_CHANGES"),
    (("minor", "major", "info"), "REQUEST_CHANGES"),
    (("critical",), "BLOCK"),
    (("info", "critical"), "BLOCK"),
    (("major", "critical", "minor"), "BLOCK"),
    (("critical", "major"), "BLOCK"),
], ids=lambda value: "+".join(value) or "none" if isinstance(value, tuple) else value)
def test_gate_decision_and_floor(severities: tuple[str, ...], decision: Decision) -> None:
    findings = tuple(at(s) for s in severities)
    assert gate_decision(findings) == decision
    assert gate_decision(iter(findings)) == decision  # any iterable, read once
    summary = CHECKS_PASSED if decision == "APPROVE" else CHECKS_FAILED
    assert floor(findings) == Verdict(decision, summary, findings)


# --- combine -------------------------------------------------------------------------------------------------

A = Verdict("APPROVE", "a", (at("info"),))
R = Verdict("REQUEST_CHANGES", "r", (at("major"),))
B = Verdict("BLOCK", "b", (at("critical"),))
QUIET = Verdict("APPROVE", "", (at("minor"),))


@pytest.mark.parametrize(("verdicts", "decision", "summary"), [
    ((), "APPROVE", ""),
    ((A,), "APPROVE", "a"),
    ((A, A), "APPROVE", "a\na"),
    ((A, R), "REQUEST_CHANGES", "a\nr"),
    ((R, A), "REQUEST_CHANGES", "r\na"),
    ((A, B), "BLOCK", "a\nb"),
    ((B, A), "BLOCK", "b\na"),
    ((R, B), "BLOCK", "r\nb"),
    ((B, R, A), "BLOCK", "b\nr\na"),
    ((R, R), "REQUEST_CHANGES", "r\nr"),
    ((QUIET, R), "REQUEST_CHANGES", "r"),  # an empty summary adds no line
    ((QUIET, QUIET), "APPROVE", ""),
], ids=lambda value: ",".join(v.decision for v in value) or "none" if isinstance(value, tuple) else None)
def test_combine(verdicts: tuple[Verdict, ...], decision: Decision, summary: str) -> None:
    combined = combine(iter(verdicts))
    assert combined.decision == decision
    assert combined.summary == summary
    assert combined.findings == tuple(f for v in verdicts for f in v.findings)

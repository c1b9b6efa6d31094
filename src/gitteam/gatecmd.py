"""`gitteam review`: the merge gate on any range of commits, for CI and git hooks.

The same gate the pipeline runs: deterministic checks first (no model can overrule them), then a
reviewer agent when one is configured. Exit 0 passes, 3 refuses (BLOCK, or changes with
`--fail-on changes`), 2 for bad input.
"""

from __future__ import annotations

import json
import sys

from gitteam.config import Config
from gitteam.errors import Exit, UsageError
from gitteam.git import Repository
from gitteam.memory import Blackboard
from gitteam.metering import Meter
from gitteam.models.base import CallContext
from gitteam.models.registry import Registry
from gitteam.review.checks import CheckContext, run_checks
from gitteam.review.diff import FileChange, parse_diff
from gitteam.review.verdict import Finding, Verdict, combine, gate_decision
from gitteam.roles import reviewer as reviewer_role
from gitteam.roles.agent import Agent, Limits
from gitteam.roles.tools import CommitView
from gitteam.worker import CONVENTION_FILES, CONVENTIONS_MAX_CHARS

FORMATS = ("text", "json")
FAIL_ON = ("block", "changes")


def default_base(repo: Repository, head: str) -> str:
    """The merge-base with the upstream, else with the default branch (origin's, then the local main or master).

    A head those branches already contain has nothing new to review: its own sha (an empty range) is returned
    only when no candidate gives a proper base, so a feature branch still finds main behind its upstream.
    """
    contained = False
    for candidate in ("@{upstream}", "refs/remotes/origin/HEAD", "refs/remotes/origin/main",
                      "refs/remotes/origin/master", "refs/heads/main", "refs/heads/master"):
        ref = repo.rev_parse(candidate)
        if ref is None:
            continue
        base = repo.run_git("merge-base", ref, head)
        sha = base.stdout.decode().strip()
        if base.returncode == 0 and sha and sha != head:
            return sha
        contained = contained or (base.returncode == 0 and sha == head)
    if contained:
        return head
    raise UsageError("cannot find a base to review against: pass --base REV")


def review_range(repo: Repository, config: Config, base: str | None, head: str, output: str,
                 fail_on: str) -> int:
    if output not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {output!r})")
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)} (got {fail_on!r})")
    head_sha = repo.rev_parse(head)
    if head_sha is None:
        raise UsageError(f"unknown revision for --head: {head}")
    base_sha = repo.rev_parse(base) if base else default_base(repo, head_sha)
    if base_sha is None:
        raise UsageError(f"unknown revision for --base: {base}")
    diff_text = repo.diff(base_sha, head_sha)
    changes = parse_diff(diff_text)
    if not changes:
        print(f"gitteam review: nothing to review between {base_sha[:10]} and {head_sha[:10]}", file=sys.stderr)
        return Exit.OK
    verdict = gate(repo, config, base_sha, head_sha, diff_text, changes)
    emit(verdict, output)
    refused = verdict.decision == "BLOCK" or (fail_on == "changes" and verdict.decision == "REQUEST_CHANGES")
    return Exit.REFUSED if refused else Exit.OK


def gate(repo: Repository, config: Config, base: str, head: str, diff_text: str,
         changes: list[FileChange]) -> Verdict:
    checks = run_checks(CheckContext(repo=repo, base=base, head=head, changes=changes, ownership=None))
    decision = gate_decision(checks)
    floor = Verdict(decision, "deterministic checks" + (" failed" if decision != "APPROVE" else " passed"),
                    tuple(checks))
    if decision == "BLOCK" or not config.role_spec("reviewer"):
        return floor
    return combine([floor, agent_review(repo, config, base, head, diff_text, changes, checks)])


def agent_review(repo: Repository, config: Config, base: str, head: str, diff_text: str,
                 changes: list[FileChange], checks: list[Finding]) -> Verdict:
    model = Registry(config, repo.root).for_role("reviewer")
    limits = Limits(config.limits.max_steps, config.limits.max_tokens, config.limits.reminders)
    context = CallContext(run="review", role="reviewer", agent="range")
    toolbox = reviewer_role.reviewer_tools(CommitView(repo, head), Blackboard(repo), {c.path for c in changes})
    agent = Agent(model, reviewer_role.SYSTEM, toolbox, context, limits, Meter(config.run.budget),
                  terminal="submit_review")
    found = repo.read_blobs(base, list(CONVENTION_FILES))
    conventions = "\n\n".join(f"## {n}\n{found[n].decode('utf-8', 'replace')}" for n in CONVENTION_FILES
                              if n in found)[:CONVENTIONS_MAX_CHARS]
    subject = repo.git("log", "--format=%s%n%n%b", f"{base}..{head}").strip()[:4000]
    info = {"range": f"{base[:10]}..{head[:10]}", "commit messages": subject}
    verdict = agent.run(reviewer_role.brief("Review this range of commits.", info, diff_text, checks,
                                            conventions, 1))
    assert isinstance(verdict, Verdict)
    return verdict


def emit(verdict: Verdict, output: str) -> None:
    if output == "json":
        print(json.dumps(verdict.to_json(), indent=1))
        return
    print(f"{verdict.decision}: {verdict.summary}")
    print(reviewer_role.format_findings(verdict.findings))

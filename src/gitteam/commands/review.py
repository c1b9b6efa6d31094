"""`gitteam review`: the merge gate on any range of commits, for CI and git hooks.

The same gate the pipeline runs: deterministic checks first (no model can overrule them), then the
configured reviewers over the diff, chunked when it is large. The range is `git diff BASE...HEAD`: what
HEAD adds since it left BASE. Exit 0 passes; 3 refuses: a BLOCK, a failing deterministic check (a secret,
a conflict marker, a syntax error: facts, refused whatever `--fail-on` says), or requested changes with
`--fail-on changes`; 2 for bad input, 1 when gitteam or a reviewer model fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from gitteam.config import Config, ReviewerDef
from gitteam.errors import Exit, UsageError
from gitteam.git import Repository
from gitteam.memory import Blackboard
from gitteam.metering import Meter
from gitteam.models.registry import Registry
from gitteam.review.checks import CheckContext, run_checks
from gitteam.review.diff import FileChange, parse_diff
from gitteam.review.formats import FORMATS, Range, render, step_summary
from gitteam.review.policy import SHORT_OF_BLOCK, decide, hard_failures
from gitteam.review.verdict import Verdict
from gitteam.roles.agent import Limits
from gitteam.roles.review_agents import ReviewSession, Subject, review_with_agents, reviewers
from gitteam.terminal import json_text, one_line, visible

FAIL_ON = ("block", "changes")
# pre-commit's pre-push stage names the range in these (older releases: SOURCE and ORIGIN)
PRE_COMMIT_BASE = ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_SOURCE")
PRE_COMMIT_HEAD = ("PRE_COMMIT_TO_REF", "PRE_COMMIT_ORIGIN")
COMMIT_LOG_CHARS = 4000


@dataclass(frozen=True)
class Request:
    base: str | None = None
    head: str | None = None
    output: str = "text"
    fail_on: str = "block"
    checks_only: bool = False


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
        sha = repo.merge_base(ref, head)
        if sha and sha != head:
            return sha
        contained = contained or sha == head
    if contained:
        return head
    raise UsageError("cannot find a base to review against: pass --base REV")


def resolve_range(repo: Repository, request: Request, environ: Mapping[str, str]) -> Range:
    """The commits to compare: flags, else pre-commit's variables, else HEAD and its default base."""
    head_rev = request.head or _first(environ, PRE_COMMIT_HEAD) or "HEAD"
    head = _commit(repo, head_rev, "--head")
    base_rev = request.base or _first(environ, PRE_COMMIT_BASE)
    base = _commit(repo, base_rev, "--base") if base_rev else default_base(repo, head)
    return Range(repo.merge_base(base, head) or base, head)


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((environ[name].strip() for name in names if environ.get(name, "").strip()), None)


def _commit(repo: Repository, rev: str, option: str) -> str:
    sha = repo.rev_parse(f"{rev}^{{commit}}") if not rev.startswith("-") else None
    if sha is None:
        raise UsageError(f"unknown revision for {option}: {rev} (not a commit here; a CI checkout needs the "
                         "history: fetch-depth: 0)")
    return sha


def review_range(repo: Repository, config: Config, request: Request,
                 environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    if request.output not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)} (got {request.output!r})")
    if request.fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)} (got {request.fail_on!r})")
    where = resolve_range(repo, request, environ)
    diff_text = repo.diff(where.base, where.head)
    changes = parse_diff(diff_text)
    span = f"{where.base[:10]}..{where.head[:10]}"
    if not changes:
        _note(f"nothing to review between {span}")
        if request.output != "text":  # CI steps that read the report still get a (clean) one
            sys.stdout.write(shown(render(Verdict("APPROVE", "nothing to review"), request.output, where),
                                   request.output))
        return Exit.OK
    binary_only = all(change.binary for change in changes)
    if binary_only:
        _note(f"only binary files changed in {span} ({len(changes)}): the deterministic checks ran, no reviewer "
              "reads binary data")
    verdict = gate(repo, config, where, diff_text, changes, agents=not (request.checks_only or binary_only),
                   environ=environ)
    sys.stdout.write(shown(render(verdict, request.output, where), request.output))
    summary_path = environ.get("GITHUB_STEP_SUMMARY", "")
    if request.output == "github" and summary_path:
        with open(summary_path, "a", encoding="utf-8") as out:
            out.write(step_summary(verdict, where))
    failed = hard_failures(verdict.findings)
    if failed and verdict.decision != "BLOCK":
        _note(f"refused: {len(failed)} failing check(s) ({', '.join(sorted({f.source for f in failed}))}); "
              "--fail-on does not lift a failing check")
    refused = (verdict.decision == "BLOCK" or bool(failed)
               or (request.fail_on == "changes" and verdict.decision == "REQUEST_CHANGES"))
    return Exit.REFUSED if refused else Exit.OK


def shown(report: str, output: str) -> str:
    """The report as it goes to stdout: text for a person's terminal shows control characters instead of obeying
    them; JSON stays exact data (escaped, not changed); GitHub's workflow commands are written as they are."""
    if output == "text":
        return visible(report)
    return json_text(report) if output in ("json", "sarif", "rdjson") else report


def _note(message: str) -> None:
    print(f"gitteam review: {one_line(message)}", file=sys.stderr)  # reviewer names come from .gitteam.toml


def gate(repo: Repository, config: Config, where: Range, diff_text: str, changes: list[FileChange],
         agents: bool = True, environ: Mapping[str, str] | None = None) -> Verdict:
    """Checks (no ownership, no test command: CI runs the tests itself), then every reviewer with a model."""
    checks = run_checks(CheckContext(repo=repo, base=where.base, head=where.head, changes=changes, ownership=None,
                                     max_file_bytes=config.review.max_file_bytes))
    registry = Registry(config, repo.root, environ)
    chosen = _reviewers_with_models(config, registry) if agents else []
    if not chosen:
        return decide(checks, None)
    session = ReviewSession(
        repo=repo, config=config, model_for=lambda spec: registry.resolve(spec or registry.spec_for("reviewer")),
        meter=Meter(config.run.budget), limits=Limits.of(config.limits), run="review", agent="range",
        board=Blackboard(repo),
    )
    log = repo.commit_messages(where.base, where.head).strip()[:COMMIT_LOG_CHARS]
    subject = Subject(where.base, where.head, diff_text, changes, "Review this range of commits before it merges.",
                      about={"range": f"{where.base[:10]}..{where.head[:10]}",
                             "files": str(len(changes))}, checks=checks, preface=log)
    return decide(checks, lambda: review_with_agents(session, subject, chosen), SHORT_OF_BLOCK)


def _reviewers_with_models(config: Config, registry: Registry) -> list[ReviewerDef]:
    """Reviewers that have a model: their own, or the reviewer role's (configured, or a key's default)."""
    role_spec = registry.spec_for("reviewer")
    chosen = [reviewer for reviewer in reviewers(config) if reviewer.model or role_spec]
    skipped = [reviewer.name for reviewer in reviewers(config) if reviewer not in chosen]
    if skipped and config.review.reviewers:
        _note(f"no model for reviewer(s) {', '.join(skipped)}: set roles.reviewer, a model of their own, or an "
              "API key")
    return chosen

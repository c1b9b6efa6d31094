"""Reviewer agents over a diff: every configured reviewer reads every chunk; the verdicts combine.

Used by the pipeline's merge gate (one subtask), by the integration review (the combined diff, agent
"integration") and by `gitteam review` (any range, agent "range"). The calls run one after another, in
the order of `[[review.reviewers]]` and then of the chunks, so a replay script can list the turns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gitteam.config import Config, ReviewerDef
from gitteam.git import Repository
from gitteam.memory import Blackboard
from gitteam.memory.recall import REVIEWER_TOKENS
from gitteam.metering import Meter
from gitteam.models.base import CallContext, Model, ToolCall
from gitteam.review.chunks import Chunk, chunk_diff
from gitteam.review.diff import FileChange
from gitteam.review.evidence import Evidence
from gitteam.review.scope import DiffScope
from gitteam.review.verdict import Finding, Verdict, combine, reviewer_decision
from gitteam.roles import reviewer as reviewer_role
from gitteam.roles.agent import Agent, Limits
from gitteam.roles.tools import CommitView, ToolResult
from gitteam.transcripts import Transcript

CONVENTIONS_MAX_CHARS = 12_000
DEFAULT_REVIEWER = ReviewerDef(name="reviewer")
OnTool = Callable[[CallContext, ToolCall, ToolResult], None]


@dataclass
class ReviewSession:
    """Who reviews and on what account: the models, the meter and limits, and the name calls carry."""

    repo: Repository
    config: Config
    model_for: Callable[[str], Model]  # a reviewer's model spec ("" = the reviewer role's model) -> Model
    meter: Meter
    limits: Limits
    run: str  # CallContext.run
    agent: str  # CallContext.agent: a subtask id, "integration", or "range"
    board: Blackboard | None = None
    on_tool: OnTool | None = None
    round: int = 1
    economy: Callable[[], bool] = lambda: False  # past the budget's economy mark: no optional reviewer starts
    transcripts: Callable[[CallContext], Transcript] | None = None  # a run's: each reviewer's conversation kept


@dataclass
class Subject:
    """What is reviewed: the range, its diff (parsed), and what the change was for."""

    base: str
    head: str
    diff: str
    changes: Sequence[FileChange]
    task: str
    about: Mapping[str, Any] = field(default_factory=dict)  # shown as the change's description
    checks: Sequence[Finding] = ()
    preface: str = ""  # more text by the change's author (commit messages): fenced as data before the diff
    claim: str = ""  # what the change's coder says it did (its summary): fenced as a claim, never evidence
    checks_run: str = ""  # which deterministic checks ran and passed (review.checks.statement)
    earlier: str = ""  # the findings of the earlier review rounds, by round
    interdiff: str = ""  # the change since the last reviewed round


def reviewers(config: Config) -> tuple[ReviewerDef, ...]:
    """The configured reviewers; none configured means one general reviewer on roles.reviewer."""
    return config.review.reviewers or (DEFAULT_REVIEWER,)


def check_models(config: Config, resolve: Callable[[str], Model]) -> None:
    """Resolve every reviewer's own model before any work: a missing key is a usage error now, not after
    the coders have spent money. Reviewers without one use the reviewer role, checked with the roles."""
    for reviewer in config.review.reviewers:
        if reviewer.model:
            resolve(reviewer.model)


def review_with_agents(session: ReviewSession, subject: Subject,
                       only: Sequence[ReviewerDef] | None = None) -> Verdict:
    """Every reviewer over every chunk; any BLOCK blocks, any verified major finding requests changes, and
    minor ones never do, whoever reported them. In economy mode only the first reviewer starts."""
    chosen = list(reviewers(session.config) if only is None else only)
    chunks = chunk_diff(subject.diff, session.config.review.chunk_tokens)
    scope = DiffScope(session.repo, subject.head, subject.changes)
    asked = "\n".join([subject.task, *(str(value) for value in subject.about.values())])
    evidence = Evidence(subject.diff, scope.text, asked)
    conventions = read_conventions(session.repo, subject.base, session.config.review.conventions)
    verdicts: list[tuple[str, Verdict]] = []
    briefs: dict[int, str] = {}  # each chunk's brief, rendered once (one nonce): every reviewer's same prefix
    for number, reviewer in enumerate(chosen):
        if number and session.economy():  # the first reviewer is the gate; the others are optional passes
            verdicts.append((reviewer.name, Verdict("APPROVE", "not run: the run is in economy mode")))
            continue
        model = session.model_for(reviewer.model)
        for index, chunk in enumerate(chunks, 1):
            scope.prefetch(chunk.files)
            part = (index, len(chunks))
            if index not in briefs:
                briefs[index] = _shared_brief(session, subject, conventions, chunk, part)
            verdict = _review_chunk(session, subject, reviewer, model, scope, evidence, briefs[index], part)
            label = reviewer.name if len(chunks) == 1 else f"{reviewer.name}, part {index}/{len(chunks)}"
            verdicts.append((label, verdict))
    if len(verdicts) == 1:
        return verdicts[0][1]
    # several verdicts: each summary says whose (and which part) it is
    return combine(dataclasses.replace(verdict, summary=f"[{label}] {verdict.decision}: {verdict.summary}")
                   for label, verdict in verdicts)


def _review_chunk(session: ReviewSession, subject: Subject, reviewer: ReviewerDef, model: Model,
                  scope: DiffScope, evidence: Evidence, shared: str, part: tuple[int, int]) -> Verdict:
    context = CallContext(run=session.run, role="reviewer", agent=session.agent, round=session.round,
                          extra={"reviewer": reviewer.name, "chunk": part[0], "chunks": part[1]})
    # Each chunk's reviewer is an agent of its own: its token and step limits count its own conversation.
    limits = session.limits
    view = CommitView(session.repo, subject.head, session.config.secret_files())  # [secrets]: files no agent reads
    # placed on the diff, serious findings verified, then the decision the findings support
    toolbox = reviewer_role.reviewer_tools(view, session.board,
                                           lambda v: reviewer_decision(evidence.verify_all(scope.place_all(v))))
    agent = Agent(model, reviewer_role.system_prompt(), toolbox, context, limits,
                  session.meter, terminal="submit_review", on_tool=session.on_tool,
                  transcript=None if session.transcripts is None else session.transcripts(context))
    verdict = agent.run([shared, reviewer_role.own_part(reviewer.name, reviewer.focus, part)])
    assert isinstance(verdict, Verdict)
    source = "reviewer" if reviewer is DEFAULT_REVIEWER else f"reviewer:{reviewer.name}"
    return dataclasses.replace(verdict, findings=tuple(
        dataclasses.replace(f, source=source) for f in verdict.findings))


def _shared_brief(session: ReviewSession, subject: Subject, conventions: str, chunk: Chunk,
                  part: tuple[int, int]) -> str:
    """What every reviewer of this chunk reads first, up to and including the diff."""
    about = dict(subject.about)
    if part[1] > 1:
        about["files in this part"] = ", ".join(chunk.files)
    memory = ""
    if session.board is not None:  # what earlier agents and runs noted about these files, before the diff
        query = " ".join(str(about.get(key, "")) for key in ("title", "instructions")) or subject.task
        memory = session.board.digest(query, files=chunk.files, budget_tokens=REVIEWER_TOKENS)
    return reviewer_role.brief(subject.task, about, chunk.text, subject.checks, conventions, session.round,
                               part, preface=subject.preface, memory=memory, claim=subject.claim,
                               checks_run=subject.checks_run, earlier=subject.earlier, interdiff=subject.interdiff)


def read_conventions(repo: Repository, base: str, files: Sequence[str]) -> str:
    """The repository's own rules, read from the base commit: a change cannot rewrite what it is judged by."""
    found = repo.read_blobs(base, list(files))
    parts = [f"## {name}\n{found[name].decode('utf-8', 'replace')}" for name in files if name in found]
    return "\n\n".join(parts)[:CONVENTIONS_MAX_CHARS]

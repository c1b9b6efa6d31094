"""One subtask from worktree to verdict: set up, code, commit, check, review, and again if asked.

Runs in a pool thread. Everything it changes in git is its own branch and worktree; the work is
committed before anything that could lose it (review, a limit, the budget, an interrupt).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from gitteam.errors import GitteamError
from gitteam.events import AgentCommitted, AgentStarted, Reviewed
from gitteam.git import GitError
from gitteam.locks.ownership import Ownership
from gitteam.maps import coder_map
from gitteam.memory.recall import CODER_TOKENS
from gitteam.metering import BudgetExhausted, Interrupted
from gitteam.models.registry import check_command
from gitteam.modelspec import COMMAND
from gitteam.names import agent_branch, agent_ref
from gitteam.plan import Handoff, Plan, Subtask
from gitteam.review.checks import CheckContext, run_checks, statement
from gitteam.review.diff import FileChange, parse_diff
from gitteam.review.policy import decide, floor
from gitteam.review.verdict import Finding, Verdict, format_findings
from gitteam.roles import coder as coder_role
from gitteam.roles.agent import Agent
from gitteam.roles.coder import AgentCoder, Coder
from gitteam.roles.external_coder import CommandCoder, CommandSetup
from gitteam.roles.review_agents import Subject, review_with_agents
from gitteam.run import worktrees
from gitteam.run.context import Outcome, RunContext
from gitteam.run.environment import agent_env, learn_secret_files, setup_problem
from gitteam.run.grants import grant_files
from gitteam.run.notes import note_commit
from gitteam.run.remote_coder import RemoteCoder
from gitteam.run.waiting import fresh_start, wait_for_files
from gitteam.sandbox.home import prepare_home
from gitteam.secrets import redact

# Times per round a coder whose work fails the deterministic checks is sent the failures straight away, before
# any reviewer and without spending a round; each attempt also draws on its token, money and time limits.
CHECK_FIXES = 2
INTERDIFF_MAX_CHARS = 40_000


@dataclass(frozen=True, slots=True)
class Assignment:
    subtask: Subtask
    start: str  # the commit its worktree starts from (integration after its dependencies merged)
    index: int  # position in the plan, for a distinct GITTEAM_PORT
    dependencies: tuple[Handoff, ...]  # what the subtasks it waits for handed over
    resume: bool = False
    plan: Plan | None = None  # the whole plan, for the coder's brief
    feedback: str = ""  # a rework round: what the person or the integration review asks (run/rework.py)
    queued: bool = False  # its files were held by another run when the run claimed them: wait for them first
    siblings: tuple[Subtask, ...] = ()  # the others of its wave, at work beside it (request_files asks past them)


def run_subtask(ctx: RunContext, job: Assignment) -> Outcome:
    subtask = job.subtask
    if job.queued:
        try:
            wait_for_files(ctx, subtask)
        except GitteamError as exc:  # nothing was done, nothing to save; its siblings go on
            return Outcome(subtask.id, outcome_status(exc), job.start, reason=str(exc))
        job = replace(job, start=fresh_start(ctx, job.start))
        return replace(worked(ctx, job), start=job.start)
    return worked(ctx, job)


def worked(ctx: RunContext, job: Assignment) -> Outcome:
    """The subtask from its worktree to its verdict, its files being its own."""
    subtask = job.subtask
    branch = agent_branch(ctx.run, subtask.id)
    early: EarlySetup | None = None
    if sets_up_meanwhile(ctx, job):
        worktree = worktrees.new_path(ctx.repo, ctx.config, ctx.run, subtask.id)
        early = EarlySetup(lambda: set_up(ctx, job, branch, worktree))
    else:
        try:
            worktree = prepare_worktree(ctx, job, branch)
        except GitteamError as exc:  # this subtask fails; its siblings in the wave go on
            return Outcome(subtask.id, "failed", job.start, reason=f"cannot prepare its worktree: {exc}")
        ctx.journal.append(AgentStarted(agent=subtask.id, branch=branch, worktree=str(worktree), base=job.start))
    head = ctx.repo.rev_parse(agent_ref(ctx.run, subtask.id)) or job.start
    try:
        if early is None and not job.resume:  # a resumed worktree was set up by the attempt that made it
            problem = setup_problem(ctx, worktree, env(ctx, job, worktree))
            if problem is not None:
                raise GitteamError(problem)
        return code_and_review(ctx, job, worktree, head, early)
    except GitteamError as exc:
        if early is not None and early.settle() is not None:
            return Outcome(subtask.id, "failed", job.start, reason=f"cannot prepare its worktree: {early.settle()}")
        partial = commit_work(ctx, subtask, worktree, 0, "partial work: " + str(exc), job.start)
        if partial:  # unreviewed, but its provenance and spend are recorded like every agent commit's
            note_commit(ctx, subtask.id, partial, coder_spec(ctx, subtask), 0, None, ctx.tier(subtask))
        # earlier rounds may have committed
        latest = partial or ctx.repo.rev_parse(agent_ref(ctx.run, subtask.id)) or head
        return Outcome(subtask.id, outcome_status(exc), latest, reason=str(exc))
    except BaseException:  # Ctrl-C with the agent in this thread, or a bug: save its work, then stop the run
        if early is not None and early.settle() is not None:
            raise
        partial = commit_work(ctx, subtask, worktree, 0, "partial work: interrupted", job.start)
        if partial:  # like every agent commit, with its provenance note
            note_commit(ctx, subtask.id, partial, coder_spec(ctx, subtask), 0, None, ctx.tier(subtask))
        raise


def sets_up_meanwhile(ctx: RunContext, job: Assignment) -> bool:
    """A new subtask for gitteam's own coder gets its worktree while its first model call is out: the call
    needs no file, and its tools wait for the worktree (a coder's start had waited for a checkout, and a wave
    for the last of them). A command: coder starts in its worktree; a resumed one has its worktree already."""
    return (not job.resume and ctx.remote is None and not coder_spec(ctx, job.subtask).startswith(COMMAND)
            and ctx.repo.rev_parse(agent_ref(ctx.run, job.subtask.id)) is None)


def set_up(ctx: RunContext, job: Assignment, branch: str, expected: Path) -> None:
    """What `worked` does before the coder, done beside its first call (EarlySetup): the worktree where the coder's
    tools were told it is, the run told, the setup command run, the scratch dir made."""
    worktree = prepare_worktree(ctx, job, branch)
    if worktree != expected:  # a spare git would not move: its tools were made for `expected`
        raise GitteamError(f"it was made at {worktree}, not at {expected}")
    ctx.journal.append(AgentStarted(agent=job.subtask.id, branch=branch, worktree=str(worktree), base=job.start))
    problem = setup_problem(ctx, worktree, env(ctx, job, worktree))
    if problem is not None:
        raise SetupProblem(problem)
    coder_role.prepare_scratch(worktree)


class SetupProblem(GitteamError):
    """The setup command failed in a worktree that was made: the subtask fails as it did before its coder."""


class EarlySetup:
    """`set_up` in a thread of its own; `wait` (the coder's tools call it) returns once it is done, or raises
    why it could not be; `settle` waits and says whether the worktree could not be made."""

    def __init__(self, work: Callable[[], None]) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._work = work
        self._started = False

    def start(self) -> None:
        """Begin, once: when the coder's first request is about to go (its prompt built first: a wave's coders
        and setups all want the interpreter at that moment, and the requests are what must not wait)."""
        if not self._started:
            self._started = True
            threading.Thread(target=self._run, name=f"{threading.current_thread().name}-setup", daemon=True).start()

    def _run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the coder's thread by wait()
            self._error = exc
        finally:
            self._done.set()

    def wait(self) -> None:
        self.start()
        self._done.wait()
        if isinstance(self._error, SetupProblem):
            raise GitteamError(str(self._error))
        if isinstance(self._error, GitteamError):
            raise GitteamError(f"cannot prepare its worktree: {self._error}")
        if self._error is not None:
            raise self._error

    def settle(self) -> BaseException | None:
        """Once it is done: why no worktree could be made (None: one was, whatever came after; or it never began:
        the coder failed before its first request, and there is no worktree to save anything from)."""
        if not self._started:
            return None
        self._done.wait()
        return None if self._error is None or isinstance(self._error, SetupProblem) else self._error


def outcome_status(exc: GitteamError) -> str:
    if isinstance(exc, BudgetExhausted):
        return "budget"
    if isinstance(exc, Interrupted):
        return "interrupted"
    return "failed"


def prepare_worktree(ctx: RunContext, job: Assignment, branch: str) -> Path:
    """The subtask's worktree: the one an earlier attempt left (resume), wherever it was made, else a new one."""
    repo, agent = ctx.repo, job.subtask.id
    found, taken = worktrees.checked_out(repo, ctx.config, ctx.run, agent)
    if found is not None and found.is_dir():
        try:
            repo.finish_checkout(found)  # killed before or inside its checkout: complete it
        except GitError:
            if repo.has_index(found):
                raise
            worktrees.discard(repo, found)  # a kill inside `git worktree add`: it never held anything
        else:
            learn_secret_files(ctx, repo.root, repo.included_files())  # copied by the process that made it
            return found  # resume: the worktree survived, with whatever the agent left in it
    if taken is not None:
        raise GitteamError(f"branch {branch} is checked out in {taken}, which is not one of gitteam's "
                           f"worktrees: check out another branch there, then gitteam resume {ctx.run}")
    path = worktrees.new_path(repo, ctx.config, ctx.run, agent)
    if os.path.lexists(path):  # what a kill left before the worktree was registered: never checked out
        worktrees.discard(repo, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    external = coder_spec(ctx, job.subtask).startswith(COMMAND)
    cone = worktrees.cone_for(repo, ctx.config, job.subtask.files, job.start, external)
    if repo.rev_parse(agent_ref(ctx.run, agent)):
        repo.add_worktree(path, branch, cone)  # resume: the branch holds the earlier attempt's commits
    elif cone is None and (spare := ctx.spares.take(ctx, path, branch, job.start)) is not None:
        path = spare  # a checkout made while the planner answered
    else:
        repo.create_worktree(path, branch, job.start, cone)
    learn_secret_files(ctx, path, repo.copy_included_files(path))
    return path


def code_and_review(ctx: RunContext, job: Assignment, worktree: Path, head: str,
                    early: EarlySetup | None = None) -> Outcome:
    subtask = job.subtask
    coder = make_coder(ctx, job, worktree, head, early)
    memory = ctx.board.digest(f"{subtask.title} {subtask.instructions}", files=subtask.files,
                              budget_tokens=CODER_TOKENS)
    # what gitteam's own coder may run; a command: coder runs its own tools
    commands = ctx.config.allowed_commands() if isinstance(coder, AgentCoder | RemoteCoder) else ()
    neighbours = coder_map(ctx.repo, job.start, subtask.files, hidden=ctx.config.secret_files().hides)
    message = coder_role.brief(subtask, job.dependencies, memory, ctx.task, commands=commands, map=neighbours,
                               plan=job.plan)
    if job.feedback:
        message += "\n" + coder_role.rework_message(job.feedback)
    elif job.resume and head != job.start:
        message += "\nAn earlier attempt's work on this subtask is already committed in your worktree; build on it."
    max_rounds = ctx.config.run.max_rounds
    reviewed: list[tuple[int, str, Verdict]] = []  # (round, head, verdict) of the rounds reviewed so far
    for round_number in range(1, max_rounds + 1):
        if early is not None:
            early.start()
        summary = coder.work(message, round_number)
        if early is not None:
            early.wait()  # a coder that called no tool at all: its worktree is there before anything reads it
        head = commit_work(ctx, subtask, worktree, round_number, summary, job.start) or head
        gate = gate_checks(ctx, job, worktree, head)
        for _ in range(CHECK_FIXES):  # failing checks go straight back: no reviewer, no round spent
            if floor(gate.findings).decision != "REQUEST_CHANGES":  # passed, or a BLOCK: the gate decides now
                break
            summary = coder.work(coder_role.checks_failed_message(format_findings(gate.findings)), round_number)
            head = commit_work(ctx, subtask, worktree, round_number, summary, job.start) or head
            gate = gate_checks(ctx, job, worktree, head)
        verdict = review_round(ctx, job, gate, round_number, summary, reviewed)
        note_commit(ctx, subtask.id, head, coder.model, round_number, verdict, ctx.tier(subtask))
        if verdict.decision == "APPROVE":
            return Outcome(subtask.id, "approved", head, summary=summary, verdict=verdict)
        if verdict.decision == "BLOCK":
            return Outcome(subtask.id, "refused", head, reason=f"blocked: {verdict.summary}", summary=summary,
                           verdict=verdict)
        if round_number == max_rounds:
            reason = f"changes still requested after {max_rounds} round(s): {verdict.summary}"
            return Outcome(subtask.id, "refused", head, reason=reason, summary=summary, verdict=verdict)
        reviewed.append((round_number, head, verdict))
        message = coder_role.changes_requested_message(format_findings(verdict.findings),
                                                       round_number + 1)
    raise AssertionError("unreachable: the last round returns")


def make_coder(ctx: RunContext, job: Assignment, worktree: Path, head: str, early: EarlySetup | None = None) -> Coder:
    """The subtask's coder: gitteam's agent loop on the role's model, or the external agent CLI a
    `command:` spec names (in economy mode: the role's economy spec)."""
    subtask = job.subtask
    spec = coder_spec(ctx, subtask)
    context = ctx.call_context("coder", subtask.id)
    if ctx.remote is not None:  # distributed mode: a worker elsewhere codes; everything else stays here
        return RemoteCoder(ctx, ctx.remote, subtask, job.start, worktree, context, ctx.owned_files(subtask))
    if spec.startswith(COMMAND):
        setup = CommandSetup(
            spec=spec, argv=tuple(check_command(spec)), worktree=worktree, branch=agent_branch(ctx.run, subtask.id),
            files=subtask.files, env=env(ctx, job, worktree, also=ctx.config.commands.agent_env),
            prompt_dir=ctx.journal.dir / "prompts", max_seconds=ctx.config.limits.max_seconds,
            runner=ctx.commands, home=private_home(ctx, subtask.id),
            home_files=ctx.config.sandbox.home_files if ctx.config.sandbox.home_write_back else (),
        )
        return CommandCoder(setup, ctx.repo, ctx.meter, context, ctx.transcript(context))
    commands = coder_role.CommandPolicy(
        allowed=ctx.config.allowed_commands(),
        timeout=ctx.config.commands.timeout,
        max_output=ctx.config.commands.max_output,
        env=env(ctx, job, worktree),
        runner=ctx.commands,
        syntax_check=ctx.config.commands.syntax_check,
    )
    if early is None:  # else the early setup makes it
        coder_role.prepare_scratch(worktree)

    def request(paths: tuple[str, ...], reason: str) -> coder_role.Grant:
        return grant_files(ctx, subtask, job.siblings, paths, reason)

    workspace = coder_role.Workspace(ctx.repo, worktree, head, Ownership(ctx.owned_files(subtask), ctx.config.protect),
                                     commands, ctx.config.secret_files(),
                                     request=request if ctx.config.limits.granted_files > 0 else None)
    routed = ctx.routed_spec("coder", subtask)
    model = ctx.registry.resolve(routed) if routed else ctx.model("coder")
    return AgentCoder(Agent(
        model, coder_role.SYSTEM, coder_role.coder_tools(workspace, ctx.board, subtask.id),
        context, ctx.limits, ctx.meter, terminal="done", on_tool=ctx.on_tool, transcript=ctx.transcript(context),
        ready=early.wait if early is not None else None,
    ))


def coder_spec(ctx: RunContext, subtask: Subtask) -> str:
    """The spec of the subtask's coder: its priority's ([routing]), else the role's (economy's when on)."""
    return ctx.routed_spec("coder", subtask) or ctx.registry.spec_for("coder", economy=ctx.economy)


def env(ctx: RunContext, job: Assignment, worktree: Path, also: Sequence[str] = ()) -> dict[str, str]:
    return agent_env(ctx, job.subtask.id, worktree, job.index, also)


def private_home(ctx: RunContext, agent: str) -> Path:
    """A `command:` coder's own HOME under the run's state, seeded once with the configured login files."""
    return prepare_home(ctx.journal.dir / "homes" / agent, Path.home(), ctx.config.sandbox.home_files)


def commit_work(ctx: RunContext, subtask: Subtask, worktree: Path, round_number: int, summary: str,
                base: str | None) -> str | None:
    """Commit the subtask's own files; anything else the agent's commands left is reported, not committed.

    The files are committed as the agent left them, converted only as the `.gitattributes` of `base` (the
    subtask's start) say: the change's own attributes cannot alter what is stored (Repository.commit_paths).
    """
    if not worktree.is_dir():
        return None
    coder_role.mend_scratch(worktree)  # its .gitignore keeps it out of git, whatever a command did to it
    changed = [p for p in ctx.repo.worktree_changes(worktree) if not coder_role.in_scratch(p)]
    ownership = Ownership(ctx.owned_files(subtask), ctx.config.protect)
    owned = [p for p in changed if ownership.owns(p)]
    stray = ownership.violations(changed)
    if stray:  # build output is no one's work: not reported (it goes with the worktree); the rest is kept then
        stray = ownership.violations(ctx.repo.worktree_changes(worktree, exclude=worktrees.BUILD_OUTPUT))
    head = None
    if owned:
        message = redact(f"{subtask.title}\n\n{summary.strip()}\n\n") + \
            f"gitteam-run: {ctx.run}\ngitteam-agent: {subtask.id}\n"
        author = (f"gitteam coder {subtask.id}", f"{subtask.id}@gitteam.invalid")
        head = ctx.repo.commit_paths(worktree, owned, message, author, attributes_from=base)
    if head or stray:
        ctx.journal.append(AgentCommitted(agent=subtask.id, head=head or ctx.repo.rev_parse(
            agent_ref(ctx.run, subtask.id)), round=round_number, summary=summary, stray=stray))
    return head


def granted_note(ctx: RunContext, subtask: Subtask) -> dict[str, str]:
    """For the reviewers: the files the coder was given beyond its plan, and why it asked."""
    notes = ctx.grant_notes.get(subtask.id)
    return {"files granted during the work": "; ".join(notes)} if notes else {}


@dataclass(frozen=True, slots=True)
class GateChecks:
    """The deterministic half of the gate on one head: what the reviewers would see, and its findings."""

    head: str
    diff: str
    changes: list[FileChange]
    findings: list[Finding]
    statement: str  # which checks ran and passed (review.checks.statement)


def gate_checks(ctx: RunContext, job: Assignment, worktree: Path, head: str) -> GateChecks:
    """The checks on the coder's committed work; a change of none of its files is a failure like theirs."""
    subtask = job.subtask
    diff_text = ctx.repo.diff(job.start, head)
    changes = parse_diff(diff_text)
    with test_tree(ctx, job, worktree, head) as tree:
        check_context = CheckContext(
            repo=ctx.repo, base=job.start, head=head, changes=changes,
            ownership=Ownership(ctx.owned_files(subtask), ctx.config.protect),
            worktree=tree, test_command=ctx.config.commands.test, command_env=env(ctx, job, tree),
            command_timeout=ctx.config.commands.timeout, max_file_bytes=ctx.config.review.max_file_bytes,
            commands=ctx.commands,
        )
        findings = run_checks(check_context)
    if not changes:
        findings.append(Finding("", None, "major", "No file was changed; the subtask is not done.", None,
                                "check:empty"))
    return GateChecks(head, diff_text, changes, findings, statement(check_context, findings))


def review_round(ctx: RunContext, job: Assignment, gate: GateChecks, round_number: int, summary: str,
                 reviewed: Sequence[tuple[int, str, Verdict]] = ()) -> Verdict:
    """The merge gate: deterministic checks first (no model overrules them), then the reviewers, who see the
    coder's summary, the earlier rounds' findings and the change since the last round they reviewed."""
    subtask = job.subtask
    if not gate.changes:
        verdict = Verdict("REQUEST_CHANGES", "the coder changed none of its files", tuple(gate.findings))
    else:
        subject = Subject(job.start, gate.head, gate.diff, gate.changes, ctx.task, checks=gate.findings, about={
            "subtask": subtask.id, "title": subtask.title, "instructions": subtask.instructions,
            "files": ", ".join(ctx.owned_files(subtask)), **granted_note(ctx, subtask)}, claim=summary,
            checks_run=gate.statement, earlier=earlier_reviews(reviewed), interdiff=interdiff(ctx, reviewed, gate.head))
        verdict = decide(gate.findings,
                         lambda: review_with_agents(ctx.review_session(subtask.id, round_number,
                                                                   ctx.routed_spec("reviewer", subtask)), subject))
    ctx.journal.append(Reviewed(agent=subtask.id, round=round_number, head=gate.head, verdict=verdict.to_json()))
    return verdict


def earlier_reviews(reviewed: Sequence[tuple[int, str, Verdict]]) -> str:
    """Each earlier round's decision, summary and findings, for the next round's reviewers."""
    return "\n\n".join(f"Round {number}: {verdict.decision}: {verdict.summary}\n{format_findings(verdict.findings)}"
                        for number, _, verdict in reviewed)


def interdiff(ctx: RunContext, reviewed: Sequence[tuple[int, str, Verdict]], head: str) -> str:
    """The change since the head the last round reviewed (cut to INTERDIFF_MAX_CHARS; the full diff follows)."""
    if not reviewed:
        return ""
    number, last, _ = reviewed[-1]
    if last == head:
        return f"(nothing changed since round {number})"
    text = ctx.repo.diff(last, head)
    if len(text) > INTERDIFF_MAX_CHARS:
        text = text[:INTERDIFF_MAX_CHARS] + f"\n[... cut by gitteam: {len(text):,} characters in all]"
    return f"Since round {number}:\n{text}"


@contextmanager
def test_tree(ctx: RunContext, job: Assignment, worktree: Path, head: str) -> Iterator[Path]:
    """Where the gate's test command runs on `head`: the agent's worktree, unless it is sparse (the tests need
    the whole tree): then one of the run's full checkouts, lent for the checks."""
    if not ctx.config.commands.test.strip() or ctx.repo.sparse_cone(worktree) is None:
        yield worktree
        return

    def prepare(path: Path) -> str | None:
        learn_secret_files(ctx, path, ctx.repo.copy_included_files(path))
        return setup_problem(ctx, path, env(ctx, job, path))

    with ctx.gate_checkouts.lease(ctx, head, prepare) as tree:
        yield tree

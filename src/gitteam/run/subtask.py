"""One subtask from worktree to verdict: set up, code, commit, check, review, and again if asked.

Runs in a pool thread. Everything it changes in git is its own branch and worktree; the work is
committed before anything that could lose it (review, a limit, the budget, an interrupt).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
from gitteam.plan import Subtask
from gitteam.review.checks import CheckContext, run_checks
from gitteam.review.diff import parse_diff
from gitteam.review.policy import decide
from gitteam.review.verdict import Finding, Verdict, format_findings
from gitteam.roles import coder as coder_role
from gitteam.roles.agent import Agent
from gitteam.roles.coder import AgentCoder, Coder
from gitteam.roles.external_coder import CommandCoder, CommandSetup
from gitteam.roles.review_agents import Subject, review_with_agents
from gitteam.run import worktrees
from gitteam.run.context import Outcome, RunContext
from gitteam.run.environment import agent_env, learn_secret_files, setup_problem
from gitteam.run.notes import note_commit
from gitteam.sandbox.home import prepare_home
from gitteam.secrets import redact


@dataclass(frozen=True, slots=True)
class Assignment:
    subtask: Subtask
    start: str  # the commit its worktree starts from (integration after its dependencies merged)
    index: int  # position in the plan, for a distinct GITTEAM_PORT
    dependencies: tuple[tuple[str, str], ...]  # (id, summary) of what it builds on
    resume: bool = False


def run_subtask(ctx: RunContext, job: Assignment) -> Outcome:
    subtask = job.subtask
    branch = agent_branch(ctx.run, subtask.id)
    try:
        worktree = prepare_worktree(ctx, job, branch)
    except GitteamError as exc:  # this subtask fails; its siblings in the wave go on
        return Outcome(subtask.id, "failed", job.start, reason=f"cannot prepare its worktree: {exc}")
    head = ctx.repo.rev_parse(agent_ref(ctx.run, subtask.id)) or job.start
    ctx.journal.append(AgentStarted(agent=subtask.id, branch=branch, worktree=str(worktree), base=job.start))
    try:
        if not job.resume:  # a resumed worktree was set up by the attempt that made it
            problem = setup_problem(ctx, worktree, env(ctx, job, worktree))
            if problem is not None:
                raise GitteamError(problem)
        return code_and_review(ctx, job, worktree, head)
    except GitteamError as exc:
        partial = commit_work(ctx, subtask, worktree, 0, "partial work: " + str(exc), job.start)
        if partial:  # unreviewed, but its provenance and spend are recorded like every agent commit's
            note_commit(ctx, subtask.id, partial, ctx.registry.spec_for("coder", economy=ctx.economy), 0, None)
        # earlier rounds may have committed
        latest = partial or ctx.repo.rev_parse(agent_ref(ctx.run, subtask.id)) or head
        return Outcome(subtask.id, outcome_status(exc), latest, reason=str(exc))
    except BaseException:  # Ctrl-C with the agent in this thread, or a bug: save its work, then stop the run
        partial = commit_work(ctx, subtask, worktree, 0, "partial work: interrupted", job.start)
        if partial:  # like every agent commit, with its provenance note
            note_commit(ctx, subtask.id, partial, ctx.registry.spec_for("coder", economy=ctx.economy), 0, None)
        raise


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
    external = ctx.registry.spec_for("coder", economy=ctx.economy).startswith(COMMAND)
    cone = worktrees.cone_for(repo, ctx.config, job.subtask.files, job.start, external)
    if repo.rev_parse(agent_ref(ctx.run, agent)):
        repo.add_worktree(path, branch, cone)  # resume: the branch holds the earlier attempt's commits
    else:
        repo.create_worktree(path, branch, job.start, cone)
    learn_secret_files(ctx, path, repo.copy_included_files(path))
    return path


def code_and_review(ctx: RunContext, job: Assignment, worktree: Path, head: str) -> Outcome:
    subtask = job.subtask
    coder = make_coder(ctx, job, worktree, head)
    memory = ctx.board.digest(f"{subtask.title} {subtask.instructions}", files=subtask.files,
                              budget_tokens=CODER_TOKENS)
    # what gitteam's own coder may run; a command: coder runs its own tools
    commands = ctx.config.allowed_commands() if isinstance(coder, AgentCoder) else ()
    neighbours = coder_map(ctx.repo, job.start, subtask.files, hidden=ctx.config.secret_files().hides)
    message = coder_role.brief(subtask, job.dependencies, memory, ctx.task, commands=commands, map=neighbours)
    if job.resume and head != job.start:
        message += "\nAn earlier attempt's work on this subtask is already committed in your worktree; build on it."
    max_rounds = ctx.config.run.max_rounds
    for round_number in range(1, max_rounds + 1):
        summary = coder.work(message, round_number)
        head = commit_work(ctx, subtask, worktree, round_number, summary, job.start) or head
        verdict = review_round(ctx, job, worktree, head, round_number, summary)
        note_commit(ctx, subtask.id, head, coder.model, round_number, verdict)
        if verdict.decision == "APPROVE":
            return Outcome(subtask.id, "approved", head, summary=summary, verdict=verdict)
        if verdict.decision == "BLOCK":
            return Outcome(subtask.id, "refused", head, reason=f"blocked: {verdict.summary}", summary=summary,
                           verdict=verdict)
        if round_number == max_rounds:
            reason = f"changes still requested after {max_rounds} round(s): {verdict.summary}"
            return Outcome(subtask.id, "refused", head, reason=reason, summary=summary, verdict=verdict)
        message = coder_role.changes_requested_message(format_findings(verdict.findings),
                                                       round_number + 1)
    raise AssertionError("unreachable: the last round returns")


def make_coder(ctx: RunContext, job: Assignment, worktree: Path, head: str) -> Coder:
    """The subtask's coder: gitteam's agent loop on the role's model, or the external agent CLI a
    `command:` spec names (in economy mode: the role's economy spec)."""
    subtask = job.subtask
    spec = ctx.registry.spec_for("coder", economy=ctx.economy)
    context = ctx.call_context("coder", subtask.id)
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
    coder_role.prepare_scratch(worktree)
    workspace = coder_role.Workspace(ctx.repo, worktree, head, Ownership(subtask.files, ctx.config.protect), commands,
                                     ctx.config.secret_files())
    return AgentCoder(Agent(
        ctx.model("coder"), coder_role.SYSTEM, coder_role.coder_tools(workspace, ctx.board, subtask.id),
        context, ctx.limits, ctx.meter, terminal="done", on_tool=ctx.on_tool, transcript=ctx.transcript(context),
    ))


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
    ownership = Ownership(subtask.files, ctx.config.protect)
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


def review_round(ctx: RunContext, job: Assignment, worktree: Path, head: str, round_number: int,
                 summary: str) -> Verdict:
    """The merge gate: deterministic checks first (no model overrules them), then the reviewers."""
    subtask = job.subtask
    diff_text = ctx.repo.diff(job.start, head)
    changes = parse_diff(diff_text)
    with test_tree(ctx, job, worktree, head) as tree:
        checks = run_checks(CheckContext(
            repo=ctx.repo, base=job.start, head=head, changes=changes,
            ownership=Ownership(subtask.files, ctx.config.protect),
            worktree=tree, test_command=ctx.config.commands.test, command_env=env(ctx, job, tree),
            command_timeout=ctx.config.commands.timeout, max_file_bytes=ctx.config.review.max_file_bytes,
            commands=ctx.commands,
        ))
    if not changes:
        verdict = Verdict("REQUEST_CHANGES", "the coder changed none of its files", (
            Finding("", None, "major", "No file was changed; the subtask is not done.", None, "check:empty"),))
    else:
        subject = Subject(job.start, head, diff_text, changes, ctx.task, checks=checks, about={
            "subtask": subtask.id, "title": subtask.title, "instructions": subtask.instructions,
            "files": ", ".join(subtask.files)}, claim=summary)
        verdict = decide(checks, lambda: review_with_agents(ctx.review_session(subtask.id, round_number), subject))
    ctx.journal.append(Reviewed(agent=subtask.id, round=round_number, head=head, verdict=verdict.to_json()))
    return verdict


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

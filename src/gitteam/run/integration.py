"""The integration branch, the person's approval, and the fast-forward of the target.

Approved subtask branches merge into `gitteam/<run>/integration` (in memory, with `git merge-tree`;
no checkout is touched). The target moves only by fast-forward with compare-and-swap; if it moved
during the run, its new commits are merged into the integration branch first, or the run stops and
says how to finish.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable, Sequence
from typing import Any

from gitteam.errors import Exit, GitteamError
from gitteam.events import (
    Approved,
    AwaitingApproval,
    CatchUpChecked,
    Event,
    IntegrationCreated,
    Merged,
    ModelCalled,
    Rejected,
    TargetMoved,
    TargetUpdated,
)
from gitteam.git import Merging
from gitteam.journal import MERGED, PENDING, REFUSED, REJECTED, AgentState, load_run
from gitteam.locks.protected import Protection, protection_for
from gitteam.locks.refs import release_files
from gitteam.names import INTEGRATION, agent_branch, agent_ref
from gitteam.review.diff import parse_diff
from gitteam.review.verdict import Verdict, gate_decision
from gitteam.run import integration_review as integrated
from gitteam.run import rework, worktrees
from gitteam.run.context import (
    AgentResult,
    ApprovalRequest,
    ChangesRequested,
    Outcome,
    Progress,
    RunContext,
    RunOptions,
    RunResult,
    failure_state,
)

AUTHOR = ("gitteam", "gitteam@gitteam.invalid")
CAS_ATTEMPTS = 5

log = logging.getLogger("gitteam")


def ref(ctx: RunContext) -> str:
    return agent_ref(ctx.run, INTEGRATION)


def create_branch(ctx: RunContext, base: str) -> None:
    """The run's integration branch at `base`, journaled. One already there at `base` is this run's own, made
    by a process killed before it journaled it (the branch is named by the run id): resume takes it."""
    if not ctx.repo.update_ref(ref(ctx), base, None) and ctx.repo.rev_parse(ref(ctx)) != base:
        raise GitteamError(f"branch {agent_branch(ctx.run, INTEGRATION)} already exists; run ids must be new")
    ctx.journal.append(IntegrationCreated(branch=agent_branch(ctx.run, INTEGRATION), head=base))


def head(ctx: RunContext) -> str:
    value = ctx.repo.rev_parse(ref(ctx))
    if value is None:
        raise GitteamError(f"the integration branch of run {ctx.run} is gone; gitteam abort {ctx.run} cleans up")
    return value


def merge_agent(ctx: RunContext, outcome: Outcome) -> str:
    """Merge one approved subtask; files are disjoint, so a conflict means someone else touched them."""
    heads: list[str] = []
    merge_agents(ctx, [(outcome, None)], lambda _, new: heads.append(new))
    return heads[0]


def merge_agents(ctx: RunContext, outcomes: Sequence[tuple[Outcome, str | None]],
                 merged: Callable[[Outcome, str], None]) -> None:
    """Merge approved subtasks into the integration branch in the order given, each onto the one before;
    `merged` hears of each once it is journaled. With the commit a subtask's branch began at (None: not known),
    merges of disjoint files are made together, without asking git merge by merge (Repository.merge_chain)."""
    todo = list(outcomes)
    for _ in range(CAS_ATTEMPTS):
        chain = ctx.repo.merge_chain(ref(ctx), [Merging(outcome.head, _merge_message(ctx, outcome.agent), start)
                                                for outcome, start in todo], AUTHOR)
        for (outcome, _), new in zip(todo, chain.heads, strict=False):
            ctx.journal.append(Merged(agent=outcome.agent, head=new))
            merged(outcome, new)
        todo = todo[len(chain.heads):]
        if chain.conflict:
            raise GitteamError(f"subtask {todo[0][0].agent} does not merge cleanly into the integration branch")
        if not todo:
            return
    raise GitteamError(f"the integration branch of run {ctx.run} keeps moving; is another gitteam resuming it?")


def _merge_message(ctx: RunContext, agent: str) -> str:
    return f"gitteam: merge {agent}\n\ngitteam-run: {ctx.run}\ngitteam-agent: {agent}\n"


def conclude(ctx: RunContext, options: RunOptions, progress: Progress, note: str = "") -> RunResult:
    """Everything merged into integration: ask the person (or not), then fast-forward the target. `note`: what
    the person should read first (a rework they asked for that was refused)."""
    # unattended, nobody looks into the subtasks' worktrees before the result lands: they go during the review
    refused = review_result(ctx, progress, sweep=options.yes and not (options.no_merge or options.keep))
    if refused is not None:
        return refused
    details = summary_details(ctx, progress.base)
    unconfirmed = unconfirmed_protected(details["protected"], options.allow_protected)
    decision: str | ChangesRequested
    if options.yes and not unconfirmed:
        decision = "approve"
    elif options.yes and options.approver is None:
        ctx.journal.append(AwaitingApproval(head=head(ctx), protected=unconfirmed))
        # Exit 3, not 0: with --yes a run that does not move the target exits non-zero. Not 1 either: nothing
        # failed and a plain resume would change nothing; a gate refused to let it through unattended and a
        # person must decide, as when the target's new commits fail the checks (also pending, also 3).
        return ctx.finish(PENDING, Exit.REFUSED, protected_message(ctx, unconfirmed), **details)
    elif options.no_merge or options.approver is None:
        ctx.journal.append(AwaitingApproval(head=head(ctx)))
        why = "--no-merge" if options.no_merge else "no terminal to ask"
        # a refused rework is a refusal by the gate (exit 3), though the run, unchanged, still waits
        return ctx.finish(PENDING, Exit.REFUSED if note else Exit.OK, (f"{note}. " if note else "") +
                          f"run {ctx.run} is ready and waiting ({why}): review it with gitteam show {ctx.run}, then "
                          f"gitteam approve {ctx.run} or gitteam reject {ctx.run}", **details)
    else:  # a person at a terminal: the prompt shows the protected files among the changes
        decision = options.approver(approval_request(ctx, progress, details, note))
    if isinstance(decision, ChangesRequested):  # another round for those subtasks, then the prompt returns
        outcome = rework_person(ctx, progress, decision.feedback)
        return outcome if isinstance(outcome, RunResult) else conclude(ctx, options, progress, outcome)
    if decision in ("later", "interrupted"):
        ctx.journal.append(AwaitingApproval(head=head(ctx)))
        code = Exit.INTERRUPTED if decision == "interrupted" else Exit.OK
        return ctx.finish(PENDING, code, f"run {ctx.run} is waiting: gitteam approve {ctx.run} or "
                          f"gitteam reject {ctx.run} when you have decided", **details)
    if decision == "reject":
        return reject(ctx)
    return approve(ctx, options.keep, unattended=options.yes)


def review_result(ctx: RunContext, progress: Progress, sweep: bool = False) -> RunResult | None:
    """The gate on the integrated result (integration_review.py). Requested changes go back to the subtasks
    owning the files the findings name, for `[review] integration_repairs` rounds (run/rework.py), and the new
    result is reviewed again; a refusal then ends the run, nothing merged. With `sweep` (an unattended run), the
    merged subtasks' worktrees go while it is reviewed (`Sweep`), unless the configuration keeps them."""
    swept = None
    try:
        while True:
            integrated_head = head(ctx)
            if not integrated.needed(ctx, progress, integrated_head):
                return None
            if sweep and swept is None and not ctx.config.run.keep_worktrees:
                swept = Sweep(ctx, list(progress.summaries))
            verdict = integrated.review_result(ctx, progress, integrated_head)
            refused = _after_review(ctx, progress, verdict, swept)
            if refused is not None or verdict.decision == "APPROVE":
                return refused
    finally:
        if swept is not None:
            swept.wait()


def _after_review(ctx: RunContext, progress: Progress, verdict: Verdict, sweep: Sweep | None) -> RunResult | None:
    """What the integration review's verdict leads to: None to land or to review again after a repair round,
    else the run's end."""
    if verdict.decision == "APPROVE":
        return None
    why = verdict.summary.strip().splitlines()[0] if verdict.summary.strip() else "no summary"
    if verdict.decision == "REQUEST_CHANGES" and progress.repairs < ctx.config.review.integration_repairs:
        if sweep is not None:
            sweep.wait()  # the repair round makes the worktrees it needs again, from the subtasks' branches
        progress.repairs += 1
        feedback = rework.repair_feedback(progress.plan, progress.summaries, verdict)
        outcomes = rework.rework(ctx, progress, feedback, "integration", lambda o: merge_agent(ctx, o))
        failed = [o for o in outcomes if o.status != "approved"]
        if not failed:
            return None  # repaired: reviewed again
        lines = "; ".join(f"{o.agent}: {o.status}: {o.reason}" for o in failed)
        why = f"{why}; the repair round did not pass the gate ({lines})"
        state, code = failure_state(failed)
        if state != REFUSED:  # stopped, not refused: resume carries on from the journal
            return ctx.finish(state, code, f"the repair round of the integrated result stopped ({lines}); "
                              f"nothing merged into {ctx.target}; carry on with gitteam resume {ctx.run}",
                              **summary_details(ctx, progress.base))
    return ctx.finish(REFUSED, Exit.REFUSED,
                      f"the integrated result was refused by the review gate ({verdict.decision}: {why}); "
                      f"nothing merged into {ctx.target}. Branches are kept (gitteam show {ctx.run}); after a "
                      f"fix, gitteam resume {ctx.run} reviews it again", **summary_details(ctx, progress.base))


class Sweep:
    """The merged subtasks' worktrees, removed in a thread of their own once an unattended run's integration
    review has sent its model request: that call is the run's one wait with every subtask done (begun before it,
    the removal took the CPU its prompt is built with), and their removal (what each left uncommitted saved
    first, on its leftovers ref) had been most of a run's end, 30-70 ms for eight. A repair round makes again,
    from the subtask's branch, the worktree it needs (subtask.prepare_worktree). Without a model call (a check
    that blocks), or on a failure, the removal at the run's end does it and reports it. A run that waits for a
    person keeps its worktrees until approve or reject, as before."""

    def __init__(self, ctx: RunContext, agents: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

        def heard(event: Event) -> None:
            if isinstance(event, ModelCalled) and event.agent == INTEGRATION:
                with self._lock:
                    if self._thread is None and not self._closed:
                        self._thread = threading.Thread(target=self._remove, args=(ctx, tuple(agents)),
                                                        name="gitteam-sweep", daemon=True)
                        self._thread.start()

        ctx.journal.subscribe(heard)

    @staticmethod
    def _remove(ctx: RunContext, agents: tuple[str, ...]) -> None:
        try:
            worktrees.remove_run(ctx.repo, ctx.config, ctx.run, ctx.journal, force=False, measure=False,
                                 agents=agents)
        except GitteamError as exc:
            log.debug("merged worktrees left for the run's end: %s", exc)

    def wait(self) -> None:
        """The removal, if begun, finished; none begins after this."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join()


def rework_person(ctx: RunContext, progress: Progress, feedback: dict[str, str]) -> RunResult | str:
    """The person's requested changes, one more round each. Returns what to tell them of rounds the gate
    refused (the result keeps those subtasks' merged work), or the run's end when a round was stopped (the
    budget, an error): the run is then resumable like any other."""
    rework.check_feedback(progress.plan, progress.summaries, feedback)
    outcomes = rework.rework(ctx, progress, feedback, "person", lambda o: merge_agent(ctx, o))
    failed = [o for o in outcomes if o.status != "approved"]
    if not failed:
        return ""
    lines = "; ".join(f"{o.agent}: {o.status}: {o.reason}" for o in failed)
    state, code = failure_state(failed)
    if state != REFUSED:
        return ctx.finish(state, code, f"the requested changes stopped ({lines}); nothing merged into "
                          f"{ctx.target}; carry on with gitteam resume {ctx.run}",
                          **summary_details(ctx, progress.base))
    return f"the requested changes did not pass the gate, so the result holds those subtasks' earlier work ({lines})"


def summary_details(ctx: RunContext, base: str) -> dict[str, Any]:
    integrated = head(ctx)
    files = ctx.repo.changed_paths(base, integrated)
    protection = protection_for(ctx.config.protect)
    return {
        "target": ctx.target,
        "integration": agent_branch(ctx.run, INTEGRATION),
        "head": integrated,
        "files": files,
        "protected": [path for path in files if protection.protects(path)],  # allowed or not: shown apart
    }


def approval_request(ctx: RunContext, progress: Progress, details: dict[str, Any], note: str = "") -> ApprovalRequest:
    """Everything the person sees before deciding, read from git here so the terminal UI never runs git."""
    state = load_run(ctx.repo.state_dir, ctx.run)
    agents = [agent_result(ctx, agent) for agent in state.agents.values() if agent.status == "merged" and agent.head]
    if state.integration_review:
        verdict = state.integration_review["verdict"]
        agents.append(AgentResult(INTEGRATION, "", 1, str(verdict.get("decision", "")),
                                  str(verdict.get("summary", "")), list(verdict.get("findings", [])), [],
                                  state.integration_tokens, state.integration_cost, ""))
    reworkable = [(s.id, s.title) for s in progress.plan.subtasks if s.id in progress.summaries]
    return ApprovalRequest(run=ctx.run, target=ctx.target, files=details["files"], protected=details["protected"],
                           diff=ctx.repo.diff(progress.base, details["head"]), agents=agents, cost=state.cost,
                           tokens=state.tokens, budget=ctx.config.run.budget, reworkable=reworkable, note=note)


def agent_result(ctx: RunContext, agent: AgentState) -> AgentResult:
    verdict = agent.verdict or {}
    base = agent.base or ctx.repo.merge_base(agent.head, head(ctx)) or agent.head
    return AgentResult(agent.id, agent.summary, agent.round, str(verdict.get("decision", "")),
                       str(verdict.get("summary", "")), list(verdict.get("findings", [])),
                       ctx.repo.changed_paths(base, agent.head), agent.tokens, agent.cost,
                       ctx.repo.diff(base, agent.head))


def unconfirmed_protected(changed: list[str], flags: tuple[str, ...]) -> list[str]:
    """Changed protected paths that this command line's --allow-protected does not name.

    Only the flag counts: an allowance in the user config, or one given to an earlier command of the run,
    let agents change the file, but approving the result unattended (--yes) needs the person to name it now.
    """
    named = Protection((), flags)
    return [path for path in changed if not named.allows(path)]


def protected_message(ctx: RunContext, paths: list[str]) -> str:
    flags = " ".join(f"--allow-protected {shlex.quote(path)}" for path in paths)
    return (f"{ctx.target} was not moved: run {ctx.run} changes protected files ({', '.join(paths)}), which can "
            f"make git, CI or gitteam run code and are never approved silently. Check them (gitteam show "
            f"{ctx.run}), then gitteam approve {ctx.run} {flags}, or run gitteam approve {ctx.run} in a terminal "
            "to approve interactively")


def approve(ctx: RunContext, keep: bool, unattended: bool) -> RunResult:
    """The fast-forward. When it cannot happen the run stays pending: exit 0 as the contract has it for a
    pending run, except `unattended` (--yes, gitteam approve), where a target left unmoved must fail the
    script (`run --yes && deploy` must not deploy nothing)."""
    not_moved = Exit.FAILED if unattended else Exit.OK
    ctx.journal.append(Approved())
    for _ in range(CAS_ATTEMPTS):
        current = ctx.repo.rev_parse(f"refs/heads/{ctx.target}")
        if current is None:
            return ctx.finish(PENDING, not_moved, f"target branch {ctx.target} no longer exists; "
                          f"the result is on {agent_branch(ctx.run, INTEGRATION)}")
        before = head(ctx)
        new = catch_up(ctx, current)
        if new is not None and new != before:  # what would reach the target is a new, untested merge
            refused = check_catch_up(ctx, current, before, new)
            if refused is not None:
                return refused
        if new is None:
            return ctx.finish(PENDING, not_moved,
                          f"{ctx.target} moved during the run and its new commits conflict with the run's changes; "
                          f"the result is on {agent_branch(ctx.run, INTEGRATION)}: merge it by hand, or rebase and "
                          f"gitteam approve {ctx.run}")
        result = ctx.repo.fast_forward(ctx.target, new, current)
        if result.moved:
            ctx.journal.append(TargetUpdated(target=ctx.target, old=current, new=new, detail=result.detail))
            kept = cleanup(ctx, keep)
            if ctx.remote is not None:  # a distributed run lands where its workers see it, never forced
                kept = ctx.remote.push_target(ctx.target, new, current) + kept
            where = f" (checked out at {result.checked_out})" if result.checked_out else ""
            # the result line reads "merged: main fast-forwarded ...": the state is not said twice
            return ctx.finish(MERGED, Exit.OK, f"{ctx.target}{where} fast-forwarded {current[:10]}..{new[:10]}{kept}",
                              **summary_details(ctx, current))
        if ctx.repo.rev_parse(f"refs/heads/{ctx.target}") == current:
            # Not a lost race: the user's uncommitted, untracked or ignored files are in the way. Touch
            # nothing of theirs; the detail names the files and what to do with them.
            return ctx.finish(PENDING, not_moved,
                          f"{ctx.target} was not moved: {result.detail}. The result is on branch "
                          f"{agent_branch(ctx.run, INTEGRATION)}; once those files are out of the way: "
                          f"gitteam approve {ctx.run}")
    return ctx.finish(PENDING, not_moved, f"{ctx.target} keeps moving; try gitteam approve {ctx.run} again")


def catch_up(ctx: RunContext, current: str) -> str | None:
    """The integration head, with the target's new commits merged in if it moved; None on conflict."""
    integrated = head(ctx)
    if ctx.repo.is_ancestor(current, integrated):
        return integrated
    message = f"gitteam: merge {ctx.target} into the run\n\ngitteam-run: {ctx.run}\n"
    merged = ctx.repo.merge(integrated, current, message, AUTHOR)
    if merged is None:
        return None
    if not ctx.repo.update_ref(ref(ctx), merged, integrated):
        raise GitteamError(f"the integration branch of run {ctx.run} moved while approving; try again")
    ctx.journal.append(TargetMoved(target=ctx.target, target_head=current, head=merged))
    return merged


def check_catch_up(ctx: RunContext, target_head: str, before: str, merged: str) -> RunResult | None:
    """The deterministic checks and the test command on the run merged with the target's new commits.

    Each side passed alone; together they may not. On a refusal the integration branch goes back to
    `before`, so a later `approve` merges and checks again instead of fast-forwarding an untested tree.
    """
    changes = parse_diff(ctx.repo.diff(target_head, merged))
    findings = integrated.checked_in_worktree(ctx, target_head, merged, changes)
    decision = gate_decision(findings)
    ctx.journal.append(CatchUpChecked(head=merged, decision=decision, findings=[f.to_json() for f in findings]))
    if decision == "APPROVE":
        return None
    ctx.repo.update_ref(ref(ctx), before, merged)
    first = next((f.message for f in findings if f.severity in ("critical", "major")), findings[0].message)
    return ctx.finish(PENDING, Exit.REFUSED,
                      f"{ctx.target} moved during the run, and merged with its new commits the result fails the "
                      f"checks: {first.splitlines()[0]}. Nothing reached {ctx.target}; the run's result is on "
                      f"{agent_branch(ctx.run, INTEGRATION)}: merge it by hand and fix it, or reject it")


def reject(ctx: RunContext) -> RunResult:
    ctx.journal.append(Rejected())
    kept = cleanup(ctx, keep=False)
    message = f"{ctx.target} is unchanged; branches gitteam/{ctx.run}/* are kept for inspection"
    return ctx.finish(REJECTED, Exit.REJECTED, message + kept)


def cleanup(ctx: RunContext, keep: bool) -> str:
    """A finished run frees its files for other runs and, unless kept, its worktrees (work is committed, and
    what agents left uncommitted is saved on the run's leftovers refs first).

    Returns a note for the final message: leftovers saved, worktrees kept.
    """
    release_files(ctx.repo, ctx.run)
    if keep or ctx.config.run.keep_worktrees:
        return ""
    return removal_note(worktrees.remove_run(ctx.repo, ctx.config, ctx.run, ctx.journal, force=False, measure=False),
                        ctx.run)


def removal_note(removal: worktrees.Removal, run: str) -> str:
    """What the person should know after a run's worktrees went: files saved, and worktrees kept (and why)."""
    note = ""
    if removal.saved:
        agents = ", ".join(saved.agent for saved in removal.saved)
        note += (f"; files {agents} left uncommitted (not their own) are saved on "
                 f"{worktrees.LEFTOVERS}{run}/<agent> (git show {removal.saved[0].ref})")
    if removal.kept:
        kept = "; ".join(f"{path}: {why}" for path, why in removal.kept)
        note += f"; kept {len(removal.kept)} worktree(s) ({kept}): gitteam clean --force removes them"
    return note

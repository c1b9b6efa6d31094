"""The command line: typer commands that parse options and call plain functions returning exit codes.

No logic lives here. Imports of the machinery happen inside the commands, so `gitteam --help` stays fast
and never imports a model SDK.

Annotations here are evaluated as the commands are defined (no `from __future__ import annotations`): typer
reads every command's signature at each start, and strings it would compile and evaluate, 300 of them, a
10 ms part of every command's start. Names imported only for type checking are quoted.
"""

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from gitteam.clivalues import convert_plainly
from gitteam.errors import Exit, GitteamError, UsageError
from gitteam.terminal import one_line, show_warnings

if TYPE_CHECKING:
    from gitteam.config import Config
    from gitteam.git import Repository
    from gitteam.memory import Entry


class PlainUsage(TyperCommand):
    """Every command's class: usage lines as POSIX writes them, `gitteam plan [OPTIONS] TASK` (typer writes a
    required argument `{TASK}`, which reads like shell brace expansion), and option values converted without
    pydantic (clivalues)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        convert_plainly(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


class PlainGroup(TyperGroup):
    """The command groups' class: their option values, too, converted without pydantic (clivalues)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        convert_plainly(self.get_params(ctx))
        return super().parse_args(ctx, args)


HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    name="gitteam",
    cls=PlainGroup,
    help="Run a team of coding agents on a git repository: plan, code in parallel worktrees, review, "
    "fast-forward.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)
hook_app = typer.Typer(help="Install the review gate as a git hook.", no_args_is_help=True, cls=PlainGroup,
                       context_settings=HELP_OPTIONS)
memory_app = typer.Typer(help="The team's shared memory, kept in git notes.", no_args_is_help=True, cls=PlainGroup,
                         context_settings=HELP_OPTIONS)
app.add_typer(hook_app, name="hook")
app.add_typer(memory_app, name="memory")

RepoOpt = Annotated[Path | None, typer.Option("--repo", help="Repository (default: the one around the cwd).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="Progress as plain timestamped lines, not the live "
                                        "table (also when stderr is not a terminal, or NO_COLOR is set).")]
SpecOpt = str | None
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="A run's id, or the start of it that no other run's "
                                       "id shares.")]
AnyRunArg = Annotated[str | None, typer.Argument(metavar="RUN", help="A run's id or the start of it (default: "
                                                 "all runs).")]
AllowOpt = Annotated[list[str] | None, typer.Option(
    "--allow-protected", metavar="PATH", help="Let this run's agents change a protected path ([protect]: CI, "
    "hooks, .gitteam.toml, ...), and with --yes approve its change (repeatable).")]


def print_version(value: bool) -> None:
    if value:
        from gitteam import __version__

        print(f"gitteam {__version__}")
        raise typer.Exit()


@app.callback()
def top_level(version: Annotated[bool, typer.Option("--version", callback=print_version, is_eager=True,
                                                    help="Print gitteam's version and exit.")] = False) -> None:
    """Run a team of coding agents on a git repository: plan, code in parallel worktrees, review, fast-forward."""


def open_repo(path: Path | None) -> "Repository":
    from gitteam.git import find_repository

    return find_repository(path)


def run_named(repo: "Repository", run_id: str) -> str:
    """The run a command names: its id, or a prefix of it that only this run's id starts with."""
    from gitteam.journal import find_run

    return find_run(repo.state_dir, run_id)


def load(repo: "Repository", **overrides: object) -> "Config":
    """The configuration; every command loads it here, so the repository's ignored settings are said once."""
    from gitteam.config import ignored_warning, load_config

    config = load_config(repo.root, overrides)
    warning = ignored_warning(config)
    if warning:  # names keys the repository's file wrote
        print(f"gitteam: {one_line(warning)}", file=sys.stderr)
    return config


def model_overrides(model: SpecOpt, planner: SpecOpt, coder: SpecOpt, reviewer: SpecOpt) -> dict[str, object]:
    return {"roles.*": model, "roles.planner": planner, "roles.coder": coder, "roles.reviewer": reviewer}


@app.command()
def run(
    task: Annotated[str | None, typer.Argument(metavar="TASK", help="What the team should do.")] = None,
    repo: RepoOpt = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for every role.")] = None,
    planner: Annotated[SpecOpt, typer.Option("--planner", help="Model spec for the planner.")] = None,
    coder: Annotated[SpecOpt, typer.Option("--coder", help="Model spec for the coders.")] = None,
    reviewer: Annotated[SpecOpt, typer.Option("--reviewer", help="Model spec for the reviewers.")] = None,
    max_agents: Annotated[int | None, typer.Option("--max-agents", min=1, help="Coders at once.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Money the run may spend, USD.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve without asking.")] = False,
    no_merge: Annotated[bool, typer.Option("--no-merge", help="Stop before the fast-forward.")] = False,
    target: Annotated[str | None, typer.Option("--target", help="Branch to fast-forward.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the worktrees after the run.")] = False,
    from_backlog: Annotated[list[str] | None, typer.Option("--from-backlog", metavar="ID", help="Fix these "
                                                           "backlog items (repeatable; see gitteam backlog).")]
    = None,
    allow_protected: AllowOpt = None,
    saved_plan: Annotated[str | None, typer.Option("--plan", metavar="RUN", help="Carry out the plan gitteam plan "
                                                   "saved (its run id, or the start of it): no new planning.")]
    = None,
    remote: Annotated[str | None, typer.Option("--remote", metavar="NAME", help="Publish the subtasks to this git "
                                               "remote for gitteam worker processes elsewhere to code; review and "
                                               "integration stay here (docs/workers.md).")] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Plan, code in parallel worktrees, review, integrate, ask, fast-forward."""
    from gitteam import ui
    from gitteam.commands import memory as memory_command
    from gitteam.journal import Journal, load_run
    from gitteam.run.orchestrator import run_planned, start_run

    if saved_plan is not None and (task is not None or from_backlog):
        raise UsageError("--plan carries out the saved plan's own task: give no TASK or --from-backlog with it")
    if task is None and not from_backlog and saved_plan is None:
        raise UsageError("Missing argument 'TASK': say what the team should do (or pass --from-backlog ID, or "
                         "--plan RUN)")
    git_repo = open_repo(repo)
    items: list[Entry] = []
    if from_backlog:
        task, items = memory_command.backlog_task(git_repo, from_backlog, task)
    config = load(git_repo, **model_overrides(model, planner, coder, reviewer), **{
        "run.max_agents": max_agents, "run.budget": budget, "run.target": target})
    with ui.DisplayLater(quiet) as display:  # made once the planner's request is out: it loads rich
        options = ui.run_options(yes=yes, no_merge=no_merge, keep=keep, json_out=json_out,
                                 allow_protected=allow_protected or [], display=display, remote=remote)
        if saved_plan is not None:
            run_id = run_named(git_repo, saved_plan)
            items = memory_command.backlog_items(git_repo, load_run(git_repo.state_dir, run_id).options)
            display.seed(Journal(git_repo.state_dir, run_id).events())  # the planner's row, as it planned
            result = run_planned(git_repo, config, run_id, options, target, listener=display)
        else:
            result = start_run(git_repo, config, task or "", options, listener=display)
    memory_command.close_resolved(git_repo, items, result.run, result.state)
    return ui.report(ui.progress_console(), result, json_out)


@app.command()
def plan(
    task: Annotated[str | None, typer.Argument(metavar="TASK", help="What the team should do.")] = None,
    repo: RepoOpt = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for every role (the planner now; the "
                                           "rest as run --plan's default is its own flags).")] = None,
    planner: Annotated[SpecOpt, typer.Option("--planner", help="Model spec for the planner.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Branch to plan on and later fast-forward "
                                               "(default: the current branch).")] = None,
    from_backlog: Annotated[list[str] | None, typer.Option("--from-backlog", metavar="ID", help="Plan fixing these "
                                                           "backlog items (repeatable; see gitteam backlog).")]
    = None,
    allow_protected: AllowOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Plan the task (subtasks, files, waves) and save the plan: gitteam run --plan RUN carries it out. Changes
    nothing in git."""
    from gitteam import ui
    from gitteam.commands import memory as memory_command
    from gitteam.run.orchestrator import save_plan

    if task is None and not from_backlog:
        raise UsageError("Missing argument 'TASK': say what the team should do (or pass --from-backlog ID)")
    git_repo = open_repo(repo)
    if from_backlog:
        task, _ = memory_command.backlog_task(git_repo, from_backlog, task)
    config = load(git_repo, **model_overrides(model, planner, None, None), **{"run.target": target})
    result, planned = save_plan(git_repo, config, task or "", tuple(allow_protected or []),
                                tuple(from_backlog or []))
    if planned is None:  # refused or failed: the journal keeps what the planner cost; one line says why
        raise GitteamError(result.message, result.exit_code)
    ui.print_plan(planned.plan, planned.serialized, planned.summary, json_out, run=result.run)
    return Exit.OK


@app.command()
def status(
    run_id: AnyRunArg = None,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Runs and their agents: state, branch, worktree, files, tokens, cost, verdict."""
    from gitteam import ui
    from gitteam.run import inspect as runs

    git_repo = open_repo(repo)
    states = [runs.one_run(git_repo, run_named(git_repo, run_id))] if run_id else runs.all_runs(git_repo)
    ui.print_status(states, json_out, detailed=bool(run_id))
    return Exit.OK


@app.command()
def show(
    run_id: RunArg,
    agent: Annotated[str | None, typer.Argument(metavar="AGENT", help="Subtask id (default: integration).")]
    = None,
    repo: RepoOpt = None,
    transcript: Annotated[bool, typer.Option("--transcript", help="The agent's conversation: what it was told, "
                                             "its tool calls and their results, usage per turn.")] = False,
    full: Annotated[bool, typer.Option("--full", help="With --transcript: texts whole, not trimmed.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """One agent's diff, notes and review findings; or its transcript."""
    from gitteam import ui
    from gitteam.run import inspect as runs

    git_repo = open_repo(repo)
    run_id = run_named(git_repo, run_id)
    if transcript:
        state, name, reads = runs.show_transcripts(git_repo, run_id, agent)
        ui.print_transcripts(state.run, name, reads, json_out, full)
        return Exit.OK
    view = runs.show_agent(git_repo, run_id, agent)
    ui.print_agent(view, json_out)
    return Exit.OK


@app.command()
def approve(
    run_id: RunArg,
    repo: RepoOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the worktrees.")] = False,
    allow_protected: Annotated[list[str] | None, typer.Option(
        "--allow-protected", metavar="PATH", help="Approve the run's change to this protected path "
        "(repeatable); without it, a run changing protected paths is approved only at a terminal.")] = None,
    request_changes: Annotated[list[str] | None, typer.Option(
        "--request-changes", metavar="AGENT=TEXT", help="Instead of approving: send this merged subtask back to "
        "its coder with TEXT for another round (repeatable); reviewed and merged again, the run stays pending.")
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Approve a pending run: fast-forward its target (or, with --request-changes, send subtasks back)."""
    from gitteam import ui
    from gitteam.run import control
    from gitteam.run.rework import parse_requests

    changes = parse_requests(request_changes or [])
    git_repo = open_repo(repo)
    approver = ui.ask_approval if ui.is_interactive() else None  # asked only about protected paths
    result = control.decide(git_repo, load(git_repo), run_named(git_repo, run_id), "approve", keep=keep,
                         allow_protected=tuple(allow_protected or []), approver=approver, changes=changes)
    return ui.report(ui.progress_console(), result, json_out)


@app.command()
def reject(run_id: RunArg, repo: RepoOpt = None,
           json_out: JsonOpt = False) -> int:
    """Reject a pending run: the target stays as it is; branches are kept."""
    from gitteam import ui
    from gitteam.run import control

    git_repo = open_repo(repo)
    result = control.decide(git_repo, load(git_repo), run_named(git_repo, run_id), "reject")
    return ui.report(ui.progress_console(), result, json_out)


@app.command()
def resume(
    run_id: RunArg,
    repo: RepoOpt = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for every role.")] = None,
    planner: Annotated[SpecOpt, typer.Option("--planner", help="Model spec for the planner.")] = None,
    coder: Annotated[SpecOpt, typer.Option("--coder", help="Model spec for the coders.")] = None,
    reviewer: Annotated[SpecOpt, typer.Option("--reviewer", help="Model spec for the reviewers.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="New total budget, USD.")] = None,
    max_agents: Annotated[int | None, typer.Option("--max-agents", min=1, help="Coders at once.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve without asking.")] = False,
    no_merge: Annotated[bool, typer.Option("--no-merge", help="Stop before the fast-forward.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the worktrees after the run.")] = False,
    allow_protected: AllowOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Continue a run that stopped, failed or crashed."""
    from gitteam import ui
    from gitteam.config import load_config
    from gitteam.journal import Journal, load_run
    from gitteam.run.orchestrator import kept_settings, resume_run

    git_repo = open_repo(repo)
    run_id = run_named(git_repo, run_id)
    flags = {**model_overrides(model, planner, coder, reviewer), "run.budget": budget, "run.max_agents": max_agents}
    kept = kept_settings(git_repo, load(git_repo, **flags), load_run(git_repo.state_dir, run_id),
                         {"planner": planner or model, "coder": coder or model, "reviewer": reviewer or model},
                         budget_given=budget is not None, max_agents_given=max_agents is not None)
    config = load_config(git_repo.root, {**kept.overrides, **{k: v for k, v in flags.items() if v is not None}})
    for note in kept.notes:
        print(f"gitteam: {one_line(note)}", file=sys.stderr)
    console = ui.progress_console()
    with ui.run_display(console, quiet) as display:
        display.seed(Journal(git_repo.state_dir, run_id).events())  # the view starts where the run stopped
        options = ui.run_options(yes=yes or kept.yes, no_merge=no_merge or kept.no_merge, keep=keep or kept.keep,
                                 json_out=json_out, allow_protected=allow_protected or [], display=display)
        result = resume_run(git_repo, config, run_id, options, listener=display)
    return ui.report(console, result, json_out)


@app.command()
def abort(
    run_id: RunArg,
    repo: RepoOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Also remove worktrees with stray files.")] = False,
) -> int:
    """Undo a run that has not merged: remove its worktrees, free its files; branches are kept."""
    from gitteam import ui
    from gitteam.run import control

    git_repo = open_repo(repo)
    result = control.abort(git_repo, load(git_repo), run_named(git_repo, run_id), force)
    return ui.report(ui.progress_console(), result, False)


@app.command()
def clean(
    repo: RepoOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Also remove worktrees whose leftover files could not be "
                                        "saved.")] = False,
    orphans: Annotated[bool, typer.Option("--orphans", help="Also remove orphaned worktrees: those of "
                                          "repositories that were deleted.")] = False,
) -> int:
    """Remove finished runs' worktrees (branches, notes and saved leftovers stay); report the disk freed."""
    from gitteam import ui
    from gitteam.run import control

    git_repo = open_repo(repo)
    cleaning = control.clean(git_repo, load(git_repo), force, orphans)
    ui.print_clean(cleaning)
    return Exit.FAILED if cleaning.kept else Exit.OK


@app.command()
def replay(
    run_id: RunArg,
    repo: RepoOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the scratch clone and print where it is.")] = False,
) -> int:
    """Re-run a recorded run offline from its transcripts in a scratch clone; exit 0 when every agent reached
    the recorded tree, 1 at the first request that differs."""
    from gitteam import ui
    from gitteam.run.replay import replay as replay_run

    console = ui.progress_console()
    git_repo = open_repo(repo)
    report = replay_run(git_repo, run_named(git_repo, run_id), keep=keep, listener=ui.ProgressPrinter(console))
    from gitteam.terminal import visible

    for line in report.lines():
        print(visible(line))  # a diff holds a model's words
    if report.scratch is not None:
        print(f"scratch clone kept: {report.scratch / 'repo'}")
    return report.exit_code


@app.command()
def worker(
    remote: Annotated[str | None, typer.Option("--remote", metavar="NAME", help="The git remote runs are published "
                                               "to (default: the current branch's remote, else origin).")] = None,
    repo: RepoOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Work one subtask, then exit (a CI job).")] = False,
    max_agents: Annotated[int, typer.Option("--max-agents", min=1, help="Subtasks worked at once.")] = 1,
    run_id: Annotated[str | None, typer.Option("--run", metavar="RUN", help="Only this run's subtasks.")] = None,
    idle: Annotated[float | None, typer.Option("--idle", metavar="SECONDS", min=0, help="Exit after this long with "
                                               "no published run on the remote (default: serve until "
                                               "interrupted).")] = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for the coders (as --coder).")] = None,
    coder: Annotated[SpecOpt, typer.Option("--coder", help="Model spec for the coders.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Money this worker may spend, USD, across "
                                                 "subtasks.")] = None,
) -> int:
    """Work subtasks of runs published to a git remote (gitteam run --remote): claim one by compare-and-swap,
    code it here with this machine's models, push the work; the run's owner reviews and integrates."""
    from gitteam.memory.sync import default_remote
    from gitteam.run.worker import WorkerOptions, serve

    git_repo = open_repo(repo)
    config = load(git_repo, **{"roles.coder": coder or model, "run.budget": budget})

    def say(line: str) -> None:
        print(f"gitteam worker: {line}", flush=True)

    options = WorkerOptions(remote=remote or default_remote(git_repo), once=once, max_agents=max_agents,
                            run=run_id, idle=idle)
    return serve(git_repo, config, options, say)


@app.command("export")
def export_command(
    run_id: RunArg,
    repo: RepoOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="PATH",
                                                help="The archive (default: gitteam-RUN.tar.gz here).")] = None,
) -> int:
    """One .tar.gz of a run for a bug report: journal, transcripts, notes, plan, version; secrets redacted."""
    from gitteam.commands.export import export

    git_repo = open_repo(repo)
    exported = export(git_repo, run_named(git_repo, run_id), output)
    for name, size in exported.parts:
        print(f"{size:>10}  {name}")
    print(f"{exported.size:>10}  {exported.path} (compressed)")
    return Exit.OK


@app.command()
def cost(run_id: AnyRunArg = None, repo: RepoOpt = None,
         json_out: JsonOpt = False) -> int:
    """Tokens and money per run, role, agent and model."""
    from gitteam import ui
    from gitteam.run import inspect as runs

    git_repo = open_repo(repo)
    states = [runs.one_run(git_repo, run_named(git_repo, run_id))] if run_id else runs.all_runs(git_repo)
    ui.print_cost(states, json_out)
    return Exit.OK


@app.command()
def review(
    repo: RepoOpt = None,
    base: Annotated[str | None, typer.Option("--base", help="Base revision; the range is BASE...HEAD (default: "
                                                "PRE_COMMIT_FROM_REF, else the merge-base with the upstream or "
                                                "default branch).")] = None,
    head: Annotated[str | None, typer.Option("--head", help="Head revision (default: PRE_COMMIT_TO_REF, else "
                                                "HEAD).")] = None,
    reviewer: Annotated[SpecOpt, typer.Option("--reviewer", help="Model spec for reviewers without a model of "
                                              "their own (default: roles.reviewer, or an API key's default).")]
    = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="The same as --reviewer: review has only reviewers.")]
    = None,
    output: Annotated[str, typer.Option("--format", help="text, json, github (workflow annotations), sarif "
                                        "(2.1.0, for code scanning) or rdjson (reviewdog).")] = "text",
    json_out: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    fail_on: Annotated[str, typer.Option("--fail-on", help="block: exit 3 on BLOCK (and on a failing check: a "
                                         "secret, a conflict marker, a syntax error); changes: on REQUEST_CHANGES "
                                         "too.")] = "block",
    checks_only: Annotated[bool, typer.Option("--checks-only", help="Deterministic checks only, no reviewer "
                                              "model (e.g. CI without an API key).")] = False,
) -> int:
    """The merge gate on any range: deterministic checks, then the configured reviewers."""
    from gitteam.commands import review as review_command

    if json_out and output not in ("text", "json"):
        raise UsageError(f"--json and --format {output} ask for two formats: give one")
    if model and reviewer and model != reviewer:
        raise UsageError("--model and --reviewer name different models: give one")
    git_repo = open_repo(repo)
    request = review_command.Request(base=base, head=head, output="json" if json_out else output, fail_on=fail_on,
                                     checks_only=checks_only)
    return review_command.review_range(git_repo, load(git_repo, **{"roles.reviewer": reviewer or model}), request)


@hook_app.command("install")
def hook_install(
    repo: RepoOpt = None,
    kind: Annotated[str, typer.Option("--type", help="pre-push or pre-merge-commit.")] = "pre-push",
    fail_on: Annotated[str, typer.Option("--fail-on", help="Passed to gitteam review: block (the default) or "
                                         "changes.")] = "block",
    checks_only: Annotated[bool, typer.Option("--checks-only", help="The deterministic checks only: no reviewer "
                                              "model, no key needed.")] = False,
) -> int:
    """Install `gitteam review` as a pre-push (or pre-merge-commit) hook."""
    from gitteam.commands import hooks

    print(hooks.install(open_repo(repo), kind, fail_on=fail_on, checks_only=checks_only))
    return Exit.OK


@hook_app.command("uninstall")
def hook_uninstall(repo: RepoOpt = None,
                   kind: Annotated[str, typer.Option("--type", help="pre-push or pre-merge-commit.")] = "pre-push"
                   ) -> int:
    """Remove gitteam's hook and restore the one it replaced."""
    from gitteam.commands import hooks

    print(hooks.uninstall(open_repo(repo), kind))
    return Exit.OK


TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Only entries with this tag (repeatable).")]
RunFilterOpt = Annotated[str | None, typer.Option("--run", help="Only entries of this run.")]
FileOpt = Annotated[list[str] | None, typer.Option("--file", help="A file the entry is about (repeatable).")]
RemoteArg = Annotated[str | None, typer.Argument(metavar="REMOTE", help="Remote name, URL or path (default: "
                                                 "the current branch's remote, else origin).")]


@memory_app.command("list")
def memory_list(repo: RepoOpt = None, tag: TagOpt = None, run_id: RunFilterOpt = None,
                hidden: Annotated[bool, typer.Option("--all", help="Also compacted and closed entries.")] = False,
                json_out: JsonOpt = False) -> int:
    """List the entries, newest last."""
    from gitteam.commands import memory as memory_command

    return memory_command.list_entries(open_repo(repo), tag or [], run_id, hidden, json_out)


@memory_app.command("show")
def memory_show(entry_id: Annotated[str, typer.Argument(metavar="ID", help="An entry id or a prefix of it.")],
                repo: RepoOpt = None, json_out: JsonOpt = False) -> int:
    """One entry in full, with where it came from and whether it was compacted."""
    from gitteam.commands import memory as memory_command

    return memory_command.show_entry(open_repo(repo), entry_id, json_out)


@memory_app.command("add")
def memory_add(content: Annotated[str, typer.Argument(metavar="CONTENT", help="What to remember.")],
               repo: RepoOpt = None, tag: TagOpt = None, file: FileOpt = None,
               run_id: Annotated[str | None, typer.Option("--run", help="The run it belongs to.")] = None) -> int:
    """Add an entry (secrets are redacted); prints its id."""
    from gitteam.commands import memory as memory_command

    return memory_command.add_entry(open_repo(repo), content, tag or [], file or [], run_id)


@memory_app.command("search")
def memory_search(query: Annotated[str, typer.Argument(metavar="QUERY", help="Words to look for.")],
                  repo: RepoOpt = None, tag: TagOpt = None, file: FileOpt = None,
                  run_id: RunFilterOpt = None,
                  limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
                  json_out: JsonOpt = False) -> int:
    """Entries matching QUERY, the files and the tags, best first."""
    from gitteam.commands import memory as memory_command

    return memory_command.search(open_repo(repo), query, tag or [], file or [], run_id, limit, json_out)


@memory_app.command("compact")
def memory_compact(
    repo: RepoOpt = None,
    older_than: Annotated[float, typer.Option("--older-than", min=0, help="Days: compact entries older than "
                                              "this.")] = 30.0,
    tag: TagOpt = None,
    run_id: RunFilterOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be compacted; change nothing.")]
    = False,
    json_out: JsonOpt = False,
) -> int:
    """Summarize old entries with the same tags into fewer ones; the originals stay in the refs' history."""
    from gitteam.commands import memory as memory_command

    return memory_command.compact(open_repo(repo), older_than, tag or [], run_id, dry_run, json_out)


@memory_app.command("push")
def memory_push(remote: RemoteArg = None, repo: RepoOpt = None, json_out: JsonOpt = False) -> int:
    """Share this clone's memory: push the memory refs (never forced); sets up the remote's refspecs."""
    from gitteam.commands import memory as memory_command

    return memory_command.push(open_repo(repo), remote, json_out)


@memory_app.command("pull")
def memory_pull(remote: RemoteArg = None, repo: RepoOpt = None, json_out: JsonOpt = False) -> int:
    """Fetch other clones' memory and merge it (a union; nothing is rewound)."""
    from gitteam.commands import memory as memory_command

    return memory_command.pull(open_repo(repo), remote, json_out)


@app.command("backlog")
def backlog_command(
    repo: RepoOpt = None,
    run_id: RunFilterOpt = None,
    close: Annotated[list[str] | None, typer.Option("--close", metavar="ID", help="Close an item without a run "
                                                    "(repeatable).")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Review findings left open on approved subtasks (minor, info); fix them with run --from-backlog ID."""
    from gitteam.commands import memory as memory_command

    return memory_command.list_backlog(open_repo(repo), run_id, close or [], json_out)


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Option("--dir", "--repo", help="Where to make the demo repository "
                                                      "(default: a new temporary directory).")] = None,
    max_agents: Annotated[int, typer.Option("--max-agents", min=1, help="Coders at once.")] = 4,
    json_out: JsonOpt = False,
) -> int:
    """The whole pipeline, offline, in a throwaway repository, on a bundled replay script."""
    from gitteam.commands import demo as demo_module

    return demo_module.run_demo(directory, max_agents, json_out)


@app.command()
def init(repo: RepoOpt = None,
         force: Annotated[bool, typer.Option("--force", help="Rewrite an existing .gitteam.toml with the current "
                                             "documentation, keeping the settings it makes.")] = False) -> int:
    """Write a commented .gitteam.toml, and set up git fetch/push to carry the team's memory (each change said)."""
    from gitteam.commands.memory import init_remotes
    from gitteam.config import REPO_CONFIG, write_example

    git_repo = open_repo(repo)
    path = git_repo.root / REPO_CONFIG
    kept = write_example(path, force=force)
    print(f"wrote {path}; every setting is documented in it")
    if kept:
        print(f"kept your settings: {', '.join(kept)}")
    for line in init_remotes(git_repo):
        print(line)
    return Exit.OK


for _commands in (app, hook_app, memory_app):
    for _info in _commands.registered_commands:
        _info.cls = PlainUsage  # no command sets a class of its own


def _usage_exceptions() -> tuple[type[Exception], ...]:
    """Bad-usage errors of the command-line parser: typer's own, or click's in older typer releases."""
    found: list[type[Exception]] = []
    try:
        from typer.exceptions import TyperException

        found.append(TyperException)
    except ImportError:
        pass
    try:
        import click

        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(found)


def _json_requested(argv: list[str]) -> bool:
    """`--json` among the options (not after `--`): then a failure, too, leaves one JSON document on stdout."""
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def _fail(message: str, code: int) -> None:
    """The failure as `--json` reports it (when asked for), then the exit code."""
    if _json_requested(sys.argv[1:]):
        import json

        print(json.dumps({"run": None, "state": "error", "exit_code": int(code), "message": message}, indent=1))
    sys.exit(code)


def main() -> None:
    """Entry point: one line for a GitteamError, a traceback only with GITTEAM_DEBUG=1."""
    show_warnings()
    try:
        code = app(prog_name="gitteam", standalone_mode=False)  # the same name under `python -m gitteam`
    except _usage_exceptions() as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"gitteam: {one_line(str(exc))}", file=sys.stderr)
        format_message = getattr(exc, "format_message", None)
        _fail(format_message() if callable(format_message) else str(exc), Exit.USAGE)
    except typer.Abort:
        _fail("interrupted", Exit.INTERRUPTED)
    except GitteamError as exc:
        if os.environ.get("GITTEAM_DEBUG"):
            raise
        print(f"gitteam: {one_line(exc.message)}", file=sys.stderr)  # it may carry a path or a model's words
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        print("gitteam: interrupted", file=sys.stderr)
        _fail("interrupted", Exit.INTERRUPTED)
    # The interpreter's last collections walk every object the command made (about 50 ms after a run); the
    # process is ending and nothing it holds needs collecting: finalizers (weakref.finalize, atexit) still run.
    gc.freeze()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""The command line: typer commands that parse options and call plain functions returning exit codes.

No logic lives here. Imports of the machinery happen inside the commands, so `gitteam --help` stays fast
and never imports a model SDK.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gitteam.errors import Exit, GitteamError

if TYPE_CHECKING:
    from gitteam.config import Config
    from gitteam.git import Repository

app = typer.Typer(
    name="gitteam",
    help="Run a team of coding agents on a git repository: plan, code in parallel worktrees, review, "
    "fast-forward.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
hook_app = typer.Typer(help="Install the review gate as a git hook.", no_args_is_help=True)
memory_app = typer.Typer(help="The team's shared memory, kept in git notes.", no_args_is_help=True)
app.add_typer(hook_app, name="hook")
app.add_typer(memory_app, name="memory")

RepoOpt = Annotated[Path | None, typer.Option("--repo", help="Repository (default: the one around the cwd).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout; progress on stderr.")]
SpecOpt = str | None


def open_repo(path: Path | None) -> Repository:
    from gitteam.git import find_repository

    return find_repository(path)


def load(repo: Repository, **overrides: object) -> Config:
    from gitteam.config import load_config

    return load_config(repo.root, overrides)


def model_overrides(model: SpecOpt, planner: SpecOpt, coder: SpecOpt, reviewer: SpecOpt) -> dict[str, object]:
    return {"roles.*": model, "roles.planner": planner, "roles.coder": coder, "roles.reviewer": reviewer}


@app.command()
def run(
    task: Annotated[str, typer.Argument(metavar="TASK", help="What the team should do.")],
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
    json_out: JsonOpt = False,
) -> int:
    """Plan, code in parallel worktrees, review, integrate, ask, fast-forward."""
    from gitteam import ui
    from gitteam.orchestrator import start_run

    git_repo = open_repo(repo)
    config = load(git_repo, **model_overrides(model, planner, coder, reviewer), **{
        "run.max_agents": max_agents, "run.budget": budget, "run.target": target})
    options = ui.run_options(yes=yes, no_merge=no_merge, keep=keep, json_out=json_out)
    console = ui.progress_console(json_out)
    result = start_run(git_repo, config, task, options, listener=ui.ProgressPrinter(console))
    return ui.report(console, result, json_out)


@app.command()
def plan(
    task: Annotated[str, typer.Argument(metavar="TASK", help="What the team should do.")],
    repo: RepoOpt = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for the planner.")] = None,
    planner: Annotated[SpecOpt, typer.Option("--planner", help="Model spec for the planner.")] = None,
    json_out: JsonOpt = False,
) -> int:
    """Print the file-disjoint plan (subtasks, files, waves); change nothing."""
    from gitteam import ui
    from gitteam.orchestrator import plan_only

    git_repo = open_repo(repo)
    config = load(git_repo, **model_overrides(model, planner, None, None))
    the_plan, notes, summary = plan_only(git_repo, config, task)
    ui.print_plan(the_plan, notes, summary, json_out)
    return Exit.OK


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(metavar="[RUN]", help="A run (default: all runs).")] = None,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Runs and their agents: state, branch, worktree, files, tokens, cost, verdict."""
    from gitteam import runs, ui

    git_repo = open_repo(repo)
    states = [runs.one_run(git_repo, run_id)] if run_id else runs.all_runs(git_repo)
    ui.print_status(states, json_out, detailed=bool(run_id))
    return Exit.OK


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    agent: Annotated[str | None, typer.Argument(metavar="[AGENT]", help="Subtask id (default: integration).")]
    = None,
    repo: RepoOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """One agent's diff, notes and review findings."""
    from gitteam import runs, ui

    view = runs.show_agent(open_repo(repo), run_id, agent)
    ui.print_agent(view, json_out)
    return Exit.OK


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    repo: RepoOpt = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the worktrees.")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Approve a pending run: fast-forward its target."""
    from gitteam import runs, ui

    git_repo = open_repo(repo)
    result = runs.decide(git_repo, load(git_repo), run_id, "approve", keep=keep)
    return ui.report(ui.progress_console(json_out), result, json_out)


@app.command()
def reject(run_id: Annotated[str, typer.Argument(metavar="RUN")], repo: RepoOpt = None,
           json_out: JsonOpt = False) -> int:
    """Reject a pending run: the target stays as it is; branches are kept."""
    from gitteam import runs, ui

    git_repo = open_repo(repo)
    result = runs.decide(git_repo, load(git_repo), run_id, "reject")
    return ui.report(ui.progress_console(json_out), result, json_out)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    repo: RepoOpt = None,
    model: Annotated[SpecOpt, typer.Option("--model", help="Model spec for every role.")] = None,
    planner: Annotated[SpecOpt, typer.Option("--planner")] = None,
    coder: Annotated[SpecOpt, typer.Option("--coder")] = None,
    reviewer: Annotated[SpecOpt, typer.Option("--reviewer")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="New total budget, USD.")] = None,
    max_agents: Annotated[int | None, typer.Option("--max-agents", min=1)] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
    no_merge: Annotated[bool, typer.Option("--no-merge")] = False,
    keep: Annotated[bool, typer.Option("--keep")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Continue a run that stopped, failed or crashed."""
    from gitteam import ui
    from gitteam.orchestrator import resume_run

    git_repo = open_repo(repo)
    config = load(git_repo, **model_overrides(model, planner, coder, reviewer),
                  **{"run.budget": budget, "run.max_agents": max_agents})
    options = ui.run_options(yes=yes, no_merge=no_merge, keep=keep, json_out=json_out)
    console = ui.progress_console(json_out)
    result = resume_run(git_repo, config, run_id, options, listener=ui.ProgressPrinter(console))
    return ui.report(console, result, json_out)


@app.command()
def abort(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    repo: RepoOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Also remove worktrees with stray files.")] = False,
) -> int:
    """Undo a run that has not merged: remove its worktrees, free its files; branches are kept."""
    from gitteam import runs, ui

    git_repo = open_repo(repo)
    return ui.report(ui.progress_console(False), runs.abort(git_repo, load(git_repo), run_id, force), False)


@app.command()
def clean(
    repo: RepoOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Also remove worktrees holding uncommitted files.")]
    = False,
) -> int:
    """Remove finished runs' worktrees (branches and notes stay)."""
    from gitteam import runs, ui

    cleaned, kept = runs.clean(open_repo(repo), force)
    ui.print_clean(cleaned, kept)
    return Exit.FAILED if kept else Exit.OK


@app.command()
def cost(run_id: Annotated[str | None, typer.Argument(metavar="[RUN]")] = None, repo: RepoOpt = None,
         json_out: JsonOpt = False) -> int:
    """Tokens and money per run, role, agent and model."""
    from gitteam import runs, ui

    git_repo = open_repo(repo)
    states = [runs.one_run(git_repo, run_id)] if run_id else runs.all_runs(git_repo)
    ui.print_cost(states, json_out)
    return Exit.OK


@app.command()
def review(
    repo: RepoOpt = None,
    base: Annotated[str | None, typer.Option("--base", help="Base revision (default: merge-base with "
                                                "the upstream or default branch).")] = None,
    head: Annotated[str, typer.Option("--head", help="Head revision.")] = "HEAD",
    reviewer: Annotated[SpecOpt, typer.Option("--reviewer", help="Reviewer model spec (default: "
                                              "configured; none = deterministic checks only).")] = None,
    output: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    fail_on: Annotated[str, typer.Option("--fail-on", help="block or changes.")] = "block",
) -> int:
    """The merge gate on any range: deterministic checks, then a reviewer agent if one is configured."""
    from gitteam import gatecmd

    git_repo = open_repo(repo)
    return gatecmd.review_range(git_repo, load(git_repo, **{"roles.reviewer": reviewer}), base, head,
                                output, fail_on)


@hook_app.command("install")
def hook_install(repo: RepoOpt = None, kind: Annotated[str, typer.Option("--type")] = "pre-push") -> int:
    """Install `gitteam review` as a pre-push (or pre-merge-commit) hook."""
    from gitteam import hooks

    print(hooks.install(open_repo(repo), kind))
    return Exit.OK


@hook_app.command("uninstall")
def hook_uninstall(repo: RepoOpt = None, kind: Annotated[str, typer.Option("--type")] = "pre-push") -> int:
    """Remove gitteam's hook and restore the one it replaced."""
    from gitteam import hooks

    print(hooks.uninstall(open_repo(repo), kind))
    return Exit.OK


@memory_app.command("list")
def memory_list(repo: RepoOpt = None, tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
                run_id: Annotated[str | None, typer.Option("--run")] = None, json_out: JsonOpt = False) -> int:
    """List the entries, newest last."""
    from gitteam import ui
    from gitteam.memory import Blackboard

    entries = Blackboard(open_repo(repo)).entries()
    wanted = {t.lower() for t in tag or []}
    entries = [e for e in entries if (not wanted or wanted & set(e.tags)) and (not run_id or e.run == run_id)]
    ui.print_memory(entries, json_out)
    return Exit.OK


@memory_app.command("add")
def memory_add(content: str, repo: RepoOpt = None,
               tag: Annotated[list[str] | None, typer.Option("--tag")] = None) -> int:
    """Add an entry (secrets are redacted)."""
    from gitteam.memory import Blackboard

    entry = Blackboard(open_repo(repo), role="user").remember(content, tags=tag or [], agent="user")
    print(entry.id)
    return Exit.OK


@memory_app.command("search")
def memory_search(query: str, repo: RepoOpt = None, tag: Annotated[list[str] | None, typer.Option("--tag")]
                  = None, json_out: JsonOpt = False) -> int:
    """Entries matching words of QUERY, best first."""
    from gitteam import ui
    from gitteam.memory import Blackboard

    ui.print_memory(Blackboard(open_repo(repo)).recall(query, tags=tag or []), json_out)
    return Exit.OK


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to make the demo repository "
                                                      "(default: a new temporary directory).")] = None,
    max_agents: Annotated[int, typer.Option("--max-agents", min=1)] = 4,
    json_out: JsonOpt = False,
) -> int:
    """The whole pipeline, offline, in a throwaway repository, on a bundled replay script."""
    from gitteam import demo as demo_module

    return demo_module.run_demo(directory, max_agents, json_out)


@app.command()
def init(repo: RepoOpt = None, force: Annotated[bool, typer.Option("--force", help="Overwrite.")] = False) -> int:
    """Write a commented .gitteam.toml."""
    from gitteam.config import REPO_CONFIG, write_example

    git_repo = open_repo(repo)
    path = git_repo.root / REPO_CONFIG
    write_example(path, force=force)
    print(f"wrote {path}; every setting is documented in it")
    return Exit.OK


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


def main() -> None:
    """Entry point: one line for a GitteamError, a traceback only with GITTEAM_DEBUG=1."""
    try:
        code = app(standalone_mode=False)
    except _usage_exceptions() as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"gitteam: {exc}", file=sys.stderr)
        sys.exit(Exit.USAGE)
    except typer.Abort:
        sys.exit(Exit.INTERRUPTED)
    except GitteamError as exc:
        if os.environ.get("GITTEAM_DEBUG"):
            raise
        print(f"gitteam: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("gitteam: interrupted", file=sys.stderr)
        sys.exit(Exit.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""`gitteam demo`: the real pipeline, offline, on a throwaway repository and a bundled replay script.

Nothing is simulated but the model: planning, worktrees, the coders' tools, commits, notes, the
merge gate (including a round of requested changes and a refused write), integration and the
fast-forward all run for real, and the result is left on disk to inspect.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from rich.markup import escape

from gitteam import ui
from gitteam.config import load_config
from gitteam.errors import UsageError
from gitteam.git import init_repository
from gitteam.run.orchestrator import start_run
from gitteam.sandbox.runner import SandboxUnavailable, make_sandbox

TASK = "Add a power operation with tests, a command-line entry point, and document both in the README."

FILES = {
    ".gitignore": "__pycache__/\n",
    "README.md": "# calc\n\nA tiny calculator library.\n",
    "calc/__init__.py": '"""A tiny calculator."""\n',
    "calc/ops.py": (
        '"""Arithmetic operations."""\n\n\n'
        "def add(a: float, b: float) -> float:\n    return a + b\n\n\n"
        "def subtract(a: float, b: float) -> float:\n    return a - b\n"
    ),
    "tests/__init__.py": "",
    "tests/test_ops.py": (
        "import unittest\n\nfrom calc.ops import add, subtract\n\n\n"
        "class OpsTest(unittest.TestCase):\n"
        "    def test_add(self) -> None:\n        self.assertEqual(add(2, 3), 5)\n\n"
        "    def test_subtract(self) -> None:\n        self.assertEqual(subtract(2, 3), -1)\n"
    ),
    "AGENTS.md": "# Conventions\n\n- Every public function has a docstring-free, typed signature and a unit test.\n",
}


def demo_config(python: str) -> str:
    """The repository's .gitteam.toml: only what a repository may set (config.RESTRICTED is not)."""
    return (
        "# Written by gitteam demo: every role is the bundled replay script.\n"
        "[roles]\n"
        'planner = "replay:demo"\ncoder = "replay:demo"\nreviewer = "replay:demo"\n\n'
        "[commands]\n"
        f'test = "{python} -m unittest discover -q"\n'
    )


def demo_overrides(python: str) -> dict[str, object]:
    """The demo's settings that count only from the user: gitteam's own code gives them, as flags would."""
    # the coders may run the tests with whichever python3 is on PATH
    return {"commands.allowed": (f"{python} -m unittest ...", "python3 -m unittest ...")}


def _python() -> str:
    return Path(sys.executable).as_posix()


def make_repository(directory: Path) -> Path:
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty; give --dir a new or empty directory")
    repo = init_repository(directory)
    for rel, content in {**FILES, ".gitteam.toml": demo_config(_python())}.items():
        path = repo.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    paths = sorted([*FILES, ".gitteam.toml"])
    repo.commit_paths(repo.root, paths, "A tiny calculator\n", ("gitteam demo", "demo@gitteam.invalid"))
    return repo.root


def demo_sandbox(mode: str) -> tuple[str, str]:
    """The demo's commands are its own, bundled and trusted: contained when bubblewrap works here, run
    uncontained when it does not (a real run would refuse instead), and the demo says which."""
    if mode == "none":
        return mode, 'its commands run uncontained: your config says [sandbox] mode = "none"'
    try:
        make_sandbox(mode)
    except SandboxUnavailable as exc:
        return "none", f"its bundled commands run uncontained, as bubblewrap cannot run here ({exc})"
    return mode, "its commands run contained in bubblewrap, as every run's do"


def invocation() -> str:
    """How to call this gitteam again in the hints: `gitteam` when that is on PATH and is this one, else the
    path it was started by (`.venv/bin/gitteam demo` without an activated virtualenv)."""
    on_path = shutil.which("gitteam")
    started = Path(sys.argv[0])
    if started.name in ("gitteam", "git-team") and started.is_file():
        if on_path and Path(on_path).resolve() == started.resolve():
            return "gitteam"
        return shlex.quote(str(started.absolute()))
    return "gitteam" if on_path else f"{shlex.quote(sys.executable)} -m gitteam"


def run_demo(directory: Path | None, max_agents: int, json_out: bool) -> int:
    root = make_repository(directory or Path(tempfile.mkdtemp(prefix="gitteam-demo-")))
    from gitteam.git import find_repository

    repo = find_repository(root)
    overrides = {"run.max_agents": max_agents, **demo_overrides(_python())}
    config = load_config(repo.root, overrides)
    console = ui.progress_console()
    console.print(f"[bold]gitteam demo[/bold] in {root}\ntask: {TASK}")
    sandbox, why = demo_sandbox(config.sandbox.mode)
    if sandbox != config.sandbox.mode:
        config = load_config(repo.root, {**overrides, "sandbox.mode": sandbox})
    console.print(f"[dim]{escape(why)}[/dim]")
    with ui.run_display(console) as display:
        options = ui.run_options(yes=True, no_merge=False, keep=False, json_out=json_out, display=display)
        result = start_run(repo, config, TASK, options, listener=display)
    code = ui.report(console, result, json_out)
    me = invocation()
    hints = [
        ("git log --graph --oneline --notes=gitteam", "agent commits with their provenance notes"),
        (f"{me} status {result.run}", "agents, branches, tokens, verdicts"),
        (f"{me} show {result.run} docs", "a diff with its review rounds"),
        (f"{me} cost {result.run}", "tokens and money per agent"),
        (f"{me} memory list", "what the agents remembered"),
    ]
    width = max(len(command) for command, _ in hints)
    lines = "\n".join(f"  {command.ljust(width)}  # {why}" for command, why in hints)
    console.print(f"\nLook at what the team did:\n  cd {root}\n{lines}")
    return code

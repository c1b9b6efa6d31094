"""Running the team suite: each (task, scenario) through the real `gitteam run --yes` in a fresh repository,
then the hidden tests on the target branch, then one row of the table from the run's journal.

A run gets its own directory, HOME and config, so runs can go in parallel and the table does not depend on
the machine's user config. Nothing here decides an outcome: gitteam's exit code, the target branch and the
hidden tests do; the journal (`events.jsonl`) gives every other number.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitteam.events import AgentFinished, Reviewed, ToolRefused, UsageRecorded
from gitteam.journal import read_events
from scenarios import MISTAKES, SCENARIOS, script
from tasks import TASKS, Task, base_files, hidden_test_source

DOCS = Path(__file__).resolve().parents[1] / "docs" / "agents.md"
SECTION = "## Team suite"
TABLE_BEGIN, TABLE_END = "<!-- team-suite:begin -->", "<!-- team-suite:end -->"
RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Case:
    task: Task
    scenario: str

    @property
    def name(self) -> str:
        return f"{self.task.id}-{self.scenario}"


def cases(tasks: Sequence[Task] = TASKS) -> list[Case]:
    """Every task once as scripted right, and once with a mistake (the mistakes in turn, so each is tried on
    tasks of every shape)."""
    found = [Case(task, "correct") for task in tasks]
    found += [Case(task, MISTAKES[index % len(MISTAKES)]) for index, task in enumerate(tasks)]
    return found


@dataclass
class Row:
    """One run, as the table shows it."""

    task: str
    scenario: str
    subtasks: int
    exit_code: int
    landed: bool  # the target moved and the hidden tests pass on it
    rounds: int  # gate rounds of the subtasks (one per coder round reviewed)
    checks_failed: int  # gate rounds the deterministic checks (tests, ownership, syntax) turned down
    changes_requested: int  # REQUEST_CHANGES verdicts of reviewers, with the checks passing
    refused_subtasks: int  # subtasks refused by the gate (or blocked)
    guard_refusals: int  # tool calls a guard refused (a file the subtask does not own, a protected path)
    tool_errors: dict[str, int] = field(default_factory=dict)  # every tool call that returned an error, per tool
    cost: float = 0.0
    run_dir: str = ""

    @property
    def tool_errors_text(self) -> str:
        return ", ".join(f"{tool} {count}" for tool, count in sorted(self.tool_errors.items())) or "-"


def environment(home: Path) -> dict[str, str]:
    """gitteam's environment for one run: a HOME of its own, no system git config, no keys, no GITTEAM_*."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("GITTEAM_", "GIT_")) and name not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY",
                                                                        "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    env.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Team Suite",
                "GIT_AUTHOR_EMAIL": "suite@example.com", "GIT_COMMITTER_NAME": "Team Suite",
                "GIT_COMMITTER_EMAIL": "suite@example.com", "GIT_EDITOR": "false"})
    return env


def _git(cwd: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repository(path: Path, task: Task, env: dict[str, str]) -> str:
    """The task's repository on branch main, one commit; returns it."""
    path.mkdir(parents=True)
    _git(path, env, "init", "-q", "-b", "main")
    for rel, text in base_files(task).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text, encoding="utf-8")
    _git(path, env, "add", "-A")
    _git(path, env, "commit", "-q", "-m", f"{task.package}: a small library")
    return _git(path, env, "rev-parse", "HEAD")


def hidden_tests_pass(repo: Path, task: Task, env: dict[str, str], scratch: Path) -> bool:
    """The hidden tests on the target branch's tree, in a scratch directory outside the repository."""
    tree = scratch / "target"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", "main"], cwd=repo, env=env, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "test_hidden.py").write_text(hidden_test_source(task), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "unittest", "-q", "test_hidden"], cwd=tree, env=env,
                            capture_output=True, text=True, timeout=120)
    return result.returncode == 0


def run_case(case: Case, directory: Path, sandbox: str | None = None) -> Row:
    """One run of the suite in `directory` (new or empty), start to table row."""
    home = directory / "home"
    (home / ".config" / "gitteam").mkdir(parents=True)
    if sandbox is not None:
        (home / ".config" / "gitteam" / "config.toml").write_text(f'[sandbox]\nmode = "{sandbox}"\n')
    env = environment(home)
    repo = directory / "repo"
    base = make_repository(repo, case.task, env)
    script_file = directory / "script.json"
    script_file.write_text(json.dumps(script(case.task, case.scenario), indent=1), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "gitteam", "run", "--yes", "--model", f"replay:{script_file}",
                           case.task.request], cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    (directory / "output.txt").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    moved = _git(repo, env, "rev-parse", "main") != base
    scratch = directory / "hidden"
    scratch.mkdir()
    landed = moved and hidden_tests_pass(repo, case.task, env, scratch)
    return row_from_journal(case, journal_path(repo), proc.returncode, landed)


def journal_path(repo: Path) -> Path:
    found = sorted((repo / ".git" / "gitteam" / "runs").glob("*/events.jsonl"))
    if len(found) != 1:
        raise RuntimeError(f"expected one run's journal in {repo}, found {len(found)}")
    return found[0]


def row_from_journal(case: Case, journal: Path, exit_code: int, landed: bool) -> Row:
    """Every number but `landed` and the exit code, read back from the run's journal."""
    row = Row(case.task.id, case.scenario, len(case.task.subtask_ids), exit_code, landed, 0, 0, 0, 0, 0,
              run_dir=str(journal.parent))
    errors: Counter[str] = Counter()
    cost = 0.0
    for event in read_events(journal):
        match event:
            case Reviewed(verdict=verdict):
                row.rounds += 1
                if _by_checks(verdict):
                    row.checks_failed += 1
                else:
                    row.changes_requested += verdict.get("decision") == "REQUEST_CHANGES"
            case AgentFinished(status=status):
                row.refused_subtasks += status == "refused"
            case ToolRefused(tool=tool, error=error):
                errors[tool] += 1
                row.guard_refusals += error.startswith("refused:")
            case UsageRecorded(cost=amount) if amount is not None:
                cost += amount
    row.tool_errors = dict(errors)
    row.cost = round(cost, 6)
    return row


def _by_checks(verdict: dict[str, object]) -> bool:
    """A verdict the deterministic checks decided: not an approval, with a major finding of a check."""
    findings = verdict.get("findings")
    return verdict.get("decision") != "APPROVE" and isinstance(findings, list) and any(
        isinstance(f, dict) and str(f.get("source") or "").startswith("check:") and f.get("severity") == "major"
        for f in findings)


def run_suite(selected: Iterable[Case], workdir: Path | None = None, jobs: int = 2,
              sandbox: str | None = None) -> list[Row]:
    """Every case, `jobs` at a time; rows in the order of the cases."""
    todo = list(selected)
    root = workdir or Path(tempfile.mkdtemp(prefix="gitteam-team-suite-"))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda case: run_case(case, root / case.name, sandbox), todo))


# --- the table -------------------------------------------------------------------------------------------------

def _money(value: float) -> str:
    return f"${value:.4f}"


def scenario_table(rows: Sequence[Row]) -> str:
    """One line per scenario: how many of its runs landed, and what they cost in rounds, errors and money."""
    lines = ["| scenario | runs | landed | rounds | checks failed | changes requested | refused subtasks | "
             "guard refusals | tool errors | cost |", "|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        mine = [row for row in rows if row.scenario == scenario]
        if not mine:
            continue
        errors: Counter[str] = Counter()
        for row in mine:
            errors.update(row.tool_errors)
        text = ", ".join(f"{tool} {count}" for tool, count in sorted(errors.items())) or "-"
        counts = [len(mine), *(sum(getattr(r, name) for r in mine) for name in (
            "landed", "rounds", "checks_failed", "changes_requested", "refused_subtasks", "guard_refusals"))]
        cells = [scenario, *map(str, counts), text, _money(sum(r.cost for r in mine))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_table(rows: Sequence[Row]) -> str:
    """One line per run."""
    lines = ["| task | scenario | subtasks | landed | exit | rounds | checks failed | changes requested | refused | "
             "guard refusals | tool errors | cost |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.task} | {r.scenario} | {r.subtasks} | {'yes' if r.landed else 'no'} | {r.exit_code} | "
              f"{r.rounds} | {r.checks_failed} | {r.changes_requested} | {r.refused_subtasks} | {r.guard_refusals} | "
              f"{r.tool_errors_text} | {_money(r.cost)} |" for r in rows]
    return "\n".join(lines)


def tables(rows: Sequence[Row]) -> str:
    landed = sum(row.landed for row in rows)
    return (f"{landed} of {len(rows)} runs landed.\n\n{scenario_table(rows)}\n\n"
            f"<details><summary>Every run</summary>\n\n{run_table(rows)}\n\n</details>")


def docs_tables(text: str) -> str:
    """The tables as docs/agents.md holds them (between the markers)."""
    match = re.search(re.escape(TABLE_BEGIN) + r"\n(.*?)" + re.escape(TABLE_END), text, re.S)
    if match is None:
        raise ValueError(f"{DOCS} has no team-suite table between {TABLE_BEGIN} and {TABLE_END}")
    return match.group(1).removesuffix("\n")


def with_tables(text: str, rendered: str) -> str:
    """docs/agents.md with the tables between the markers replaced by `rendered`."""
    docs_tables(text)  # the markers must be there
    pattern = re.escape(TABLE_BEGIN) + r"\n.*?" + re.escape(TABLE_END)
    return re.sub(pattern, lambda _: f"{TABLE_BEGIN}\n{rendered}\n{TABLE_END}", text, count=1, flags=re.S)

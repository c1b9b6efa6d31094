"""Replay scripts for the end-to-end tests, and the few helpers that drive and inspect a real run.

A script is the `replay:` model's JSON (see gitteam.models.replay): the planner's turns, then per subtask id
the coder's and the reviewer's turns. Builders here return plain dicts, so a test reads like the
conversation it scripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gitteam.config import load_config
from gitteam.git import find_repository
from gitteam.journal import Journal, RunState, list_runs, load_run
from gitteam.run.context import RunOptions, RunResult
from gitteam.run.orchestrator import resume_run, start_run

Turn = dict[str, Any]


# --- turns -----------------------------------------------------------------------------------------------

def call(name: str, **args: Any) -> Turn:
    """One turn with one tool call."""
    return {"call": name, "args": args}


def turn(*calls: Turn, usage: Mapping[str, int] | None = None) -> Turn:
    """One turn with several tool calls (each given as `call(...)`), optionally with fixed token usage."""
    data: Turn = {"tool_calls": [{"name": c["call"], "arguments": c["args"]} for c in calls]}
    if usage is not None:
        data["usage"] = dict(usage)
    return data


def subtask(id: str, files: Sequence[str], depends_on: Sequence[str] = (), instructions: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"id": id, "title": f"Subtask {id}", "instructions": instructions or f"Do {id}.",
                            "files": list(files)}
    if depends_on:
        data["depends_on"] = list(depends_on)
    return data


def plan_turn(subtasks: Sequence[Mapping[str, Any]], summary: str = "the plan") -> Turn:
    return call("submit_plan", subtasks=[dict(s) for s in subtasks], summary=summary)


def coder_writes(path: str, content: str) -> Turn:
    return call("write_file", path=path, content=content)


def coder_edits(path: str, old: str, new: str) -> Turn:
    return call("edit_file", path=path, old=old, new=new)


def coder_deletes(path: str) -> Turn:
    return call("delete_file", path=path)


def coder_reads(path: str) -> Turn:
    return call("read_file", path=path)


def coder_runs(command: str) -> Turn:
    return call("run", command=command)


def done(summary: str = "done") -> Turn:
    return call("done", summary=summary)


def finding(file: str, message: str, severity: str = "major", line: int | None = None,
            evidence: str | None = None) -> dict[str, Any]:
    """A reviewer's finding; a major or critical one costs a round only with `evidence` quoted from the change."""
    data: dict[str, Any] = {"file": file, "severity": severity, "message": message}
    if line is not None:
        data["line"] = line
    if evidence is not None:
        data["evidence"] = evidence
    return data


def approve(summary: str = "looks right", findings: Sequence[Mapping[str, Any]] = ()) -> Turn:
    return call("submit_review", decision="APPROVE", summary=summary, findings=[dict(f) for f in findings])


def request_changes(summary: str = "please fix", findings: Sequence[Mapping[str, Any]] = ()) -> Turn:
    return call("submit_review", decision="REQUEST_CHANGES", summary=summary, findings=[dict(f) for f in findings])


def block(summary: str = "harmful change", findings: Sequence[Mapping[str, Any]] = ()) -> Turn:
    return call("submit_review", decision="BLOCK", summary=summary, findings=[dict(f) for f in findings])


def script(
    planner: Sequence[Turn],
    coder: Mapping[str, Sequence[Turn]],
    reviewer: Mapping[str, Sequence[Turn]] | None = None,
    prices: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A whole replay script; the reviewer approves every subtask unless told otherwise."""
    data: dict[str, Any] = {
        "gitteam_replay": 1,
        "planner": list(planner),
        "coder": {key: list(turns) for key, turns in coder.items()},
        "reviewer": {key: list(turns) for key, turns in (reviewer or {"*": [approve()]}).items()},
    }
    if prices is not None:
        data["prices"] = dict(prices)
    return data


def write_script(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def spec(path: Path) -> str:
    return f"replay:{path}"


# --- driving a run ---------------------------------------------------------------------------------------

def script_path(root: Path, name: str = "script") -> Path:
    """Next to the repository (never inside it: the user's checkout must stay as the test made it)."""
    n = 1
    while (root.parent / f"{name}-{n}.json").exists():
        n += 1
    return root.parent / f"{name}-{n}.json"


def start(root: Path, data: Mapping[str, Any], options: RunOptions | None = None, task: str = "do the task",
          config: Mapping[str, object] | None = None) -> RunResult:
    """`gitteam run` through the API: the real orchestrator, every role played by the script."""
    path = write_script(script_path(root), data)
    repo = find_repository(root)
    settings = load_config(repo.root, {"roles.*": spec(path), **(config or {})})
    return start_run(repo, settings, task, options or RunOptions(yes=True))


def resume(root: Path, run: str, data: Mapping[str, Any], options: RunOptions | None = None,
           config: Mapping[str, object] | None = None) -> RunResult:
    path = write_script(script_path(root), data)
    repo = find_repository(root)
    settings = load_config(repo.root, {"roles.*": spec(path), **(config or {})})
    return resume_run(repo, settings, run, options or RunOptions(yes=True))


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """gitteam as a user runs it, without a terminal: stdin is /dev/null, output is captured."""
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=root, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def in_process(root: Path, argv: Sequence[str], before: str = "", after: str = "",
               entry: str = "gitteam.cli") -> subprocess.CompletedProcess[str]:
    """gitteam's command line in a fresh interpreter, inside Python code of the test's: `before` runs first (to
    patch or record), then `main()` of `entry` with `argv`, its SystemExit caught into `code`, then `after`."""
    source = (f"import sys\n{before}from {entry} import main\nsys.argv = {['gitteam', *argv]!r}\n"
              "try:\n    main()\n    code = 0\nexcept SystemExit as exc:\n    code = exc.code\n" + after)
    return subprocess.run([sys.executable, "-c", source], cwd=root, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)


def assert_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    """A clean failure: the exit code, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gitteam: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], proc.stderr


# --- looking at the result -------------------------------------------------------------------------------

def events(root: Path, run: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The run's journal as it is on disk: one JSON object a line."""
    path = Journal(find_repository(root).state_dir, run).path
    found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in found if kind is None or e["event"] == kind]


def journal_so_far(root: Path) -> tuple[str, list[dict[str, Any]]]:
    """The id of the one run in the repository and its events so far, read from a process that may still be
    writing: a line being written is left out; ("", []) before the run has a journal."""
    runs = root / ".git" / "gitteam" / "runs"
    for run in runs.iterdir() if runs.is_dir() else []:
        path = run / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return run.name, [json.loads(line) for line in lines if line.endswith("}")]
    return "", []


def run_state(root: Path, run: str) -> RunState:
    return load_run(find_repository(root).state_dir, run)


def only_run(root: Path) -> str:
    runs = list_runs(find_repository(root).state_dir)
    assert len(runs) == 1, [r.run for r in runs]
    return runs[0].run


def rev(root: Path, name: str) -> str | None:
    out = subprocess.run(["git", "rev-parse", "-q", "--verify", f"{name}^{{commit}}"], cwd=root,
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def sha(root: Path, name: str) -> str:
    """The commit `name` points at; it must exist."""
    found = rev(root, name)
    assert found is not None, f"{name} does not exist"
    return found


def blob(root: Path, rev_name: str, path: str) -> bytes | None:
    """The exact bytes of a committed file, or None when it is not there."""
    out = subprocess.run(["git", "cat-file", "blob", f"{rev_name}:{path}"], cwd=root, capture_output=True)
    return out.stdout if out.returncode == 0 else None


def is_ancestor(root: Path, ancestor: str, descendant: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, descendant], cwd=root).returncode == 0


def note(root: Path, commit: str) -> dict[str, Any]:
    out = subprocess.run(["git", "notes", "--ref=gitteam", "show", commit], cwd=root, capture_output=True,
                         text=True, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def commits(root: Path, base: str, head: str) -> list[str]:
    """Commits of head not in base, oldest first."""
    out = subprocess.run(["git", "rev-list", "--reverse", f"{base}..{head}"], cwd=root, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def branches(root: Path, run: str) -> set[str]:
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname)", f"refs/heads/gitteam/{run}/"], cwd=root,
                         capture_output=True, text=True, check=True)
    return {line.removeprefix(f"refs/heads/gitteam/{run}/") for line in out.stdout.split()}


def status(root: Path) -> str:
    """The user's `git status`, the way invariant 2 compares it."""
    return subprocess.run(["git", "status", "--porcelain=v1", "--untracked-files=all"], cwd=root,
                          capture_output=True, text=True, check=True).stdout


def worktrees(root: Path) -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=root, capture_output=True, text=True,
                         check=True)
    return [line.removeprefix("worktree ") for line in out.stdout.splitlines() if line.startswith("worktree ")]


def refused(root: Path, run: str, agent: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events(root, run, "tool_refused") if agent is None or e["agent"] == agent]


def names(items: Iterable[Mapping[str, Any]], key: str = "id") -> list[Any]:
    return [item[key] for item in items]

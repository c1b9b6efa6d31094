"""Killing a run at a point chosen in advance, then resuming it: the kit of tests/test_resume.py and
tests/kill_matrix.py.

A kill point is one of three kinds, each reached deterministically, with nothing timed:
- "request": the n-th model request. The team is a loopback server (fakeapi) whose answers are a function of
  the request alone (role, agent, how many turns it has had), so a resumed agent gets the same turns again;
  the n-th request is never answered, and the test kills the run's process group once it has arrived.
- "transaction": the n-th ref transaction (`update-ref --stdin`), killed by gitteam itself
  (GITTEAM_TEST_KILL_AT) after git prepared it: git holds every ref lock of it (a worktree's HEAD.lock, the
  branch's, the integration branch's, the claims'), as a kill inside a commit, a merge or a release leaves them.
- "filter": the n-th run of the repository's smudge filter on `*.txt`, which kills its process group: a kill
  inside git's own checkout of a new worktree (its index.lock held, the files half written) or of the
  integration review's, and inside the fast-forward of the user's checked-out branch (their index.lock, the files
  half updated). The filter is the user's kind of config (Git LFS is one): real git, killed where it really is.
  (Only the smudge side counts: how often git cleans a file to compare it depends on timestamps.)

Every run starts in a session of its own, so killing it kills the git processes it runs too, as a kill of a
terminal's job does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import commit_files, git
from fakeapi import FakeAPI, Recorded, Scripted, openai_completion, serve
from loopback import first_user_text, model_table, roles, tool_names, write_user_config

BASE = {"README.md": "# project\n", "src/app.py": "def main():\n    return 1\n", "docs/one.txt": "one\n",
        "docs/two.txt": "two\n", ".gitattributes": "*.txt filter=pause\n"}
PLAN = [{"id": "a", "title": "A", "instructions": "Create a.txt.", "files": ["a.txt"]},
        {"id": "b", "title": "B", "instructions": "Change README.md.", "files": ["README.md"]},
        {"id": "c", "title": "C", "instructions": "Create c.txt.", "files": ["c.txt"]},
        {"id": "d", "title": "D", "instructions": "Create d.txt from a.txt.", "files": ["d.txt"],
         "depends_on": ["a"]}]
CODERS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "a": [("write_file", {"path": "a.txt", "content": "from a\n"}), ("done", {"summary": "a.txt"})],
    "b": [("write_file", {"path": "README.md", "content": "# project\n\nby b\n"}), ("done", {"summary": "readme"})],
    "c": [("write_file", {"path": "c.txt", "content": "from c\n"}), ("done", {"summary": "c.txt"})],
    "d": [("read_file", {"path": "a.txt"}), ("write_file", {"path": "d.txt", "content": "after a\n"}),
          ("done", {"summary": "d.txt"})],
}
EXPECTED = {"a.txt": "from a\n", "README.md": "# project\n\nby b\n", "c.txt": "from c\n", "d.txt": "after a\n"}

FILTER = r'''
import fcntl, os, signal, sys
control = sys.argv[1]
data = sys.stdin.buffer.read()
try:
    with open(os.path.join(control, "kill-at")) as trigger:
        wanted = int(trigger.read())
except (OSError, ValueError):
    wanted = 0
if wanted:
    with open(os.path.join(control, "count"), "a+") as count:
        fcntl.flock(count, fcntl.LOCK_EX)
        count.seek(0)
        seen = int(count.read() or 0) + 1
        count.seek(0)
        count.truncate()
        count.write(str(seen))
        count.flush()
    if seen == wanted:
        os.killpg(os.getpgid(0), signal.SIGKILL)
sys.stdout.buffer.write(data)
'''


def make_repo(path: Path, control: Path) -> Path:
    """The user's repository: BASE committed on main, and the killing filter configured for `*.txt`."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    control.mkdir(parents=True, exist_ok=True)
    script = control / "filter.py"
    script.write_text(FILTER)
    command = f"{sys.executable} -I -S {script} {control}"
    git(path, "config", "filter.pause.smudge", command)
    commit_files(path, BASE, "initial")
    return path


@dataclass
class Team:
    """The scripted team behind the loopback server: every answer a function of the request alone."""

    api: FakeAPI
    kill_at: int = 0  # the request never answered (0: none)
    requests: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)

    def answer(self, request: Recorded) -> Scripted:
        body = request.body if isinstance(request.body, dict) else {}
        self.requests += 1  # fakeapi routes under its lock: one request at a time
        if self.requests == self.kill_at:
            self.arrived.set()
            return Scripted(stall=3600)  # held until the run is killed (or the server closes)
        names = tool_names(body)
        turns = sum(1 for message in body.get("messages") or [] if message.get("role") == "assistant")
        if "submit_plan" in names:
            calls = [("submit_plan", {"subtasks": PLAN, "summary": "four files"})]
        elif "submit_review" in names:
            calls = [("submit_review", {"decision": "APPROVE", "summary": "ok", "findings": []})]
        else:
            found = re.search(r'<subtask id="([^"]+)"', first_user_text(body))
            script = CODERS[found[1]] if found else []
            calls = [script[turns]] if turns < len(script) else [("done", {"summary": "done"})]
        return openai_completion(None, [(f"call_{self.requests}_{i}", name, args)
                                        for i, (name, args) in enumerate(calls)], model="m")


@contextmanager
def team(home: Path) -> Iterator[Team]:
    """The loopback team, configured as every role's model in the user config under `home`."""
    with serve() as api:
        crew = Team(api)
        api.route = crew.answer
        write_user_config(home, model_table("m", "openai", api.url, "m") + roles("m"))
        yield crew


def gitteam(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


@dataclass(frozen=True)
class Killed:
    run: str  # "" when it journaled nothing
    killed: bool  # False: the run ended by itself (the kill point lies past its end)
    returncode: int
    stderr: str


def run_killed(repo: Path, crew: Team, kind: str, n: int, control: Path) -> Killed:
    """`gitteam run --yes` on the four-subtask task, killed at the n-th point of `kind`."""
    env: dict[str, str] = {}
    crew.requests, crew.kill_at = 0, 0
    crew.arrived.clear()
    if kind == "request":
        crew.kill_at = n
    elif kind == "transaction":
        env["GITTEAM_TEST_KILL_AT"] = f"transaction:{n}"
    elif kind == "filter":
        (control / "count").unlink(missing_ok=True)
        (control / "kill-at").write_text(str(n))
    proc = gitteam(repo, "run", "--yes", "four files", env=env)
    waiter = threading.Thread(target=lambda: (crew.arrived.wait(120), _kill(proc)) if kind == "request" else None,
                              daemon=True)
    waiter.start()
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        crew.arrived.set()  # a run that ended by itself: let the waiter go
        waiter.join()
        (control / "kill-at").unlink(missing_ok=True)
        crew.kill_at = 0
    killed = proc.returncode == -signal.SIGKILL
    return Killed(journaled_run(repo), killed, proc.returncode, err)


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)


def journaled_run(repo: Path) -> str:
    runs = repo / ".git" / "gitteam" / "runs"
    found = [path.name for path in runs.iterdir() if (path / "events.jsonl").is_file()] if runs.is_dir() else []
    return found[0] if found else ""


def final_state(repo: Path, run: str) -> str:
    path = repo / ".git" / "gitteam" / "runs" / run / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    finished = [line["state"] for line in lines if line["event"] == "run_finished"]
    return finished[-1] if finished else "running"


def final_message(repo: Path) -> str:
    path = repo / ".git" / "gitteam" / "runs" / journaled_run(repo) / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return " | ".join(f"{line['event']}: {line.get('message') or line.get('removed') or ''}" for line in lines
                      if line["event"] in ("run_finished", "worktrees_removed", "leftovers_saved"))


def resume(repo: Path, run: str) -> subprocess.CompletedProcess[str]:
    proc = gitteam(repo, "resume", run, "--yes")
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def lock_files(repo: Path) -> list[str]:
    """git's lock files anywhere in the git dir (gitteam's own state, with its OS lock files, aside)."""
    top = repo / ".git"
    return sorted(str(path.relative_to(top)) for path in top.rglob("*.lock")
                  if "gitteam" not in path.relative_to(top).parts[:1]) + \
        sorted(str(path.relative_to(top)) for path in (top / "worktrees").glob("*/locked"))


def worktree_dirs(home: Path) -> list[str]:
    root = home / ".local" / "share" / "gitteam" / "worktrees"
    return sorted(str(path) for path in root.rglob("*")) if root.exists() else []


def landed_exactly(repo: Path, home: Path, reference_tree: str) -> None:
    """The run's result is on main, whole (the tree an unkilled run makes), and nothing is left behind: no
    worktree, no directory under the worktrees' root, no git lock, no claim, no leftovers, the user's checkout
    as the fast-forward leaves it."""
    assert git(repo, "rev-parse", "main^{tree}") == reference_tree
    for path, content in EXPECTED.items():
        assert (repo / path).read_text() == content, path  # the checked-out main followed the fast-forward
    assert git(repo, "status", "--porcelain") == ""
    listed = git(repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 1, (listed, final_message(repo))
    assert worktree_dirs(home) == [], final_message(repo)
    assert lock_files(repo) == [], (lock_files(repo), final_message(repo))  # which, if a kill left one
    assert git(repo, "for-each-ref", "refs/gitteam/locks/", "refs/gitteam/leftovers/") == ""
    git(repo, "fsck", "--no-progress", "--no-dangling")


def expected_tree(repo: Path) -> str:
    """The base tree with the team's files: what the run must land (built in a temporary index)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "expected-index")}
    subprocess.run(["git", "read-tree", "main"], cwd=repo, env=env, check=True)
    for path, content in EXPECTED.items():
        blob = subprocess.run(["git", "hash-object", "-w", "--no-filters", "--stdin"], cwd=repo, input=content,
                              capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], cwd=repo, env=env,
                       check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()
    os.unlink(env["GIT_INDEX_FILE"])
    return tree


def reference_tree(tmp: Path, home: Path, crew: Team) -> str:
    """The tree an unkilled run lands (the same base, the same team): the expected one."""
    repo = make_repo(tmp / "reference", tmp / "reference-control")
    tree = expected_tree(repo)
    proc = gitteam(repo, "run", "--yes", "four files")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    landed_exactly(repo, home, tree)
    return tree


def kill_and_resume(tmp: Path, home: Path, crew: Team, kind: str, n: int, tree: str) -> bool:
    """Kill a fresh run at the n-th point of `kind`, resume it, and check it landed exactly; False when the run
    ended before reaching that point (the matrix of `kind` is complete)."""
    control = tmp / f"{kind}-{n}-control"
    repo = make_repo(tmp / f"{kind}-{n}", control)
    killed = run_killed(repo, crew, kind, n, control)
    if not killed.killed:
        assert killed.returncode == 0, killed.stderr
        landed_exactly(repo, home, tree)
        return False
    assert killed.run, f"{kind} {n}: killed before the run journaled anything"
    if final_state(repo, killed.run) != "merged":
        resumed = resume(repo, killed.run)
        assert resumed.returncode == 0, f"{kind} {n}: {resumed.stderr}"
    assert final_state(repo, killed.run) == "merged"
    landed_exactly(repo, home, tree)
    return True

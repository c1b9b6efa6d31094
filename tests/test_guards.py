"""The coder's guards in a real run: writes outside its files, its worktree or into `.git` are refused,
touch nothing, are journaled, and the run carries on; `run` executes only allowed commands, without a shell.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from conftest import commit_files, git
from gitteam.run.context import RunOptions
from scripts import (
    approve,
    blob,
    call,
    coder_runs,
    coder_writes,
    done,
    plan_turn,
    refused,
    script,
    sha,
    start,
    status,
    subtask,
    turn,
)


def test_writes_outside_the_subtask_are_refused_and_touch_nothing(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "existing.txt").write_text("outside\n")
    os.symlink(outside, repo / "link")  # committed: every worktree has it, pointing out of the repository
    commit_files(repo, {"src/other.py": "OTHER = 0\n"}, "a symlink and another file")
    git_config = (repo / ".git/config").read_bytes()
    base = sha(repo, "main")
    before = status(repo)
    absolute = str(outside / "absolute.txt")
    # path -> (an `old` text the file really has, the word its refusal must contain)
    attempts = {
        "../x": ("x", "outside the repository"),
        absolute: ("x", "absolute"),
        "link/evil.txt": ("x", "symlink"),
        "link/existing.txt": ("outside", "symlink"),
        ".git/config": ("[core]", "inside .git"),
        ".git/hooks/pre-commit": ("x", "inside .git"),
        "src/other.py": ("OTHER = 0", "not one of this subtask's files"),
    }
    bad_calls = [
        c for path, (old, _) in attempts.items()
        for c in (call("write_file", path=path, content="pwned\n"), call("edit_file", path=path, old=old, new="pwned"),
                  call("delete_file", path=path))
    ]
    data = script(
        # the guard owns the paths through the link, so only the path checks stand in the way there
        planner=[plan_turn([subtask("guard", ["src/app.py", "link/evil.txt", "link/existing.txt"]),
                            subtask("other", ["src/other.py"])])],
        coder={
            "guard": [turn(*bad_calls[:9]), turn(*bad_calls[9:]),
                      turn(coder_writes("src/app.py", "def main():\n    return 'guarded'\n"), done())],
            "other": [turn(coder_writes("src/other.py", "OTHER = 1\n"), done())],
        },
    )

    result = start(repo, data)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    events = refused(repo, result.run, "guard")
    assert [(e["tool"], e["role"]) for e in events] == [(c["call"], "coder") for c in bad_calls]
    for n, (path, (_, why)) in enumerate(attempts.items()):
        for event in events[3 * n: 3 * n + 3]:
            assert event["error"].startswith("refused") and why in event["error"], (path, event)
    assert refused(repo, result.run, "other") == []
    # nothing written anywhere
    assert [p for p in tmp_path.rglob("x")] == []
    assert sorted(p.name for p in outside.iterdir()) == ["existing.txt"]
    assert (outside / "existing.txt").read_text() == "outside\n"
    assert (repo / ".git/config").read_bytes() == git_config
    assert not (repo / ".git/hooks/pre-commit").exists()
    assert git(repo, "diff", "--name-only", base, f"gitteam/{result.run}/guard").split() == ["src/app.py"]
    assert blob(repo, "main", "src/other.py") == b"OTHER = 1\n"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 'guarded'\n"
    assert os.readlink(repo / "link") == str(outside)
    assert status(repo) == before


def test_run_refuses_commands_not_allowed_and_runs_allowed_ones_without_a_shell(repo: Path, tmp_path: Path) -> None:
    python = sys.executable
    echo = [python, "tools/echo_args.py"]
    commit_files(repo, {"tools/echo_args.py": (
        "import json, pathlib, sys\n"
        "pathlib.Path('out').mkdir(exist_ok=True)\n"
        "pathlib.Path('out/args.json').write_text(json.dumps(sys.argv[1:]))\n"
    )}, "a tool")
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep\n")
    pwned = canary / "pwned"
    not_allowed = [
        f"rm -rf {shlex.quote(str(canary))}",
        f"sh -c {shlex.quote('touch ' + shlex.quote(str(pwned)))}",
        shlex.join([python, "-c", f"open({str(pwned)!r}, 'w')"]),
    ]
    # shell syntax that only a shell would act on: a variable, a command separator, a pipe
    allowed_with_metacharacters = shlex.join(echo) + f" $HOME; touch {shlex.quote(str(pwned))} | cat"
    data = script(
        planner=[plan_turn([subtask("tool", ["out/args.json"])])],
        coder={"tool": [turn(*[coder_runs(c) for c in not_allowed]), coder_runs(allowed_with_metacharacters),
                        done("ran the tool")]},
        reviewer={"tool": [approve()]},
    )

    # named literally: an open word may not be an absolute path (tests/test_allow.py)
    result = start(repo, data, config={"commands.allowed": [allowed_with_metacharacters]})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    events = refused(repo, result.run)
    assert [e["tool"] for e in events] == ["run"] * 3
    assert all("command not allowed" in e["error"] for e in events)
    assert (canary / "keep.txt").read_text() == "keep\n"
    assert not pwned.exists()
    args = json.loads(blob(repo, "main", "out/args.json") or b"null")
    assert args == ["$HOME;", "touch", str(pwned), "|", "cat"]


def test_a_tool_the_filesystem_refuses_is_an_error_result_not_a_crash(repo: Path) -> None:
    """Owned paths the disk cannot take (a file where a directory must go, bytes that are not text)."""
    (repo / "data.bin").write_bytes(b"\xff\xfe\x00binary")
    git(repo, "add", "data.bin")
    git(repo, "commit", "-q", "-m", "binary data")
    data = script(
        planner=[plan_turn([subtask("disk", ["README.md/inner.txt", "data.bin", "src/app.py"])])],
        coder={"disk": [turn(coder_writes("README.md/inner.txt", "x\n"), call("edit_file", path="data.bin",
                                                                             old="binary", new="text")),
                        turn(coder_writes("src/app.py", "def main():\n    return 0\n"), done())]},
    )

    result = start(repo, data)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    errors = {e["tool"]: e["error"] for e in refused(repo, result.run, "disk")}
    assert errors.keys() == {"write_file", "edit_file"}
    assert "File exists" in errors["write_file"] or "Not a directory" in errors["write_file"]
    assert "not UTF-8" in errors["edit_file"]
    assert blob(repo, "main", "README.md") == b"# project\n"
    assert blob(repo, "main", "data.bin") == b"\xff\xfe\x00binary"
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 0\n"


HOOKS = ("pre-commit", "commit-msg", "post-commit", "post-checkout", "post-merge", "pre-merge-commit",
         "post-rewrite", "pre-auto-gc")


def test_no_hook_runs_for_the_agents_git_work_and_agent_written_attributes_run_no_driver(
    repo: Path, tmp_path: Path
) -> None:
    """Invariant 7: worktrees, agent commits, merges and the fast-forward run no hook, and a `.gitattributes`
    an agent writes cannot make git run a textconv or external diff driver while gitteam reads its diff."""
    markers = tmp_path / "markers"
    markers.mkdir()
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in HOOKS:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(markers / name))}\n")
        hook.chmod(0o755)
    driver = shlex.quote(str(markers / "driver"))
    git(repo, "config", "diff.evil.textconv", f"sh -c 'touch {driver}; cat \"$1\"' -")
    git(repo, "config", "diff.evil.command", f"sh -c 'touch {driver}'")
    data = script(
        [plan_turn([subtask("attrs", [".gitattributes", "src/app.py"]), subtask("docs", ["README.md"])])],
        {"attrs": [coder_writes(".gitattributes", "* diff=evil\n"),
                   coder_writes("src/app.py", "def main():\n    return 2\n"), done()],
         "docs": [coder_writes("README.md", "# project\n\nMore.\n"), done()]},
        {"*": [approve()]},
    )
    # .gitattributes is protected: allowed here, so the guard under test is the one left when a person allows it
    result = start(repo, data, RunOptions(yes=True, allow_protected=(".gitattributes",)))
    assert result.exit_code == 0, result.message
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"  # the run really merged
    assert sorted(p.name for p in markers.iterdir()) == []

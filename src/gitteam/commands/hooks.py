"""`gitteam hook install|uninstall`: the review gate as a git hook, installed the careful way.

The hooks directory is found through the common git dir (so it works from any worktree); a foreign
hook is kept beside ours and chained; `core.hooksPath` is respected by refusing with a hint rather
than writing where git will not look. Any local hook can be skipped with `--no-verify`: CI running
`gitteam review` is the gate that cannot be.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

from gitteam.commands.review import FAIL_ON
from gitteam.errors import GitteamError, UsageError
from gitteam.git import Repository

MARKER = "# gitteam-hook"
KINDS = ("pre-push", "pre-merge-commit")
PREVIOUS_SUFFIX = ".gitteam-previous"

PRE_PUSH = """#!/bin/sh
{marker} pre-push: runs the gitteam review gate on what is being pushed.
# Installed by `gitteam hook install`; `gitteam hook uninstall` restores any hook it replaced.
# Skippable with `git push --no-verify`: CI running `gitteam review` is the gate that cannot be skipped.
input=$(cat)
previous="$0{previous}"
if [ -x "$previous" ]; then
    printf '%s\\n' "$input" | "$previous" "$@" || exit $?
fi
zero=0000000000000000000000000000000000000000
# The loop runs in a subshell (the pipe): its `exit` ends the loop, and `|| exit` the hook.
printf '%s\\n' "$input" | while read -r local_ref local_sha remote_ref remote_sha; do
    [ -z "$local_sha" ] && continue
    [ "$local_sha" = "$zero" ] && continue
    if [ "$remote_sha" = "$zero" ] || ! git cat-file -e "$remote_sha^{{commit}}" 2>/dev/null; then
        {gitteam} review{options} --head "$local_sha" || exit $?
    else
        {gitteam} review{options} --base "$remote_sha" --head "$local_sha" || exit $?
    fi
done || exit $?
"""

PRE_MERGE_COMMIT = """#!/bin/sh
{marker} pre-merge-commit: runs the gitteam review gate on the merge being made.
# Git does not run this hook for fast-forward merges. Skippable with --no-verify; CI is the real gate.
previous="$0{previous}"
if [ -x "$previous" ]; then
    "$previous" "$@" || exit $?
fi
# MERGE_HEAD is not written yet when git runs this hook: review the merged index as a commit on HEAD.
tree=$(git write-tree) || exit $?
merged=$(git commit-tree "$tree" -p HEAD -m "gitteam: the merge under review") || exit $?
{gitteam} review{options} --base HEAD --head "$merged"
"""


def hooks_dir(repo: Repository) -> Path:
    configured = next(iter(repo.config_values("core.hooksPath")), "").strip()
    if configured:
        raise UsageError(f"core.hooksPath is set to {configured}: gitteam will not write there; add "
                         f"'gitteam review' to the hooks you manage there (or use pre-commit: see docs/ci.md)")
    return repo.common_dir / "hooks"


def command() -> str:
    """How the hook calls gitteam: this very interpreter, so a virtualenv need not be on PATH."""
    return f"{shlex.quote(sys.executable)} -m gitteam"


def install(repo: Repository, kind: str, fail_on: str = "block", checks_only: bool = False) -> str:
    """Write the hook; `fail_on` and `checks_only` are passed to every `gitteam review` it runs."""
    if kind not in KINDS:
        raise UsageError(f"--type must be one of {', '.join(KINDS)} (got {kind!r})")
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on must be one of {', '.join(FAIL_ON)} (got {fail_on!r})")
    options = f" --fail-on {fail_on}" + (" --checks-only" if checks_only else "")
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / kind
    previous = path.with_name(kind + PREVIOUS_SUFFIX)
    chained = ""
    if path.exists() and MARKER not in path.read_text(errors="replace"):
        if previous.exists():
            raise GitteamError(f"{previous} already exists; remove it or uninstall first")
        os.replace(path, previous)
        chained = f" (your previous hook is kept as {previous.name} and runs first)"
    template = PRE_PUSH if kind == "pre-push" else PRE_MERGE_COMMIT
    text = template.format(marker=MARKER, previous=PREVIOUS_SUFFIX, gitteam=command(), options=options)
    tmp = path.with_name(kind + ".gitteam-tmp")
    tmp.write_text(text)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)
    what = "the deterministic checks" if checks_only else "the checks and the configured reviewers"
    return f"installed the gitteam {kind} hook at {path}{chained}: it runs {what}, failing on {fail_on}"


def uninstall(repo: Repository, kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"--type must be one of {', '.join(KINDS)} (got {kind!r})")
    path = hooks_dir(repo) / kind
    if not path.exists() or MARKER not in path.read_text(errors="replace"):
        raise UsageError(f"no gitteam {kind} hook at {path}; nothing to uninstall")
    previous = path.with_name(kind + PREVIOUS_SUFFIX)
    if previous.exists():
        os.replace(previous, path)
        return f"removed the gitteam {kind} hook and restored your previous one"
    path.unlink()
    return f"removed the gitteam {kind} hook"

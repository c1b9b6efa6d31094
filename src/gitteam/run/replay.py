"""`gitteam replay RUN`: the recorded run again, offline, in a scratch clone, its models replaced by the
transcript player (run/replay_model.py); the tools run for real there. It reports the first request that
differs from the recording, or whether every agent reached the recorded trees.

The scratch clone is a private copy (`git clone --no-local`) with the run's target branch at its base commit;
the user's checkout, index, refs and run state are only read. No provider is ever created, so no key or
network is needed; a `command:` coder has no conversation to replay and is refused (exit 2).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitteam.config import Config, load_config
from gitteam.errors import Exit, UsageError
from gitteam.events import Event
from gitteam.git import Repository, clone_scratch, tree_of
from gitteam.journal import Journal, RunState, load_run
from gitteam.models.base import Model
from gitteam.models.registry import Registry
from gitteam.modelspec import COMMAND
from gitteam.names import BRANCH_PREFIX
from gitteam.run.context import RunOptions, RunResult
from gitteam.run.replay_model import Divergence, Recording, TranscriptModel

BUDGET_KEYS = {"money": "run.budget", "tokens": "run.max_tokens", "seconds": "run.max_seconds",
               "economy_at": "run.economy_at", "agent_money": "limits.agent_budget",
               "agent_tokens": "limits.max_tokens", "agent_seconds": "limits.max_seconds"}


class PlayerRegistry(Registry):
    """The run's recorded specs, every one answered by the transcript player."""

    def __init__(self, config: Config, base_dir: Path, options: dict[str, Any], recording: Recording) -> None:
        super().__init__(config, base_dir, environ={})
        self.recorded = options
        self.recording = recording

    def spec_for(self, role: str, economy: bool = False) -> str:
        section = self.recorded.get("economy" if economy else "models") or {}
        return str(section.get(role) or super().spec_for(role, economy) or f"recorded:{role}")

    def _create(self, spec: str) -> Model:
        return TranscriptModel(spec, self.recording)


@dataclass
class ReplayReport:
    run: str
    result: RunResult
    divergence: Divergence | None
    unplayed: dict[tuple[str, str], int]
    trees: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # branch, recorded, replayed
    scratch: Path | None = None

    @property
    def same(self) -> bool:
        return (self.divergence is None and not self.unplayed and bool(self.trees)
                and all(recorded == replayed for _, recorded, replayed in self.trees))

    @property
    def exit_code(self) -> int:
        return Exit.OK if self.same else Exit.FAILED

    def lines(self) -> list[str]:
        if self.divergence is not None:
            return [f"replay of {self.run} diverged at {self.divergence.describe()}"]
        out = [f"{role} '{agent}': {n} recorded request(s) were never made" for (role, agent), n in
               sorted(self.unplayed.items())]
        for branch, recorded, replayed in self.trees:
            verdict = "same tree" if recorded == replayed else f"differs: recorded {recorded}, replayed {replayed}"
            out.append(f"{branch}: {verdict}")
        if not self.trees:
            out.append("no branch of the run to compare (were its branches deleted?)")
        if self.same:
            out.append(f"replay of {self.run}: every agent reached the recorded tree ({len(self.trees)} branches)")
        else:
            out.append(f"replay of {self.run} did not reproduce the run ({self.result.state}: "
                       f"{self.result.message})")
        return out


def refuse_commands(state: RunState, run_dir: Path) -> None:
    specs = [*(state.options.get("models") or {}).values(), *(state.options.get("economy") or {}).values()]
    commands = sorted({s for s in specs if isinstance(s, str) and s.startswith(COMMAND)})
    if commands:
        raise UsageError(f"run {state.run} used the agent command {commands[0]!r} as its coder: a command: coder's "
                         "conversation is not recorded, so it cannot be replayed")


def replay_config(root: Path, state: RunState) -> Config:
    """The configuration the scratch clone would load, with the run's recorded settings and budget (a run
    recorded before settings were: what the files and environment say now)."""
    budget = state.options.get("budget") or {}
    overrides: dict[str, object] = dict(state.settings)
    overrides.update({key: budget.get(name) for name, key in BUDGET_KEYS.items()})
    overrides["worktrees.root"] = str(root.parent / "worktrees")  # in the scratch directory: removed with it
    return load_config(root, overrides)


def replay(repo: Repository, run: str, keep: bool = False,
           listener: Callable[[Event], None] | None = None) -> ReplayReport:
    """Replay `run` of `repo` in a scratch clone (removed afterwards unless `keep`)."""
    state = load_run(repo.state_dir, run)
    run_dir = Journal(repo.state_dir, run).dir
    refuse_commands(state, run_dir)
    if not state.base or not state.target:
        raise UsageError(f"run {run} has no recorded start (base commit and target): nothing to replay")
    recording = Recording.load(run_dir)
    if not recording.calls:
        raise UsageError(f"run {run} has no transcripts (runs before transcripts existed cannot be replayed)")
    tmp = Path(tempfile.mkdtemp(prefix="gitteam-replay-"))
    try:
        scratch = clone_scratch(repo, tmp / "repo", state.base, state.target)
        config = replay_config(scratch.root, state)
        registry = PlayerRegistry(config, scratch.root, state.options, recording)
        options = RunOptions(no_merge=True, allow_protected=tuple(state.allow_protected))
        from gitteam.run.orchestrator import start_run

        result = start_run(scratch, config, state.task, options, listener=listener, run=run, registry=registry)
        report = ReplayReport(run, result, recording.divergence, recording.unplayed(),
                              scratch=tmp if keep else None)
        if report.divergence is None:
            report.trees = compare_trees(repo, scratch, run)
        return report
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def compare_trees(original: Repository, scratch: Repository, run: str) -> list[tuple[str, str | None, str | None]]:
    """Every branch of the run in either repository: its tree id there and here."""
    prefix = f"refs/heads/{BRANCH_PREFIX}/{run}/"
    names = sorted(set(original.refs(prefix)) | set(scratch.refs(prefix)))
    return [(name.removeprefix("refs/heads/"), tree_of(original, name), tree_of(scratch, name)) for name in names]

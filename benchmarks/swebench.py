"""gitteam on SWE-bench: predictions for the official harness.

For each instance (SWE-bench's JSON: `instance_id`, `repo`, `base_commit`, `problem_statement`, ...): clone the
repository, put a branch at `base_commit`, `gitteam run --yes` the problem statement on it, and take the diff
of what landed on that branch against `base_commit` as the prediction. A run that lands nothing predicts an
empty patch (the harness counts it unresolved). Writes one JSON line per instance,
`{"instance_id", "model_name_or_path", "model_patch"}`, the harness's predictions format; instances already
in the output are skipped, so an interrupted benchmark carries on where it stopped.

    python benchmarks/swebench.py --instances instances.jsonl --output predictions.jsonl \\
        [--model SPEC] [--model-name NAME] [--limit N] [--workdir DIR] [--repo-url TEMPLATE] [--timeout S]

It needs a model: ANTHROPIC_API_KEY or OPENAI_API_KEY in the environment (every role gets that provider's
default), or `--model SPEC` (`anthropic:MODEL`, `openai:MODEL`, the NAME of a `[models.NAME]` in your user
config such as a local OpenAI-compatible server, or `replay:PATH` for a scripted run). Steps, and how to
score the output with the official harness: docs/benchmarks.md#swe-bench.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BRANCH = "gitteam-swebench"  # the target branch each run lands on
REQUIRED = ("instance_id", "repo", "base_commit", "problem_statement")


class BenchError(Exception):
    """Bad input: one line for the person, exit 2."""


@dataclass(frozen=True)
class Instance:
    instance_id: str
    repo: str
    base_commit: str
    problem_statement: str


@dataclass(frozen=True)
class Outcome:
    instance_id: str
    exit_code: int
    seconds: float
    patch: str


def read_instances(path: Path) -> list[Instance]:
    """A JSON list of instances (SWE-bench's dataset exported with `to_json`) or one instance a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        stripped = text.lstrip()
        raw = json.loads(text) if stripped.startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                 if line.strip()]
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not JSON or JSON lines: {exc.msg} (line {exc.lineno})") from exc
    instances = []
    for number, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise BenchError(f"{path}: instance {number} is not a JSON object")
        missing = [key for key in REQUIRED if not isinstance(item.get(key), str) or not item[key].strip()]
        if missing:
            raise BenchError(f"{path}: instance {number} has no {', '.join(missing)}")
        instances.append(Instance(*(item[key] for key in REQUIRED)))
    if not instances:
        raise BenchError(f"{path} holds no instances")
    return instances


def done_ids(output: Path) -> set[str]:
    """Instances the output already predicts."""
    if not output.exists():
        return set()
    ids = set()
    for number, line in enumerate(output.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                ids.add(str(json.loads(line)["instance_id"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise BenchError(f"{output} line {number} is not a prediction; move the file aside") from exc
    return ids


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchError(f"git {' '.join(args)} failed in {cwd}: {last}")
    return proc.stdout


def checkout(instance: Instance, url_template: str, directory: Path) -> Path:
    """A fresh clone of the instance's repository with BRANCH checked out at its base commit."""
    repo = directory / "repo"
    if repo.exists():
        raise BenchError(f"{repo} exists; give --workdir a new directory or remove it")
    directory.mkdir(parents=True, exist_ok=True)
    url = url_template.format(repo=instance.repo)
    _git(directory, "clone", "--quiet", "--no-checkout", url, str(repo))
    _git(repo, "checkout", "--quiet", "-B", BRANCH, instance.base_commit)
    return repo


def run_instance(instance: Instance, args: argparse.Namespace, directory: Path) -> Outcome:
    repo = checkout(instance, args.repo_url, directory)
    command = [sys.executable, "-m", "gitteam", "run", "--yes", "--target", BRANCH]
    if args.model:
        command += ["--model", args.model]
    began = time.monotonic()
    try:
        # after "--": a problem statement may begin with a dash
        proc = subprocess.run([*command, "--", instance.problem_statement], cwd=repo, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=args.timeout)
        code, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, log = 124, f"gitteam run timed out after {args.timeout}s\n{exc.stdout or ''}{exc.stderr or ''}"
    (directory / "gitteam.log").write_text(log if isinstance(log, str) else str(log), encoding="utf-8")
    # what landed on the target, and only that: the integration branch of a refused run is not a prediction
    patch = _git(repo, "diff", "--binary", instance.base_commit, BRANCH)
    return Outcome(instance.instance_id, code, time.monotonic() - began, patch)


def model_available(model: str | None) -> bool:
    return bool(model) or any(os.environ.get(key) for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"))


def predictions(instances: list[Instance], args: argparse.Namespace) -> Iterator[Outcome]:
    skip = done_ids(args.output)
    todo = [item for item in instances if item.instance_id not in skip][: args.limit]
    for instance in todo:
        yield run_instance(instance, args, args.workdir / instance.instance_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/swebench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=Path, required=True, help="SWE-bench instances: JSON list or JSONL")
    parser.add_argument("--output", type=Path, required=True, help="predictions JSONL (appended to)")
    parser.add_argument("--model", help="gitteam model spec for every role (default: from the key you set)")
    parser.add_argument("--model-name", help='model_name_or_path in the predictions (default: "gitteam/MODEL")')
    parser.add_argument("--limit", type=int, help="at most this many instances this time")
    parser.add_argument("--workdir", type=Path, default=Path("swebench-runs"), help="where the clones go")
    parser.add_argument("--repo-url", default="https://github.com/{repo}.git",
                        help="clone URL, {repo} is the instance's owner/name (a local mirror: /mirrors/{repo})")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per instance (default 3600)")
    args = parser.parse_args(argv)
    try:
        if not model_available(args.model):
            raise BenchError("no model: set ANTHROPIC_API_KEY or OPENAI_API_KEY, or pass --model SPEC (a local "
                             "OpenAI-compatible server: the NAME of a [models.NAME] in your user config)")
        if "{repo}" not in args.repo_url:
            raise BenchError("--repo-url must contain {repo}")
        instances = read_instances(args.instances)
        name = args.model_name or f"gitteam/{args.model or 'default'}"
        landed = written = 0
        for outcome in predictions(instances, args):
            with args.output.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"instance_id": outcome.instance_id, "model_name_or_path": name,
                                      "model_patch": outcome.patch}) + "\n")
            landed += bool(outcome.patch)
            written += 1
            print(f"{outcome.instance_id}: exit {outcome.exit_code}, {outcome.seconds:.0f}s, "
                  f"{'patch of ' + str(len(outcome.patch.splitlines())) + ' lines' if outcome.patch else 'no patch'}",
                  flush=True)
    except BenchError as exc:
        print(f"swebench: {exc}", file=sys.stderr)
        return 2
    print(f"{landed} of {written} instance(s) landed a patch; predictions in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

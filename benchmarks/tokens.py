"""Input tokens of each agent's first model call on generated repositories of growing size.

A whole `gitteam run` (in-process, replay model, 2 one-file subtasks) on repositories of 1,000 and 100,000
files made with one `git fast-import`. The replay model counts a prompt's tokens the way the budgets do
(gitteam.tokens: about four characters a token, system prompt and tool schemas included), so its usage of
each agent's first call is that agent's prompt. The planner's prompt carries the repository overview,
bounded by `[planner] overview_tokens`; a coder's carries its subtask, not the repository. Both must stay
flat as the repository grows.

    python benchmarks/tokens.py [--files 1000 100000] [--overview-tokens 6000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
       "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_NOSYSTEM": "1"}
SUBTASKS = 2


def generate_repository(path: Path, files: int) -> None:
    """`files` small Python files in nested packages, a README and a pyproject, in one fast-import."""
    env = {**os.environ, **ENV}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    stream = ["commit refs/heads/main", "committer bench <bench@example.com> 1700000000 +0000", "data 7", "initial"]
    extra = {"README.md": "# Generated\n\nA repository for gitteam's token benchmark.\n",
             "pyproject.toml": '[project]\nname = "generated"\nversion = "0"\n'}
    for name, text in extra.items():
        stream += [f"M 100644 inline {name}", f"data {len(text.encode())}", text]
    for n in range(files):
        text = f'"""Module {n}."""\n\n\ndef function_{n}(value: int) -> int:\n    return value + {n}\n'
        stream += [f"M 100644 inline src/pkg{n % 50}/sub{n % 7}/module_{n}.py", f"data {len(text)}", text]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream) + "\n", text=True,
                   check=True, env=env)
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, check=True, env=env)


def replay_script() -> dict[str, Any]:
    plan = [{"id": f"t{i}", "title": f"Feature {i}", "instructions": f"Create src/feature_{i}.py with feature_{i}().",
             "files": [f"src/feature_{i}.py"]} for i in range(1, SUBTASKS + 1)]
    coder = {f"t{i}": [{"tool_calls": [
        {"name": "write_file", "arguments": {"path": f"src/feature_{i}.py", "content": f"def feature_{i}():\n    "
                                             f"return {i}\n"}},
        {"name": "done", "arguments": {"summary": "done"}}]}] for i in range(1, SUBTASKS + 1)}
    review = {"*": [{"call": "submit_review", "args": {"decision": "APPROVE", "summary": "ok", "findings": []}}]}
    return {"gitteam_replay": 1, "planner": [{"call": "submit_plan", "args": {"subtasks": plan}}],
            "coder": coder, "reviewer": review}


def measure(root: Path, files: int, overview_tokens: int) -> dict[str, Any]:
    from gitteam.config import load_config
    from gitteam.git import find_repository
    from gitteam.journal import Journal
    from gitteam.overview import repository_overview
    from gitteam.run.context import RunOptions
    from gitteam.run.orchestrator import start_run
    from gitteam.tokens import estimate_tokens

    work = root / f"repo-{files}"
    started = time.perf_counter()
    generate_repository(work, files)
    generated = time.perf_counter() - started
    script = root / "script.json"
    script.write_text(json.dumps(replay_script()))
    repo = find_repository(work)
    config = load_config(repo.root, {"roles.*": f"replay:{script}", "planner.overview_tokens": overview_tokens,
                                     "run.max_agents": SUBTASKS})
    base = repo.rev_parse("HEAD") or ""
    overview = estimate_tokens(repository_overview(repo, base, overview_tokens))
    started = time.perf_counter()
    result = start_run(repo, config, "Add the feature modules.", RunOptions(yes=True))
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"the run failed: {result.message}")
    first: dict[tuple[str, str], int] = {}
    for event in Journal(repo.state_dir, result.run).events():
        if event["event"] == "usage":
            first.setdefault((event["role"], event["agent"]), int(event["usage"]["input_tokens"]))
    coders = [tokens for (role, _), tokens in first.items() if role == "coder"]
    return {"files": files, "generate": generated, "seconds": seconds, "overview": overview,
            "planner": first[("planner", "planner")], "coder_min": min(coders), "coder_max": max(coders)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--overview-tokens", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitteam-tokens-") as tmp:
        rows = [measure(Path(tmp), files, args.overview_tokens) for files in args.files]
    budget = args.overview_tokens
    print(f"first-call input tokens (estimated as the budgets count them); overview budget {budget:,} tokens")
    print(f"{'files':>9} {'overview':>9} {'planner':>9} {'coder (min-max)':>16} {'run s':>7} {'generate s':>11}")
    for row in rows:
        coder = f"{row['coder_min']:,}-{row['coder_max']:,}"
        print(f"{row['files']:>9,} {row['overview']:>9,} {row['planner']:>9,} {coder:>16} {row['seconds']:>7.1f} "
              f"{row['generate']:>11.1f}")
    within = all(row["overview"] <= budget for row in rows)
    spread = max(r["planner"] for r in rows) - min(r["planner"] for r in rows)
    coder_spread = max(r["coder_max"] for r in rows) - min(r["coder_min"] for r in rows)
    print(f"overview within its budget at every size: {'yes' if within else 'NO'}; planner prompt varies by "
          f"{spread:,} tokens, coder prompt by {coder_spread:,} tokens across sizes")
    if not within:
        sys.exit(1)


if __name__ == "__main__":
    main()

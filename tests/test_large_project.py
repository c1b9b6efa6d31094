"""Issue 12's case: a coder on a 2,000-file project (a sphinx-like tree) that reads six large files, thousands of
lines each, and edits one finishes within the default limits, through the real Anthropic SDK against a loopback
server that reports usage the way the Messages API does under prompt caching (each request's earlier prefix read
from the cache, the rest written). What gitteam counted is compared with what the server reported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from crews import configure
from fakeapi import Recorded, Scripted
from gitteam.config import LimitsConfig
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.metering import Intake
from gitteam.models.base import Usage
from gitteam.models.prices import builtin_prices
from gitteam.transcripts import DIR, read_transcript
from loopback import Team, call, plan, run, subtask, team, turn
from scripts import blob, events

MODEL = "claude-sonnet-4-6"
LARGE = [f"sphinx/{name}.py" for name in ("domains/python", "builders/html", "writers/latex", "ext/autodoc/init",
                                          "environment/init", "application")]
OLD_LIMIT = 400_000  # the per-agent cap of 400k billed tokens that failed this coder after 12 calls
OUTPUT_TOKENS = 400  # what the server reports each answer cost


pytestmark = pytest.mark.usefixtures("loopback_env")


def large_module(name: str, lines: int) -> str:
    body = [f'"""{name}: generated for the test."""', ""]
    n = 0
    while len(body) < lines:
        n += 1
        body += [f"def {name.replace('/', '_')}_{n}(app, env, node):", f"    value = env.config.option_{n}",
                 f"    return node.astext() + str(value) + '{n}'", ""]
    return "\n".join(body[:lines]) + "\n"


def sphinx_like(root: Path) -> None:
    """2,000 tracked files: six modules of 3,000 to 4,000 lines among many small ones, in one commit."""
    for n in range(1994):
        path = root / "sphinx" / f"pkg{n % 40:02d}" / f"mod{n:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE_{n} = {n}\n")
    for index, rel in enumerate(LARGE):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(large_module(rel.removeprefix("sphinx/").removesuffix(".py"), 3000 + 200 * index))
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "a large project"], cwd=root, check=True)
    assert len(find_repository(root).tracked_files("HEAD")) == 2000 + 2  # and README.md, src/app.py


def cached_usage(crew: Team) -> list[tuple[tuple[str, str], dict[str, int]]]:
    """Answer every request with usage as Anthropic reports it for gitteam's cache breakpoints (the last one is
    on the newest message): what the agent's previous request sent is a cache read, the rest a cache write,
    a few tokens after the breakpoint plain input. Returns the (agent, usage) pairs as they are sent."""
    reported: list[tuple[tuple[str, str], dict[str, int]]] = []
    previous: dict[tuple[str, str], int] = {}
    scripted = crew.answer

    def route(request: Recorded) -> Scripted | None:
        answer = scripted(request)
        if answer is None or not isinstance(answer.body, dict):
            return answer
        who = crew.identify(request.body)
        prompt = len(json.dumps({k: request.body[k] for k in ("system", "tools", "messages")})) // 4
        read = previous.get(who, 0) if prompt >= previous.get(who, 0) else 0  # a shorter prompt misses
        usage = {"input_tokens": 3, "cache_read_input_tokens": read,
                 "cache_creation_input_tokens": max(0, prompt - read - 3), "output_tokens": OUTPUT_TOKENS}
        previous[who] = prompt
        answer.body["usage"] = usage
        reported.append((who, usage))
        return answer

    crew.api.route = route
    return reported


def as_usage(wire: dict[str, int]) -> Usage:
    return Usage(input_tokens=wire["input_tokens"], output_tokens=wire["output_tokens"],
                 cache_read_tokens=wire["cache_read_input_tokens"],
                 cache_write_tokens=wire["cache_creation_input_tokens"])


def test_a_coder_reading_six_large_files_of_a_2000_file_project_finishes_within_the_default_limits(
        repo: Path) -> None:
    sphinx_like(repo)
    target = LARGE[0]
    with team("anthropic") as crew:
        configure(crew, MODEL)
        reported = cached_usage(crew)
        crew.planner(plan(subtask("fix", [target])))
        crew.coder("fix",
                   turn(call("search", pattern=r"def python_1\(", glob="*.py")),
                   *[turn(call("read_file", path=path)) for path in LARGE],
                   turn(call("read_file", path=LARGE[1], start_line=1300)),
                   turn(call("read_file", path=LARGE[2], start_line=1300)),
                   turn(call("read_file", path=target, start_line=2600, end_line=2700)),
                   turn(call("edit_file", path=target, old="    value = env.config.option_1\n",
                             new="    value = env.config.option_1 or ''\n")),
                   turn(call("done", summary="option_1 may be unset")))

        result = run(repo)

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        assert b"    value = env.config.option_1 or ''\n" in (blob(repo, "main", target) or b"")
        coder = [usage for who, usage in reported if who == ("coder", "fix")]
        assert len(coder) == 12  # the coder failed on its 12th call

        # what gitteam recorded is what the server reported, field by field, and priced at the cache's prices
        recorded = [e for e in events(repo, result.run, "usage") if (e["role"], e["agent"]) == ("coder", "fix")]
        assert [e["usage"] for e in recorded] == [as_usage(u).to_json() for u in coder]
        billed = sum((as_usage(u) for u in coder), Usage())
        prices = builtin_prices(MODEL)
        assert prices is not None
        assert sum(e["cost"] for e in recorded) == pytest.approx(prices.cost(billed))

        # the agent's limit counts what entered its conversation: computed from the server's numbers alone
        intake = Intake()
        for usage in coder:
            intake.add(as_usage(usage))
        records = read_transcript(Journal(find_repository(repo).state_dir, result.run).dir / DIR / "coder-fix.jsonl")
        end = records.records[-1]
        assert end["kind"] == "end" and end["status"] == "finished"
        assert (end["context_tokens"], end["largest_prompt"]) == (intake.tokens, intake.largest_prompt)
        assert intake.largest_prompt == max(as_usage(u).prompt_tokens for u in coder)

        # the old count (every cached re-read at full weight) would have stopped it; the defaults hold it easily
        assert billed.total > OLD_LIMIT
        defaults = LimitsConfig()
        assert intake.tokens < defaults.max_tokens / 4 and intake.tokens < billed.total / 3
        assert len(coder) < defaults.max_steps
        assert defaults.agent_budget is not None and prices.cost(billed) < defaults.agent_budget / 5
        # six windows of up to 60,000 characters and more: the reads were large, and each shows where it stopped
        reads = [text for _, text, _ in tool_texts(crew)]
        assert sum("[cut at line" in text for text in reads) >= 6


def tool_texts(crew: Team) -> list[tuple[str, str, bool]]:
    """The coder's tool results as its last request carried them."""
    from loopback import tool_results

    last = crew.bodies("coder", "fix")[-1]
    return tool_results(last)

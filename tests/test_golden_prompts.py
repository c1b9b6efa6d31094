"""Golden prompts: each role's first request, as the Anthropic API receives it, kept as a snapshot.

A prompt is gitteam's most important output that no other test reads whole. Every change to what a planner,
coder or reviewer is told (system prompt, tool descriptions and schemas, the first message) shows up here as a
diff to review, and is accepted on purpose:

    UPDATE_GOLDEN=1 pytest tests/test_golden_prompts.py   # rewrites tests/golden/*.txt

Values that differ from run to run (fence nonces, the run id, commit ids, temporary paths) are replaced by
stand-ins, so the snapshot changes only when the prompts do.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import loopback
from conftest import commit_files
from crews import configure

GOLDEN = Path(__file__).parent / "golden"
TASK = "Make main() return 2 and say so in the README."


def normalize(text: str, repo: Path, run: str) -> str:
    numbered: dict[str, str] = {}

    def stand_in(kind: str) -> Any:
        def replace(match: re.Match[str]) -> str:
            if match[0] not in numbered:  # the same value, the same stand-in: <sha1>, <sha2>, ...
                numbered[match[0]] = f"<{kind}{sum(v.startswith('<' + kind) for v in numbered.values()) + 1}>"
            return numbered[match[0]]
        return replace

    text = text.replace(str(repo.resolve()), "<REPO>").replace(str(repo), "<REPO>").replace(run, "<RUN>")
    text = re.sub(r'nonce="[0-9a-f]{12}"', 'nonce="<NONCE>"', text)
    text = re.sub(r"\b[0-9a-f]{40}\b", stand_in("sha"), text)
    text = re.sub(r"\b[0-9a-f]{10,12}\b", stand_in("short"), text)
    return text


def render(body: dict[str, Any], repo: Path, run: str) -> str:
    """The request as a reviewer of prompts reads it: system, tools, then the first message, whole."""
    system = body.get("system", "")
    if isinstance(system, list):
        system = "\n".join(str(block.get("text", "")) for block in system)
    parts = ["# system", str(system).rstrip(), "", "# tools"]
    for tool in body.get("tools", []):
        parts.append(f"## {tool['name']}")
        parts.append(str(tool.get("description", "")).rstrip())
        parts.append(json.dumps(tool.get("input_schema", {}), indent=1, sort_keys=True))
    parts += ["", "# first message", loopback.first_user_text(body).rstrip(), ""]
    return normalize("\n".join(parts), repo, run)


@pytest.fixture
def first_requests(repo: Path, loopback_env: None) -> dict[str, str]:
    commit_files(repo, {"README.md": "# app\n\nA tiny app.\n"}, "readme")
    with loopback.team("anthropic") as crew:
        configure(crew, "claude-test")
        crew.planner(loopback.plan(loopback.subtask("app", ["src/app.py"]),
                                   loopback.subtask("docs", ["README.md"], depends_on=["app"])))
        crew.coder("app", loopback.turn(loopback.call("write_file", path="src/app.py",
                                                      content="def main():\n    return 2\n"),
                                        loopback.call("done", summary="main returns 2")))
        crew.coder("docs", loopback.turn(loopback.call("write_file", path="README.md",
                                                       content="# app\n\nmain() returns 2.\n"),
                                         loopback.call("done", summary="README says so")))
        result = loopback.run(repo, TASK)
        assert result.state == "merged", result.message
        firsts: dict[str, str] = {}
        for request in crew.api.requests:
            body = request.body if isinstance(request.body, dict) else {}
            role, agent = crew.identify(body)
            key = {"planner": "planner", "coder": f"coder-{agent}", "reviewer": "reviewer"}.get(role, "")
            if key in ("planner", "coder-docs", "reviewer") and key not in firsts:  # the reviewer of `app`
                firsts[key] = render(body, repo, result.run)
    return firsts


@pytest.mark.parametrize("name", ["planner", "coder-docs", "reviewer"])
def test_first_request_matches_its_snapshot(first_requests: dict[str, str], name: str) -> None:
    """planner; the coder of a subtask with a dependency (its brief names what it builds on); a reviewer."""
    got = first_requests[name]
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    want = path.read_text(encoding="utf-8") if path.exists() else ""
    diff = "".join(difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                        f"tests/golden/{name}.txt", "this run"))
    assert got == want, (f"the {name} prompt changed; review the diff, then accept it with "
                         f"UPDATE_GOLDEN=1 pytest tests/test_golden_prompts.py\n{diff}")

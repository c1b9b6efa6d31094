"""Calibrated reviews and a review loop that keeps context, through real runs.

The decision follows from the findings: only a verified major finding costs a round; minor ones (and major
ones whose evidence is not in the code) approve and go to the backlog. Checks that fail go back to the coder
before any reviewer. The reviewer of a later round reads, as the loopback server received it through the real
SDK, the coder's summary, the earlier findings and the change since; parallel reviewers share the diff as a
cached prefix.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files
from crews import configure
from gitteam.models.anthropic import mark_cache
from gitteam.review.evidence import Evidence
from gitteam.review.verdict import Finding, Verdict, reviewer_decision
from loopback import Team, call, first_user_text, plan, run, subtask, team, turn
from scripts import approve, cli, coder_writes, done, events, finding, note, plan_turn, request_changes, script, start
from scripts import subtask as plan_subtask
from scripts import turn as script_turn

DIFF = """diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,2 +1,3 @@
 def main():
-    return 1
+    value = compute()
+    return value
"""
NEW_APP = "def main():\n    value = compute()\n    return value\n"


def evidence(asked: str = "make main return 2") -> Evidence:
    return Evidence(DIFF, {"src/app.py": NEW_APP}.get, asked)


def major(file: str, quote: str | None) -> Finding:
    return Finding(file, 2, "major", "compute is undefined", None, "reviewer", quote)


# -- the verification, deterministic ---------------------------------------------------------------------------


@pytest.mark.parametrize("quote", [
    "value = compute()",
    "+    value = compute()\n+    return value",  # diff markers
    "     2\t    value = compute()",  # read_file's numbering
    "value   =  compute()",  # whitespace runs
    "-    return 1",  # a removed line, from the diff
])
def test_a_quote_from_the_file_or_its_diff_verifies_a_major_finding(quote: str) -> None:
    assert evidence().verify(major("src/app.py", quote)) == major("src/app.py", quote)


@pytest.mark.parametrize(("file", "quote", "why"), [
    ("src/app.py", None, "needs evidence"),
    ("src/app.py", "value = compute_all()", "not in src/app.py"),
    ("src/app.py", "main", "shorter than"),
    ("", "import compute", "not in the diff or the request"),
])
def test_a_major_finding_without_a_true_quote_is_lowered_to_minor(file: str, quote: str | None, why: str) -> None:
    lowered = evidence().verify(major(file, quote))
    assert lowered.severity == "minor" and why in lowered.message
    assert lowered.message.startswith("compute is undefined [not verified")


def test_a_finding_about_the_whole_change_may_quote_the_request() -> None:
    whole = major("", "make main return 2")
    assert evidence().verify(whole) == whole
    assert evidence().verify(Finding("src/app.py", None, "minor", "naming")).severity == "minor"  # as it was


def test_the_decision_follows_from_the_severities() -> None:
    nit = Finding("a.py", 1, "minor", "naming")
    bug = Finding("a.py", 1, "major", "wrong", evidence="x = 1")
    assert reviewer_decision(Verdict("REQUEST_CHANGES", "nits", (nit,))).decision == "APPROVE"
    assert reviewer_decision(Verdict("APPROVE", "fine", (nit, bug))).decision == "REQUEST_CHANGES"
    assert reviewer_decision(Verdict("BLOCK", "sabotage")).decision == "BLOCK"
    assert reviewer_decision(Verdict("REQUEST_CHANGES", "no", ())).summary == (
        "no (approved: no major finding, the minor ones go to the backlog; the reviewer said REQUEST_CHANGES)")


# -- in a run ----------------------------------------------------------------------------------------------------


def one_subtask(reviewer: list[Any], coder: list[Any] | None = None) -> dict[str, Any]:
    return script(
        planner=[plan_turn([plan_subtask("fix", ["src/app.py"])])],
        coder={"fix": coder or [script_turn(coder_writes("src/app.py", "def main():\n    return 2\n"),
                                            done("returns 2"))]},
        reviewer={"fix": reviewer},
    )


def backlog(repo: Path) -> list[dict[str, Any]]:
    """The open backlog items, as `gitteam backlog --json` lists them."""
    listed = cli(repo, "backlog", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_a_review_with_only_minor_findings_approves_and_files_them_in_the_backlog(repo: Path) -> None:
    nits = request_changes("a few things", [
        finding("src/app.py", "main() has no docstring", "minor", 1),
        finding("src/app.py", "2 is a magic number", "major", 2),  # no evidence: not verified
        finding("src/app.py", "main calls an undefined helper", "major", 2, "return helper()"),  # not in the file
    ])
    result = start(repo, one_subtask([nits]))

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    [review] = events(repo, result.run, "review")  # one round
    assert review["verdict"]["decision"] == "APPROVE"
    assert "the reviewer said REQUEST_CHANGES" in review["verdict"]["summary"]
    items = backlog(repo)
    assert len(items) == 3 and {item["meta"]["severity"] for item in items} == {"minor"}
    assert sum("not verified" in item["content"] for item in items) == 2


def test_a_verified_major_finding_requests_changes(repo: Path) -> None:
    reviewer = [request_changes("wrong value", [finding("src/app.py", "must return 3", "major", 2, "return 2")]),
                approve("right now")]
    coder = [script_turn(coder_writes("src/app.py", "def main():\n    return 2\n"), done("returns 2")),
             script_turn(coder_writes("src/app.py", "def main():\n    return 3\n"), done("returns 3"))]
    result = start(repo, one_subtask(reviewer, coder))

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    first, second = events(repo, result.run, "review")
    assert (first["verdict"]["decision"], second["verdict"]["decision"]) == ("REQUEST_CHANGES", "APPROVE")
    assert note(repo, first["head"])["review"]["findings"][0]["evidence"] == "return 2"


def test_one_reviewers_nit_does_not_sink_a_run_the_others_approve(repo: Path) -> None:
    (repo / ".git" / "info" / "exclude").write_text("/.gitteam.toml\n")
    (repo / ".gitteam.toml").write_text('[[review.reviewers]]\nname = "style"\nfocus = "naming"\n\n'
                                        '[[review.reviewers]]\nname = "correctness"\nfocus = "bugs"\n')
    reviewer = [request_changes("rename it", [finding("src/app.py", "main is vague", "minor", 1)]),
                approve("correct")]
    result = start(repo, one_subtask(reviewer))

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    [item] = backlog(repo)
    assert item["content"] == "main is vague"


def test_failing_checks_go_back_to_the_coder_without_a_review_round(repo: Path) -> None:
    # reads the source, not an import: a rewrite of the same size in the same second keeps a stale .pyc
    check = "import pathlib\nassert 'return 2' in pathlib.Path('src/app.py').read_text()\n"
    commit_files(repo, {"tests/check.py": check})
    coder = [script_turn(coder_writes("src/app.py", "def main():\n    return 3\n"), done("returns 3")),
             script_turn(coder_writes("src/app.py", "def main():\n    return 2\n"), done("fixed: returns 2"))]
    result = start(repo, one_subtask([approve("correct")], coder), config={
        "commands.test": shlex.join([sys.executable, "tests/check.py"]), "run.max_rounds": 1})

    assert (result.exit_code, result.state) == (0, "merged"), result.message  # in the one round allowed
    [review] = events(repo, result.run, "review")
    assert review["verdict"]["decision"] == "APPROVE"
    heads = [e["head"] for e in events(repo, result.run, "agent_committed")]
    assert len(heads) == 2 and heads[-1] == review["head"]  # the failing commit was never reviewed


def test_checks_that_keep_failing_are_sent_back_a_bounded_number_of_times(repo: Path) -> None:
    commit_files(repo, {"tests/check.py": "raise SystemExit(1)\n"})
    coder = [script_turn(coder_writes("src/app.py", f"def main():\n    return {n}\n"), done(f"try {n}"))
             for n in range(2, 8)]
    result = start(repo, one_subtask([], coder), config={
        "commands.test": shlex.join([sys.executable, "tests/check.py"]), "run.max_rounds": 2})

    assert (result.exit_code, result.state) == (3, "refused"), result.message
    reviews = events(repo, result.run, "review")
    assert [r["verdict"]["decision"] for r in reviews] == ["REQUEST_CHANGES", "REQUEST_CHANGES"]
    assert all(f["source"] == "check:test_command" for r in reviews for f in r["verdict"]["findings"])
    assert len(events(repo, result.run, "agent_committed")) == 6  # (1 + CHECK_FIXES) a round, two rounds
    assert not [e for e in events(repo, result.run, "usage") if e["role"] == "reviewer"]  # never asked


# -- what the reviewer's request holds, as the server received it ------------------------------------------------


def reviewer_requests(crew: Team) -> list[dict[str, Any]]:
    """The first request of each reviewer conversation, in order."""
    return [body for body in crew.bodies("reviewer")
            if not any(message.get("role") == "assistant" for message in body.get("messages") or [])]


def test_the_next_rounds_reviewer_reads_the_summary_the_earlier_findings_and_the_interdiff(
        repo: Path, crew: Team) -> None:
    configure(crew)
    crew.planner(plan(subtask("app", ["src/app.py"])))
    crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 1", new="return 3")),
               turn(call("done", summary="SUMMARY-ONE returns 3")))
    crew.reviewer("app", turn(call("submit_review", decision="REQUEST_CHANGES", summary="wrong value", findings=[
        {"file": "src/app.py", "line": 2, "severity": "major", "message": "FINDING-ONE: the task asks for 2",
         "evidence": "return 3"}])))
    crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 3", new="return 2")),
               turn(call("done", summary="SUMMARY-TWO: FINDING-ONE was right, returns 2 now")))
    crew.reviewer("app", turn(call("submit_review", decision="APPROVE", summary="right", findings=[])))

    result = run(repo, "make main return 2")

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    first, second = reviewer_requests(crew)
    text = first_user_text(second)
    assert "Review round 2" in text and "SUMMARY-TWO: FINDING-ONE was right" in text
    assert "<coder_summary" in text.split("SUMMARY-TWO")[0]  # fenced as a claim
    assert "Round 1: REQUEST_CHANGES: wrong value" in text and "FINDING-ONE: the task asks for 2" in text
    interdiff = text[text.index("<interdiff"):text.index("</interdiff")]
    assert "-    return 3" in interdiff and "+    return 2" in interdiff
    assert "- test_command: not run: no test command is configured" in text
    assert "FINDING-ONE" not in first_user_text(first) and "SUMMARY-ONE" in first_user_text(first)


def test_parallel_reviewers_share_the_system_prompt_and_the_diff_as_a_cached_prefix(repo: Path) -> None:
    with team("anthropic") as crew:
        configure(crew, extra='[[review.reviewers]]\nname = "security"\nfocus = "injection"\n\n'
                              '[[review.reviewers]]\nname = "tests"\nfocus = "missing tests"\n')
        crew.planner(plan(subtask("app", ["src/app.py"])))
        crew.coder("app", turn(call("edit_file", path="src/app.py", old="return 1", new="return 2")),
                   turn(call("done", summary="returns 2")))
        result = run(repo)  # both reviewers approve by default

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        security, tests = reviewer_requests(crew)
    assert security["system"] == tests["system"] and security["tools"] == tests["tools"]
    shared, own = security["messages"][0]["content"]
    assert shared == tests["messages"][0]["content"][0]  # the same text, with the same breakpoint
    assert shared["cache_control"] == {"type": "ephemeral"}
    assert re.search(r'</diff nonce="[0-9a-f]+">$', shared["text"]) and "Your focus" not in shared["text"]
    assert own["text"].startswith('Your focus as the "security" reviewer: injection')
    assert tests["messages"][0]["content"][1]["text"].startswith('Your focus as the "tests" reviewer')
    breakpoints = json.dumps(security).count('"cache_control"')
    assert breakpoints <= 4


def test_the_shared_block_keeps_its_breakpoint_within_the_apis_four_in_a_long_conversation() -> None:
    def request(turns: int) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "diff " * 3000},
                                                                       {"type": "text", "text": "your focus"}]}]
        for n in range(turns):
            messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": f"t{n}", "name": "read_file",
                                                            "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{n}"}]}]
        return {"tools": [{"name": "read_file", "description": "x " * 3000}], "system": [{"type": "text",
                                                                                      "text": "rules " * 3000}],
                "messages": messages}

    for turns in (0, 1, 3):
        sent = request(turns)
        mark_cache(sent, 1024)
        assert json.dumps(sent).count('"cache_control"') <= 4, turns
        assert "cache_control" in sent["messages"][0]["content"][0] and "cache_control" in sent["system"][-1]
    single = {"tools": [{"name": "a", "description": "x " * 3000}], "system": [{"type": "text", "text": "s"}],
              "messages": [{"role": "user", "content": [{"type": "text", "text": "one block"}]}]}
    mark_cache(single, 1024)
    assert "cache_control" in single["tools"][-1]  # a coder's single-block brief: the tools keep theirs

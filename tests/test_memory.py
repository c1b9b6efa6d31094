"""The shared memory in one repository: `gitteam memory list|show|add|search|compact`, plain `git notes` views of
it, redaction, concurrent writers (threads and processes), recall ranking and prompt digests, and the backlog of
a real run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import loopback
from conftest import git
from crews import configure
from gitteam.git import find_repository
from gitteam.memory import MEMORY_PREFIX, Blackboard
from gitteam.memory.recall import PLANNER_TOKENS, REVIEWER_TOKENS, digest, mentioned_paths
from scripts import approve, call, coder_writes, done, events, finding, plan_turn, script, start, subtask, turn

# Assembled at run time so this file holds no secret-shaped literal of its own.
ANTHROPIC_KEY = "sk-ant-api03-" + "Zq8Kf3LmN7pR2tVx9WbY4cHd6JgA1sE5uQoT0iMnBvXk"
AWS_KEY = "AKIA" + "Q3EGRT7BWZXK5M2P"
PLAIN_TOKEN = "plain" + "-words-and-7-digits-1234567"  # no pattern knows it: only the environment gives it away


def gitteam(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def add(repo: Path, content: str, *tags: str) -> str:
    proc = gitteam(repo, "memory", "add", content, *[arg for tag in tags for arg in ("--tag", tag)])
    assert proc.returncode == 0, proc.stderr
    entry_id = proc.stdout.strip()
    assert len(entry_id) == 40 and int(entry_id, 16) >= 0, proc.stdout
    return entry_id


def listed(repo: Path, *args: str) -> list[dict[str, object]]:
    proc = gitteam(repo, "memory", "list", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    entries: list[dict[str, object]] = json.loads(proc.stdout)
    return entries


def memory_refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/notes/").split()


def writer_ref(repo: Path) -> str:
    [ref] = memory_refs(repo)
    assert ref.startswith(MEMORY_PREFIX), ref
    return ref


def test_add_then_list_and_filter_by_tag(repo: Path) -> None:
    empty = gitteam(repo, "memory", "list")
    assert empty.returncode == 0 and "no entries" in empty.stdout
    first = add(repo, "Tests run with pytest -n 2.", "Testing", "ci")
    second = add(repo, "The API lives in src/app.py.", "api")

    text = gitteam(repo, "memory", "list")
    assert text.returncode == 0, text.stderr
    assert f"{first[:10]} " in text.stdout and "user/user [ci, testing]: Tests run with pytest -n 2." in text.stdout
    assert "[api]: The API lives in src/app.py." in text.stdout

    entries = listed(repo)
    assert [e["id"] for e in entries] == [first, second]
    assert entries[0]["tags"] == ["ci", "testing"]  # normalized: lower case, sorted
    assert entries[0]["role"] == "user" and entries[0]["content"] == "Tests run with pytest -n 2."
    assert set(entries[0]) == {"id", "run", "agent", "role", "content", "tags", "files", "created"}
    assert [e["id"] for e in listed(repo, "--tag", "api")] == [second]
    assert [e["id"] for e in listed(repo, "--tag", "TESTING")] == [first]
    assert listed(repo, "--tag", "nothing", "--run", "some-run") == []
    assert git(repo, "status", "--porcelain") == ""  # memory lives in notes, not in the working tree
    blank = gitteam(repo, "memory", "add", "  \n ")
    assert blank.returncode == 2 and "Traceback" not in blank.stderr
    assert blank.stderr.strip() == "gitteam: nothing to remember: the content is empty"
    assert len(listed(repo)) == 2

    with_run = gitteam(repo, "memory", "add", "Ports come from GITTEAM_PORT.", "--run", "r1", "--file", "src/app.py")
    assert with_run.returncode == 0, with_run.stderr
    [mine] = listed(repo, "--run", "r1")
    assert mine["files"] == ["src/app.py"] and mine["id"] == with_run.stdout.strip()
    shown = gitteam(repo, "memory", "show", first[:8])
    assert shown.returncode == 0, shown.stderr
    assert first in shown.stdout and "Tests run with pytest -n 2." in shown.stdout and "ci, testing" in shown.stdout
    detail = json.loads(gitteam(repo, "memory", "show", first[:8], "--json").stdout)
    assert detail["id"] == first and detail["hidden_by"] == []
    unknown = gitteam(repo, "memory", "show", "abcdef12")
    assert unknown.returncode == 2 and "no memory entry abcdef12" in unknown.stderr


def test_search(repo: Path) -> None:
    add(repo, "The parser rejects tabs.", "parser")
    add(repo, "Releases are tagged by CI.", "ci")
    proc = gitteam(repo, "memory", "search", "why does the parser fail on tabs")
    assert proc.returncode == 0, proc.stderr
    assert "The parser rejects tabs." in proc.stdout and "Releases" not in proc.stdout
    data = json.loads(gitteam(repo, "memory", "search", "releases", "--json").stdout)
    assert [e["content"] for e in data] == ["Releases are tagged by CI."]
    assert "no entries" in gitteam(repo, "memory", "search", "kubernetes").stdout


def test_entries_are_plain_git_notes(repo: Path) -> None:
    entry_id = add(repo, "Use the gateway for every git call.", "conventions")
    ref = writer_ref(repo)
    short = ref.removeprefix("refs/notes/")
    listing = git(repo, "notes", f"--ref={short}", "list").splitlines()
    assert listing == [f"{entry_id} {entry_id}"]  # the entry's blob is both the note and what it annotates
    note = json.loads(git(repo, "notes", f"--ref={short}", "show", entry_id))
    assert note["content"] == "Use the gateway for every git call." and note["tags"] == ["conventions"]
    assert json.loads(git(repo, "cat-file", "blob", entry_id)) == note  # the id is the entry's own blob
    assert git(repo, "notes", f"--ref={ref}", "list", entry_id) == entry_id  # full ref names work too
    assert "remember: Use the gateway" in git(repo, "log", "--format=%s", ref)
    # shared from a linked worktree too: notes refs are common to all worktrees, and so is the writer
    linked = repo.parent / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    assert [e["id"] for e in listed(linked)] == [entry_id]
    second = add(linked, "Written from the linked worktree.")
    assert memory_refs(repo) == [ref]
    assert sorted(git(repo, "notes", f"--ref={short}", "list").split()) == sorted([entry_id] * 2 + [second] * 2)
    # a note added with plain git to the memory ref is read like gitteam's own
    data = json.dumps({"content": "Added by hand.", "tags": ["manual"], "created": "2020-01-01T00:00:00.000+00:00"})
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True,
                          text=True, check=True).stdout.strip()
    git(repo, "notes", f"--ref={short}", "add", "-C", blob, blob)
    assert [e["content"] for e in listed(repo, "--tag", "manual")] == ["Added by hand."]
    assert len(listed(repo)) == 3


def test_secrets_are_redacted_before_writing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_SERVICE_TOKEN", PLAIN_TOKEN)
    add(repo, f"Deploy with ANTHROPIC_API_KEY={ANTHROPIC_KEY} and aws key {AWS_KEY} set; billing uses "
              f"{PLAIN_TOKEN} today.", "deploy")
    [entry] = listed(repo)
    content = str(entry["content"])
    assert ANTHROPIC_KEY not in content and AWS_KEY not in content and PLAIN_TOKEN not in content
    assert "[REDACTED:" in content and content.startswith("Deploy with ANTHROPIC_API_KEY=")
    assert "[REDACTED:env:BILLING_SERVICE_TOKEN]" in content
    # nothing of the secrets reached the object database through the notes ref
    ref = writer_ref(repo)
    history = git(repo, "log", "-p", ref)
    shown = git(repo, "notes", f"--ref={ref}", "show", str(entry["id"]))
    for text in (history, shown):
        assert ANTHROPIC_KEY[:24] not in text and AWS_KEY not in text and PLAIN_TOKEN not in text
    every_object = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo,
                                  capture_output=True, check=True).stdout
    for secret in (ANTHROPIC_KEY[:24], AWS_KEY, PLAIN_TOKEN):
        assert secret.encode() not in every_object
    assert b"[REDACTED:" in every_object
    # the agents' tool and the orchestrator's backlog go through the same redaction
    board = Blackboard(find_repository(repo), run="r", role="agent")
    leaked = board.remember("token in a finding", tags=["t"], meta={"suggestion": f"use {AWS_KEY}"})
    assert AWS_KEY not in json.dumps(leaked.to_json())


def _write_in_threads(repo: Path, writers: int, count: int) -> None:
    gateway = find_repository(repo)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        board = Blackboard(gateway, run=f"run-{n}", role="agent")
        try:
            for i in range(count):
                board.remember(f"writer {n} entry {i}", tags=[f"w{n}"], agent=f"agent-{n}")
        except BaseException as exc:  # surfaced below: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_eight_writer_threads_lose_nothing(repo: Path) -> None:
    _write_in_threads(repo, 8, 200)
    contents = [e.content for e in Blackboard(find_repository(repo)).entries()]
    assert sorted(contents) == sorted(f"writer {n} entry {i}" for n in range(8) for i in range(200))
    ref = writer_ref(repo)  # one writer ref for the clone, no temporary refs left
    assert len(git(repo, "notes", f"--ref={ref}", "list").splitlines()) == 1600
    assert git(repo, "for-each-ref", "refs/gitteam/") == ""


WRITER_PROCESS = """
import sys, threading
from pathlib import Path
from gitteam.git import find_repository
from gitteam.memory import Blackboard
repo, name = find_repository(Path(sys.argv[1])), sys.argv[2]
failures = []
def write(n):
    board = Blackboard(repo, run=name, role="agent")
    try:
        for i in range(200):
            board.remember(f"{name} writer {n} entry {i}", tags=[name])
    except BaseException as exc:
        failures.append(exc)
threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(repr(failures) if failures else 0)
"""


def test_eight_writers_in_two_processes_lose_nothing(repo: Path) -> None:
    """Two processes of one clone race for its writer ref: compare-and-swap, no lost entries."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, str(repo), name], stderr=subprocess.PIPE,
                              text=True) for name in ("one", "two")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    contents = sorted(e.content for e in Blackboard(find_repository(repo)).entries())
    assert contents == sorted(f"{name} writer {n} entry {i}" for name in ("one", "two") for n in range(4)
                              for i in range(200))
    assert len(git(repo, "notes", f"--ref={writer_ref(repo)}", "list").splitlines()) == 1600


def test_recall_ranks_matching_tags_and_files_first(repo: Path) -> None:
    board = Blackboard(find_repository(repo), run="r", role="agent")
    both = board.remember("The parser keeps line numbers.", tags=["parser", "api"])
    one_tag = board.remember("The parser is hand-written.", tags=["parser"])
    untagged = board.remember("The parser is slow on huge files.")
    with_file = board.remember("Tokens come from the lexer.", files=["src/lexer.py"])
    plain = board.remember("Tokens are cached.")

    fresh = Blackboard(find_repository(repo))
    assert fresh.recall("parser", tags=["api", "parser"]) == [both, one_tag]
    assert sorted(e.id for e in fresh.recall("parser")) == sorted(e.id for e in (both, one_tag, untagged))
    ranked = fresh.recall("tokens", files=["src/lexer.py"])
    assert ranked[:2] == [with_file, plain]
    # a file match alone is enough to be recalled; newest first among equals
    assert fresh.recall("unrelated words", files=["src/lexer.py"]) == [with_file]

    # and through the CLI: tags restrict and rank
    proc = gitteam(repo, "memory", "search", "parser", "--tag", "api", "--tag", "parser", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [e["id"] for e in json.loads(proc.stdout)] == [both.id, one_tag.id]


def test_recall_ranks_same_file_then_same_directory_then_words(repo: Path) -> None:
    board = Blackboard(find_repository(repo), run="r", role="agent")
    exact = board.remember("Retries back off exponentially.", files=["src/net/retry.py"])
    sibling = board.remember("Timeouts are in seconds.", files=["src/net/timeouts.py"])
    named = board.remember("Keep src/net/retry.py free of I/O.")
    wordy = board.remember("Retries and timeouts are configurable.")
    elsewhere = board.remember("The CLI prints tables.", files=["src/cli.py"])
    tagged = board.remember("Retry budget is per request.", tags=["net"], files=["src/cli.py"])

    ranked = board.recall("retries", files=["src/net/retry.py"])
    assert ranked[:3] == [exact, named, sibling]
    assert set(ranked[3:]) == {wordy, tagged}  # words only ("retry" is "retries"), newest first
    assert ranked[3] == tagged and elsewhere not in ranked
    # a shared tag outranks every file match, and restricts
    assert board.recall("retries", tags=["net"], files=["src/net/retry.py"]) == [tagged]
    # rare words count more than common ones
    board.remember("Requests are logged.")
    assert board.recall("exponentially requests")[0] == exact
    assert mentioned_paths("Fix src/net/retry.py and README.md, then docs/") == ["README.md", "src/net/retry.py"]


def test_digest_fits_the_token_budget_and_prefers_the_best(repo: Path) -> None:
    board = Blackboard(find_repository(repo), run="r", role="agent")
    best = board.remember("The lexer owns tokens.", files=["src/lexer.py"], tags=["lexer"])
    for n in range(40):
        board.remember(f"Token note {n}: " + "detail " * 30)
    text = board.digest("token lexer", files=["src/lexer.py"], budget_tokens=200)
    lines = text.splitlines()
    assert lines[0].startswith("- [lexer] The lexer owns tokens. (src/lexer.py) (agent, run r;")
    assert best.id[:10] in lines[0]
    assert 1 < len(lines) < 10 and sum(len(line) + 4 for line in lines) // 4 <= 200
    assert digest([], 100) == "" and board.digest("kubernetes") == ""


def test_compact_summarizes_old_entries_and_keeps_them_in_history(repo: Path) -> None:
    first = add(repo, "Builds use make.", "build")
    second = add(repo, "Builds take two minutes.", "build")
    third = add(repo, "Builds use make.", "build")  # the same fact again: summarized once
    lonely = add(repo, "The docs are in docs/.", "docs")
    dry = json.loads(gitteam(repo, "memory", "compact", "--older-than", "0", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and sorted(dry["compacted"]) == sorted([first, second, third])
    assert len(listed(repo)) == 4  # a dry run changes nothing

    before = git(repo, "rev-parse", writer_ref(repo))
    proc = gitteam(repo, "memory", "compact", "--older-than", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    [summary] = json.loads(proc.stdout)["summaries"]
    assert summary["content"].splitlines() == ["Summary of 3 entries (" + summary["created"][:10] + "):",
                                               "- Builds use make.", "- Builds take two minutes."]
    assert summary["tags"] == ["build", "summary"] and summary["meta"]["compacts"] == [first, second, third]
    assert [e["id"] for e in listed(repo)] == [lonely, summary["id"]] or \
        [e["id"] for e in listed(repo)] == [summary["id"], lonely]
    # the originals: hidden, still shown on request, and in the ref's history
    assert {e["id"] for e in listed(repo, "--all")} == {first, second, third, lonely, summary["id"]}
    shown = json.loads(gitteam(repo, "memory", "show", first, "--json").stdout)
    assert shown["content"] == "Builds use make." and shown["hidden_by"][0]["by"] == [summary["id"]]
    ref = writer_ref(repo)
    assert git(repo, "merge-base", "--is-ancestor", before, ref) == ""  # a new commit on top, nothing rewritten
    old_listing = git(repo, "ls-tree", "-r", before)
    assert all(entry_id in old_listing for entry_id in (first, second, third))
    # compacting again finds nothing new to do
    again = gitteam(repo, "memory", "compact", "--older-than", "0")
    assert again.returncode == 0 and again.stdout.startswith("nothing to compact")


def test_backlog_from_a_run_with_minor_and_info_findings(repo: Path) -> None:
    """An approved subtask's unfixed findings become backlog items; --from-backlog turns them into a task."""
    data = script(
        planner=[plan_turn([subtask("app", ["src/app.py"])])],
        coder={"app": [turn(coder_writes("src/app.py", "def main():\n    return 2\n"), done("returns 2"))]},
        reviewer={"app": [approve("fine", [
            finding("src/app.py", "main() has no docstring.", "minor", line=1),
            finding("src/app.py", "The return value is a magic number.", "info", line=2),
        ])]},
    )
    result = start(repo, data)
    assert result.state == "merged", result.message
    backlog_events = events(repo, result.run, "backlog")
    assert len(backlog_events) == 1 and len(backlog_events[0]["entries"]) == 2

    proc = gitteam(repo, "backlog", "--json")
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    assert [(i["files"], i["meta"]["line"], i["meta"]["severity"]) for i in items] == [
        (["src/app.py"], 1, "minor"), (["src/app.py"], 2, "info")]
    assert items[0]["tags"] == ["backlog", "minor"] and items[0]["run"] == result.run
    assert items[0]["agent"] == "app" and items[0]["role"] == "reviewer"
    text = gitteam(repo, "backlog").stdout
    assert "[minor] src/app.py:1: main() has no docstring." in text

    # run --from-backlog A B: both items become the task; the merged run closes them
    fix = script(
        planner=[plan_turn([subtask("doc", ["src/app.py"])])],
        coder={"doc": [turn(coder_writes("src/app.py", '"""App."""\n\n\ndef main():\n    return 2\n'),
                            done("documented"))]},
    )
    fix_path = repo.parent / "fix.json"
    fix_path.write_text(json.dumps(fix))
    ran = gitteam(repo, "run", "--from-backlog", items[0]["id"][:8], items[1]["id"][:8], "--yes", "--json",
                  "--model", f"replay:{fix_path}")
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)["run"]
    [started] = events(repo, run, "run_started")
    assert "src/app.py:1 (minor): main() has no docstring." in started["task"]
    assert "src/app.py:2 (info): The return value is a magic number." in started["task"]
    assert json.loads(gitteam(repo, "backlog", "--json").stdout) == []
    closed = gitteam(repo, "run", "--from-backlog", items[0]["id"][:8], "--yes")
    assert closed.returncode == 2 and "is closed (resolved by run" in closed.stderr
    missing = gitteam(repo, "run")
    assert missing.returncode == 2 and "Missing argument 'TASK'" in missing.stderr


def test_backlog_close_by_hand_and_from_the_demo(tmp_path: Path) -> None:
    """The bundled demo's power subtask is approved with an info finding: it lands in the backlog."""
    target = tmp_path / "demo"
    ran = subprocess.run([sys.executable, "-m", "gitteam", "demo", "--dir", str(target)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    [item] = json.loads(gitteam(target, "backlog", "--json").stdout)
    assert item["files"] == ["calc/ops.py"] and item["meta"]["line"] == 12 and item["meta"]["severity"] == "info"
    assert item["content"].startswith("A negative exponent with base 0 raises ZeroDivisionError.")
    closed = gitteam(target, "backlog", "--close", item["id"][:10])
    assert closed.returncode == 0 and "closed 1" in closed.stdout
    assert "the backlog is empty" in gitteam(target, "backlog").stdout
    not_backlog = json.loads(gitteam(target, "memory", "list", "--json", "--tag", "conventions").stdout)[0]
    refused = gitteam(target, "backlog", "--close", str(not_backlog["id"])[:10])
    assert refused.returncode == 2 and "not a backlog item" in refused.stderr


def test_agents_remember_and_recall_through_their_tools(repo: Path) -> None:
    data = script(
        planner=[turn(call("remember", content="src/app.py is the entry point.", tags=["layout"])),
                 turn(call("recall", query="entry point")),
                 plan_turn([subtask("app", ["src/app.py"])])],
        coder={"app": [turn(call("recall", tags=["layout"]), coder_writes("src/app.py", "x = 1\n")),
                       turn(call("remember", content="app.main was replaced by x.")), done()]},
    )
    result = start(repo, data)
    assert result.state == "merged", result.message
    entries = listed(repo)
    assert [(e["role"], e["agent"], e["content"]) for e in entries] == [
        ("planner", "planner", "src/app.py is the entry point."), ("coder", "app", "app.main was replaced by x.")]
    assert all(e["run"] == result.run for e in entries)
    assert events(repo, result.run, "tool_refused") == []


@pytest.mark.usefixtures("loopback_env")
def test_planner_coder_and_reviewer_prompts_carry_relevant_memory_within_budget(repo: Path) -> None:
    """Through the real SDKs against a loopback server: what each role's first message holds."""
    board = Blackboard(find_repository(repo), run="earlier", role="planner")
    relevant = board.remember("src/app.py must stay importable without side effects.", files=["src/app.py"],
                              tags=["conventions"])
    unrelated = board.remember("The docs build with mkdocs.", tags=["docs"])
    for n in range(60):  # far more about its directory than any budget allows, and newer
        board.remember(f"Note {n} on src/util.py: " + "background " * 40, files=["src/util.py"])
    with loopback.team("anthropic") as crew:
        configure(crew, "model-small")
        crew.planner(loopback.plan(loopback.subtask("app", ["src/app.py"])))
        crew.coder("app", loopback.turn(
            loopback.call("write_file", path="src/app.py", content="def main():\n    return 2\n"),
            loopback.call("done", summary="returns 2")))
        crew.reviewer("app", loopback.approve())
        result = loopback.run(repo, "Make src/app.py return 2.")
        assert result.state == "merged", result.message
        firsts = {crew.identify(r.body): loopback.first_user_text(r.body) for r in reversed(crew.api.requests)}
    for role, agent in (("planner", "planner"), ("coder", "app"), ("reviewer", "app")):
        text = firsts[(role, agent)]
        assert relevant.content in text and relevant.id[:10] in text, role
        assert unrelated.content not in text, role
        assert 0 < text.count("Note ") < 60, role  # cut to the budget
    for role, budget in (("planner", PLANNER_TOKENS), ("reviewer", REVIEWER_TOKENS)):
        text = firsts[(role, "planner" if role == "planner" else "app")]
        block = text[text.index("<team_memory"):text.index("</team_memory")]
        assert block.index(relevant.content) < block.index("Note "), role  # the same file first
        assert budget - 200 < len(block) // 4 <= budget + 40, (role, len(block))

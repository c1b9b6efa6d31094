"""The shared memory: `gitteam memory list|add|search`, plain `git notes` views of it, redaction, concurrent writers
and recall ranking."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from conftest import git
from gitteam.git import find_repository
from gitteam.memory import MEMORY_REF, Blackboard

# Assembled at run time so this file holds no secret-shaped literal of its own.
ANTHROPIC_KEY = "sk-ant-api03-" + "Zq8Kf3LmN7pR2tVx9WbY4cHd6JgA1sE5uQoT0iMnBvXk"
AWS_KEY = "AKIA" + "Q3EGRT7BWZXK5M2P"


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
    assert [e["id"] for e in listed(repo, "--tag", "api")] == [second]
    assert [e["id"] for e in listed(repo, "--tag", "TESTING")] == [first]
    assert listed(repo, "--tag", "nothing") == []
    assert listed(repo, "--run", "some-run") == []
    assert git(repo, "status", "--porcelain") == ""  # memory lives in notes, not in the working tree
    blank = gitteam(repo, "memory", "add", "  \n ")
    assert blank.returncode == 2 and "Traceback" not in blank.stderr
    assert blank.stderr.strip() == "gitteam: nothing to remember: the content is empty"
    assert len(listed(repo)) == 2


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
    listing = git(repo, "notes", "--ref=gitteam-memory", "list").splitlines()
    assert [line.split()[1] for line in listing] == [entry_id]
    note = json.loads(git(repo, "notes", "--ref=gitteam-memory", "show", entry_id))
    assert note["content"] == "Use the gateway for every git call." and note["tags"] == ["conventions"]
    assert json.loads(git(repo, "cat-file", "blob", entry_id)) == note  # the id is the entry's own blob
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/notes/") == MEMORY_REF
    # shared from a linked worktree too: notes refs are common to all worktrees
    linked = repo.parent / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    assert [e["id"] for e in listed(linked)] == [entry_id]


def test_secrets_are_redacted_before_writing(repo: Path) -> None:
    add(repo, f"Deploy with ANTHROPIC_API_KEY={ANTHROPIC_KEY} and aws key {AWS_KEY} set.", "deploy")
    [entry] = listed(repo)
    content = str(entry["content"])
    assert ANTHROPIC_KEY not in content and AWS_KEY not in content
    assert "[REDACTED:" in content and content.startswith("Deploy with ANTHROPIC_API_KEY=")
    # nothing of the secret reached the object database through the notes ref
    history = git(repo, "log", "-p", MEMORY_REF)
    shown = git(repo, "notes", "--ref=gitteam-memory", "show", str(entry["id"]))
    for text in (history, shown):
        assert ANTHROPIC_KEY[:24] not in text and AWS_KEY not in text
    every_object = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo,
                                  capture_output=True, check=True).stdout
    assert ANTHROPIC_KEY[:24].encode() not in every_object and AWS_KEY.encode() not in every_object
    assert b"[REDACTED:" in every_object


def test_concurrent_writers_lose_nothing(repo: Path) -> None:
    gateway = find_repository(repo)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        board = Blackboard(gateway, run=f"run-{n}", role="agent")
        try:
            for i in range(25):
                board.remember(f"writer {n} entry {i}", tags=[f"w{n}"], agent=f"agent-{n}")
        except BaseException as exc:  # surfaced below: a thread's exception would vanish
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    contents = [e.content for e in Blackboard(find_repository(repo)).entries()]
    assert sorted(contents) == sorted(f"writer {n} entry {i}" for n in range(8) for i in range(25))
    assert len(git(repo, "notes", "--ref=gitteam-memory", "list").splitlines()) == 200
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/notes/") == MEMORY_REF  # no temporary refs left


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

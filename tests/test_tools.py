"""The read-only tools over a commit: search scans every file in batches, whatever the repository's size."""

from __future__ import annotations

from pathlib import Path

from conftest import commit_files
from gitteam.git import find_repository
from gitteam.models.base import ToolCall
from gitteam.roles.tools import CommitView, Toolbox, WorktreeView, read_tools

# Long directory names: the paths of this many files take more than one `git grep` (gitteam.git._BATCH_BYTES).
DEEP = "pkg/" + "deeply-nested-package-directory/" * 3
MANY = 1207


def toolbox(repo: Path) -> Toolbox:
    return Toolbox(read_tools(CommitView(find_repository(repo), "HEAD"), None, "planner", "planner"))


def search(box: Toolbox, **args: str) -> str:
    result = box.execute(ToolCall("1", "search", dict(args)))
    assert not result.is_error, result.text
    return result.text


def test_search_finds_matches_across_batches_with_line_numbers(repo: Path) -> None:
    files = {f"{DEEP}m{n:04d}.py": f"x = {n}\n" for n in range(MANY)}
    assert sum(len(path) + 1 for path in files) > 100_000
    files[f"{DEEP}m0003.py"] = "first = 1\nNEEDLE = 'early'\n"
    files[f"{DEEP}m{MANY - 2:04d}.py"] = "NEEDLE = 'late'\n"
    files["docs/notes.md"] = "NEEDLE in prose\n"
    commit_files(repo, files)
    box = toolbox(repo)
    found = search(box, pattern=r"NEEDLE = '\w+'").splitlines()
    assert found == [f"{DEEP}m0003.py:2: NEEDLE = 'early'", f"{DEEP}m{MANY - 2:04d}.py:1: NEEDLE = 'late'"]
    assert search(box, pattern="NEEDLE", glob="*.md") == "docs/notes.md:1: NEEDLE in prose"
    assert search(box, pattern="nothing like this") == "no matches"


def test_search_skips_binary_files_and_refuses_a_bad_pattern(repo: Path) -> None:
    (repo / "blob.bin").write_bytes(b"\xff\xfeNEEDLE\x00")
    commit_files(repo, {"a.py": "NEEDLE = 1\n"})
    box = toolbox(repo)
    assert search(box, pattern="NEEDLE") == "a.py:1: NEEDLE = 1"
    refused = box.execute(ToolCall("2", "search", {"pattern": "(unclosed"}))
    assert refused.is_error and "bad regular expression" in refused.text


def test_search_in_a_worktree_finds_new_files_and_never_follows_a_link_out(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("NEEDLE from outside the repository\n")
    (repo / "leak.txt").symlink_to(outside)
    commit_files(repo, {"a.py": "NEEDLE = 1\n"})
    view = WorktreeView(find_repository(repo), repo, "HEAD")
    (repo / "new.py").write_text("NEEDLE = 2\n")
    view.created.add("new.py")
    box = Toolbox(read_tools(view, None, "coder", "coder"))
    assert search(box, pattern="NEEDLE") == "a.py:1: NEEDLE = 1\nnew.py:1: NEEDLE = 2"
    assert box.execute(ToolCall("2", "read_file", {"path": "leak.txt"})).is_error  # read_file agrees

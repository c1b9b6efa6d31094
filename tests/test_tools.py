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


# --- read_file: windows of numbered lines -------------------------------------------------------------------

LONG = "".join(f"v{n} = {n}\n" for n in range(1, 4874))  # 4,873 lines, about 60,000 characters


def read(box: Toolbox, **args: object) -> str:
    result = box.execute(ToolCall("r", "read_file", dict(args)))
    assert not result.is_error, result.text
    return result.text


def test_a_small_file_reads_whole_with_numbered_lines(repo: Path) -> None:
    box = toolbox(repo)
    assert read(box, path="src/app.py") == ("src/app.py: lines 1-2 of 2 (the whole file)\n"
                                            "     1\tdef main():\n     2\t    return 1")


def test_a_large_file_reads_in_windows_that_say_where_they_stop_and_how_to_read_on(repo: Path) -> None:
    commit_files(repo, {"pkg/big.py": LONG})
    box = toolbox(repo)
    first = read(box, path="pkg/big.py").split("\n")
    assert first[0] == "pkg/big.py: lines 1-2000 of 4873"
    assert first[1] == "     1\tv1 = 1" and first[2000] == "  2000\tv2000 = 2000"
    assert first[-1] == ("[cut at line 2000: one read shows at most 2,000 lines or 60,000 characters. 2,873 more "
                         "lines: read on with read_file(path='pkg/big.py', start_line=2001), or find what you need "
                         "with search]")
    second = read(box, path="pkg/big.py", start_line=2001).split("\n")
    assert second[0] == "pkg/big.py: lines 2001-4000 of 4873" and second[1].endswith("\tv2001 = 2001")
    last = read(box, path="pkg/big.py", start_line=4001).split("\n")
    assert last[0] == "pkg/big.py: lines 4001-4873 of 4873" and last[-1] == "  4873\tv4873 = 4873"
    assert len(last) == 874  # the header and the lines: nothing more to read, nothing said
    ranged = read(box, path="pkg/big.py", start_line=10, end_line=12)
    assert ranged == ("pkg/big.py: lines 10-12 of 4873\n    10\tv10 = 10\n    11\tv11 = 11\n"
                      "    12\tv12 = 12\n[4,861 more lines after line 12: "
                      "read_file(path='pkg/big.py', start_line=13) reads on]")


def test_a_window_is_also_capped_by_characters_and_long_lines_are_cut(repo: Path) -> None:
    wide = "".join(f"row {n} " + "w" * 200 + "\n" for n in range(1, 1001))  # 1,000 lines of ~210 characters
    minified = "var a=1;" * 1000 + "\nsecond line\n"
    commit_files(repo, {"data/wide.txt": wide, "web/app.min.js": minified})
    box = toolbox(repo)
    text = read(box, path="data/wide.txt")
    header, *body, footer = text.split("\n")
    shown = len(body)
    assert 200 < shown < 1000 and header == f"data/wide.txt: lines 1-{shown} of 1000"
    assert len(text) <= 61_000
    assert footer.startswith(f"[cut at line {shown}: ") and f"start_line={shown + 1})" in footer
    text = read(box, path="web/app.min.js")
    assert text.split("\n")[1].endswith(" [... line cut: 8,000 characters]")
    assert text.split("\n")[2] == "     2\tsecond line"
    assert text.endswith("[lines longer than 2,000 characters are cut; search finds text in them]")


def test_read_file_mistakes_say_how_to_recover(repo: Path) -> None:
    commit_files(repo, {"pkg/big.py": LONG, "empty.txt": "", "logo.png": "\x89PNG\x00\x00data"})
    box = toolbox(repo)
    past = box.execute(ToolCall("1", "read_file", {"path": "pkg/big.py", "start_line": 5000}))
    assert past.is_error and "start_line 5000 is past the end: the file has 4873 lines" in past.text
    assert "start_line=2874" in past.text
    backwards = box.execute(ToolCall("2", "read_file", {"path": "pkg/big.py", "start_line": 9, "end_line": 3}))
    assert backwards.is_error and "end_line 3 is before start_line 9" in backwards.text
    assert read(box, path="empty.txt") == "empty.txt: empty file (0 lines)"
    assert read(box, path="logo.png") == "logo.png is a binary file (11 bytes): read_file shows text files only"
    missing = box.execute(ToolCall("3", "read_file", {"path": "no/such.py"}))
    assert missing.is_error and "no such file: no/such.py" in missing.text


def test_a_worktree_read_numbers_lines_like_search_does(repo: Path) -> None:
    """Line numbers agree with `search`'s (git grep counts "\\n"); a CRLF file shows its lines without "\\r"."""
    view = WorktreeView(find_repository(repo), repo, "HEAD")
    (repo / "notes.txt").write_bytes(b"alpha\r\nbeta\fgamma\r\nNEEDLE\r\n")
    view.created.add("notes.txt")
    box = Toolbox(read_tools(view, None, "coder", "coder"))
    assert search(box, pattern="NEEDLE").startswith("notes.txt:3: NEEDLE")
    assert read(box, path="notes.txt") == ("notes.txt: lines 1-3 of 3 (the whole file)\n     1\talpha\n"
                                           "     2\tbeta\fgamma\n     3\tNEEDLE")

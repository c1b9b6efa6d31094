"""Reads through each thread's long-lived `git cat-file --batch-command`, on real temporary repositories.

Processes are counted by wrapping `subprocess.Popen` (what gitteam starts), never by replacing git.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.git import GitError, Repository, _environ, find_repository

NOTES = "refs/notes/gitteam"


@pytest.fixture
def r(repo: Path) -> Iterator[Repository]:
    repository = find_repository(repo)
    yield repository
    repository.close()


def cat_files(calls: list[list[str]]) -> list[list[str]]:
    return [args for args in calls if "cat-file" in args]


SCOPE: list[bytes] = []  # this test's temporary directory: a reader of another test's repository is not ours


@pytest.fixture(autouse=True)
def scope(tmp_path: Path) -> Iterator[None]:
    SCOPE[:] = [str(tmp_path).encode()]
    yield
    SCOPE.clear()


def children(command: bytes = b"cat-file") -> set[int]:
    """Children of this process (zombies too: a child not reaped still shows) whose command line has `command`
    and that read a repository of this test (a zombie's environment is empty: it counts too)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes() if parent == os.getpid() else b""
        except OSError:
            continue
        ours = not SCOPE or not environ or any(place in environ for place in SCOPE)
        if parent == os.getpid() and command in cmdline and ours:
            found.add(int(entry.name))
    return found


def raw(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def write_object(repo: Path, data: bytes) -> str:
    return subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, check=True,
                          capture_output=True).stdout.decode().strip()


# -- content ------------------------------------------------------------------------------------------------


def test_blobs_round_trip_exactly(r: Repository, repo: Path) -> None:
    data = {
        "bin.dat": bytes(range(256)) * 40,
        "no newline.txt": b"last",
        "newlines.txt": b"\n\none\n\ntwo\n\n",
        "crlf.txt": b"a\r\nb\r\n",
        "empty": b"",
        "nul.txt": b"a\0b\n\0",
        "big.bin": os.urandom(300_000),  # more than any pipe holds
    }
    for name, content in data.items():
        (repo / name).write_bytes(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "bytes")
    assert r.read_blobs("HEAD", list(data)) == data
    for name, content in data.items():
        assert r.read_blob("HEAD", name) == content
    ids = {write_object(repo, content): content for content in data.values()}
    assert r.read_objects(list(ids)) == ids


def test_many_large_blobs_in_one_read(r: Repository, repo: Path) -> None:
    files = {f"f{i}.bin": os.urandom(70_000) for i in range(40)}  # answers far larger than the pipe
    for name, content in files.items():
        (repo / name).write_bytes(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "large")
    assert r.read_blobs("HEAD", [*files, *files]) == files


def test_awkward_paths(r: Repository, repo: Path) -> None:
    names = {"sp ace .txt": b"1", "cr\r": b"2", "new\nline": b"3", " lead": b"4", "tab\t.txt": b"5",
             "ünïcode.txt": b"6", "missing": None}
    for name, content in names.items():
        if content is not None:
            (repo / name).write_bytes(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "names")
    found = r.read_blobs("HEAD", list(names))
    assert found == {name: content for name, content in names.items() if content is not None}
    assert r.read_blob("HEAD", "cr") is None  # the CR is part of the name, not a line ending


def test_missing_things_are_left_out(r: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert r.read_blob("HEAD", "nope.txt") is None
    assert r.read_blob("no-such-branch", "README.md") is None
    assert r.read_blob("HEAD", "src") is None  # a tree
    assert r.read_blob("HEAD", "") is None
    assert r.read_blobs("HEAD", ["README.md", "nope", "src", "src/app.py/x"]) == {"README.md": b"# project\n"}
    assert r.read_objects(["0" * 40, head, "", "zz"]) == {}  # missing, a commit, names of nothing
    assert r.read_objects([head[:4] + "\0"]) == {}
    assert r.read_note(NOTES, head) is None  # no notes ref at all


def test_a_name_git_dies_on_is_an_error_and_the_next_read_works(r: Repository, repo: Path) -> None:
    with pytest.raises(GitError, match="upstream"):
        r.read_blobs("HEAD@{upstream}", ["README.md"])
    assert r.read_blob("HEAD", "README.md") == b"# project\n"


# -- freshness -----------------------------------------------------------------------------------------------


def test_writes_after_the_first_read_are_seen(r: Repository, repo: Path) -> None:
    assert r.read_blob("main", "README.md") == b"# project\n"  # the process is running from here on
    commit_files(repo, {"README.md": "changed\n"})
    assert r.read_blob("main", "README.md") == b"changed\n"  # a ref moved
    loose = write_object(repo, b"loose object\n")
    assert r.read_objects([loose]) == {loose: b"loose object\n"}
    git(repo, "tag", "keep", loose)
    git(repo, "gc", "-q", "--prune=now")  # everything into a new pack, loose objects gone
    assert r.read_blob("main", "README.md") == b"changed\n"
    assert r.read_objects([loose]) == {loose: b"loose object\n"}
    git(repo, "pack-refs", "--all")
    commit_files(repo, {"README.md": "again\n"})
    assert r.read_blob("main", "README.md") == b"again\n"


def test_note_written_after_the_first_read_is_seen(r: Repository, repo: Path) -> None:
    one = git(repo, "rev-parse", "HEAD")
    two = commit_files(repo, {"a.txt": "a\n"})
    assert r.read_note(NOTES, one) is None
    r.set_note(NOTES, one, "first")  # fast-import: a new pack, a new ref
    assert r.read_note(NOTES, one) == "first"
    assert r.read_note(NOTES, two) is None
    r.set_note(NOTES, one, "replaced")
    r.set_note(NOTES, two, "second\n")
    assert r.read_note(NOTES, one) == "replaced"
    assert r.read_note(NOTES, two) == "second\n"
    git(repo, "notes", f"--ref={NOTES}", "add", "-f", "-m", "by git", one)  # plain git, its own layout
    assert r.read_note(NOTES, one) == "by git\n"
    git(repo, "update-ref", "-d", NOTES)
    assert r.read_note(NOTES, one) is None


def test_note_of_a_revision_name(r: Repository, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    r.set_note(NOTES, head, "on head")
    assert r.read_note(NOTES, "HEAD") == "on head"
    assert r.read_note(NOTES, head.upper()) == "on head"
    assert r.read_note(NOTES, head[:10]) == "on head"
    assert r.read_note(NOTES, "no-such-thing") is None
    assert r.read_note(NOTES, "HEAD@{upstream}") is None


# -- notes trees, whatever their fanout ------------------------------------------------------------------------


def fast_import(repo: Path, ref: str, entries: list[tuple[str, str, bytes]]) -> None:
    """One commit on `ref` whose tree holds exactly `entries` (mode, path, content)."""
    stream = [f"commit {ref}\ncommitter t <t@t> 0 +0000\ndata 0\n".encode()]
    for mode, path, data in entries:
        stream.append(f"M {mode} inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    stream.append(b"done\n")
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=repo, input=b"".join(stream), check=True,
                   capture_output=True)


def git_note(repo: Path, ref: str, obj: str) -> bytes | None:
    """What plain git says the note is."""
    listed = subprocess.run(["git", "notes", f"--ref={ref}", "list", obj], cwd=repo, capture_output=True)
    return raw(repo, "cat-file", "blob", listed.stdout.decode().strip()) if listed.returncode == 0 else None


def test_every_fanout_is_read_as_git_reads_it(r: Repository, repo: Path) -> None:
    commits = [commit_files(repo, {"f.txt": f"{i}\n"}) for i in range(9)]
    c = commits
    entries = [
        ("100644", c[0], b"flat"),
        ("100644", f"{c[1][:2]}/{c[1][2:]}", b"2/38"),
        ("100644", f"{c[2][:2]}/{c[2][2:4]}/{c[2][4:]}", b"2/2/36"),
        ("100755", f"{c[3][:2]}/{c[3][2:4]}/{c[3][4:6]}/{c[3][6:]}", b"2/2/2/34, executable\n"),
        ("120000", c[4], b"a symlink is no note"),
        ("100644", f"{c[5][:4]}/{c[5][4:]}", b"a 4-digit directory is no fanout"),
        ("100644", f"{c[6][:2]}/{c[6][2:].upper()}", b"upper case"),
        ("100644", f"{c[7]}.txt", b"not a note name"),
        ("100644", "README", b"a file that is no note"),
    ]
    fast_import(repo, "refs/notes/layouts", entries)
    for obj in [*c, "0" * 40]:
        expected = git_note(repo, "refs/notes/layouts", obj)
        got = r.read_note("refs/notes/layouts", obj)
        assert got == (None if expected is None else expected.decode()), obj
    assert r.read_note("refs/notes/layouts", c[3]) == "2/2/2/34, executable\n"
    assert r.read_note("refs/notes/layouts", c[8]) is None


def test_notes_of_git_notes_at_its_own_fanout(r: Repository, repo: Path) -> None:
    """`git notes` fans out once a tree gets large: 300 notes made by git itself, read back one by one."""
    blobs = [write_object(repo, f"object {i}\n".encode()) for i in range(300)]
    # 300 `git notes add` would be slow: a flat tree made by fast-import, then one note added by `git notes`,
    # which writes the whole tree out again at the fanout it chooses
    fast_import(repo, "refs/notes/many", [("100644", blob, f"note {i}".encode()) for i, blob in enumerate(blobs)])
    git(repo, "notes", "--ref=refs/notes/many", "add", "-m", "last", "HEAD")
    layout = raw(repo, "ls-tree", "--name-only", "refs/notes/many").decode().split()
    assert all(len(name) == 2 for name in layout)  # git chose a fanout
    for i, blob in enumerate(blobs):
        assert r.read_note("refs/notes/many", blob) == f"note {i}"
    assert r.read_note("refs/notes/many", "HEAD") == "last\n"


def test_sha256_repository(tmp_path: Path) -> None:
    path = tmp_path / "sha256"
    git(tmp_path, "init", "-q", "--object-format=sha256", "-b", "main", str(path))
    head = commit_files(path, {"a.bin": "x\n"})
    repository = find_repository(path)
    try:
        assert len(head) == 64
        assert repository.read_blob("HEAD", "a.bin") == b"x\n"
        assert repository.read_note(NOTES, head) is None
        repository.set_note(NOTES, head, "long ids")
        assert repository.read_note(NOTES, head) == "long ids"
        git(path, "notes", f"--ref={NOTES}", "add", "-f", "-m", "by git", head)
        assert repository.read_note(NOTES, head) == "by git\n"
    finally:
        repository.close()


# -- processes ------------------------------------------------------------------------------------------------


def test_reading_many_notes_and_blobs_starts_one_process(r: Repository, repo: Path,
                                                         started: list[list[str]]) -> None:
    commits = []
    for i in range(60):
        commits.append(commit_files(repo, {f"f{i}.txt": f"file {i}\n"}))
        r.set_note(NOTES, commits[-1], f'{{"i": {i}}}')
    r.close()
    started.clear()
    for i, commit in enumerate(commits):  # what `runs.show_agent` does
        assert r.read_note(NOTES, commit) == f'{{"i": {i}}}'
    for i in range(60):
        assert r.read_blob("HEAD", f"f{i}.txt") == f"file {i}\n".encode()
    assert r.notes(NOTES) == {commit: f'{{"i": {i}}}' for i, commit in enumerate(commits)}
    assert r.read_objects([]) == {}
    assert cat_files(started) == [["git", "cat-file", "--batch-command", "--buffer", "-z"]]
    assert len(started) == 2  # and `git notes list`, once, for `notes`


def test_threads_reading_at_once_each_have_a_process_and_later_threads_reuse_them(
        r: Repository, repo: Path, started: list[list[str]]) -> None:
    files = {f"t{i}.txt": f"thread file {i}\n" * (i + 1) for i in range(8)}
    commit = commit_files(repo, files)
    r.set_note(NOTES, commit, "shared note")
    r.close()
    started.clear()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def reader(k: int) -> None:
        try:
            barrier.wait()
            for _ in range(50):
                name = f"t{(k + _) % 8}.txt"
                assert r.read_blob("HEAD", name) == files[name].encode()
                assert r.read_blobs(commit, list(files)) == {n: v.encode() for n, v in files.items()}
                assert r.read_note(NOTES, commit) == "shared note"
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert 1 <= len(cat_files(started)) <= 4  # at most one per read at once, never one per read
    before = len(cat_files(started))
    later = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    barrier.reset()
    for t in later:
        t.start()
    for t in later:
        t.join()
    assert errors == []
    assert len(cat_files(started)) <= 4  # new threads borrow the idle ones
    assert len(children()) == len(cat_files(started)) and before <= len(children())
    r.close()
    assert children() == set()


def test_a_process_is_lent_to_one_read_at_a_time(r: Repository, started: list[list[str]]) -> None:
    """A read while another holds the only process starts a second; once both are back, a read starts none."""
    r.close()
    started.clear()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with r._reader() as reader:
            assert reader.query([("info", "HEAD")])[0] is not None
            holding.set()
            release.wait(30)

    other = threading.Thread(target=hold)
    other.start()
    assert holding.wait(30)
    assert r.read_blob("HEAD", "README.md") == b"# project\n"  # the held process is not lent: a second starts
    assert len(cat_files(started)) == 2
    release.set()
    other.join(30)
    assert r.read_blob("HEAD", "src/app.py") == b"def main():\n    return 1\n"
    assert len(cat_files(started)) == 2


def test_close_ends_every_process_and_reading_again_starts_one(r: Repository, started: list[list[str]]) -> None:
    assert r.read_blob("HEAD", "README.md") == b"# project\n"
    done = threading.Event()
    keep = threading.Event()

    def other() -> None:
        with r._reader() as reader:  # held: a read meanwhile needs a process of its own
            reader.query([("info", "HEAD")])
            done.set()
            keep.wait(10)

    t = threading.Thread(target=other)
    t.start()
    done.wait(10)
    assert r.read_blob("HEAD", "README.md") == b"# project\n"
    assert len(children()) == 2
    r.close()
    assert children() == set()  # ended and reaped, the other thread's too, while it still runs
    assert r.read_blob("HEAD", "src/app.py") == b"def main():\n    return 1\n"
    assert len(children()) == 1
    keep.set()
    t.join()
    assert len(cat_files(started)) == 3


def test_a_collected_repository_leaves_no_process(repo: Path) -> None:
    repository = find_repository(repo)
    assert repository.read_blob("HEAD", "README.md") == b"# project\n"
    assert len(children()) == 1
    del repository
    gc.collect()
    assert children() == set()


def test_a_dead_process_is_restarted_once_transparently(r: Repository, started: list[list[str]]) -> None:
    assert r.read_blob("HEAD", "README.md") == b"# project\n"
    (pid,) = children()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: zombie(pid))
    assert r.read_blob("HEAD", "README.md") == b"# project\n"  # the broken pipe is not the caller's problem
    assert r.read_blobs("HEAD", ["README.md", "src/app.py"]) == {"README.md": b"# project\n",
                                                                  "src/app.py": b"def main():\n    return 1\n"}
    assert len(cat_files(started)) == 2
    assert pid not in children()  # the dead one was reaped


def test_the_process_has_the_hardened_environment(r: Repository, repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    original = raw(repo, "cat-file", "blob", "HEAD:README.md")
    blob = git(repo, "rev-parse", "HEAD:README.md")
    other = write_object(repo, b"replacement\n")
    git(repo, "replace", blob, other)  # replace refs would change what is read: not for gitteam
    assert raw(repo, "cat-file", "blob", "HEAD:README.md") == b"replacement\n"
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # inherited: dropped, as for every call
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.bigFileThreshold")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "1m")
    assert r.read_blob(head, "README.md") == original
    assert r.read_objects([blob]) == {blob: original}
    (pid,) = children()
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if item)
    assert environ == _environ(None, (r.git_dir, r.root))
    assert environ["GIT_DIR"] == str(r.git_dir) and environ["GIT_NO_REPLACE_OBJECTS"] == "1"
    assert Path(f"/proc/{pid}/cwd").resolve() == r.root


def test_interpreter_exit_ends_the_process(repo: Path) -> None:
    code = f"""
import atexit, os, threading
seen = {{}}

def check():  # registered first, so it runs after gitteam's own exit handlers
    for pid in seen["pids"]:
        try:
            os.waitpid(pid, os.WNOHANG)
            print("alive", pid)
        except ChildProcessError:
            print("reaped", pid)

atexit.register(check)
from pathlib import Path
from gitteam.git import find_repository
repository = find_repository(Path({str(repo)!r}))
assert repository.read_blob("HEAD", "README.md") == b"# project\\n"
holder = threading.Event()
held = threading.Event()
def other():
    with repository._reader() as reader:  # held while the main thread reads: two processes
        reader.query([("info", "HEAD")])
        held.set()
        holder.wait()
threading.Thread(target=other, daemon=True).start()
held.wait()
assert repository.read_blob("HEAD", "README.md") == b"# project\\n"
import time

def children():
    found = []
    for entry in os.listdir("/proc"):
        try:
            parent = open(f"/proc/{{entry}}/stat").read().rsplit(")", 1)[1].split()[1] if entry.isdigit() else ""
            if parent == str(os.getpid()):
                found.append(int(entry))
        except OSError:
            pass
    return found

for _ in range(200):
    pids = children()
    if len(pids) == 2:
        break
    time.sleep(0.05)
seen["pids"] = pids
print("children", len(pids))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "children 2"
    assert [line.split()[0] for line in lines[1:] if line] == ["reaped", "reaped"]


def wait_for(condition: object, seconds: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)
    return bool(value)


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_many_files_read_at_a_commit_are_the_files_git_names(r: Repository, repo: Path) -> None:
    """read_blobs asks for many paths by object id, found through the trees: what it returns is what git gives
    for `rev:path`, odd names, links, directories and missing paths included."""
    files = {f"pkg/m{n}/f {n} é.py": f"x = {n}\n" for n in range(20)}
    files.update({"top.txt": "top\n", "deep/a/b/c.txt": "deep\n"})
    base = commit_files(repo, files)
    os.symlink("top.txt", repo / "link")
    git(repo, "add", "link")
    git(repo, "commit", "-q", "-m", "link")
    head = git(repo, "rev-parse", "HEAD")
    asked = [*files, "link", "pkg", "pkg/m1", "missing.py", "deep/a/b/c.txt/x", "", "./top.txt", "pkg//m1/f 1 é.py"]
    named = {path: subprocess.run(["git", "cat-file", "blob", f"{head}:{path}"], cwd=repo, capture_output=True)
             for path in asked}
    expected = {path: proc.stdout for path, proc in named.items() if proc.returncode == 0}
    assert {*files, "link", "./top.txt"} == set(expected)  # git reads `./top.txt` from where it runs
    assert r.read_blobs(head, asked) == expected
    assert r.read_blobs("HEAD", asked) == expected
    assert r.read_blobs(base, ["link", *files]) == {path: expected[path] for path in files}

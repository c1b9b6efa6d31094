"""The coder's write tools teach: edit_file answers with the edited lines, a miss shows the closest text and a
double match where both are; a write that breaks a file's syntax is refused with the error and its line
(Python built in, other languages through a configured checker run in the sandbox), a file already broken may
stay broken; scratch files go under .gitteam-scratch/, outside ownership and outside git."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from conftest import commit_files, git
from crews import configure
from gitteam.config import ProtectConfig, SandboxConfig
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.locks.ownership import Ownership
from gitteam.models.base import ToolCall
from gitteam.roles.coder import SCRATCH, CommandPolicy, Workspace, coder_tools, prepare_scratch
from gitteam.roles.tools import Toolbox, ToolResult
from gitteam.run.context import RunResult
from gitteam.sandbox import safe_env
from gitteam.sandbox.runner import from_config
from gitteam.transcripts import DIR, read_transcript
from loopback import Team, Turn, call, first_user_text, plan, run, subtask, team, tool_results, turn
from scripts import blob, coder_runs, coder_writes, done, events, plan_turn, rev, script, start, worktrees
from scripts import subtask as scripts_subtask

APP = "def main():\n    value = 1\n    return value\n\n\ndef helper():\n    return 2\n"
JSON_CHECK = f"{shlex.quote(sys.executable)} -m json.tool {{file}}"  # a real checker that needs no node


def make_box(repo: Path, files: Sequence[str], *, syntax: Mapping[str, str] | None = None, mode: str = "none",
             allowed: Sequence[str] = ()) -> Toolbox:
    r = find_repository(repo)
    policy = CommandPolicy(allowed=tuple(allowed), timeout=60.0, max_output=10_000, env=safe_env(repo, {}, ()),
                           runner=from_config(SandboxConfig(mode=mode), r.common_dir, r.contained_config),
                           syntax_check=dict(syntax or {}))
    prepare_scratch(repo)
    workspace = Workspace(r, repo, "HEAD", Ownership(files, ProtectConfig()), policy)
    return coder_tools(workspace, None, "a")


def use(box: Toolbox, name: str, **args: object) -> ToolResult:
    return box.execute(ToolCall("c", name, dict(args)))


def ok(box: Toolbox, name: str, **args: object) -> str:
    result = use(box, name, **args)
    assert not result.is_error, result.text
    return result.text


def refused(box: Toolbox, name: str, **args: object) -> str:
    result = use(box, name, **args)
    assert result.is_error, result.text
    return result.text


@pytest.fixture
def app(repo: Path) -> Path:
    commit_files(repo, {"src/app.py": APP})
    return repo


# --- edit_file answers ------------------------------------------------------------------------------------------


def test_an_edit_answers_with_the_edited_lines_numbered(app: Path) -> None:
    box = make_box(app, ["src/app.py"])
    text = ok(box, "edit_file", path="src/app.py", old="    value = 1\n", new="    value = 1\n    value += 41\n")
    assert text == ("edited src/app.py: line 2 replaced by lines 2-3. Lines 1-7 of 8 now:\n"
                    "     1\tdef main():\n     2\t    value = 1\n     3\t    value += 41\n     4\t    return value\n"
                    "     5\t\n     6\t\n     7\tdef helper():\n"
                    "[check the result; another edit_file fixes it if it is not what you meant]")
    text = ok(box, "edit_file", path="src/app.py", old="    value += 41\n", new="")
    assert text.startswith("edited src/app.py: deleted `old` from line 3. Lines 1-6 of 7 now:\n")
    assert (app / "src/app.py").read_text() == APP


def test_old_not_found_shows_the_closest_text_with_its_line_numbers(app: Path) -> None:
    box = make_box(app, ["src/app.py"])
    text = refused(box, "edit_file", path="src/app.py", old="def helper():\n    return 3\n", new="x")
    assert text.startswith("error: edit_file src/app.py: `old` was not found in the file; nothing was changed.\n"
                           "The closest text (")
    assert "alike) is at lines 6-7:\n     6\tdef helper():\n     7\t    return 2\n" in text
    assert text.endswith("without the line-number prefixes, then call edit_file again.")
    # the indentation differs: said so
    text = refused(box, "edit_file", path="src/app.py", old="def main():\n  value = 1\n", new="x")
    assert "at lines 1-2:" in text and "differs from `old` only in whitespace" in text
    # read_file's prefixes copied into `old`: said so
    text = refused(box, "edit_file", path="src/app.py", old="     2\t    value = 1\n     3\t    return value",
                   new="x")
    assert "starts its lines with read_file's line numbers" in text and "at lines 2-3:" in text
    # nothing near: no guess, still how to go on
    text = refused(box, "edit_file", path="src/app.py", old="class Unrelated(Base):\n    pass\n", new="x")
    assert "closest" not in text and "read_file the lines again" in text
    assert (app / "src/app.py").read_text() == APP


def test_old_found_several_times_names_each_place(app: Path) -> None:
    box = make_box(app, ["src/app.py"])
    text = refused(box, "edit_file", path="src/app.py", old="    return", new="    yield")
    assert text == ("error: edit_file src/app.py: `old` matches 2 places, starting at lines 3, 7:\n"
                    "     3\t    return value\n     7\t    return 2\nNothing was changed. Include more of the "
                    "surrounding lines in `old` (and in `new`) so that it matches exactly one place.")


def test_an_edit_of_a_crlf_file_keeps_its_line_endings(repo: Path) -> None:
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    box = make_box(repo, ["win.txt"])
    ok(box, "edit_file", path="win.txt", old="one\ntwo\n", new="one\n2\n")
    assert (repo / "win.txt").read_bytes() == b"one\r\n2\r\nthree\r\n"


def test_edit_mistakes_say_how_to_recover(app: Path) -> None:
    box = make_box(app, ["src/app.py", "src/new.py"])
    assert "create it with write_file" in refused(box, "edit_file", path="src/new.py", old="a", new="b")
    assert "give a line next to it as `old`" in refused(box, "edit_file", path="src/app.py", old="", new="b")
    text = refused(box, "write_file", path="README.md", content="x\n")
    assert "not one of this subtask's files" in text and "say so in your done summary" in text
    assert f"put scratch files under {SCRATCH}/" in text


# --- syntax ----------------------------------------------------------------------------------------------------


def test_an_edit_that_breaks_python_is_refused_with_the_line(app: Path) -> None:
    box = make_box(app, ["src/app.py"])
    text = refused(box, "edit_file", path="src/app.py", old="    return value\n", new="    return (value\n")
    assert "edit_file src/app.py: refused: it would leave a syntax error in a file that parsed." in text
    assert f"Python {sys.version_info.major}.{sys.version_info.minor} reports a syntax error at line " in text
    assert "     3\t    return (value" in text  # the line, numbered as read_file shows it
    assert "Nothing was written." in text
    assert (app / "src/app.py").read_text() == APP
    text = refused(box, "write_file", path="src/app.py", content="def main(:\n    pass\n")
    assert "at line 1" in text and (app / "src/app.py").read_text() == APP


def test_a_new_python_file_must_parse_and_a_broken_one_may_stay_broken(app: Path) -> None:
    box = make_box(app, ["src/app.py", "src/new.py"])
    text = refused(box, "write_file", path="src/new.py", content="if True\n    pass\n")
    assert "it would leave a new file that does not parse" in text
    assert not (app / "src/new.py").exists()
    broken = "def main(:\n    return 1\n"
    (app / "src/app.py").write_text(broken)  # work in progress: broken before this change
    text = ok(box, "edit_file", path="src/app.py", old="return 1", new="return 2")
    assert "note: src/app.py still does not parse" in text and "it did not before this change either" in text
    assert (app / "src/app.py").read_text() == "def main(:\n    return 2\n"
    ok(box, "edit_file", path="src/app.py", old="def main(:", new="def main():")  # and fixed


def test_a_configured_checker_runs_in_the_sandbox_and_guards_other_languages(repo: Path) -> None:
    from test_containment import BWRAP_PROBLEM  # the one place that knows whether bubblewrap works here

    if BWRAP_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the checker test needs a working bubblewrap: {BWRAP_PROBLEM}")
        pytest.skip(BWRAP_PROBLEM)
    commit_files(repo, {"conf/app.json": '{"name": "app", "size": 1}\n'})
    box = make_box(repo, ["conf/app.json", "conf/new.json", "src/app.py"], syntax={"*.json": JSON_CHECK},
                   mode="bwrap")
    ok(box, "edit_file", path="conf/app.json", old='"size": 1', new='"size": 2')
    text = refused(box, "edit_file", path="conf/app.json", old='"size": 2}', new='"size": 2,}')
    assert "refused: it would leave a syntax error in a file that parsed." in text
    assert f"`{shlex.join([sys.executable, '-m', 'json.tool', 'conf/app.json'])}` exited 1:" in text
    assert "line 1 column" in text  # json.tool's own message, from inside the sandbox
    assert (repo / "conf/app.json").read_text() == '{"name": "app", "size": 2}\n'
    assert "does not parse" in refused(box, "write_file", path="conf/new.json", content="{nope\n")
    assert not (repo / "conf/new.json").exists()
    (repo / "conf/app.json").write_text("{broken\n")
    assert "still does not parse" in ok(box, "edit_file", path="conf/app.json", old="{broken", new="{still")
    # Python keeps its built-in check; "" turns it off for a glob
    assert "syntax error" in refused(box, "edit_file", path="src/app.py", old="return 1", new="return (1")
    off = make_box(repo, ["src/app.py"], syntax={"*.py": ""}, mode="bwrap")
    ok(off, "edit_file", path="src/app.py", old="return 1", new="return (1")


def test_a_checker_that_cannot_run_blocks_nothing_and_says_so(app: Path) -> None:
    box = make_box(app, ["conf/a.js"], syntax={"*.js": "no-such-checker-xyz --check {file}"})
    text = ok(box, "write_file", path="conf/a.js", content="let x = ;\n")
    assert "note: the syntax check `no-such-checker-xyz --check conf/a.js` could not run" in text
    assert (app / "conf/a.js").read_text() == "let x = ;\n"


# --- scratch ---------------------------------------------------------------------------------------------------


def test_scratch_files_are_writable_runnable_when_allowed_and_invisible_to_git(app: Path) -> None:
    script = f"{SCRATCH}/repro.py"
    allowed = [f"{shlex.quote(sys.executable)} {SCRATCH}/*.py"]
    box = make_box(app, ["src/app.py"], allowed=allowed)
    assert "created" in ok(box, "write_file", path=script, content="print('reproduced')\n")
    ran = ok(box, "run", command=f"{shlex.quote(sys.executable)} {script}")
    assert ran.startswith("exit 0") and "reproduced" in ran
    assert git(app, "status", "--porcelain", "--untracked-files=all") == ""
    assert find_repository(app).worktree_changes(app) == []
    assert "keeps the scratch files out of git" in refused(box, "delete_file", path=f"{SCRATCH}/.gitignore")
    assert "keeps the scratch files out of git" in refused(box, "write_file", path=f"{SCRATCH}/.gitignore",
                                                           content="")


# --- in a run ----------------------------------------------------------------------------------------------------


def coder_brief(crew: Team) -> str:
    return first_user_text(crew.bodies("coder")[0])


def loopback_run(repo: Path, crew: Team, user_config: str = "", task: str = "do the task") -> RunResult:
    configure(crew, "claude-sonnet-4-6", extra=user_config)
    return run(repo, task)


@pytest.mark.usefixtures("loopback_env")
def test_the_brief_lists_the_commands_the_coder_may_run_or_says_there_are_none(repo: Path) -> None:

    def finish(value: int) -> tuple[Turn, ...]:
        return turn(call("write_file", path="src/app.py", content=f"A = {value}\n")), turn(call("done", summary="ok"))

    with team("anthropic") as crew:
        crew.planner(plan(subtask("one", ["src/app.py"]))).coder("one", *finish(1))
        allowed = '[commands]\nallowed = ["pytest -q ...", "python3 .gitteam-scratch/*.py"]\n'
        result = loopback_run(repo, crew, allowed)
        assert result.exit_code == 0, result.message
        brief = coder_brief(crew)
        nonce = re.search(r'<brief nonce="([0-9a-f]+)">', brief)
        assert nonce is not None
        assert (f'<allowed_commands nonce="{nonce[1]}">\npytest -q ...\npython3 .gitteam-scratch/*.py\n'
                f'</allowed_commands nonce="{nonce[1]}">') in brief
        assert "The run tool may execute these command lines" in brief and ".gitteam-scratch/" in brief
    with team("anthropic") as crew:
        crew.planner(plan(subtask("two", ["src/app.py"]))).coder("two", *finish(2))
        result = loopback_run(repo, crew, task="another task")
        assert result.exit_code == 0, result.message
        brief = coder_brief(crew)
        assert "The run tool may execute no command in this run" in brief and "allowed_commands" not in brief
    with team("anthropic") as crew:  # the test command, from the repository's own file, with any arguments
        (repo / ".gitteam.toml").write_text('[commands]\ntest = "pytest -q"\n')
        crew.planner(plan(subtask("three", ["src/app.py"]))).coder("three", *finish(3))
        loopback_run(repo, crew, task="a third task")
        assert "\npytest -q ...\n</allowed_commands" in coder_brief(crew)


@pytest.mark.usefixtures("loopback_env")
def test_a_refused_edit_reaches_the_model_with_its_error_and_the_fix_lands(repo: Path) -> None:
    with team("anthropic") as crew:
        crew.planner(plan(subtask("fix", ["src/app.py"])))
        crew.coder("fix", turn(call("edit_file", path="src/app.py", old="return 1", new="return (1")),
                   turn(call("edit_file", path="src/app.py", old="return 1", new="return 2")),
                   turn(call("done", summary="returns 2")))
        result = loopback_run(repo, crew)
        assert (result.exit_code, result.state) == (0, "merged"), result.message
        last = crew.bodies("coder", "fix")[-1]
        (_, broken, is_error), (_, fixed, _) = tool_results(last)
        assert is_error and "refused: it would leave a syntax error in a file that parsed" in broken
        assert "line 2" in broken and "     2\t    return (1" in broken
        assert fixed.startswith("edited src/app.py: line 2 replaced by line 2.")
        assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"


def test_scratch_files_are_never_committed_nor_stray_and_the_worktree_is_removed(repo: Path) -> None:
    python = shlex.quote(sys.executable)
    data = script(
        planner=[plan_turn([scripts_subtask("work", ["src/app.py"])])],
        coder={"work": [coder_writes(f"{SCRATCH}/repro.py", "from pathlib import Path\n"
                                     "Path('.gitteam-scratch/out.txt').write_text('seen')\nprint('reproduced')\n"),
                        coder_runs(f"{python} {SCRATCH}/repro.py"),
                        coder_writes("src/app.py", "def main():\n    return 2\n"), done("fixed")]},
    )
    result = start(repo, data, config={"commands.allowed": [f"{python} {SCRATCH}/*.py"]})
    assert (result.exit_code, result.state) == (0, "merged"), result.message
    [committed] = events(repo, result.run, "agent_committed")
    assert committed["stray"] == []
    head = rev(repo, f"gitteam/{result.run}/work") or ""
    assert git(repo, "diff", "--name-only", f"{head}~1", head) == "src/app.py"
    assert git(repo, "ls-tree", "-r", "--name-only", "main").split() == ["README.md", "src/app.py"]
    assert events(repo, result.run, "worktrees_removed") and worktrees(repo) == [str(repo)]
    assert events(repo, result.run, "tool_refused") == []
    path = Journal(find_repository(repo).state_dir, result.run).dir / DIR / "coder-work.jsonl"
    [ran] = [r for r in read_transcript(path).records if r["kind"] == "tool_result" and r["name"] == "run"]
    assert ran["text"].startswith("exit 0") and "reproduced" in ran["text"]

"""The coder's allow-list: entries are whole argument patterns, and an open word may not write files, load code,
move a tool's configuration or leave the worktree unless the entry names it literally."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from conftest import commit_files
from gitteam.config import CommandsConfig, Config, load_config
from gitteam.errors import ConfigError
from gitteam.sandbox.allow import check_command, entry_problem, parse_command
from scripts import blob, coder_runs, coder_writes, done, plan_turn, refused, script, start, subtask, turn


def reason(command: str, *allowed: str) -> str | None:
    return check_command(parse_command(command), allowed)


def allowed(command: str, *entries: str) -> bool:
    return check_command(parse_command(command), entries) is None


# --- the attacks a hostile model used ------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "entry", "culprit"), [
    ("pytest --doctest-glob=notes.md notes.md", "pytest ...", "--doctest-glob"),
    ("pytest --junitxml=../../../../config", "pytest ...", "--junitxml"),
    ("pytest -q --basetemp=/home/user/project", "pytest -q ...", "--basetemp"),
    ("git log --output=../../../../config --format=x", "git log ...", "--output"),
])
def test_the_attacks_found_are_refused_naming_the_option(command: str, entry: str, culprit: str) -> None:
    why = reason(command, entry)
    assert why is not None and culprit in why
    assert why.endswith(f"allowed commands: {entry})")  # what the model may run instead


def test_a_refusal_says_what_is_allowed_and_how_to_recover() -> None:
    assert reason("pytest -q --junitxml=../x", "pytest -q ...", "ruff check ...") == (
        "'--junitxml=../x' is refused: pytest's --junitxml writes a file; run the command without it "
        "(allowed commands: pytest -q ...; ruff check ...)"
    )
    assert reason("rm -rf x", "pytest ...") == (
        "command not allowed: 'rm -rf x'; allowed commands: pytest ... "
        "(words match one by one; a last ... allows more)"
    )
    assert reason("pytest -q tests/a.py", "pytest -q") == (
        "command not allowed: 'pytest -q tests/a.py': the entry 'pytest -q' allows no further arguments "
        "(only an entry ending in ... does); allowed commands: pytest -q"
    )
    assert reason("pytest") == (
        "command not allowed: no command is ([commands] test and allowed are empty); work without running any"
    )
    assert reason("", "pytest") == "empty command; allowed commands: pytest"


# --- honest commands ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "entry"), [
    ("pytest -q", "pytest -q ..."),
    ("pytest -q tests/test_x.py", "pytest -q ..."),
    ("pytest -k name", "pytest ..."),
    ("pytest -x -vv -k 'parse and not slow' tests/test_x.py::test_one[a-b]", "pytest ..."),
    ("pytest -p no:cacheprovider -rA -W error --import-mode=importlib", "pytest ..."),
    ("pytest --doctest-modules src", "pytest ..."),  # imports the project's modules, as the tests do
    ("pytest --cov=src --cov-report=term-missing:skip-covered", "pytest ..."),
    ("python -m pytest -x", "python -m pytest ..."),
    ("python3.11 -m pytest -m slow -x", "python3.11 -m pytest ..."),  # after -m pytest, -m is pytest's
    ("pytest -k git -x", "pytest ..."),  # `git` is -k's value here, not a program: -x is pytest's
    ("npm test", "npm test"),
    ("npm test -- --watch=false", "npm test ..."),
    ("git status", "git status"),
    ("git diff HEAD", "git diff ..."),
    ("git log --oneline HEAD~3..HEAD main...", "git log ..."),
    ("ruff check --output-format=json src", "ruff check ..."),
    ("git diff --text --stat", "git diff ..."),  # a real option, not an abbreviation of --textconv
    ("node app.js -e x --print", "node app.js ..."),  # after the script, the words are the script's
])
def test_honest_commands_are_allowed(command: str, entry: str) -> None:
    assert reason(command, entry) is None


def test_an_entry_without_dots_allows_exactly_its_words() -> None:
    assert allowed("pytest", "pytest")
    assert not allowed("pytest -q", "pytest")
    assert not allowed("pytest --junitxml=x.xml", "pytest")  # what prefix matching used to allow
    assert not allowed("git log --output=x", "git log")
    assert not allowed("pytestx", "pytest")
    assert allowed("npm test", "npm install", "npm test")


# --- the risky table ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    # pytest: plugins, configuration, files written, code loaded
    "pytest -p evil", "pytest -pevil", "pytest -vvpevil", "pytest -c x.ini", "pytest -cx.ini",
    "pytest -o cache_dir=x", "pytest --override-ini=addopts=-pevil", "pytest --rootdir=sub", "pytest --rootdir sub",
    "pytest --basetemp=tmp", "pytest --basetemp tmp", "pytest --junitxml=r.xml", "pytest --junit-xml r.xml",
    "pytest --doctest-glob=*.md", "pytest --config-file=x.ini", "pytest --confcutdir=.", "pytest --log-file=x",
    "pytest --log-file x", "pytest --resultlog=x", "pytest --result-log=x", "pytest --debug", "pytest --debug=x",
    "pytest --cov-report=html:cov", "pytest --cov-report xml:cov.xml", "pytest --html=r.html", "pytest --pastebin=all",
    "pytest --pdbcls=evil:Debugger", "pytest --tx popen//python=./evil", "python -m pytest -p evil",
    # git: configuration, other repositories, files written, programs run
    "git -c core.fsmonitor=./evil status", "git -C sub status", "git --git-dir=x status", "git --work-tree=x diff",
    "git --exec-path=x status", "git log --output=x", "git log --outp=x", "git archive -o x.tar HEAD",
    "git format-patch -o out", "git diff --ext-diff", "git log --textconv", "git grep -Ovim x",
    "git grep --open-files-in-pager=vim x", "git grep --open=vim x", "git rebase --exec=./evil HEAD~1",
    "git rebase -x ./evil HEAD~1", "git fetch --upload-pack=./evil", "git clone --template=x a b",
    # python and node: code given on the command line, modules and code loaded
    "python -c pass", "python -W error -c pass", "python -m evil", "python -mevil", "node -e 1", "node --eval=1",
    "node -p 1", "node -r ./x.js app.js", "node --require=./x.js app.js", "node --import ./x.mjs app.js",
    "node --loader ./x.mjs app.js", "npm test --script-shell=./evil", "npm test --prefix=../other",
    # the same programs under other names
    "py.test -p evil", "pytest-3 --junitxml=x", "/usr/bin/python3.11 -c pass", "nodejs -e 1",
    # any tool: the generic long options
    "mytool --output-file=x", "mytool --config x", "mytool --log-file=x", "mytool --prefix=x", "mytool --rcfile=x",
])
def test_risky_words_are_refused_in_every_form(command: str) -> None:
    program = command.split()[0]
    entry = f"{program} -m pytest ..." if command.startswith("python -m pytest") else f"{program} ..."
    assert reason(command, entry) is not None, command


@pytest.mark.parametrize(("command", "entry"), [
    ("pytest --junitxml=report.xml -q", "pytest --junitxml=report.xml ..."),
    ("pytest -p xdist -n 2", "pytest -p xdist ..."),
    ("git log --output=log.txt", "git log --output=log.txt"),
    ("python -c pass", "python -c pass"),
    ("python -m mymodule --flag", "python -m mymodule ..."),
])
def test_an_entry_naming_a_risky_word_literally_allows_exactly_that(command: str, entry: str) -> None:
    assert reason(command, entry) is None
    assert not allowed(command.replace("report.xml", "../x.xml").replace("xdist", "evil")
                       .replace("log.txt", "other.txt").replace("pass", "import os")
                       .replace("mymodule", "evil"), entry)


def test_harmless_values_of_risky_options() -> None:
    assert allowed("pytest -p no:cacheprovider -pno:randomly", "pytest ...")
    assert allowed("pytest --cov-report term --cov-report=term-missing", "pytest ...")
    assert not allowed("pytest -p no:x -p evil", "pytest ...")


@pytest.mark.parametrize("word", [
    "/etc/passwd", "~/.ssh/id_rsa", "../x", "..", "tests/../../x", "--cov=..", "--cov=/src", "-o/x", "-I../inc",
])
def test_open_words_stay_inside_the_worktree(word: str) -> None:
    assert "outside your worktree" in (reason(f"mytool {shlex.quote(word)}", "mytool ...") or "")
    assert allowed(f"mytool {shlex.quote(word)}", f"mytool {shlex.quote(word)}")  # named literally: trusted


def test_the_program_may_be_an_absolute_path_the_entry_names() -> None:
    python = sys.executable
    assert allowed(f"{python} -m pytest -q tests", f"{python} -m pytest ...")
    assert not allowed(f"{python} -m pytest -q /tmp", f"{python} -m pytest ...")


# --- globs and `...` ---------------------------------------------------------------------------------------

def test_glob_words_match_within_one_path_component() -> None:
    entry = "pytest -q tests/*.py"
    assert allowed("pytest -q tests/test_x.py", entry)
    assert not allowed("pytest -q tests/sub/test_x.py", entry)
    assert not allowed("pytest -q tests/../x.py", entry)
    assert not allowed("pytest -q tests/test_x.py tests/test_y.py", entry)
    assert allowed("pytest -k test_parse", "pytest -k test_*")
    assert not allowed("pytest -k Test_parse", "pytest -k test_*")  # case-sensitive
    assert allowed("make test-unit", "make test-[a-z]*")
    assert not allowed("pytest --junitxml=x", "pytest *")  # a glob-matched word is checked like an open one
    assert allowed("pytest tests/test_x.py::test_a[1-2]", "pytest tests/test_x.py::test_a[1-2]")  # literal first


def test_dots_allow_any_number_of_further_words_but_only_last() -> None:
    assert allowed("pytest", "pytest ...")
    assert allowed("pytest -q a.py b.py -k x", "pytest ...")
    assert not allowed("pytest", "pytest -q ...")
    assert not allowed("pytest -x x", "pytest ... -x")  # not a valid entry: allows nothing
    assert not allowed("... -q", "... -q")


@pytest.mark.parametrize(("entry", "problem"), [
    ("pytest -q ...", None),
    ("pytest tests/*.py", None),
    (f"{sys.executable} -m pytest ...", None),
    ("pytest ... -x", "... may only be its last word"),
    ("...", "its first word must name the program, not a pattern"),
    ("py* -q", "its first word must name the program, not a pattern"),
    ("pytest 'x", "unbalanced quotes"),
    ("  ", "an empty command line"),
])
def test_entry_problems(entry: str, problem: str | None) -> None:
    assert entry_problem(entry) == problem


def test_entries_are_validated_when_the_config_is_loaded(root: Path) -> None:
    good = ["pytest -q ...", "pytest tests/*.py"]
    assert load_config(root, {"commands.allowed": good}, env={}).allowed_commands() == tuple(good)
    with pytest.raises(ConfigError, match=r'commands\.allowed must be .*a last word "\.\.\." allows more'):
        load_config(root, {"commands.allowed": ["pytest ... -x"]}, env={})


# --- the test command as the implicit entry ----------------------------------------------------------------

def test_the_test_command_allows_itself_followed_by_harmless_arguments() -> None:
    entries = Config(commands=CommandsConfig(test="pytest -q")).allowed_commands()
    assert allowed("pytest -q", *entries)
    assert allowed("pytest -q tests/test_x.py -k name", *entries)
    assert not allowed("pytest", *entries)
    assert not allowed("pytest -q --junitxml=../../config", *entries)
    own = Config(commands=CommandsConfig(test="pytest -p xdist --junitxml=out.xml")).allowed_commands()
    assert allowed("pytest -p xdist --junitxml=out.xml tests", *own)  # the user's own words are trusted
    explicit = Config(commands=CommandsConfig(test="pytest -q", allowed=("ruff check",))).allowed_commands()
    assert not allowed("pytest -q", *explicit)  # an explicit list replaces it


# --- end to end --------------------------------------------------------------------------------------------

def test_a_hostile_coder_cannot_write_or_run_through_allowed_tools(repo: Path, tmp_path: Path) -> None:
    """The attacks through the real pipeline: refused, journaled, and nothing they aimed at changed."""
    python = sys.executable
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep\n")
    commit_files(repo, {"tests/test_ok.py": (
        "import pathlib\n\n\ndef test_ok():\n"
        "    pathlib.Path('out').mkdir(exist_ok=True)\n"
        "    pathlib.Path('out/ran.txt').write_text('ran\\n')\n"
    )}, "a test")
    git_config = (repo / ".git/config").read_bytes()
    doctest = f">>> import pathlib; _ = pathlib.Path({str(canary / 'doctest')!r}).write_text('ran')\n"
    pytest_ = f"{shlex.quote(python)} -m pytest -q -p no:cacheprovider"
    attacks = [
        f"{pytest_} --doctest-glob=notes.md notes.md",
        f"{pytest_} --junitxml=../../../../config",
        f"{pytest_} --junitxml={shlex.quote(str(canary / 'junit.xml'))}",
        f"{pytest_} --basetemp={shlex.quote(str(canary))}",
        "git log --output=../../../../config --format=x",
        f"git log --output={shlex.quote(str(canary / 'log'))} --format=x",
    ]
    data = script(
        planner=[plan_turn([subtask("evil", ["notes.md", "out/ran.txt"])])],
        coder={"evil": [coder_writes("notes.md", doctest), turn(*[coder_runs(a) for a in attacks]),
                        coder_runs(f"{pytest_} tests/test_ok.py"), done("ran the tests")]},
    )

    result = start(repo, data, config={"commands.allowed": [f"{shlex.quote(python)} -m pytest ...", "git log ..."]})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    errors = [e["error"] for e in refused(repo, result.run)]
    assert len(errors) == len(attacks)
    for error, option in zip(errors, ["--doctest-glob", "--junitxml", "--junitxml", "--basetemp", "--output",
                                      "--output"], strict=True):
        assert error.startswith("refused: '" + option) and "allowed commands: " in error
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]
    assert (repo / ".git/config").read_bytes() == git_config
    assert blob(repo, "main", "out/ran.txt") == b"ran\n"  # the honest command ran

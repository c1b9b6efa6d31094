"""Which command lines the coder's `run` tool may start: allow-list entries are whole argument patterns.

An entry of `[commands] allowed` is a command line, split the way a shell would (no shell ever runs). A command
is allowed when its words match the words of one entry, one by one:

- a plain word matches exactly itself (the entry `pytest` allows `pytest` alone);
- a word holding `*`, `?` or `[...]` is a glob (fnmatch, case-sensitive) whose `*` and `?` never cross a `/`:
  `tests/*.py` matches `tests/test_x.py` but neither `tests/a/b.py` nor `tests/../x.py`. The program (the
  first word) is never a glob;
- a last word `...` matches any number of further words, none included.

What an entry names literally is trusted as written. Every other word (matched by a glob or by `...`) must be
harmless: not an option that writes files, loads code or moves where the tool reads its configuration (the
tables below), not an absolute path, and without a `..` step. So `pytest -q ...` allows
`pytest -q tests/test_x.py -k name`, never `pytest -q --junitxml=../../config`; an entry
`pytest --junitxml=report.xml ...` allows exactly that word.

These tables keep honest mistakes cheap and refuse the obvious abuse found so far (a hostile model ran Python
from Markdown with `--doctest-glob` and rewrote `.git/config` with `--junitxml` and `git log --output`); they
cannot know every option of every tool. The sandbox the commands run in is the boundary.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gitteam.commandline import GLOB, MORE, entry_problem
from gitteam.errors import GitteamError

# An absolute path, also as an option's value (`--junitxml=/x`, `-o/x`); `~` because some tools expand it.
_ABSOLUTE = re.compile(r"^[/~]|=[/~]|^-[A-Za-z][/~]")
# A `..` step: `../x`, `x/..`, `--rootdir=..`, `html:../x`; git ranges (`HEAD..main`, `main...`) are not steps.
_CLIMB = re.compile(r"\.\.[/\\]|(?:^|[/\\=:,])\.\.$")


@dataclass(frozen=True, slots=True)
class Risk:
    """An option a tool acts on dangerously.

    `option` is a short option ("-p": also inside a cluster like `-vpNAME`), a long one ("--junitxml": also
    `--junitxml=VALUE`), or a long-option stem ending in "*" ("--output*": every option starting so)."""

    option: str
    why: str  # completes "<tool>'s <option> ...": "writes a file"
    harmless: Callable[[str], bool] | None = None  # values that make it safe (`-p no:cacheprovider`)


@dataclass(frozen=True, slots=True)
class Tool:
    """The risky options of a program; they apply to the words after a word naming it (`python -m pytest`)."""

    name: str
    risks: tuple[Risk, ...]
    also: frozenset[str] = frozenset()  # other names that run it (`py.test`)
    short_values: str = ""  # short options taking a value: a cluster ends there (`-kparse` is `-k parse`)
    abbreviates: bool = False  # long options may be shortened (git's parse-options): `--outp` is `--output`
    interpreter: bool = False  # its options end at the script or module: the words after it are that program's
    honest: frozenset[str] = field(default_factory=frozenset)  # safe options a stem or abbreviation would catch


def _disables_plugin(value: str) -> bool:
    return value.startswith("no:")  # `-p no:cacheprovider` turns a plugin off


def _terminal_report(value: str) -> bool:
    return ":" not in value or value.startswith("term")  # `html:DIR` writes DIR; `term-missing:skip-covered` not


WRITES = "writes a file"
LOADS = "loads code"
RUNS = "runs a program"
CONFIG = "reads configuration from elsewhere"

# Long options that mean the same in every tool that has them.
GENERIC = Tool("any tool", (
    Risk("--output*", WRITES),  # git log --output, --output-file, --output-dir
    Risk("--log-file*", WRITES),
    Risk("--config*", CONFIG),  # --config-file, --configfile; git clone --config sets options that run programs
    Risk("--rcfile*", CONFIG),
    Risk("--rootdir*", "moves where the tool looks for its configuration and writes its cache"),
    Risk("--basetemp*", "deletes and recreates that directory"),
    Risk("--prefix*", "runs or installs in another directory"),  # npm --prefix runs another package's scripts
    Risk("--exec*", RUNS),  # git rebase --exec, --exec-path, fd --exec
    Risk("--require*", LOADS),  # node, mocha, ava
    Risk("--import", LOADS),  # node; exact, so pytest's --import-mode stays allowed
    Risk("--loader", LOADS),
    Risk("--experimental-loader", LOADS),
    Risk("--eval", "runs code given on the command line"),
    Risk("--python-executable", RUNS),  # mypy runs it to find packages
), honest=frozenset({"--output-format"}))  # ruff and others: how to print, not where

# `--target` is not here: cargo and tsc use it honestly, and a pip --target outside the worktree is a path the
# path rules refuse anyway. `--doctest-modules` is not either: it imports the project's own modules, which the
# test command imports anyway; `--doctest-glob` runs code from any text file (a Markdown file the coder owns).
TOOLS = (
    Tool("pytest", (
        Risk("-p", "loads a plugin module", _disables_plugin),
        Risk("-c", CONFIG),
        Risk("-o", "overrides its configuration (cache_dir, addopts)"),
        Risk("--override-ini*", "overrides its configuration (cache_dir, addopts)"),
        Risk("--confcutdir*", "loads conftest.py files from outside the project"),
        Risk("--junitxml*", WRITES), Risk("--junit-xml*", WRITES),
        Risk("--resultlog*", WRITES), Risk("--result-log*", WRITES), Risk("--report-log*", WRITES),
        Risk("--debug*", "writes a debug log file"),
        Risk("--html*", WRITES),  # pytest-html
        Risk("--cov-report*", "writes a coverage report to that path", _terminal_report),
        Risk("--cov-config*", CONFIG),
        Risk("--doctest-glob*", "runs code from the text files it names"),
        Risk("--pdbcls*", LOADS),
        Risk("--pastebin*", "uploads the output"),
        Risk("--tx*", "starts workers with another interpreter"), Risk("--rsyncdir*", "copies directories"),
    ), also=frozenset({"py.test"}), short_values="kmrWn"),
    # One table for every subcommand: `git log -c`, `git grep -C 3`, `git ls-files -o` and `git cherry-pick -x`
    # are refused as well (an entry may name them). Global options (-c, -C, --git-dir) only act before the
    # subcommand, but an entry `git ...` lets a word stand there.
    Tool("git", (
        Risk("-c", "sets configuration (core.fsmonitor, core.pager run programs)"),
        Risk("--config-env*", "sets configuration (core.fsmonitor, core.pager run programs)"),
        Risk("-C", "runs in another directory"),
        Risk("--git-dir*", "points at another repository"), Risk("--work-tree*", "points at another tree"),
        Risk("-o", WRITES),  # git archive -o, format-patch -o
        Risk("--ext-diff", "runs the external diff program"), Risk("--textconv", "runs textconv filters"),
        Risk("-O", "runs the pager it names"), Risk("--open-files-in-pager*", "runs the pager it names"),
        Risk("-x", RUNS),  # git rebase -x, difftool -x
        Risk("--extcmd*", RUNS), Risk("--tool", RUNS),
        Risk("--upload-pack*", RUNS), Risk("--receive-pack*", RUNS),
        Risk("--template*", "copies hooks from a directory"),
    ), short_values="nSGLUMBFemX", abbreviates=True,
        honest=frozenset({"--text", "--to"})),  # real options, not abbreviations of --textconv and --tool
    Tool("python", (
        Risk("-c", "runs code given on the command line"),
        Risk("-m", "runs a module the entry does not name"),
    ), also=frozenset({"pypy"}), short_values="WX", interpreter=True),
    Tool("node", (
        Risk("-e", "runs code given on the command line"), Risk("-p", "runs code given on the command line"),
        Risk("--print", "runs code given on the command line"),
        Risk("-r", LOADS), Risk("--inspect*", "opens a debugger port"),
    ), also=frozenset({"nodejs"}), interpreter=True),
    Tool("npm", (
        Risk("--script-shell*", RUNS), Risk("--node-options*", LOADS),
        Risk("--userconfig*", CONFIG), Risk("--globalconfig*", CONFIG),
    ), also=frozenset({"pnpm", "yarn", "npx"})),
)
_BY_NAME = {name: tool for tool in TOOLS for name in (tool.name, *tool.also)}


def parse_command(line: str) -> list[str]:
    """Split a command line the way a POSIX shell would, without running a shell; [] for a blank line."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise GitteamError(f"cannot parse the command {line!r}: {exc} (check its quotes)") from None


def check_command(argv: Sequence[str], allowed: Sequence[str]) -> str | None:
    """None when one entry of `allowed` permits argv; otherwise one line saying why and what is allowed."""
    if not allowed:
        return "command not allowed: no command is ([commands] test and allowed are empty); work without running any"
    listing = "allowed commands: " + "; ".join(allowed)
    if not argv:
        return f"empty command; {listing}"
    shown = shlex.join(argv)
    first_problem = None
    exact_entry = None
    for entry in allowed:
        if entry_problem(entry) is not None:
            continue  # config validation names it; here it allows nothing
        words = shlex.split(entry)
        literal = _match(words, argv)
        if literal is None:
            if words[-1] != MORE and len(argv) > len(words) and _match(words, argv[:len(words)]) is not None:
                exact_entry = exact_entry or entry
            continue
        problem = _unsafe_word(argv, literal)
        if problem is None:
            return None
        first_problem = first_problem or problem
    if first_problem is not None:
        return f"{first_problem}; run the command without it ({listing})"
    if exact_entry is not None:
        return (f"command not allowed: {shown!r}: the entry {exact_entry!r} allows no further arguments "
                f"(only an entry ending in {MORE} does); {listing}")
    return f"command not allowed: {shown!r}; {listing} (words match one by one; a last {MORE} allows more)"


def _match(words: Sequence[str], argv: Sequence[str]) -> list[bool] | None:
    """Which argv words the entry names literally (True) or leaves open (a glob or `...`), or None: no match."""
    more = words[-1] == MORE
    fixed = words[:-1] if more else words
    if len(argv) < len(fixed) or (len(argv) > len(fixed) and not more):
        return None
    literal = []
    for pattern, word in zip(fixed, argv, strict=False):
        if word == pattern:
            literal.append(True)
        elif _glob_matches(pattern, word):
            literal.append(False)
        else:
            return None
    return literal + [False] * (len(argv) - len(fixed))


def _glob_matches(pattern: str, word: str) -> bool:
    # fnmatch's `*` crosses `/`; the same number of `/` keeps every `*` and `?` inside one path component
    return bool(GLOB.search(pattern)) and word.count("/") == pattern.count("/") and \
        fnmatch.fnmatchcase(word, pattern)


@dataclass(slots=True)
class _Named:
    """A tool named by an earlier word, and whether its options still apply to the words that follow."""

    tool: Tool
    open: bool = True
    value_next: bool = False  # an interpreter's option that takes the next word as its value (`-W error`)


def _unsafe_word(argv: Sequence[str], literal: Sequence[bool]) -> str | None:
    """The first word the entry leaves open that is not harmless, with why; None when all are."""
    named: list[_Named] = []
    for i, word in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if not literal[i]:
            problem = _risky(word, following, [n.tool for n in named if n.open])
            if problem is None and (_ABSOLUTE.search(word) or _CLIMB.search(word)):
                problem = "names a path outside your worktree"
            if problem is not None:
                return f"{word!r} {problem}"
        for seen in named:
            if seen.tool.interpreter and seen.open:
                _advance(seen, word)
        # a tool is named by a word the entry names, or by an open word in a program's place: not by an
        # option's value (`pytest -k git -x` is not git's -x)
        in_place = literal[i] or not argv[i - 1].startswith("-")
        tool = _BY_NAME.get(_program_name(word)) if in_place and not word.startswith("-") else None
        if tool is not None:
            named.append(_Named(tool))
    return None


def _advance(seen: _Named, word: str) -> None:
    # python and node parse options only up to the script, module or code: what follows is that program's
    if seen.value_next:
        seen.value_next = False
    elif not word.startswith("-") or word in ("-", "--"):
        seen.open = False
    elif len(word) == 2 and word[1] in seen.tool.short_values:
        seen.value_next = True


def _program_name(word: str) -> str:
    """`/usr/bin/python3.11` -> `python`, `pytest-3` -> `pytest`: the name the tables know a program by."""
    name = os.path.basename(word).lower().removesuffix(".exe")
    return name if name in _BY_NAME else re.sub(r"[-.]?\d+(?:\.\d+)*$", "", name)


def _risky(word: str, following: str | None, tools: Sequence[Tool]) -> str | None:
    """Why an option word is risky for the tools named before it (and for any tool), or None."""
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        shorten = any(tool.abbreviates for tool in tools)
        if name in GENERIC.honest.union(*(tool.honest for tool in tools)):
            return None
        for tool in (*tools, GENERIC):
            for risk in tool.risks:
                if risk.option.startswith("--") and _long_matches(name, risk.option, shorten) and \
                        not _harmless(risk, value if eq else following):
                    return _because(tool, risk)
    elif word.startswith("-") and len(word) > 1:
        for tool in tools:
            shorts = {risk.option[1]: risk for risk in tool.risks if len(risk.option) == 2}
            for j, char in enumerate(word[1:], start=2):
                if char in shorts:
                    if _harmless(shorts[char], word[j:] or following):
                        break
                    return _because(tool, shorts[char])
                if char in tool.short_values:
                    break  # the rest of the cluster is that option's value
    return None


def _long_matches(name: str, option: str, shorten: bool) -> bool:
    stem = option.removesuffix("*")
    if name == stem or (option.endswith("*") and name.startswith(stem)):
        return True
    return shorten and len(name) > 3 and stem.startswith(name)  # `--outp`: an abbreviation git accepts


def _harmless(risk: Risk, value: str | None) -> bool:
    return risk.harmless is not None and value is not None and risk.harmless(value)


def _because(tool: Tool, risk: Risk) -> str:
    option = risk.option.removesuffix("*")
    return f"is refused: {option} {risk.why}" if tool is GENERIC else \
        f"is refused: {tool.name}'s {option} {risk.why}"

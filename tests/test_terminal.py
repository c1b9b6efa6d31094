"""The terminal experience end to end: `gitteam run` in a real terminal (tmux) with the live view and the
approval prompt, and in a log (plain timestamped lines, heartbeats). Models are replay scripts whose calls the
test holds open (pausing.py), so the screen is read while an agent is mid-call."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import commit_files, git
from pausing import paused, reached, release
from scripts import approve, call, coder_writes, done, finding, plan_turn, request_changes, script, subtask, turn
from tmuxterm import Terminal, gitteam

USAGE = {"input_tokens": 1000, "output_tokens": 200}
PRICES = {"input": 3.0, "output": 15.0}  # 1,200 tokens a call: $0.006


def used(*calls: dict[str, Any]) -> dict[str, Any]:
    return turn(*calls, usage=USAGE)


def long_file(lines: int = 120) -> str:
    return "".join(f"line {n:03d}\n" for n in range(1, lines + 1))


def held_script(tmp_path: Path) -> dict[str, Any]:
    """One subtask whose coder's second and third model calls wait for the test (markers m1, m2)."""
    return script(
        [used(plan_turn([subtask("a", ["a.txt"])]))],
        {"a": [used(coder_writes("a.txt", "first\n")),
               paused(used(coder_writes("a.txt", "second\n")), tmp_path / "m1"),
               paused(used(done("wrote a.txt")), tmp_path / "m2")]},
        prices=PRICES)


def prompt_script() -> dict[str, Any]:
    """Two subtasks, each reviewed (one after a request for changes, with findings): the run reaches the prompt."""
    return script(
        [used(plan_turn([subtask("a", ["a.txt"]), subtask("b", ["b.txt"])]))],
        {"a": [used(coder_writes("a.txt", long_file())), used(done("wrote a.txt")),
               used(coder_writes("a.txt", long_file() + "end\n")), used(done("added the end line"))],
         "b": [used(coder_writes("b.txt", "bee\n")), used(done("wrote b.txt"))]},
        reviewer={"a": [request_changes("needs an end line", [finding("a.txt", "no end line", "major",
                                                                      evidence="line 120")]),
                        approve("fine now", [finding("a.txt", "long", "minor", 3),
                                             finding("a.txt", "consider splitting", "info")])],
                  "b": [approve("good")], "*": [approve("the parts fit")]},
        prices=PRICES)


def write(tmp_path: Path, data: dict[str, Any]) -> str:
    import json

    path = tmp_path / "script.json"
    path.write_text(json.dumps(data))
    return f"replay:{path}"


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


def open_terminal(terminals: list[Terminal], tmp_path: Path, repo: Path, *args: str,
                  env: dict[str, str] | None = None) -> Terminal:
    term = Terminal(tmp_path, repo, gitteam(*args), env=env)
    terminals.append(term)
    return term


def row(screen: str, agent: str) -> str:
    """The agent's row in the live table."""
    found = [line for line in screen.splitlines() if re.match(rf"{agent}\s+(queued|setting|coding|testing|review|"
                                                              r"changes|approved|merged|failed|planning|planned)",
                                                              line)]
    assert len(found) == 1, screen
    return found[0]


def wait_reached(term: Terminal, marker: Path) -> None:
    term.wait_for(lambda _: reached(marker), f"{marker.name} reached")


def run_id(repo: Path) -> str:
    (run,) = (repo / ".git" / "gitteam" / "runs").iterdir()
    return run.name


def journal_state(repo: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "gitteam", "status", "--json"], cwd=repo, capture_output=True,
                         text=True, check=True)
    import json

    (state,) = json.loads(out.stdout)
    return str(state["state"])


# --- the live view ---------------------------------------------------------------------------------------------

def test_an_agents_row_changes_in_place_while_its_model_call_is_held(repo: Path, tmp_path: Path,
                                                                    terminals: list[Terminal]) -> None:
    spec = write(tmp_path, held_script(tmp_path))
    term = open_terminal(terminals, tmp_path, repo, "run", "do the task", "--model", spec, "--no-merge")
    wait_reached(term, tmp_path / "m1")
    first = term.wait_for(lambda s: "(thinking)" in s and "1,200" in s, "a's row after one call")
    assert re.match(r"a\s+coding\s+1\s+\(thinking\)\s+1\s+1,200\s+\$0\.0060", row(first, "a")), first
    assert re.search(r"gitteam run \S+ -> main\s+wave 1/1\s+\d+s\s+\$0\.0120\s+2,400 tokens", first), first
    assert re.match(r"planner\s+planned", row(first, "planner")), first

    release(tmp_path / "m1")
    wait_reached(term, tmp_path / "m2")
    second = term.wait_for(lambda s: "2,400" in row(s, "a"), "a's row after two calls")
    assert re.search(r"wave 1/1\s+\d+s\s+\$0\.0180\s+3,600 tokens", second), second
    assert re.match(r"a\s+coding\s+1\s+\(thinking\)\s+2\s+2,400\s+\$0\.0120", row(second, "a")), second
    history = term.history()
    # the same row, redrawn: one line in the whole scrollback, not one per refresh
    assert len(re.findall(r"(?m)^a\s+coding", history)) == 1, history
    assert len(re.findall(r"(?m)^agent\s+state\s+round\s+now\s+steps\s+tokens\s+cost\s+time", history)) == 1

    release(tmp_path / "m2")
    assert term.exit_code() == 0
    final = term.history()
    assert re.search(r"(?m)^a\s+merged\s+1\s+3\s+[\d,]+\s+\$0\.\d{4}", final), final  # the last state stays
    assert "planned 1 subtask(s) in 1 wave(s)" in final  # milestones go above the table, into the scrollback


@pytest.mark.parametrize(("flags", "env"), [(["--quiet"], {}), ([], {"NO_COLOR": "1"})], ids=["quiet", "NO_COLOR"])
def test_quiet_or_no_color_on_a_terminal_prints_plain_lines_instead_of_the_table(
        repo: Path, tmp_path: Path, terminals: list[Terminal], flags: list[str], env: dict[str, str]) -> None:
    spec = write(tmp_path, held_script(tmp_path))
    term = open_terminal(terminals, tmp_path, repo, "run", "do the task", "--model", spec, "--no-merge", *flags,
                         env=env)
    wait_reached(term, tmp_path / "m1")
    shown = term.wait_text("a: coding")
    assert re.search(r"(?m)^\d\d:\d\d:\d\d   planner: planning$", shown), shown
    release(tmp_path / "m1", tmp_path / "m2")
    assert term.exit_code() == 0
    history = term.history()
    assert not re.search(r"(?m)^agent\s+state", history), history  # no table, drawn or left behind


def test_plain_lines_carry_the_time_a_planning_line_and_heartbeats_for_a_silent_agent(
        repo: Path, tmp_path: Path) -> None:
    spec = write(tmp_path, held_script(tmp_path))
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gitteam", "run", "do the task", "--model", spec,
                                 "--no-merge"], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, text=True, env={**_env(), "GITTEAM_HEARTBEAT": "0.2"})
    try:
        from pausing import wait_reached as held

        held(proc, tmp_path / "m1")
        _wait(lambda: "a: still coding" in log.read_text(), proc, log)
        text = log.read_text()
        beat = next(line for line in text.splitlines() if "a: still coding" in line)
        assert re.match(r"\d\d:\d\d:\d\d   a: still coding, round 1, step 1, waiting for its model, 1,200 tokens, "
                        r"\$0\.0060, \d+s$", beat), beat
        assert re.search(r"(?m)^\d\d:\d\d:\d\d   planner: planning$", text), text
        assert re.search(r"(?m)^\d\d:\d\d:\d\d   a: coding$", text), text
        assert "\x1b[" not in text  # not a terminal: no colour, no cursor movement

        # `show` during the run: the coder's file is written, not committed yet
        shown = subprocess.run([sys.executable, "-m", "gitteam", "show", run_id(repo), "a"], cwd=repo,
                               capture_output=True, text=True, check=True, env=_env())
        assert "uncommitted" in shown.stdout and "+first" in shown.stdout, shown.stdout
        assert "(no changes)" not in shown.stdout
    finally:
        release(tmp_path / "m1", tmp_path / "m2")
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, log.read_text()
    assert "no-merge" in out  # the result line: on stdout, where `| tee` keeps it


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "NO_COLOR"}


def _wait(check: Any, proc: subprocess.Popen[str], log: Path, seconds: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)


# --- the approval prompt -----------------------------------------------------------------------------------------

PROMPT = "Fast-forward main to the result?"
MENU = ["approve", "reject", "show the combined diff", "show one agent's diff", "request changes",
        "keep it pending"]


def choose(term: Terminal, title: str) -> None:
    """Move the prompt's pointer from the top to `title` and take it."""
    term.wait_text(PROMPT)
    term.keys(*(["Down"] * MENU.index(title)), "Enter")


def at_prompt(terminals: list[Terminal], tmp_path: Path, repo: Path, env: dict[str, str] | None = None) -> Terminal:
    spec = write(tmp_path, prompt_script())
    term = open_terminal(terminals, tmp_path, repo, "run", "do the task", "--model", spec, env=env)
    term.wait_text(PROMPT)
    return term


def test_the_prompt_shows_every_agents_work_then_approve_moves_the_target(repo: Path, tmp_path: Path,
                                                                          terminals: list[Terminal]) -> None:
    before = git(repo, "rev-parse", "main")
    term = at_prompt(terminals, tmp_path, repo)
    screen = term.history()
    assert re.search(r"Run \S+ is ready: 2 file\(s\) changed, \$0\.\d{4} spent \([\d,]+ tokens\)", screen), screen
    assert re.search(r"a\s+round 2\s+APPROVE fine now\s+\$0\.0\d+", screen), screen
    assert "did      added the end line" in screen and "files    a.txt" in screen
    assert "findings 1 minor, 1 info" in screen
    assert re.search(r"minor a\.txt:3 long\n\s+info a\.txt consider splitting", screen), screen
    assert re.search(r"b\s+round 1\s+APPROVE good", screen)
    assert "integration" in screen and "the parts fit" in screen
    assert "for scripts: --yes approves, --no-merge keeps the run pending" in screen
    # the live view stopped before the prompt: its table is in the scrollback once, not redrawn over the menu
    assert len(re.findall(r"(?m)^agent\s+state\s+round", screen)) == 1, screen
    term.keys("Down")
    term.wait_for(lambda s: "» reject" in s, "the pointer on reject")
    assert len(re.findall(r"(?m)^agent\s+state\s+round", term.history())) == 1

    term.keys("Up", "Enter")
    assert term.exit_code() == 0
    assert git(repo, "rev-parse", "main") != before
    assert git(repo, "show", "main:a.txt").endswith("end")


def test_reject_at_the_prompt_leaves_the_target_and_exits_5(repo: Path, tmp_path: Path,
                                                          terminals: list[Terminal]) -> None:
    before = git(repo, "rev-parse", "main")
    term = at_prompt(terminals, tmp_path, repo)
    choose(term, "reject")
    assert term.exit_code() == 5
    assert git(repo, "rev-parse", "main") == before
    assert journal_state(repo) == "rejected"


def test_the_combined_diff_is_coloured_and_paged_then_the_prompt_returns_and_keep_pending_exits_0(
        repo: Path, tmp_path: Path, terminals: list[Terminal]) -> None:
    before = git(repo, "rev-parse", "main")
    term = at_prompt(terminals, tmp_path, repo, env={"GITTEAM_PAGER": "less"})
    choose(term, "show the combined diff")
    paged = term.wait_text("+line 020")
    assert "+line 120" not in paged  # a screenful, the pager waiting for keys: not dumped into the scrollback
    styled = term.styled()  # added lines in green, hunk headers in cyan
    assert re.search(r"\x1b\[32m\+line 001\n(\+line \d{3}\n)*\+line 020", styled), styled
    assert re.search(r"\x1b\[36m(\x1b\[49m)?@@ -0,0 \+1,121 @@", styled), styled
    term.keys("q")
    term.wait_for(lambda s: PROMPT in s.splitlines()[-1] or PROMPT in s, "the prompt again")
    choose(term, "keep it pending")
    assert term.exit_code() == 0
    assert git(repo, "rev-parse", "main") == before
    assert journal_state(repo) == "pending"


def test_one_agents_diff_then_ctrl_c_leaves_the_run_pending_with_exit_130(repo: Path, tmp_path: Path,
                                                                        terminals: list[Terminal]) -> None:
    before = git(repo, "rev-parse", "main")
    term = at_prompt(terminals, tmp_path, repo, env={"GITTEAM_PAGER": "cat"})
    choose(term, "show one agent's diff")
    term.wait_text("Which agent's diff?")
    term.keys("Down", "Enter")  # a, then b
    term.wait_for(lambda s: "+bee" in s and re.search(r"/ b: b\.txt", s) is not None, "b's diff")
    term.wait_for(lambda s: s.rfind(PROMPT) > s.find("+bee") >= 0, "the prompt again, after the diff")
    term.keys("C-c")
    assert term.exit_code() == 130
    assert git(repo, "rev-parse", "main") == before
    assert journal_state(repo) == "pending"
    approved = subprocess.run([sys.executable, "-m", "gitteam", "approve", run_id(repo)], cwd=repo,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert approved.returncode == 0, approved.stderr
    assert git(repo, "show", "main:b.txt") == "bee"


def test_request_changes_sends_typed_feedback_to_the_chosen_coder_then_the_prompt_returns(
        repo: Path, tmp_path: Path, terminals: list[Terminal]) -> None:
    data = prompt_script()
    data["coder"]["b"] += [used(coder_writes("b.txt", "bee\nsecond line\n")), used(done("added a second line"))]
    data["reviewer"]["b"] += [approve("good again")]
    data["reviewer"]["*"] += [approve("still fits")] * 2
    spec = write(tmp_path, data)
    term = open_terminal(terminals, tmp_path, repo, "run", "do the task", "--model", spec,
                         env={"GITTEAM_PAGER": "cat"})
    choose(term, "request changes")
    term.wait_text("Send which subtasks back for another round?")
    term.keys("Down", "Space", "Enter")  # b only
    term.wait_text("What should b change?")
    term.keys("add a second line", "Enter")
    # b's coder runs another round, is reviewed again, and the prompt comes back with the new result
    term.wait_for(lambda s: s.rfind(PROMPT) > s.find("added a second line") >= 0,
                  "the prompt again, with b's new summary above it")
    choose(term, "approve")
    assert term.exit_code() == 0
    assert git(repo, "show", "main:b.txt") == "bee\nsecond line"
    run = run_id(repo)
    import json

    events = [json.loads(line) for line in
              (repo / ".git" / "gitteam" / "runs" / run / "events.jsonl").read_text().splitlines()]
    assert [e["feedback"] for e in events if e.get("event") == "rework"] == [{"b": "add a second line"}]
    transcript = (repo / ".git" / "gitteam" / "runs" / run / "transcripts" / "coder-b.jsonl").read_text()
    assert "add a second line" in transcript  # the typed words reached b's coder, in its conversation


def test_a_run_without_a_terminal_never_starts_the_live_view(repo: Path, tmp_path: Path) -> None:
    commit_files(repo, {"a.txt": "old\n"})
    spec = write(tmp_path, script([plan_turn([subtask("a", ["a.txt"])])],
                                  {"a": [used(coder_writes("a.txt", "new\n")), used(done())]}, prices=PRICES))
    proc = subprocess.run([sys.executable, "-m", "gitteam", "run", "t", "--model", spec, "--yes"], cwd=repo,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "agent  " not in proc.stderr and "\x1b[" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line and not line.startswith(" " * 9)]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines[:-1]), proc.stderr  # the result line is last


# --- the transcript in docs/terminal.md ------------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "terminal.md"
DOC_RUN = "add-a-greeting-5e0c1d"


def doc_script(tmp_path: Path) -> dict[str, Any]:
    """Three subtasks in two waves; the screen is read with a's coder and b's reviewer mid-call."""
    return script(
        [used(plan_turn([subtask("greet", ["greet.py"]), subtask("docs", ["README.md"]),
                         subtask("cli", ["cli.py"], depends_on=["greet"])], summary="a greeting"))],
        {"greet": [used(call("read_file", path="README.md")),
                   used(coder_writes("greet.py", "def greet(name):\n    return f'hello {name}'\n")),
                   paused(used(done("greet(name) returns the greeting")), tmp_path / "greet")],
         "docs": [used(coder_writes("README.md", "# project\n\nSay hello with greet.\n")),
                  used(done("documented greet"))],
         "cli": [used(coder_writes("cli.py", "from greet import greet\nprint(greet('you'))\n")),
                 used(done("a command line"))]},
        reviewer={"docs": [paused(used(approve("clear")), tmp_path / "review")],
                  "greet": [used(approve("right", [finding("greet.py", "no docstring", "minor", 1)]))],
                  "cli": [used(approve("small"))], "*": [used(approve("the parts fit"))]},
        prices=PRICES)


def normal(text: str, run: str = "") -> list[str]:
    """The screen's lines with what differs between two runs of the same script made the same: the run id,
    commit ids, durations, the blanks a column's width adds, and the order of lines that parallel agents print
    in either order."""
    if run:
        text = text.replace(run, DOC_RUN)
    text = re.sub(r"\b[0-9a-f]{10}\b", "0123456789", text)
    text = re.sub(r"\b(\d+h)?(\d+m)?\d+s\b", "1s", text)
    return sorted(re.sub(r" +", " ", line).rstrip() for line in text.splitlines() if line.strip())


def doc_block(name: str) -> str:
    found = re.search(rf"<!-- transcript: {name} -->\n```text\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/terminal.md has no transcript {name!r}"
    return found.group(1)


def screen_text(screen: str) -> str:
    return "\n".join(line.rstrip() for line in screen.rstrip().splitlines()) + "\n"


def test_the_transcript_in_the_docs_is_what_the_terminal_shows(repo: Path, tmp_path: Path,
                                                               terminals: list[Terminal]) -> None:
    """docs/terminal.md shows a live run as captured here; UPDATE_GOLDEN=1 writes the new capture into it."""
    import os

    script_file = repo.parent / "greeting.json"  # beside the repository: the models line reads the same anywhere
    script_file.write_text(__import__("json").dumps(doc_script(tmp_path)))
    term = Terminal(tmp_path, repo, gitteam("run", "add a greeting", "--model", "replay:../greeting.json"),
                    width=100, height=50)  # the whole run fits: no line scrolled out
    terminals.append(term)
    wait_reached(term, tmp_path / "greet")
    wait_reached(term, tmp_path / "review")
    live = term.wait_for(lambda s: "(thinking)" in row(s, "greet") and "reviewing" in s, "both held")
    release(tmp_path / "greet", tmp_path / "review")
    term.wait_text(PROMPT)
    asked = term.wait_for(lambda s: "keep it pending" in s, "the whole menu")
    run = run_id(repo)
    captured = {"live": screen_text(live), "prompt": screen_text(asked)}
    term.keys("Enter")
    assert term.exit_code() == 0
    if os.environ.get("UPDATE_GOLDEN"):
        text = DOC.read_text()
        for name, screen in captured.items():
            start = text.index(f"<!-- transcript: {name} -->\n```text\n")
            begin = text.index("```text\n", start) + len("```text\n")
            end = text.index("```", begin)
            text = text[:begin] + screen.replace(run, DOC_RUN) + text[end:]
        DOC.write_text(text)
    for name, screen in captured.items():
        assert normal(doc_block(name)) == normal(screen, run), (
            f"docs/terminal.md's {name} transcript is out of date: UPDATE_GOLDEN=1 .venv/bin/pytest "
            f"tests/test_terminal.py -k transcript, then review the diff")


def test_exactly_the_controls_bidi_separators_and_surrogates_are_shown() -> None:
    """The character classes are written as ranges: checked against the sets they stand for, code point by code
    point, around every edge of them (one string of all those code points)."""
    from gitteam.terminal import json_text, one_line, visible

    bidi = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
    c0 = {*range(0x20), 0x7F}
    others = {*range(0x80, 0xA0), *bidi, 0x2028, 0x2029, *range(0xD800, 0xE000)}
    codes = [*range(0x2100), *range(0xD700, 0xE100), *range(0xFFF0, 0x10010), *range(0x10FFF0, 0x110000)]

    def expected(shown_ones: set[int], show: Any) -> str:
        return "".join(show(c) if c in shown_ones else chr(c) for c in codes)

    def caret_or_code(code: int) -> str:
        return f"^{chr(code ^ 0x40)}" if code in c0 else f"<U+{code:04X}>"

    every = "".join(map(chr, codes))
    assert one_line(every) == expected((c0 | others) - {0x09}, caret_or_code)  # a tab stays a tab
    assert visible(every) == expected((c0 | others) - {0x09, 0x0A}, caret_or_code)
    assert json_text(every) == expected(others | {0x7F}, lambda code: f"\\u{code:04x}")

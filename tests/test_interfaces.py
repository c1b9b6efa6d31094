"""Shared interfaces between subtasks: `provides` / `consumes` in the plan, the dependencies they make, what
every coder is told of the plan, and what a dependent receives from the subtasks it waits for.

The end-to-end test is the issue's demo case: in the demo's calc repository, `power` and `cli` planned in
parallel, `cli` importing `calc.ops.power`, must land through the real `gitteam run`.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitteam.commands.demo import make_repository
from gitteam.plan import Plan, PlanError, parse_plan, waves
from scripts import (
    approve,
    blob,
    cli,
    coder_edits,
    coder_writes,
    done,
    events,
    only_run,
    plan_turn,
    script,
    sha,
    turn,
    write_script,
)

POWER = "calc/ops.py: def power(base: float, exp: int) -> float"


def sub(id: str, files: list[str], **more: object) -> dict[str, object]:
    return {"id": id, "title": f"Subtask {id}", "instructions": f"Do {id}.", "files": files, **more}


def problems(raw: object) -> list[str]:
    with pytest.raises(PlanError) as caught:
        parse_plan(raw)
    return caught.value.problems


# --- the plan ---------------------------------------------------------------------------------------------

def test_a_consume_of_a_siblings_provide_makes_the_consumer_wait_for_it() -> None:
    plan = parse_plan({"subtasks": [sub("cli", ["calc/cli.py"], consumes=["calc/ops.py:  def power(base, exp)"]),
                                    sub("power", ["calc/ops.py"], provides=[POWER]),
                                    sub("docs", ["README.md"], consumes=["calc/ops.py: def add(a, b)"])]})
    assert plan.by_id()["cli"].depends_on == ("power",)
    assert plan.by_id()["docs"].depends_on == ()  # add() is provided by no subtask: the repository's own
    assert [[s.id for s in wave] for wave in waves(plan)] == [["power", "docs"], ["cli"]]
    assert Plan.from_json(plan.to_json()) == plan  # what the journal keeps, read back


def test_a_plan_without_interfaces_reads_and_stores_as_before() -> None:
    plan = parse_plan({"subtasks": [sub("a", ["a.py"]), sub("b", ["b.py"], depends_on=["a"])]})
    assert plan.to_json()["subtasks"][1] == {"id": "b", "title": "Subtask b", "instructions": "Do b.",
                                             "files": ["b.py"], "depends_on": ["a"]}


def test_interfaces_that_do_not_hold_together_are_sent_back_to_the_planner() -> None:
    found = problems({"subtasks": [
        sub("power", ["calc/ops.py"], provides=["calc/other.py: def power(a, b)", "no signature here"]),
        sub("cli", ["calc/cli.py"], provides="calc/cli.py: def main()"),
    ]})
    assert any('provides "calc/other.py: def power(a, b)", but calc/other.py is not one of its files' in p
               for p in found)
    assert any('"no signature here" is not "path: signature"' in p for p in found)
    assert any('"provides" must be a list' in p for p in found)


def test_subtasks_consuming_each_others_provides_are_a_cycle() -> None:
    found = problems({"subtasks": [
        sub("a", ["a.py"], provides=["a.py: def f()"], consumes=["b.py: def g()"]),
        sub("b", ["b.py"], provides=["b.py: def g()"], consumes=["a.py: def f()"]),
    ]})
    assert any("dependency cycle" in p and "consuming a sibling's provides" in p for p in found)


def test_gitteam_plan_shows_the_interfaces_and_the_wave_they_make(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "calc")
    path = write_script(tmp_path / "plan.json", script([demo_script()["planner"][0]], {}))
    shown = cli(root, "plan", "Add power and a command line", "--planner", f"replay:{path}")

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.index("wave 1") < out.index("power: Subtask power") < out.index(f"provides: {POWER}") < \
        out.index("wave 2") < out.index("cli: Subtask cli (after power)") < out.index(f"consumes: {POWER}")


# --- the demo repository, power and cli planned in parallel ----------------------------------------------

OPS_TAIL = "def subtract(a: float, b: float) -> float:\n    return a - b\n"
POWER_CODE = OPS_TAIL + "\n\ndef power(base: float, exp: int) -> float:\n    return base ** exp\n"
CLI = ('"""python -m calc.cli OPERATION A B"""\n\nimport sys\n\nfrom calc.ops import add, power, subtract\n\n\n'
       "def main(argv: list[str]) -> int:\n"
       "    operation, a, b = argv\n"
       "    if operation == 'power':\n        print(power(float(a), int(b)))\n"
       "    else:\n        print({'add': add, 'subtract': subtract}[operation](float(a), float(b)))\n"
       "    return 0\n\n\nif __name__ == '__main__':\n    sys.exit(main(sys.argv[1:]))\n")
CLI_TEST = ("import contextlib\nimport io\nimport unittest\n\nfrom calc.cli import main\n\n\n"
            "class CliTest(unittest.TestCase):\n    def test_power(self) -> None:\n"
            "        out = io.StringIO()\n        with contextlib.redirect_stdout(out):\n"
            "            self.assertEqual(main(['power', '2', '10']), 0)\n"
            "        self.assertEqual(out.getvalue(), '1024.0\\n')\n")


def demo_script() -> dict[str, object]:
    plan = plan_turn([
        sub("power", ["calc/ops.py", "tests/test_ops.py"], provides=[POWER],
            instructions="Add power to calc/ops.py with a test."),
        sub("cli", ["calc/cli.py", "tests/test_cli.py"], consumes=[POWER],
            instructions="Create calc/cli.py (main(argv) -> int) and tests/test_cli.py; power comes from calc.ops."),
    ])
    return script([plan], {
        "power": [turn(coder_edits("calc/ops.py", OPS_TAIL, POWER_CODE),
                       coder_edits("tests/test_ops.py", "from calc.ops import add, subtract",
                                   "from calc.ops import add, power, subtract"),
                       coder_edits("tests/test_ops.py", "        self.assertEqual(subtract(2, 3), -1)\n",
                                   "        self.assertEqual(subtract(2, 3), -1)\n\n    def test_power(self) -> None:\n"
                                   "        self.assertEqual(power(2, 10), 1024)\n")),
                  done("power(base, exp) in calc.ops; base ** exp, exp an int")],
        "cli": [turn(coder_writes("calc/cli.py", CLI), coder_writes("tests/test_cli.py", CLI_TEST)),
                done("calc.cli.main(argv) -> int")],
    }, {"*": [approve()]})


def test_the_demo_repository_with_power_and_cli_planned_in_parallel_lands(tmp_path: Path) -> None:
    root = make_repository(tmp_path / "calc")
    path = write_script(tmp_path / "script.json", demo_script())
    ran = cli(root, "run", "Add power and a command line", "--yes", "--model", f"replay:{path}")

    assert ran.returncode == 0, ran.stderr
    run = only_run(root)
    # cli waited for power: its worktree started from the integration branch with power merged
    planned = events(root, run, "plan")[0]
    assert planned["waves"] == [["power"], ["cli"]]
    started = {e["agent"]: e["base"] for e in events(root, run, "agent_started")}
    assert b"def power(" in (blob(root, started["cli"], "calc/ops.py") or b"")
    # and its own gate, the test command included, passed at the first round
    reviews = [e for e in events(root, run, "review") if e["agent"] == "cli"]
    assert [(e["round"], e["verdict"]["decision"]) for e in reviews] == [(1, "APPROVE")]
    assert b"from calc.ops import add, power, subtract" in (blob(root, "main", "calc/cli.py") or b"")
    assert b"def power(" in (blob(root, "main", "calc/ops.py") or b"")
    assert sha(root, "main") == sha(root, f"gitteam/{run}/integration")
    landed = subprocess.run([sys.executable, "-m", "unittest", "discover", "-q"], cwd=root,
                                          capture_output=True, text=True)
    assert landed.returncode == 0 and "Ran 4 tests" in landed.stderr, landed.stderr

    # every coder saw the whole plan; cli got power's handoff: the interface as merged and the files it changed
    for agent in ("power", "cli"):
        plan = fenced(first_message(root, run, agent), "plan")
        assert [(s["id"], s.get("yours", False)) for s in plan] == [("power", agent == "power"),
                                                                   ("cli", agent == "cli")]
        assert plan[0]["provides"] == [POWER] and plan[1]["consumes"] == [POWER]
    [power] = fenced(first_message(root, run, "cli"), "dependencies_done")
    assert power["interfaces_as_merged"] == ["calc/ops.py: def power(base: float, exp: int) -> float"]
    assert power["files_changed"] == ["calc/ops.py", "tests/test_ops.py"]
    assert power["summary"] == "power(base, exp) in calc.ops; base ** exp, exp an int"


def first_message(root: Path, run: str, agent: str) -> str:
    """The first message the agent's model received, from its transcript."""
    path = root / ".git" / "gitteam" / "runs" / run / "transcripts" / f"coder-{agent}.jsonl"
    for line in path.read_text().splitlines():
        for message in json.loads(line).get("messages", []):
            if message.get("role") == "user":
                return str(message.get("content"))
    raise AssertionError(f"no request in {path}")


def fenced(text: str, tag: str) -> Any:
    """The JSON inside one fenced part of a prompt."""
    found = re.search(rf'<{tag}[^>]*nonce="(\w+)">\n(.*?)</{tag} nonce="\1">', text, re.DOTALL)
    assert found is not None, f"no <{tag}> in the message"
    return json.loads(html.unescape(found.group(2)))


def test_a_handoff_shows_the_signature_as_merged_when_it_drifted_from_the_plan(tmp_path: Path) -> None:
    from conftest import commit_files
    from gitteam.git import find_repository
    from gitteam.plan import Subtask
    from gitteam.run.handoff import handoff

    root = make_repository(tmp_path / "calc")
    repo = find_repository(root)
    base = repo.rev_parse("HEAD")
    assert base is not None
    head = commit_files(root, {"calc/ops.py": POWER_CODE.replace("def power(base: float, exp: int)",
                                                                 "def power(x: float, n: float)")})
    power = Subtask("power", "Power", "Add power.", ("calc/ops.py",), provides=(POWER, "calc/ops.py: def root(x)"))
    handed = handoff(repo, power, base, head, "added power")

    assert handed.interfaces == ("calc/ops.py: def power(x: float, n: float) -> float",)  # root was never written
    assert handed.files_changed == ("calc/ops.py",) and handed.to_json()["provides"] == list(power.provides)

"""The scripted team: for a task and a scenario, the `replay:` script of every agent of a run.

Each scenario is one mistake real models make, put in one agent's turns; the rest of the team behaves well.
The script says what a model would say; gitteam does all the rest for real (tools, guards, commits, checks,
review rounds, merges), so the outcome measures the coordination, not a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gitteam.plan import PlanError, parse_plan
from gitteam.review.verdict import Finding
from tasks import TEST_COMMAND, Function, Task, cli_source, cli_test_source, module_source, readme_source, test_source

Turn = dict[str, Any]
PRICES = {"input": 3.0, "output": 15.0}  # USD per million tokens, so the table's cost is a real sum
USAGE = {"planner": (2000, 400), "coder": (1500, 200), "reviewer": (2500, 150)}  # tokens per turn, fixed

SCENARIOS: dict[str, str] = {
    "correct": "every agent right the first time; the consumer waits for the provider (depends_on)",
    "failing-test": "the provider forgets its `return`, runs the tests, sees them fail and fixes it",
    "missed-file": "the consumer writes its test but not its module, and says done",
    "wrong-signature": "the provider names the shared function differently; the reviewer catches it",
    "wrong-signature-unfixed": "as wrong-signature, but the coder argues instead of fixing it",
    "nitpick": "the provider's reviewer requests changes twice with minor findings only",
    "outside-files": "the consumer first edits the provider's file (not its own)",
    "parallel": "the planner leaves out depends_on: the consumer is planned beside the provider it imports",
}
MISTAKES = tuple(name for name in SCENARIOS if name != "correct")


def _turn(role: str, *calls: tuple[str, dict[str, Any]], say: str = "") -> Turn:
    inp, out = USAGE[role]
    data: Turn = {"tool_calls": [{"name": name, "arguments": args} for name, args in calls],
                  "usage": {"input_tokens": inp, "output_tokens": out}}
    if say:
        data["say"] = say
    return data


def _write(path: str, content: str) -> tuple[str, dict[str, Any]]:
    return "write_file", {"path": path, "content": content}


def _run() -> tuple[str, dict[str, Any]]:
    return "run", {"command": TEST_COMMAND}


def _done(summary: str) -> tuple[str, dict[str, Any]]:
    return "done", {"summary": summary}


def _review(decision: str, summary: str, *findings: dict[str, Any]) -> Turn:
    return _turn("reviewer", ("submit_review", {"decision": decision, "summary": summary, "findings": list(findings)}))


def _finding(file: str, severity: str, message: str, evidence: str, line: int = 4) -> dict[str, Any]:
    data = {"file": file, "line": line, "severity": severity, "message": message}
    if evidence_supported():
        data["evidence"] = evidence
    return data


def evidence_supported() -> bool:
    """Whether this gitteam's findings quote their `evidence` (a major one without it does not cost a round)."""
    return "evidence" in {f.name for f in dataclasses.fields(Finding)}


def interfaces_supported() -> bool:
    """Whether this gitteam's plans declare shared interfaces (`provides`/`consumes` on a subtask)."""
    probe = {"id": "a", "title": "t", "instructions": "i", "files": ["a.py"], "provides": ["a.py: def f() -> int"]}
    try:
        parse_plan({"subtasks": [probe]})
    except PlanError:
        return False
    return True


# --- the plan ----------------------------------------------------------------------------------------------

def plan(task: Task, parallel: bool) -> dict[str, Any]:
    """`submit_plan`'s arguments: the provider, the consumer on top of it, the docs and the command line.
    In waves the consumer depends on the provider (and the CLI on the consumer); in parallel none waits, and
    where gitteam supports it each subtask declares the interfaces it provides and consumes."""
    p, c = task.provider, task.consumer
    declare = parallel and interfaces_supported()

    def item(id: str, title: str, files: list[str], instructions: str, depends: list[str],
             provides: list[str], consumes: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = {"id": id, "title": title, "instructions": instructions, "files": files}
        if depends and not parallel:
            data["depends_on"] = depends
        if declare:
            data.update({key: value for key, value in (("provides", provides), ("consumes", consumes)) if value})
        return data

    subtasks = [
        item("provider", f"Add {p.name}", [task.path(p), task.test_path(p)],
             f"Add `{p.signature}` to {task.path(p)}: it returns {p.body}. Test it in {task.test_path(p)}.",
             [], [task.interface(p)], []),
        item("consumer", f"Add {c.name} on top of {p.name}", [task.path(c), task.test_path(c)],
             f"Add `{c.signature}` to {task.path(c)}, calling `{p.signature}` from {task.path(p)}: it returns "
             f"{c.body}. Test it in {task.test_path(c)}.", ["provider"], [task.interface(c)], [task.interface(p)]),
    ]
    if task.docs:
        subtasks.append(item("docs", "Document the API", ["README.md"],
                             f"Add an API section to README.md listing `{p.signature}` and `{c.signature}`"
                             + (" and a Command line section." if task.cli else "."), [], [],
                             [task.interface(p), task.interface(c)]))
    if task.cli:
        subtasks.append(item("cli", "Command line", [f"{task.package}/cli.py", "tests/test_cli.py"],
                             f"Create {task.package}/cli.py with `main(argv: list[str]) -> int` printing "
                             f"`{c.name}({task.cli.args})`; test it in tests/test_cli.py.", ["consumer"],
                             [f"{task.package}/cli.py: def main(argv: list[str]) -> int"], [task.interface(c)]))
    shape = "in parallel, sharing the declared interfaces" if parallel else "the consumer after the provider"
    return {"summary": f"{len(subtasks)} file-disjoint subtasks, {shape}.", "subtasks": subtasks}


# --- the coders ----------------------------------------------------------------------------------------------

def _module_turns(task: Task, function: Function) -> list[Turn]:
    """A coder that gets it right: the module and its test, the tests run, done."""
    return [
        _turn("coder", _write(task.path(function), module_source(task, function)),
              _write(task.test_path(function), test_source(task, function))),
        _turn("coder", _run()),
        _turn("coder", _done(f"Added `{function.signature}` in {task.path(function)}, tested in "
                             f"{task.test_path(function)}.")),
    ]


def _docs_turns(task: Task) -> list[Turn]:
    return [_turn("coder", _write("README.md", readme_source(task))),
            _turn("coder", _done("README.md lists the API."))]


def _cli_turns(task: Task) -> list[Turn]:
    return [_turn("coder", _write(f"{task.package}/cli.py", cli_source(task)),
                  _write("tests/test_cli.py", cli_test_source(task))),
            _turn("coder", _run()),
            _turn("coder", _done(f"{task.package}/cli.py main(argv) prints the consumer's result; tested."))]


def _again(reason: str) -> list[Turn]:
    """A second round of a coder that cannot (or will not) change anything: it checks and argues."""
    return [_turn("coder", _run()), _turn("coder", _done(reason))]


def _failing_test(task: Task, coders: dict[str, list[Turn]]) -> None:
    p = task.provider
    coders["provider"] = [
        _turn("coder", _write(task.path(p), module_source(task, p, body=f"result = {p.body}")),
              _write(task.test_path(p), test_source(task, p))),
        _turn("coder", _run()),
        _turn("coder", _write(task.path(p), module_source(task, p)),
              say=f"The test got None: {p.name} computes the result but never returns it."),
        *_module_turns(task, p)[1:],
    ]


def _missed_file(task: Task, coders: dict[str, list[Turn]]) -> None:
    c = task.consumer
    coders["consumer"] = [
        _turn("coder", _write(task.test_path(c), test_source(task, c))),
        _turn("coder", _done(f"Added `{c.signature}` and its test.")),
        _turn("coder", _write(task.path(c), module_source(task, c)),
              say=f"{task.path(c)} was never written; adding it."),
        *_module_turns(task, c)[1:],
    ]


def _wrong_name(task: Task) -> list[Turn]:
    p = task.provider
    wrong = f"get_{p.name}"
    return [
        _turn("coder", _write(task.path(p), module_source(task, p, name=wrong)),
              _write(task.test_path(p), test_source(task, p, name=wrong))),
        _turn("coder", _run()),
        _turn("coder", _done(f"Added `{wrong}` in {task.path(p)}, tested.")),
    ]


def _signature_finding(task: Task) -> dict[str, Any]:
    p = task.provider
    return _finding(task.path(p), "major", f"The plan's interface is `{p.signature}`, which the consumer imports; "
                                            f"this defines `get_{p.name}` instead, so `from {task.package}."
                                            f"{p.module} import {p.name}` fails.",
                    evidence=f"def get_{p.name}({p.params}) -> {p.returns}:")


def _wrong_signature(task: Task, coders: dict[str, list[Turn]], reviewers: dict[str, list[Turn]]) -> None:
    coders["provider"] = [*_wrong_name(task), *_module_turns(task, task.provider)]
    reviewers["provider"] = [_review("REQUEST_CHANGES", "The shared function has the wrong name.",
                                     _signature_finding(task)),
                             _review("APPROVE", "The interface matches the plan now.")]


def _wrong_signature_unfixed(task: Task, coders: dict[str, list[Turn]], reviewers: dict[str, list[Turn]]) -> None:
    p = task.provider
    coders["provider"] = [*_wrong_name(task), *_again(f"`get_{p.name}` is the clearer name; nothing to change.")]
    reviewers["provider"] = [_review("REQUEST_CHANGES", "The shared function has the wrong name.",
                                     _signature_finding(task))] * 2


def _nitpick(task: Task, coders: dict[str, list[Turn]], reviewers: dict[str, list[Turn]]) -> None:
    p = task.provider
    coders["provider"] = [*_module_turns(task, p), *_again(
        "AGENTS.md asks for small typed functions with tests, not docstrings or longer names; nothing to change.")]
    reviewers["provider"] = [
        _review("REQUEST_CHANGES", "Please polish.",
                _finding(task.path(p), "minor", f"{p.name} has no docstring.", evidence=p.signature)),
        _review("REQUEST_CHANGES", "Still a few nits.",
                _finding(task.path(p), "minor", f"The parameter names of {p.name} could be more descriptive.",
                         evidence=p.signature)),
    ]


def _outside_files(task: Task, coders: dict[str, list[Turn]]) -> None:
    p, c = task.provider, task.consumer
    helper = module_source(task, p).rstrip("\n") + f"\n\n\ndef {c.name}_helper() -> None:\n    return None\n"
    coders["consumer"] = [
        _turn("coder", _write(task.path(p), helper), say=f"A helper for {c.name} belongs beside {p.name}."),
        *_module_turns(task, c),
    ]


def _parallel(task: Task, coders: dict[str, list[Turn]]) -> None:
    waiting = "My module imports the sibling subtask's interface, which is not in my worktree yet."
    for id in ("consumer", "cli"):
        if id in coders:
            coders[id] = [*coders[id], *_again(waiting)]


CoderMistake = Callable[[Task, dict[str, list[Turn]]], None]
ReviewMistake = Callable[[Task, dict[str, list[Turn]], dict[str, list[Turn]]], None]
_CODER_MISTAKES: dict[str, CoderMistake] = {
    "failing-test": _failing_test, "missed-file": _missed_file, "outside-files": _outside_files,
    "parallel": _parallel,
}
_REVIEW_MISTAKES: dict[str, ReviewMistake] = {
    "wrong-signature": _wrong_signature, "wrong-signature-unfixed": _wrong_signature_unfixed, "nitpick": _nitpick,
}


def script(task: Task, scenario: str) -> dict[str, Any]:
    """The whole `replay:` script of one run."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; the scenarios are {', '.join(SCENARIOS)}")
    coders: dict[str, list[Turn]] = {"provider": _module_turns(task, task.provider),
                                     "consumer": _module_turns(task, task.consumer)}
    if task.docs:
        coders["docs"] = _docs_turns(task)
    if task.cli:
        coders["cli"] = _cli_turns(task)
    reviewers: dict[str, list[Turn]] = {"*": [_review("APPROVE", "Correct and tested.")] * 2,
                                        "integration": [_review("APPROVE", "The parts fit together.")] * 2}
    if scenario in _CODER_MISTAKES:
        _CODER_MISTAKES[scenario](task, coders)
    elif scenario in _REVIEW_MISTAKES:
        _REVIEW_MISTAKES[scenario](task, coders, reviewers)
    planner = [_turn("planner", ("list_files", {})),
               _turn("planner", ("submit_plan", plan(task, parallel=scenario == "parallel")))]
    return {"gitteam_replay": 1, "description": f"team suite: {task.id}, {scenario}", "prices": PRICES,
            "planner": planner, "coder": coders, "reviewer": reviewers}

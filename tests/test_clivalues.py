"""Option values converted without pydantic (gitteam.clivalues): the same values and the same refusals as typer's
own conversion, for every kind of parameter gitteam's commands declare, and no pydantic in a command's process.

The comparison runs one throwaway typer app twice, through typer's own command classes and through gitteam's
(cli.PlainUsage, cli.PlainGroup), so a typer release that converts differently fails here first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.core import TyperCommand, TyperGroup

from gitteam.cli import PlainGroup, PlainUsage
from scripts import in_process


def app_with(command_class: type[TyperCommand], group_class: type[TyperGroup], seen: dict[str, Any]) -> typer.Typer:
    """One command with a parameter of each kind gitteam's commands use (see `kinds` in the test below)."""
    app = typer.Typer(cls=group_class)

    @app.callback()
    def top(verbose: Annotated[bool, typer.Option("--verbose", envvar="CLIVALUES_VERBOSE")] = False) -> None:
        seen["verbose"] = verbose

    @app.command(cls=command_class)
    def go(
        name: Annotated[str, typer.Argument()],
        text: Annotated[str | None, typer.Option("--text")] = None,
        count: Annotated[int | None, typer.Option("--count", min=1)] = None,
        limit: Annotated[int, typer.Option("--limit", min=0, max=10)] = 3,
        amount: Annotated[float | None, typer.Option("--amount")] = None,
        share: Annotated[float, typer.Option("--share", min=0)] = 0.5,
        where: Annotated[Path | None, typer.Option("--where")] = None,
        many: Annotated[list[str] | None, typer.Option("--many")] = None,
        flag: Annotated[bool, typer.Option("--flag")] = False,
    ) -> None:
        seen.update(name=name, text=text, count=count, limit=limit, amount=amount, share=share, where=where,
                    many=many, flag=flag)

    @app.command(cls=command_class)
    def other() -> None:  # a second command, so that `go` stays a subcommand
        pass

    return app


def outcome(command_class: type[TyperCommand], group_class: type[TyperGroup], args: list[str]) -> Any:
    """What the command received, typed, or "refused" for a bad-usage error."""
    seen: dict[str, Any] = {}
    command = typer.main.get_command(app_with(command_class, group_class, seen))
    try:
        command.main(args, prog_name="t", standalone_mode=False)
    except typer.BadParameter:
        return "refused"
    except Exception as exc:  # noqa: BLE001 - any usage error counts as a refusal; its type is compared below
        return f"refused: {type(exc).__name__}"
    return {key: (type(value).__name__, value) for key, value in seen.items()}


UNREADABLE = "unreadable-dir"  # refused by both, unless the tests run as root, who reads it


@pytest.mark.parametrize("args", [
    ["go", "n"],
    ["go", ""],
    ["go", "n", "--text", ""],
    ["go", "n", "--text", "  spaced  "],
    ["go", "n", "--text", "ünïcödé"],
    ["go", "n", "--count", "3"],
    ["go", "n", "--count", " 3 "],
    ["go", "n", "--count", "+3"],
    ["go", "n", "--count", "007"],
    ["go", "n", "--count", "0"],
    ["go", "n", "--count", "-2"],
    ["go", "n", "--count", "abc"],
    ["go", "n", "--count", "2.5"],
    ["go", "n", "--count", "1e3"],
    ["go", "n", "--count", "\uff13"],  # a full-width digit: Python's int() takes it
    ["go", "n", "--count", ""],
    ["go", "n", "--limit", "10"],
    ["go", "n", "--limit", "11"],
    ["go", "n", "--limit", "0"],
    ["go", "n", "--amount", "2.5"],
    ["go", "n", "--amount", "-1"],
    ["go", "n", "--amount", "1e3"],
    ["go", "n", "--amount", "3"],
    ["go", "n", "--amount", "inf"],
    ["go", "n", "--amount", "abc"],
    ["go", "n", "--amount", ""],
    ["go", "n", "--share", "-0.1"],
    ["go", "n", "--share", "0"],
    ["go", "n", "--where", "some/where"],
    ["go", "n", "--where", "."],
    ["go", "n", "--where", UNREADABLE],
    ["go", "n", "--many", "a"],
    ["go", "n", "--many", "a", "--many", "b", "--many", ""],
    ["go", "n", "--flag"],
    ["--verbose", "go", "n"],
])
def test_values_and_refusals_are_typers_own(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / UNREADABLE).mkdir(mode=0)
    assert outcome(PlainUsage, PlainGroup, args) == outcome(TyperCommand, TyperGroup, args)


@pytest.mark.parametrize(("variable", "expected"), [("1", True), ("yes", True), ("off", False), ("", False),
                                                    ("maybe", "refused")])
def test_a_flag_from_the_environment_is_read_as_typer_reads_it(variable: str, expected: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIVALUES_VERBOSE", variable)
    ours = outcome(PlainUsage, PlainGroup, ["go", "n"])
    theirs = outcome(TyperCommand, TyperGroup, ["go", "n"])
    assert ours == theirs
    assert (ours if ours == "refused" else ours["verbose"][1]) == expected


def test_nan_is_refused_where_typer_took_it() -> None:
    """A budget of nan compares false with every spend, so it would never be reached: refused on purpose."""
    assert outcome(TyperCommand, TyperGroup, ["go", "n", "--amount", "nan"]) != "refused"
    assert outcome(PlainUsage, PlainGroup, ["go", "n", "--amount", "nan"]) == "refused"


def test_a_command_imports_no_pydantic(tmp_path: Path) -> None:
    """The point of it all: a command's whole parse, every kind of option given, never imports pydantic."""
    proc = in_process(tmp_path, ["run", "--repo", str(tmp_path / "not-a-repo"), "--max-agents", "3", "--budget", "2.5",
                                 "--allow-protected", "ci.yml", "--model", "replay:x", "--yes", "--quiet", "the task"],
                      after="print(code, 'pydantic' in sys.modules)\n")
    assert proc.stdout.split() == ["2", "False"], (proc.stdout, proc.stderr)
    assert "not a git repository" in proc.stderr  # it got past the parse, to the repository


def test_a_typer_whose_hook_differs_keeps_its_own_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Written against typer's internals: when they are not what `_hook_fits` expects, nothing is installed and
    typer converts as it always did (here: the pydantic path, a float for --amount and a refusal for 0)."""
    from gitteam import clivalues

    assert clivalues._hook_fits()  # the typer these tests run with is the one it was written for
    monkeypatch.setattr(clivalues, "_hook_fits", lambda: False)
    seen: dict[str, Any] = {}
    command = typer.main.get_command(app_with(PlainUsage, PlainGroup, seen))
    command.main(["go", "n", "--amount", "2.5"], prog_name="t", standalone_mode=False)
    param = next(p for p in command.commands["go"].params if p.name == "amount")
    assert not isinstance(param._runtime_param, clivalues.PlainValue)
    assert seen["amount"] == 2.5
    assert outcome(PlainUsage, PlainGroup, ["go", "n", "--count", "0"]) == "refused"

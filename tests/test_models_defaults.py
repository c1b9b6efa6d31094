"""Sensible defaults: with only a provider's key set, each role gets a current model of that provider and the
run says which; without key or model, one line says how to configure one; unknown prices are reported as
unknown, not as $0."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from crews import home
from fakeapi import serve
from gitteam.config import load_config
from gitteam.models.catalog import DEFAULTS, context_tokens, default_spec
from gitteam.models.prices import builtin_prices
from gitteam.models.registry import Registry
from loopback import Team, call, model_table, plan, roles, run, subtask, turn, write_user_config
from scripts import blob, cli, events, only_run

pytestmark = pytest.mark.usefixtures("loopback_env")


def sdk_models() -> set[str]:
    from anthropic.types.model_param import ModelParam
    from openai.types.shared.chat_model import ChatModel

    literal_anthropic = typing.get_args(ModelParam)[0]
    return set(typing.get_args(literal_anthropic)) | set(typing.get_args(ChatModel))


def test_every_default_model_is_listed_by_its_sdk_and_priced() -> None:
    listed = sdk_models()
    for provider, by_role in DEFAULTS.items():
        assert set(by_role) == {"planner", "coder", "reviewer"}
        for role, (model, cheaper) in by_role.items():
            for model_id in (model, cheaper):
                assert model_id in listed, (provider, role, model_id)
                assert builtin_prices(model_id) is not None, model_id
            assert builtin_prices(cheaper).output < builtin_prices(model).output  # type: ignore[union-attr]
        # the reviewer is stronger (dearer) than the coders; the planner is strong
        reviewer, coder, planner = (builtin_prices(by_role[r][0]) for r in ("reviewer", "coder", "planner"))
        assert reviewer and coder and planner and reviewer.output > coder.output and planner.output >= coder.output


def test_a_key_picks_its_provider_and_anthropic_wins_when_both_are_set() -> None:
    assert default_spec("coder", False, {"OPENAI_API_KEY": "k"}) == "openai:gpt-5.4"
    assert default_spec("coder", True, {"OPENAI_API_KEY": "k"}) == "openai:gpt-5.4-mini"
    both = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    assert default_spec("reviewer", False, both) == "anthropic:claude-opus-4-8"
    assert default_spec("planner", False, {"ANTHROPIC_API_KEY": " "}) == ""
    assert context_tokens("claude-sonnet-4-6") == 200_000 and context_tokens("qwen2.5-coder:14b") == 32_768


def test_configured_roles_win_over_the_defaults(tmp_path: Path) -> None:
    config = load_config(None, {"roles.coder": "openai:gpt-5.4-nano"}, env={})
    registry = Registry(config, tmp_path, environ={"ANTHROPIC_API_KEY": "k"})
    assert registry.specs() == {
        "models": {"planner": "anthropic:claude-opus-4-8", "coder": "openai:gpt-5.4-nano",
                   "reviewer": "anthropic:claude-opus-4-8"},
        "economy": {"planner": "anthropic:claude-sonnet-4-6", "coder": "openai:gpt-5.4-nano",
                    "reviewer": "anthropic:claude-sonnet-4-6"},
    }


def test_only_an_anthropic_key_runs_the_whole_team_on_current_models(repo: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with serve() as api:
        crew = Team(api, "anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="A = 1\n"), call("done", summary="a")))

        ran = cli(repo, "run", "set A", "--yes")

        assert ran.returncode == 0, ran.stderr
        assert crew.models("planner") == ["claude-opus-4-8"]
        assert crew.models("coder") == ["claude-sonnet-4-6"]
        assert set(crew.models("reviewer")) == {"claude-opus-4-8"}
        assert ("models: planner anthropic:claude-opus-4-8 (economy anthropic:claude-sonnet-4-6), coder "
                "anthropic:claude-sonnet-4-6 (economy anthropic:claude-haiku-4-5), reviewer anthropic:claude-opus-4-8 "
                "(economy anthropic:claude-sonnet-4-6)") in " ".join(ran.stderr.split())
        assert blob(repo, "main", "src/app.py") == b"A = 1\n"


def test_only_an_openai_key_serves_every_role_with_openai(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with serve() as api:
        crew = Team(api, "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{api.url}/v1")
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="B = 1\n"), call("done", summary="b")))

        result = run(repo)

        assert result.exit_code == 0, result.message
        assert (crew.models("planner"), crew.models("coder")) == (["gpt-5.5"], ["gpt-5.4"])
        [started] = events(repo, result.run, "run_started")
        assert started["options"]["models"] == {"planner": "openai:gpt-5.5", "coder": "openai:gpt-5.4",
                                                "reviewer": "openai:gpt-5.5"}
        assert started["options"]["economy"]["coder"] == "openai:gpt-5.4-mini"


def test_no_key_and_no_model_is_one_line_and_exit_2(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY")

    ran = cli(repo, "run", "anything", "--yes")

    assert ran.returncode == 2
    [line] = ran.stderr.strip().splitlines()
    assert "set ANTHROPIC_API_KEY or OPENAI_API_KEY" in line and "gitteam demo" in line


@pytest.mark.parametrize(("spec", "variable"), [("anthropic:claude-sonnet-4-6", "ANTHROPIC_API_KEY"),
                                                ("openai:gpt-5.4", "OPENAI_API_KEY")])
def test_a_missing_key_is_one_line_naming_the_variable_and_exit_2(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  spec: str, variable: str) -> None:
    monkeypatch.delenv(variable)

    ran = cli(repo, "run", "anything", "--yes", "--model", spec)

    assert ran.returncode == 2
    [line] = ran.stderr.strip().splitlines()
    assert f"{variable} is not set" in line
    assert not (repo / ".git" / "gitteam" / "runs").exists()  # nothing started


def test_an_unpriced_model_counts_tokens_and_reports_its_cost_as_unknown(repo: Path) -> None:
    with serve() as api:
        crew = Team(api, "anthropic")
        table = model_table("odd", "anthropic", api.url, "claude-unlisted-9")
        table = "\n".join(line for line in table.splitlines() if "price" not in line) + "\n"
        write_user_config(home(), table + roles("odd"))
        crew.planner(plan(subtask("work", ["src/app.py"])))
        crew.coder("work", turn(call("write_file", path="src/app.py", content="C = 1\n"), call("done", summary="c")))

        ran = cli(repo, "run", "set C", "--yes")

        assert ran.returncode == 0, ran.stderr
        assert ran.stderr.count("no price known for anthropic:claude-unlisted-9") == 1
        run_id = only_run(repo)
        rows = json.loads(cli(repo, "cost", run_id, "--json").stdout)
        assert rows and all(r["cost"] is None and r["cost_known"] is False for r in rows)
        assert all(r["input_tokens"] > 0 for r in rows)
        text = cli(repo, "cost", run_id).stdout
        assert "unknown" in text and "$0" not in text
        assert "total unknown (3 call(s)" in " ".join(text.split())

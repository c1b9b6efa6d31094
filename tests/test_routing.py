"""Routing by priority: the planner gives each subtask a priority, [routing] gives each priority its models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gitteam.plan import PlanError, parse_plan
from scripts import call, done, note, plan_turn, script, subtask, write_script


def gitteam(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitteam", *args], cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def user_config(text: str) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "gitteam" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def prioritized(id: str, path: str, priority: str | None) -> dict[str, Any]:
    data = subtask(id, [path])
    if priority:
        data["priority"] = priority
    return data


def test_a_plan_with_three_priorities_uses_the_three_configured_models(repo: Path, tmp_path: Path) -> None:
    data = script([plan_turn([prioritized("auth", "auth.txt", "critical"), prioritized("api", "api.txt", None),
                              prioritized("docs", "docs.txt", "low")])],
                  {x: [call("write_file", path=f"{x}.txt", content=x), done(x)] for x in ("auth", "api", "docs")},
                  prices={"input": 3.0, "output": 15.0})
    default, strong, cheap = (write_script(tmp_path / f"{name}.json", data) for name in ("default", "strong", "cheap"))
    user_config(f'[routing.critical]\ncoder = "replay:{strong}"\nreviewer = "replay:{strong}"\n'
                f'[routing.low]\ncoder = "replay:{cheap}"\n')

    ran = gitteam(repo, "run", "--yes", "--json", "--model", f"replay:{default}", "secure the api, document it")

    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)["run"]
    models = {agent: note(repo, git(repo, "rev-parse", f"gitteam/{run}/{agent}"))
              for agent in ("auth", "api", "docs")}
    assert {a: (n["model"], n["priority"]) for a, n in models.items()} == {
        "auth": (f"replay:{strong}", "critical"), "api": (f"replay:{default}", "normal"),
        "docs": (f"replay:{cheap}", "low")}
    rows = json.loads(gitteam(repo, "cost", run, "--json").stdout)
    used = {(r["role"], r["agent"]): (r["model"], r["priority"]) for r in rows}
    assert used[("coder", "auth")] == (f"replay:{strong}", "critical")
    assert used[("reviewer", "auth")] == (f"replay:{strong}", "critical")  # its reviewer is routed too
    assert used[("coder", "api")] == (f"replay:{default}", "normal")
    assert used[("coder", "docs")] == (f"replay:{cheap}", "low")
    assert used[("reviewer", "docs")] == (f"replay:{default}", "low")  # no low reviewer configured: the role's
    text = gitteam(repo, "cost", run).stdout
    assert "by priority: critical $" in text and ", low $" in text
    shown = gitteam(repo, "plan", "--model", f"replay:{default}", "again").stdout
    assert "auth critical" in " ".join(shown.split()) and "docs low" in " ".join(shown.split())


def test_a_routed_model_without_its_key_stops_the_run_before_anything_is_paid(repo: Path, tmp_path: Path) -> None:
    data = script([plan_turn([prioritized("a", "a.txt", "critical")])], {"a": [done("a")]})
    path = write_script(tmp_path / "s.json", data)
    user_config('[routing.critical]\ncoder = "anthropic:claude-opus-4-8"\n')
    env_key = os.environ.pop("ANTHROPIC_API_KEY", None)
    try:
        ran = gitteam(repo, "run", "--yes", "--model", f"replay:{path}", "do it")
    finally:
        if env_key is not None:
            os.environ["ANTHROPIC_API_KEY"] = env_key
    assert ran.returncode == 2, ran.stderr
    assert "ANTHROPIC_API_KEY" in ran.stdout + ran.stderr and "Traceback" not in ran.stderr
    assert not list((repo / ".git" / "gitteam" / "runs").glob("*/events.jsonl"))  # not even the planner ran


@pytest.mark.parametrize("priority", [3, "urgent"])
def test_a_priority_that_is_not_one_of_the_three_goes_back_to_the_planner(priority: object) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan({"subtasks": [{"id": "a", "title": "A", "instructions": "do", "files": ["a.py"],
                                  "priority": priority}]})
    assert '"priority" must be one of "critical", "normal", "low"' in " ".join(info.value.problems)


def test_past_downgrade_at_of_the_budget_new_subtasks_get_the_tier_below_until_economy_takes_over() -> None:
    from types import SimpleNamespace

    from gitteam.config import Config
    from gitteam.config.schema import RoutingConfig
    from gitteam.metering import Meter
    from gitteam.models.base import CallContext, Reply, Usage
    from gitteam.plan import Subtask
    from gitteam.run.context import RunContext

    meter = Meter(1.0)  # $1, economy at 80%
    routing = RoutingConfig(critical={"coder": "strong"}, normal={"coder": "middle"}, low={"coder": "cheap"},
                            downgrade_at=0.5)
    ctx: Any = SimpleNamespace(meter=meter, config=Config(routing=routing))
    ctx.economy = False
    ctx.tier = lambda sub: RunContext.tier(ctx, sub)
    critical, low = Subtask("a", "A", "do", ("a",), priority="critical"), Subtask("b", "B", "do", ("b",),
                                                                                    priority="low")

    def spend(dollars: float) -> None:
        meter.record(CallContext(run="r", role="coder", agent="x"), Reply("", (), Usage(), "m", dollars))

    assert RunContext.routed_spec(ctx, "coder", critical) == "strong"
    spend(0.5)  # half the budget: the tier below
    assert RunContext.routed_spec(ctx, "coder", critical) == "middle"
    assert RunContext.routed_spec(ctx, "coder", low) == "cheap"  # nothing below low
    spend(0.3)  # 80%: economy mode switches every role to its economy model, routing or not
    ctx.economy = meter.economy
    assert ctx.economy and RunContext.routed_spec(ctx, "coder", critical) is None

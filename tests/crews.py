"""One home for the preamble of the tests that drive gitteam through the real SDKs against loopback servers
(fakeapi.py serves the wire formats, loopback.py scripts the team behind them). A pytest plugin: conftest.py
loads it, so every test module has its fixtures without importing them.

- `loopback_env`: the provider environment: both API keys set, no base URL or proxy from the machine, retry
  backoff in milliseconds. A module whose every test needs it says `pytestmark =
  pytest.mark.usefixtures("loopback_env")`; `crew` and `api` bring it themselves.
- `crew`: a scripted team (loopback.Team) behind its own server, once per wire format of FLAVORS; a test that
  wants other formats parametrizes it: `@pytest.mark.parametrize("crew", ["responses"], indirect=True)`.
- `api`: a bare loopback server (fakeapi.FakeAPI) for tests that build a model themselves; `sleeps`: the
  backoff those models would have slept, recorded instead.
- `configure(crew, ...)`: the user config that points every role at one model "m" behind the crew's server.

Then a test scripts the crew (`crew.planner(...)`, `crew.coder(...)`), runs gitteam (`loopback.run(repo)`) and
reads what the server received from whom with `crew.bodies(role, agent)`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fakeapi import FakeAPI, serve

if TYPE_CHECKING:
    from loopback import Team
# loopback itself is imported where it is used: conftest loads this plugin in every pytest process, and loopback
# brings the whole orchestrator (about 0.2 s), which a process that runs no loopback test has no use for.

FLAVORS = ("anthropic", "openai")  # Anthropic Messages and OpenAI Chat Completions; "responses" on request
# Variables of the machine that would send a request elsewhere than the loopback server, or sign it otherwise.
MACHINE_ENDPOINTS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE", "ANTHROPIC_CONFIG_DIR",
                     "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "HTTP_PROXY", "HTTPS_PROXY",
                     "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def loopback_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both keys set, nothing of the machine's endpoints or proxies, backoff in milliseconds."""
    for name in MACHINE_ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("GITTEAM_RETRY_BASE_SECONDS", "0.001")


@pytest.fixture(params=FLAVORS)
def crew(request: pytest.FixtureRequest, loopback_env: None) -> Iterator[Team]:
    from loopback import team

    with team(request.param) as scripted:
        yield scripted


@pytest.fixture
def api(loopback_env: None) -> Iterator[FakeAPI]:
    with serve() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def home() -> Path:
    """This test's HOME (conftest's hermetic_env makes one per test): the user config lives under it."""
    return Path(os.environ["HOME"])


def configure(crew: Team, model: str = "model-x", extra: str = "", **keys: Any) -> None:
    """Every role on one model "m" (`model` as the server sees it, `keys` more of its table) behind the crew's
    server, in the user config; `extra` is more TOML after the [roles] table."""
    from loopback import model_table, roles, write_user_config

    write_user_config(home(), model_table("m", crew.flavor, crew.api.url, model, **keys) + roles("m") + extra)

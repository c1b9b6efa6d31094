"""Configuration: layering, environment, validation messages, the example file."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gitteam.config import (
    SECTIONS,
    CommandsConfig,
    Config,
    ModelDef,
    check_role_specs,
    example_text,
    is_restricted,
    load_config,
    user_config_path,
    write_example,
)
from gitteam.config.example import repo_config_text
from gitteam.errors import ConfigError, Exit, GitteamError
from gitteam.modelspec import ROLES, is_command, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def write_user(text: str) -> Path:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_repo(root: Path, text: str) -> None:
    (root / ".gitteam.toml").write_text(text)


def config_error(root: Path, text: str) -> str:
    write_repo(root, text)
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == Exit.USAGE
    return message


# --- defaults and layering -----------------------------------------------------------------------------


def test_defaults_are_sane(root: Path) -> None:
    config = load_config(root, env={})
    assert config == dataclasses.replace(Config(), sources=(), origins={})
    assert config.run.max_agents == 4 and config.run.budget is None and config.run.target == ""
    assert config.run.max_rounds == 2 and not config.run.keep_worktrees and config.run.economy_at == 0.8
    assert config.limits.max_steps == 100 and config.limits.max_tokens == 1_000_000
    assert config.limits.agent_budget == 5.0 and config.commands.syntax_check == {}
    assert config.commands.timeout == 300 and config.planner.overview_tokens == 6000
    assert config.role_spec("coder") == "" and config.allowed_commands() == ()
    assert config.origin("run.max_agents") == "built-in default"


def test_each_layer_overrides_the_one_below_and_flags_win(root: Path) -> None:
    write_user('[run]\nmax_agents = 2\ntarget = "dev"\nbudget = 9\n[limits]\nmax_steps = 10\n')
    config = load_config(root, env={})
    assert (config.run.max_agents, config.run.target, config.limits.max_steps) == (2, "dev", 10)
    assert config.run.budget == 9.0 and isinstance(config.run.budget, float)
    assert config.sources == ("~/.config/gitteam/config.toml",)

    write_repo(root, "[run]\nmax_agents = 3\n")
    config = load_config(root, env={})
    assert (config.run.max_agents, config.run.target, config.limits.max_steps) == (3, "dev", 10)
    assert config.sources == ("~/.config/gitteam/config.toml", ".gitteam.toml")
    assert config.origin("run.max_agents") == ".gitteam.toml"
    assert config.origin("run.target") == "~/.config/gitteam/config.toml"

    env = {"GITTEAM_MAX_AGENTS": "5", "GITTEAM_TARGET": "release"}
    config = load_config(root, env=env)
    assert (config.run.max_agents, config.run.target) == (5, "release")
    assert config.origin("run.max_agents") == "GITTEAM_MAX_AGENTS"

    config = load_config(root, {"run.max_agents": 6, "run.budget": None, "run.target": None}, env=env)
    assert (config.run.max_agents, config.run.target, config.run.budget) == (6, "release", 9.0)
    assert config.origin("run.max_agents") == "command line"


def test_without_repo_root_only_the_user_config_is_read(root: Path) -> None:
    write_user("[run]\nmax_agents = 2\n")
    write_repo(root, "[run]\nmax_agents = 3\n")
    assert load_config(None, env={}).run.max_agents == 2


def test_user_config_path_follows_xdg_and_ignores_a_relative_one(tmp_path: Path) -> None:
    assert user_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "gitteam" / "config.toml"
    home = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "relative"}
    assert user_config_path(home) == tmp_path / ".config" / "gitteam" / "config.toml"


def test_a_model_table_is_replaced_whole_by_a_higher_layer(root: Path) -> None:
    write_user('[models.fast]\nprovider = "openai"\nmodel = "m1"\ninput_price = 1\ncontext_tokens = 8000\n')
    write_repo(root, '[models.fast]\nprovider = "anthropic"\nmodel = "claude-haiku-4-5"\n')
    config = load_config(root, env={})
    assert config.models["fast"] == ModelDef("fast", "anthropic", "claude-haiku-4-5")
    assert config.origin("models.fast") == ".gitteam.toml"
    # (but not its base_url and api_key_env: those only the user sets, see test_config_trust.py)


def test_models_parse_with_every_field(root: Path) -> None:
    write_user(  # base_url and api_key_env count only from the user config
        '[roles]\ncoder = "local"\n'
        '[models.local]\nprovider = "openai"\nmodel = "qwen2.5-coder:14b"\nbase_url = "http://localhost:11434/v1"\n'
        'api_key_env = "LOCAL_KEY"\ninput_price = 0\noutput_price = 0.5\ncache_read_price = 0.1\n'
        'cache_write_price = 1\nfallbacks = ["openai:gpt-4.1-mini"]\ncontext_tokens = 32768\n'
        "max_output_tokens = 4096\n",
    )
    config = load_config(root, env={})
    assert config.models["local"] == ModelDef(
        "local", "openai", "qwen2.5-coder:14b", "http://localhost:11434/v1", "LOCAL_KEY",
        0.0, 0.5, 0.1, 1.0, ("openai:gpt-4.1-mini",), 32768, 4096,
    )  # fmt: skip
    assert config.role_spec("coder") == "local"


# --- environment and flags ------------------------------------------------------------------------------


def test_gitteam_model_sets_every_role_and_a_role_variable_wins(root: Path) -> None:
    config = load_config(root, env={"GITTEAM_MODEL": "openai:gpt-4.1", "GITTEAM_CODER": "replay:c.json"})
    assert [config.role_spec(r) for r in ("planner", "coder", "reviewer")] == [
        "openai:gpt-4.1",
        "replay:c.json",
        "openai:gpt-4.1",
    ]
    assert (
        config.origin("roles.planner") == "GITTEAM_MODEL" and config.origin("roles.coder") == "GITTEAM_CODER"
    )


def test_environment_values_are_converted_to_the_field_type(root: Path) -> None:
    env = {"GITTEAM_BUDGET": " 1.5 ", "GITTEAM_MAX_AGENTS": "7", "GITTEAM_TEST_COMMAND": "pytest -q"}
    config = load_config(root, env=env)
    assert (config.run.budget, config.run.max_agents, config.commands.test) == (1.5, 7, "pytest -q")
    assert config.allowed_commands() == ("pytest -q ...",)


def test_os_environ_is_the_default_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITTEAM_REVIEWER", " anthropic:claude-haiku-4-5\n")
    monkeypatch.setenv("GITTEAM_BUDGET", "")  # empty = not set
    config = load_config(root)
    assert config.role_spec("reviewer") == "anthropic:claude-haiku-4-5" and config.run.budget is None


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "GITTEAM_MAX_AGENTS",
            "four",
            'GITTEAM_MAX_AGENTS: run.max_agents must be an integer >= 1 (got "four")',
        ),
        ("GITTEAM_MAX_AGENTS", "0", "GITTEAM_MAX_AGENTS: run.max_agents must be an integer >= 1 (got 0)"),
        ("GITTEAM_BUDGET", "lots", 'GITTEAM_BUDGET: run.budget must be a number > 0 (USD) (got "lots")'),
        ("GITTEAM_BUDGET", "-2", "GITTEAM_BUDGET: run.budget must be a number > 0 (USD) (got -2.0)"),
        ("GITTEAM_CODER", "gpt4", 'GITTEAM_CODER: roles.coder: "gpt4" is neither a spec'),
    ],
)
def test_environment_errors_name_the_variable(root: Path, variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(root, env={variable: value})
    assert str(info.value).startswith(message)


def test_flags_for_one_role_win_over_the_flag_for_every_role(root: Path) -> None:
    overrides = {
        "roles.coder": "replay:x.json",
        "roles.*": "anthropic:claude-sonnet-4-5",
        "roles.planner": None,
    }
    config = load_config(root, overrides, env={"GITTEAM_PLANNER": "openai:gpt-4.1"})
    assert config.role_spec("coder") == "replay:x.json"
    assert config.role_spec("planner") == config.role_spec("reviewer") == "anthropic:claude-sonnet-4-5"


def test_flag_strings_are_converted_and_unknown_flag_keys_refused(root: Path) -> None:
    assert load_config(root, {"run.max_agents": "3", "run.keep_worktrees": True}, env={}).run.max_agents == 3
    with pytest.raises(
        ConfigError, match=r"^command line: unknown key run\.max_agent \(did you mean run\.max_agents\?\)$"
    ):
        load_config(root, {"run.max_agent": 3}, env={})


# --- validation: every message names the key and the file ----------------------------------------------

MODEL = '[models.m]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[run]\nmax_agents = "four"\n', 'run.max_agents must be an integer >= 1 (got "four")'),
        ("[run]\nmax_agents = 0\n", "run.max_agents must be an integer >= 1 (got 0)"),
        ("[run]\nmax_agents = 2.0\n", "run.max_agents must be an integer >= 1 (got 2.0)"),
        ("[run]\nmax_agents = true\n", "run.max_agents must be an integer >= 1 (got true)"),
        ("[run]\nmax_agent = 2\n", "unknown key run.max_agent (did you mean run.max_agents?)"),
        ("[rnu]\nmax_agents = 2\n", "unknown section [rnu] (did you mean [run]?)"),
        ("max_agents = 2\n", "unknown key max_agents (did you mean run.max_agents?)"),
        ("zzz = 2\n", "unknown key zzz (settings go in a section such as [run])"),
        ("run = 3\n", "run must be a table [run] (got 3)"),
        ("[run]\nbudget = 0\n", "run.budget must be a number > 0 (USD) (got 0)"),
        ("[run]\nbudget = nan\n", "run.budget must be a number > 0 (USD) (got NaN)"),
        ("[run]\neconomy_at = 1.5\n", "run.economy_at must be a number > 0 and <= 1 (got 1.5)"),
        ("[run]\neconomy_at = 0\n", "run.economy_at must be a number > 0 and <= 1 (got 0)"),
        ("[run]\nmax_rounds = 0\n", "run.max_rounds must be an integer >= 1 (got 0)"),
        ('[run]\nkeep_worktrees = "yes"\n', 'run.keep_worktrees must be true or false (got "yes")'),
        ("[run]\nsetup_timeout = -1\n", "run.setup_timeout must be a number > 0 (seconds) (got -1)"),
        ("[run]\ntarget = 1\n", "run.target must be a string (got 1)"),
        ("[limits]\nreminders = -1\n", "limits.reminders must be an integer >= 0 (got -1)"),
        ("[limits]\nmax_tokens = 0\n", "limits.max_tokens must be an integer >= 1 (got 0)"),
        ("[commands]\nmax_output = 0\n", "commands.max_output must be an integer >= 1 (got 0)"),
        ("[planner]\noverview_tokens = -5\n", "planner.overview_tokens must be an integer >= 0 (got -5)"),
        ("models = 1\n", "models must hold [models.NAME] tables (got 1)"),
        ("[models]\nm = 1\n", "models.m must be a table [models.m] (got 1)"),
        ('[models.m]\nprovider = "ollama"\nmodel = "x"\n', 'models.m.provider must be one of "anthropic"'),
        ('[models.m]\nprovider = "openai"\n', "models.m.model is required in [models.m]"),
        ('[models.m]\nprovider = "openai"\nmodel = ""\n', "models.m.model must be a non-empty string"),
        (MODEL + 'modle = "x"\n', "unknown key models.m.modle (did you mean model?)"),
        (MODEL + "input_price = -1\n", "models.m.input_price must be a number >= 0"),
        (MODEL + "context_tokens = 0\n", "models.m.context_tokens must be an integer >= 1 (got 0)"),
        (MODEL + 'fallbacks = "x"\n', 'models.m.fallbacks must be a list of strings (got "x")'),
        (MODEL + 'fallbacks = ["nothing"]\n', 'models.m.fallbacks: "nothing" is neither a spec'),
        (
            MODEL + 'fallbacks = ["command:aider"]\n',
            'models.m.fallbacks: "command:aider" is an agent command',
        ),
        (MODEL + 'fallbacks = ["m"]\n', "models.m.fallbacks: a model cannot fall back to itself"),
        (MODEL + 'fallbacks = ["openai:"]\n', 'models.m.fallbacks: "openai:" needs a model after ":"'),
        (
            '[models."a:b"]\nprovider = "openai"\nmodel = "x"\n',
            "[models.a:b]: a model name must be non-empty",
        ),
        (MODEL + '[roles]\ncoder = "n"\n', 'roles.coder: "n" is neither a spec'),
        (
            MODEL.replace("m]", "sonnet]") + '[roles]\ncoder = "sonet"\n',
            'roles.coder: "sonet" is neither a spec (anthropic:MODEL, openai:MODEL, replay:PATH) '
            "nor a [models.NAME] (did you mean sonnet?)",
        ),
        (
            '[roles]\nplanner = "ollama:llama3"\n',
            'roles.planner: unknown provider "ollama" in "ollama:llama3"',
        ),
        ('[roles]\nreviewer = "anthropic: "\n', 'roles.reviewer: "anthropic: " needs a model after ":"'),
    ],
)
def test_every_validation_error_names_the_key_and_the_file(root: Path, text: str, message: str) -> None:
    assert config_error(root, text).startswith(f".gitteam.toml: {message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[run]\nsetup = "echo \'x"\n', "run.setup must be a command line with balanced quotes"),
        ('[commands]\nallowed = "pytest"\n', "commands.allowed must be a list of non-empty command lines"),
        ('[commands]\nallowed = [""]\n', "commands.allowed must be a list of non-empty command lines"),
        ("[commands]\nallowed = [1]\n", "commands.allowed must be a list of non-empty command lines"),
        (
            '[commands]\npass_env = ["NOT-A-NAME"]\n',
            "commands.pass_env must be a list of environment variable names",
        ),
        (MODEL + 'api_key_env = "1KEY"\n', "models.m.api_key_env must be an environment variable name"),
        ('[sandbox]\nmode = "docker"\n', 'sandbox.mode must be "bwrap" or "none" (got "docker")'),
        ("[protect]\nallow = [\"\"]\n", "protect.allow must be a list of non-empty paths"),
        ('[roles]\ncoder = "command:aider \'x"\n', 'roles.coder: "command:aider \'x" needs a command line'),
    ],
)
def test_errors_in_user_only_settings_name_the_user_config(root: Path, text: str, message: str) -> None:
    """Settings a repository may not set are validated where they count: the user config."""
    write_user(text)
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    assert str(info.value).startswith(f"~/.config/gitteam/config.toml: {message}")


def test_errors_in_the_user_config_name_that_file(root: Path) -> None:
    write_user("[limits]\nmax_steps = 0\n")
    with pytest.raises(ConfigError, match=r"^~/\.config/gitteam/config\.toml: limits\.max_steps must be"):
        load_config(root, env={})


def test_a_file_outside_the_current_directory_is_shown_by_its_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_repo(other, "[run]\nmax_agents = 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"{other / '.gitteam.toml'}: run.max_agents")):
        load_config(other, env={})


def test_invalid_toml_is_one_line_with_file_and_line(root: Path) -> None:
    message = config_error(root, "[run]\nmax_agents 4\n")
    assert re.fullmatch(r"\.gitteam\.toml:2: invalid TOML: .+ \(column \d+\)", message), message
    assert config_error(root, "[run]\nmax_agents = 1\nmax_agents = 2\n").startswith(
        ".gitteam.toml:3: invalid TOML"
    )


def test_unreadable_or_undecodable_files_are_config_errors(root: Path) -> None:
    (root / ".gitteam.toml").write_bytes(b"[run]\ntarget = '\xff'\n")
    with pytest.raises(ConfigError, match=r"^\.gitteam\.toml: not UTF-8"):
        load_config(root, env={})
    (root / ".gitteam.toml").unlink()
    (root / ".gitteam.toml").mkdir()
    with pytest.raises(ConfigError, match=r"^\.gitteam\.toml: cannot read"):
        load_config(root, env={})


# --- command: specs --------------------------------------------------------------------------------------


def test_command_spec_for_every_role_points_to_coder(root: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^GITTEAM_MODEL: a command: spec was given for every role.*--coder"
    ):
        load_config(root, env={"GITTEAM_MODEL": "command:aider --yes"})
    with pytest.raises(ConfigError, match=r"^command line: a command: spec .*--coder"):
        load_config(root, {"roles.*": "command:aider"}, env={})
    spec = '"command:aider"'
    write_user(f"[roles]\nplanner = {spec}\ncoder = {spec}\nreviewer = {spec}\n")
    with pytest.raises(ConfigError) as info:
        load_config(root, env={})
    message = str(info.value)
    assert message.startswith("~/.config/gitteam/config.toml: a command: spec was given for every role")
    assert "--coder" in message


@pytest.mark.parametrize("role", ["planner", "reviewer", "economy_planner", "economy_reviewer"])
def test_command_spec_for_a_role_other_than_coder_is_refused(root: Path, role: str) -> None:
    message = config_error(root, f'[roles]\n{role} = "command:aider"\n')
    assert (
        message.startswith(f".gitteam.toml: roles.{role} cannot be a command: spec") and "--coder" in message
    )


def test_command_spec_for_the_coder_is_accepted(root: Path) -> None:
    overrides = {"roles.*": "anthropic:claude-sonnet-4-5", "roles.coder": "command:aider --yes"}
    config = load_config(root, overrides, env={})
    assert config.role_spec("coder") == "command:aider --yes"
    write_user('[roles]\neconomy_coder = "command:cheap-agent"\n')
    assert load_config(root, env={}).role_spec("coder", economy=True) == "command:cheap-agent"


def test_check_role_specs_on_a_hand_built_config() -> None:
    roles = dataclasses.replace(Config().roles, planner="command:x", coder="command:x", reviewer="command:x")
    with pytest.raises(ConfigError, match="--coder"):
        check_role_specs(Config(roles=roles))
    check_role_specs(Config())


# --- the model-spec grammar (gitteam.modelspec), shared with the model registry -------------------------


@pytest.mark.parametrize(
    ("text", "provider", "rest", "named"),
    [
        ("anthropic:claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", False),
        ("replay:demo", "replay", "demo", False),
        ("command:aider --yes --model x:y", "command", "aider --yes --model x:y", False),
        ("local", "", "", True),
        ("openai:", "openai", "", False),
    ],
)
def test_parse_spec_splits_at_the_first_colon(text: str, provider: str, rest: str, named: bool) -> None:
    spec = parse_spec(text)
    assert (spec.text, spec.provider, spec.rest, spec.named) == (text, provider, rest, named)
    assert spec.is_command == is_command(text) == (provider == "command")


@pytest.mark.parametrize(
    ("text", "allow_command", "problem"),
    [
        ("anthropic:claude-sonnet-4-5", False, None),
        ("NAME", False, None),  # whether a [models.NAME] exists is the config's question
        ("command:aider", True, None),
        ("command:aider", False, '"command:aider" is an agent command, not a model'),
        ("ollama:llama3", False, 'unknown provider "ollama" in "ollama:llama3" (use anthropic:MODEL'),
        ("openai: ", False, '"openai: " needs a model after ":"'),
        ("command:aider 'x", True, '"command:aider \'x" needs a command line with balanced quotes after ":"'),
    ],
)
def test_spec_problems(text: str, allow_command: bool, problem: str | None) -> None:
    found = parse_spec(text).problem(allow_command)
    assert found is None if problem is None else (found or "").startswith(problem)


def test_the_roles_are_defined_once() -> None:
    from gitteam import transcripts
    from gitteam.models import registry

    assert ROLES == ("planner", "coder", "reviewer")
    assert transcripts.ROLES is registry.ROLES is ROLES


def test_the_config_imports_nothing_above_it(tmp_path: Path) -> None:
    """config sits below the sandbox and the models (sandbox/runner.py and models/ import it): importing it and
    validating every kind of setting must load only the bottom modules."""
    code = (
        "import sys, gitteam.config as c; "
        "c.load_config(None, {'commands.allowed': ['pytest ...'], 'roles.coder': 'command:x'}, "
        f"env={{'HOME': {str(tmp_path)!r}}}); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('gitteam'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert set(loaded) <= {"gitteam", "gitteam.dataclass_cache", "gitteam.config", "gitteam.config.loader",
                           "gitteam.config.schema",
                           "gitteam.config.example", "gitteam.commandline", "gitteam.modelspec", "gitteam.errors",
                           "gitteam.secrets"}


# --- methods ----------------------------------------------------------------------------------------------


def test_role_spec_and_economy_fallback() -> None:
    roles = dataclasses.replace(
        Config().roles, coder="a:b", economy_coder="", planner="p:q", economy_planner="e:f"
    )
    config = Config(roles=roles)
    assert config.role_spec("coder", economy=True) == "a:b"
    assert config.role_spec("planner", economy=True) == "e:f" and config.role_spec("planner") == "p:q"
    with pytest.raises(ValueError):
        config.role_spec("economy_coder")


def test_allowed_commands() -> None:
    assert Config(commands=CommandsConfig(test="pytest", allowed=("ruff check",))).allowed_commands() == (
        "ruff check",
    )
    # the test command stands for itself followed by any (harmless) arguments: a test file, `-k name`
    assert Config(commands=CommandsConfig(test="pytest")).allowed_commands() == ("pytest ...",)
    assert Config().allowed_commands() == ()


# --- the example file -------------------------------------------------------------------------------------


def test_example_ships_in_the_package_and_matches_the_repo_copy() -> None:
    text = example_text()
    assert text == (ROOT / ".gitteam.example.toml").read_text(encoding="utf-8")
    assert text == (ROOT / "src/gitteam/data/gitteam.example.toml").read_text(encoding="utf-8")


def test_example_loads_as_is_to_the_defaults(root: Path) -> None:
    write_repo(root, example_text())
    assert load_config(root, env={}) == dataclasses.replace(Config(), sources=(".gitteam.toml",))


def test_example_documents_every_field() -> None:
    text = example_text()
    for name, cls in SECTIONS.items():
        assert f"\n[{name}]\n" in text
        for field in dataclasses.fields(cls):
            assert f"\n# {field.name} = " in text, f"{name}.{field.name} is not documented"
    for field in dataclasses.fields(ModelDef)[1:]:
        assert field.name in text, f"models.NAME.{field.name} is not documented"
    for words in ("anthropic", "openai", "http://localhost:11434/v1", '"replay"'):
        assert words in text


def _uncomment_settings(text: str) -> str:
    """The example with its `# key = value` lines uncommented, up to the models' examples."""
    settings, _, _ = text.partition("# Named models")
    return re.sub(r"(?m)^# (\w+ = )", r"\1", settings)


def test_example_defaults_match_the_code(root: Path) -> None:
    uncommented = _uncomment_settings(example_text())
    write_user(uncommented)  # where every setting counts, the user-only ones too
    config = load_config(root, env={})  # the examples given for unset values are valid too
    for name, cls in SECTIONS.items():
        shown = tomllib.loads(uncommented)[name]
        for field in dataclasses.fields(cls):
            default = getattr(cls(), field.name)
            if default not in (None, ""):
                value = shown[field.name]
                assert (tuple(value) if isinstance(value, list) else value) == default, f"{name}.{field.name}"
                assert getattr(getattr(config, name), field.name) == default


def test_example_as_the_repository_file_has_its_user_only_settings_ignored(root: Path) -> None:
    write_repo(root, _uncomment_settings(example_text()))
    config = load_config(root, env={})
    every = [f"{name}.{field.name}" for name, cls in SECTIONS.items() for field in dataclasses.fields(cls)]
    assert set(config.ignored) == {key for key in every if is_restricted(key)}
    assert {"sandbox.mode", "protect.paths", "commands.allowed", "run.setup"} <= set(config.ignored)
    for key in every:
        section, name = key.split(".")
        if is_restricted(key):
            assert config.origin(key) == "built-in default", key
            assert getattr(getattr(config, section), name) == getattr(SECTIONS[section](), name), key
        else:
            assert config.origin(key) == ".gitteam.toml", key


def test_example_marks_every_user_only_setting() -> None:
    text = example_text()
    for name, cls in SECTIONS.items():
        body = text.split(f"\n[{name}]\n", 1)[1].split("\n\n", 1)[0]
        intro = body.split("\n# " + dataclasses.fields(cls)[0].name + " = ", 1)[0]
        comment = ""
        for line in body.splitlines():
            if re.match(r"# \w+ = ", line):
                key = f"{name}.{line[2:].split(' = ')[0]}"
                whole = "User config only, the whole section" in intro
                if is_restricted(key):
                    assert whole or "User config only" in comment, f"{key} is not marked user config only"
                else:
                    assert "User config only" not in comment, f"{key} is marked but a repository may set it"
                comment = ""
            else:
                comment += line + "\n"
    for key in ("base_url", "api_key_env"):
        assert re.search(rf"{key} \([^)]*user config only\)", text), key


def test_example_models_are_valid_when_uncommented(root: Path) -> None:
    text = example_text()
    models = text[text.index("# [models.") :]
    write_user(re.sub(r"(?m)^# (\[|\w+ = )", r"\1", models))  # where base_url and api_key_env count
    config = load_config(root, env={})
    assert set(config.models) == {"sonnet", "haiku", "opus", "gpt", "gpt-reasoning", "local", "demo"}
    assert config.models["opus"].thinking == {"type": "adaptive"}
    assert config.models["gpt-reasoning"].api == "responses"
    assert config.models["local"].api_key_env is None
    assert config.models["local"].base_url == "http://localhost:11434/v1"
    assert config.role_spec("coder") == "local"


def test_write_example_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / ".gitteam.toml"
    write_example(path)
    assert path.read_text(encoding="utf-8") == repo_config_text()
    path.write_text("[run]\nmax_agents = 2\n")
    with pytest.raises(GitteamError, match="already exists.*--force"):
        write_example(path)
    assert path.read_text() == "[run]\nmax_agents = 2\n"
    assert write_example(path, force=True) == ["run.max_agents"]  # the documentation anew, the value kept
    assert path.read_text(encoding="utf-8") == repo_config_text().replace("# max_agents = 4\n", "max_agents = 2\n")
    assert [p.name for p in tmp_path.iterdir()] == [".gitteam.toml"]

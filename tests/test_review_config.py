"""The [review] section: reviewers with their focus and model, chunk budget, conventions; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import commit_files
from gitteam.config import ReviewConfig, ReviewerDef, load_config, user_config_path
from gitteam.errors import ConfigError
from gitteam.git import find_repository
from gitteam.roles.review_agents import DEFAULT_REVIEWER, read_conventions, reviewers


def load(root: Path, text: str) -> ReviewConfig:
    (root / ".gitteam.toml").write_text(text)
    return load_config(root, env={}).review


def error(root: Path, text: str) -> str:
    (root / ".gitteam.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(root, env={})
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_defaults_and_reviewers(root: Path) -> None:
    review = load(root, "")
    assert (review.chunk_tokens, review.integration, review.reviewers) == (24_000, True, ())
    assert review.conventions == ("AGENTS.md", "CONTRIBUTING.md", "CONVENTIONS.md")
    config = load_config(root, env={})
    assert reviewers(config) == (DEFAULT_REVIEWER,)

    review = load(root, '[review]\nchunk_tokens = 800\nintegration = false\nconventions = ["docs/RULES.md"]\n\n'
                        '[[review.reviewers]]\nname = "correctness"\n\n'
                        '[[review.reviewers]]\nname = "security"\nfocus = "secrets and injection"\nmodel = "fast"\n\n'
                        '[models.fast]\nprovider = "openai"\nmodel = "gpt-4.1-mini"\n')
    assert (review.chunk_tokens, review.integration, review.conventions) == (800, False, ("docs/RULES.md",))
    assert review.reviewers == (ReviewerDef("correctness"), ReviewerDef("security", "secrets and injection", "fast"))


def test_the_list_comes_whole_from_one_layer(root: Path) -> None:
    user = user_config_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('[[review.reviewers]]\nname = "mine"\n\n[[review.reviewers]]\nname = "also-mine"\n')
    assert [r.name for r in load(root, "").reviewers] == ["mine", "also-mine"]
    assert [r.name for r in load(root, '[[review.reviewers]]\nname = "team"\n').reviewers] == ["team"]
    config = load_config(root, env={})
    assert config.origin("review.reviewers") == ".gitteam.toml"


@pytest.mark.parametrize(("text", "needles"), [
    ("[review]\nchunk_tokens = 100\n", [".gitteam.toml: review.chunk_tokens must be an integer >= 500 (got 100)"]),
    ("[review]\nchunk_token = 1000\n", ["unknown key review.chunk_token", "did you mean review.chunk_tokens"]),
    ("[review]\nreviewers = 3\n", ["review.reviewers must be [[review.reviewers]] tables (got 3)"]),
    ('[[review.reviewers]]\nfocus = "x"\n', ["review.reviewers[0].name is required"]),
    ('[[review.reviewers]]\nname = "a b"\n', ["review.reviewers[0].name must be a name of letters, digits"]),
    ('[[review.reviewers]]\nname = "a"\nmodle = "x"\n', ["unknown key review.reviewers[0].modle",
                                                          "did you mean model"]),
    ('[[review.reviewers]]\nname = "a"\n\n[[review.reviewers]]\nname = "a"\n',
     ["review.reviewers[1].name: two reviewers are named 'a'"]),
    ('[[review.reviewers]]\nname = "a"\nmodel = "nosuch"\n',
     [".gitteam.toml: review.reviewers[0].model (a)", "neither a spec", "nor a [models.NAME]"]),
    ('[[review.reviewers]]\nname = "a"\nmodel = "command:claude -p"\n', ["is an agent command, not a model"]),
    ('[[review.reviewers]]\nname = "a"\nfocus = 3\n', ["review.reviewers[0].focus must be a string (got 3)"]),
])
def test_errors_name_the_key_and_the_file(root: Path, text: str, needles: list[str]) -> None:
    message = error(root, text)
    for needle in needles:
        assert needle in message, message


def test_conventions_are_read_from_the_given_commit(repo: Path) -> None:
    base = commit_files(repo, {"docs/RULES.md": "Use tabs.\n", "AGENTS.md": "Be brief.\n"})
    commit_files(repo, {"docs/RULES.md": "Anything goes.\n"})
    text = read_conventions(find_repository(repo), base, ("docs/RULES.md", "AGENTS.md", "missing.md"))
    assert text == "## docs/RULES.md\nUse tabs.\n\n\n## AGENTS.md\nBe brief.\n"

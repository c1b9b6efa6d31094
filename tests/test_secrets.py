"""Hostile text, secrets: no secret reaches a model, a redaction marker is never written back, and the merge
gate reads blobs, not diffs. Each pipeline test runs the real pipeline against loopback SDK servers (or the
replay model) and asserts what the model server received, what landed, and what the gate decided."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from conftest import commit_files, git
from crews import configure, home
from gitteam.config import load_config
from gitteam.events import RunFinished
from gitteam.git import find_repository
from gitteam.journal import Journal
from gitteam.review.checks import CheckContext, SecretsCheck
from gitteam.review.diff import parse_diff
from gitteam.roles.errors import ToolRefused
from gitteam.roles.tools import CommitView, WorktreeView
from gitteam.run.context import RunOptions
from gitteam.sandbox import environ, safe_env
from gitteam.secrets import SecretFiles, added_markers, is_secret_name, redact
from loopback import Team, call, plan, run, subtask, tool_results, turn, write_user_config
from scripts import blob, cli, coder_writes, done, events, note, plan_turn, rev, script, start
from scripts import subtask as replay_subtask

# Values of three kinds: a known token format, a value no pattern finds (only its file says it is secret), and
# a variable of gitteam's own environment whose value looks like nothing in particular.
STRIPE = "sk_live_" + "9fQ2mX7pL4vR8tW1zK6nB3cD"
DB_PASSWORD = "Tr0ub4dor&3-horse"
PAYMENTS_TOKEN = "pay_9d8c7b6a5f4e"
AWS_ID = "AKIA" + "Q3EGRIXTUVWXYZ12"
SECRETS = (STRIPE, DB_PASSWORD, PAYMENTS_TOKEN, AWS_ID)
SHOW = ("import os, pathlib\nprint(pathlib.Path('.env').read_text())\n"
        "print('token:', os.environ['PAYMENTS_API_TOKEN'])\n")


@pytest.fixture(autouse=True)
def _env(loopback_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_API_TOKEN", PAYMENTS_TOKEN)


def with_secrets(repo: Path) -> None:
    """A repository holding an AWS key in a committed file and an ignored `.env` that `.worktreeinclude`
    copies into every worktree."""
    commit_files(repo, {".gitignore": ".env\n", ".worktreeinclude": ".env\n", "tools/show.py": SHOW,
                        "config/aws.py": f'REGION = "eu-west-1"\nACCESS_KEY_ID = "{AWS_ID}"\n',
                        "config/credentials.json": '{"client_id": "ci-runner-7"}\n'}, "config")
    (repo / ".env").write_text(f"STRIPE_SECRET_KEY={STRIPE}\nDB_PASSWORD={DB_PASSWORD}\nDEBUG=true\n")


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def bodies(crew: Team) -> list[str]:
    return [json.dumps(request.body) for request in crew.api.requests]


# --- no secret reaches the model server ------------------------------------------------------------------


def test_no_secret_reaches_any_request_whatever_carries_it(repo: Path, crew: Team) -> None:
    with_secrets(repo)
    configure(crew)
    show = f"{shlex.quote(sys.executable)} tools/show.py"
    crew.planner(
        turn(call("read_file", path="config/aws.py"), call("search", pattern="AKIA|sk_live|ci-runner-\\d")),
        turn(call("read_file", path=".env")),
        plan(subtask("app", ["src/app.py"])),
    )
    crew.coder("app",
               turn(call("read_file", path=".env"), call("read_file", path="config/aws.py"),
                    call("search", pattern="ACCESS_KEY|ci-runner-\\d"),
                    call("read_file", path="config/credentials.json")),
               turn(call("run", command=show)),
               turn(call("write_file", path="src/app.py", content="def main():\n    return 2\n")),
               turn(call("done", summary="returns 2")))
    crew.reviewer("app", turn(call("read_file", path="config/aws.py")),
                  turn(call("submit_review", decision="APPROVE", summary="fine", findings=[])))

    result = run(repo, commands__allowed=[show], commands__pass_env=["PAYMENTS_API_TOKEN"])

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "src/app.py") == b"def main():\n    return 2\n"
    sent = bodies(crew)
    assert len(sent) >= 7 and all(leaks(body) == [] for body in sent), [leaks(body) for body in sent]
    assert not any("ci-runner-7" in body for body in sent)  # a tracked secret file: refused, and never searched
    results = [text for body in crew.api.requests for _, text, _ in tool_results(body.body)]
    # the .env file was refused, saying why, to the planner (a commit has no .env: "no such file" is fine
    # too) and to the coder, whose worktree has it
    assert any("is a secret file" in text for text in results)
    # what the tools did return came back redacted, each value with a marker saying what it was
    shown = "\n".join(results)
    for marker in ("[REDACTED:aws_access_key_id]", "[REDACTED:file:STRIPE_SECRET_KEY]", "[REDACTED:file:DB_PASSWORD]",
                   "[REDACTED:env:PAYMENTS_API_TOKEN]"):
        assert marker in shown, marker
    # nor did any of it land in the journal, the notes or the commits
    journal = (repo / ".git" / "gitteam" / "runs" / result.run / "events.jsonl").read_text()
    notes = git(repo, "log", "--notes=gitteam", "--format=%B%N", f"gitteam/{result.run}/app")
    assert leaks(journal) == [] and leaks(notes) == []


def test_a_command_coders_output_and_summary_are_redacted_everywhere_they_go(repo: Path, tmp_path: Path) -> None:
    with_secrets(repo)
    fake = tmp_path / "agent" / "fake_cli.py"
    fake.parent.mkdir()
    fake.write_text(
        "import json, os, pathlib, sys\n"
        "log = pathlib.Path(sys.argv[1])\n"
        "log.open('a').write(json.dumps(pathlib.Path(sys.argv[2]).read_text()) + '\\n')\n"
        "secrets = pathlib.Path('.env').read_text()\n"
        "pathlib.Path('src').mkdir(exist_ok=True)\n"
        "pathlib.Path(f'src/{os.path.basename(os.getcwd())}.py').write_text('X = 1\\n')  # the subtask's file\n"
        "print(secrets)\n"
        "print(json.dumps({'type': 'result', 'result': 'used ' + secrets, 'usage': {'input_tokens': 1}}))\n")
    spec = "command:" + shlex.join([sys.executable, str(fake), str(fake.parent / "prompts.log")]) + " {prompt_file}"
    data = script([plan_turn([replay_subtask("app", ["src/app.py"]), replay_subtask("use", ["src/use.py"],
                                                                                    depends_on=["app"])])], {})

    result = start(repo, data, config={"roles.coder": spec, "sandbox.read_write": (str(fake.parent),)})

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    prompts = (fake.parent / "prompts.log").read_text()
    assert "[REDACTED:" in prompts  # the dependent's brief carried the first one's summary, redacted
    journal = (repo / ".git" / "gitteam" / "runs" / result.run / "events.jsonl").read_text()
    history = git(repo, "log", "--notes=gitteam", "--format=%B%N", "main")
    assert leaks(prompts) == [] and leaks(journal) == [] and leaks(history) == []


def test_a_failing_setup_commands_output_is_redacted_in_the_reason_and_the_journal(repo: Path) -> None:
    with_secrets(repo)
    setup = f"{shlex.quote(sys.executable)} tools/show.py --fail"
    commit_files(repo, {"tools/show.py": SHOW + "raise SystemExit(3)\n"}, "a setup that fails")
    data = script([plan_turn([replay_subtask("app", ["src/app.py"])])], {"app": [done()]})

    result = start(repo, data, config={"run.setup": setup, "commands.pass_env": ["PAYMENTS_API_TOKEN"]})

    assert result.exit_code == 1, result.message
    [finished] = events(repo, result.run, "agent_finished")
    assert "exited 3" in finished["reason"] and "[REDACTED:file:STRIPE_SECRET_KEY]" in finished["reason"]
    journal = (repo / ".git" / "gitteam" / "runs" / result.run / "events.jsonl").read_text()
    assert leaks(result.message) == [] and leaks(journal) == []


def test_every_string_of_a_journal_event_is_redacted(repo: Path) -> None:
    journal = Journal(repo / ".git" / "gitteam", "r")
    event = journal.append(RunFinished(state="failed", exit_code=1, message=f"key {AWS_ID}",
                                       files=[f"token {PAYMENTS_TOKEN}", "3"]))
    assert isinstance(event, RunFinished) and event.files is not None and event.files[1] == "3"
    assert leaks(journal.path.read_text()) == [] and leaks(json.dumps(event.to_json())) == []


def test_a_link_to_a_secret_file_is_a_secret_file_too(repo: Path) -> None:
    (repo / ".env").write_text(f"STRIPE_SECRET_KEY={STRIPE}\n")
    (repo / "notes.txt").symlink_to(".env")
    view = WorktreeView(find_repository(repo), repo, "HEAD")
    assert view.hidden(".env") and view.hidden("notes.txt") and not view.hidden("README.md")
    with pytest.raises(ToolRefused, match="is a secret file"):
        view.read("notes.txt")
    found = view.grep(".", ["notes.txt", "README.md", ".env"], seconds=10, max_matches=50, max_line=200)
    assert {match.path for match in found.matches} == {"README.md"}  # search never opens a secret file


def test_searching_a_commit_leaves_tracked_secret_files_out(repo: Path) -> None:
    head = commit_files(repo, {".env": f"STRIPE_SECRET_KEY={STRIPE}\n", "app.py": "KEY = 1\n"})
    view = CommitView(find_repository(repo), head)
    found = view.grep("KEY", view.paths(), seconds=10, max_matches=50, max_line=200)
    assert [match.path for match in found.matches] == ["app.py"]


# --- a redaction marker is never written back ------------------------------------------------------------


def test_writing_a_redaction_marker_back_is_refused_and_nothing_of_it_lands(repo: Path, crew: Team) -> None:
    with_secrets(repo)
    configure(crew)
    redacted = 'REGION = "eu-west-1"\nACCESS_KEY_ID = "[REDACTED:aws_access_key_id]"\n'
    crew.planner(plan(subtask("cfg", ["config/aws.py"])))
    crew.coder("cfg",
               turn(call("read_file", path="config/aws.py")),
               turn(call("write_file", path="config/aws.py", content=redacted.replace("eu-west-1", "us-east-2"))),
               turn(call("edit_file", path="config/aws.py", old=redacted, new=redacted.replace("eu", "us"))),
               turn(call("edit_file", path="config/aws.py", old='"eu-west-1"', new='"us-east-2"')),
               turn(call("done", summary="moved to us-east-2")))

    result = run(repo)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    # the real key stayed where it was; only the region changed
    assert blob(repo, "main", "config/aws.py") == f'REGION = "us-east-2"\nACCESS_KEY_ID = "{AWS_ID}"\n'.encode()
    last = [body.body for body in crew.api.requests if crew.identify(body.body) == ("coder", "cfg")][-1]
    errors = [text for _, text, error in tool_results(last) if error]
    assert len(errors) == 2
    assert "redaction marker [REDACTED:aws_access_key_id]" in errors[0] and "Nothing was written" in errors[0]
    assert "the file holds a secret there that you were not shown" in errors[1]
    assert "[REDACTED" not in git(repo, "log", "-p", "main")


def test_markers_a_file_already_holds_are_its_own_and_may_be_written_again() -> None:
    text = 'EXPECTED = "[REDACTED:jwt]"\n'
    assert added_markers(text, text + "# more\n") == []
    assert added_markers(text, text + text) == ["[REDACTED:jwt]"]
    assert added_markers("", "x = '[REDACTED:env:HOME_TOKEN]'") == ["[REDACTED:env:HOME_TOKEN]"]
    assert added_markers("", "f'[REDACTED:{kind}]'") == []  # code that builds markers writes none


# --- the gate reads blobs, not diffs ---------------------------------------------------------------------


def hidden_key_change(repo: Path, binary: bool = False) -> tuple[str, str]:
    base = rev(repo, "main") or ""
    content = f'KEY = "{AWS_ID}"\n'
    head = commit_files(repo, {".gitattributes": "creds.py -diff\n",
                               "creds.py": ("\0" if binary else "") + content}, "hide it")
    return base, head


@pytest.mark.parametrize("binary", [False, True], ids=["marked-binary", "really-binary"])
def test_the_gitattributes_diff_trick_still_blocks_gitteam_review(repo: Path, binary: bool) -> None:
    base, head = hidden_key_change(repo, binary)

    proc = cli(repo, "review", "--base", base, "--head", head, "--fail-on", "block", "--checks-only")

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "possible secret added (aws_access_key_id)" in proc.stdout and AWS_ID not in proc.stdout
    # what reviewers read: the text of a file the change only marked binary, git's own call for a binary one
    diff = find_repository(repo).diff(base, head)
    assert (f'+KEY = "{AWS_ID}"' in diff) is (not binary)
    assert ("Binary files /dev/null and b/creds.py differ" in diff) is binary


def test_a_secret_the_file_already_held_is_not_the_changes(repo: Path) -> None:
    base = commit_files(repo, {"creds.py": f'KEY = "{AWS_ID}"\n'}, "an old key")
    head = commit_files(repo, {"creds.py": f'# rotate me\nKEY = "{AWS_ID}"\n'}, "a comment")
    gateway = find_repository(repo)

    def findings(old: str, new: str) -> list[tuple[str, int | None]]:
        ctx = CheckContext(gateway, old, new, parse_diff(gateway.diff(old, new)), None)
        return [(f.file, f.line) for f in SecretsCheck().run(ctx)]

    assert findings(base, head) == []
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    assert findings(first, head) == [("creds.py", 2)]


@pytest.mark.parametrize("marked_by", ["change", "base"])
def test_the_gitattributes_diff_trick_blocks_a_run(repo: Path, marked_by: str) -> None:
    """Whether the change marks the file (`.gitattributes` allowed to it) or the repository already did (and so
    the user's checkout, where gitteam's git used to read attributes), the key is found."""
    files = {".gitattributes": "creds.py -diff\n", "creds.py": f'KEY = "{AWS_ID}"\n'}
    if marked_by == "base":
        commit_files(repo, {".gitattributes": files.pop(".gitattributes"), "creds.py": "KEY = None\n"}, "marked")
    data = script([plan_turn([replay_subtask("creds", sorted(files))])],
                  {"creds": [*[coder_writes(path, text) for path, text in files.items()], done("added the key")]})

    result = start(repo, data, RunOptions(yes=True, allow_protected=(".gitattributes",)))

    assert (result.exit_code, result.state) == (3, "refused"), result.message
    [review] = events(repo, result.run, "review")
    assert review["verdict"]["decision"] == "BLOCK"
    assert [f["source"] for f in review["verdict"]["findings"] if f["severity"] == "critical"] == ["check:secrets"]
    assert AWS_ID.encode() not in (blob(repo, "main", "creds.py") or b"")


# --- what is committed is what the agent wrote ------------------------------------------------------------


def test_committed_bytes_are_what_write_file_wrote_whatever_the_change_says(repo: Path) -> None:
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")  # the user's own driver, named by the change
    git(repo, "config", "filter.upper.smudge", "cat")
    written = {".gitattributes": "*.txt text eol=crlf\n*.dat filter=upper\n*.bin text\n",
               "notes.txt": "one\r\ntwo\r\n", "data.dat": "lower case\n", "blob.bin": "a\r\nb\r\n"}
    data = script([plan_turn([replay_subtask("attrs", sorted(written))])],
                  {"attrs": [*[coder_writes(path, text) for path, text in written.items()], done()]})

    result = start(repo, data, RunOptions(yes=True, allow_protected=(".gitattributes",)))

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    for path, text in written.items():
        assert blob(repo, "main", path) == text.encode(), path
    head = rev(repo, "main") or ""
    assert note(repo, head)["review"]["decision"] == "APPROVE"


def test_the_base_commits_attributes_still_convert_what_is_committed(repo: Path) -> None:
    git(repo, "config", "filter.upper.clean", "tr a-z A-Z")  # a Git LFS-like driver the user configured
    git(repo, "config", "filter.upper.smudge", "cat")
    commit_files(repo, {".gitattributes": "*.txt text\n*.dat filter=upper\n"}, "attributes")
    data = script([plan_turn([replay_subtask("files", ["notes.txt", "data.dat", "plain.py"])])],
                  {"files": [coder_writes("notes.txt", "one\r\ntwo\r\n"), coder_writes("data.dat", "lower\n"),
                             coder_writes("plain.py", "X = 1\r\n"), done()]})

    result = start(repo, data)

    assert (result.exit_code, result.state) == (0, "merged"), result.message
    assert blob(repo, "main", "notes.txt") == b"one\ntwo\n"  # as `git add` stores text
    assert blob(repo, "main", "data.dat") == b"LOWER\n"  # through the user's filter driver
    assert blob(repo, "main", "plain.py") == b"X = 1\r\n"  # no attribute: exactly as written


def test_commit_paths_keeps_links_modes_and_deletions(repo: Path, tmp_path: Path) -> None:
    gateway = find_repository(repo)
    (repo / "run.sh").write_text("#!/bin/sh\r\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "link").symlink_to("src/app.py")
    (repo / "README.md").unlink()
    (repo / ".gitattributes").write_text("* text eol=crlf\n")  # not committed: only the base's attributes count

    head = gateway.commit_paths(repo, ["run.sh", "link", "README.md"], "files", ("a", "a@example.com"))

    assert head is not None
    listing = git(repo, "ls-tree", head)
    assert "100755 blob" in listing and "\trun.sh" in listing and "120000 blob" in listing
    assert "README.md" not in listing
    assert blob(repo, head, "run.sh") == b"#!/bin/sh\r\n"
    assert blob(repo, head, "link") == b"src/app.py"


# --- the rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "secret"), [
    ("ANTHROPIC_API_KEY", True), ("GITHUB_TOKEN", True), ("DB_PASSWORD", True), ("SMTP_PASS", True),
    ("SENTRY_DSN", True), ("AWS_REGION", True), ("PAYMENTS_API_TOKEN", True), ("GH_PAT", True),
    ("SSH_AUTH_SOCK", True), ("npm_config__authToken", True), ("HOME", False), ("PATH", False),
    ("GIT_AUTHOR_NAME", False), ("PWD", False), ("LANG", False), ("BYPASS_CACHE", False),
])
def test_one_rule_decides_which_variables_are_secret(name: str, secret: bool, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert environ.is_secret_name is is_secret_name
    assert is_secret_name(name) is secret
    value = "v4lue-of-" + name.lower()
    monkeypatch.setenv(name, value)
    # what contained commands may not inherit unless named ...
    assert (name in safe_env(tmp_path, {name: value}, ())) is (not secret)
    # ... is what redaction replaces wherever it appears
    assert (redact(f"printed {value} here") == f"printed [REDACTED:env:{name}] here") is secret


def test_plain_urls_and_paths_in_secret_variables_are_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", os.environ["HOME"])
    text = f"GET http://127.0.0.1:8080/v1 with {os.environ['HOME']}"
    assert redact(text) == text
    assert redact("postgres://app:s3cretPw@db/x") == "postgres://app:[REDACTED:url_password]@db/x"


@pytest.mark.parametrize(("path", "hidden"), [
    (".env", True), ("deploy/.env.production", True), ("prod.env", True), ("certs/server.PEM", True),
    ("id_ed25519", True), (".npmrc", True), ("gcp/credentials-prod.json", True), ("infra/main.tfstate", True),
    (".env.example", False), ("id_rsa.pub", False), ("src/secrets.py", False), ("docs/env.md", False),
])
def test_secret_files_by_default(path: str, hidden: bool) -> None:
    assert SecretFiles().hides(path) is hidden


def test_secret_files_are_configured_in_the_user_config_only(root: Path) -> None:
    git(root, "init", "-q")
    (root / ".gitteam.toml").write_text('[secrets]\nallow_read = ["*"]\n')
    write_user_config(home(), '[secrets]\nfiles = ["*.env", "vault/"]\nallow_read = ["public.env"]\n')
    config = load_config(root, env={})
    assert config.ignored == ("secrets.allow_read",)
    policy = config.secret_files()
    assert policy.hides("a/prod.env") and policy.hides("vault/x/y.txt") and not policy.hides("public.env")
    assert not policy.hides(".npmrc")  # the list replaces the default one


def test_a_long_text_redacted_before_is_redacted_again_with_what_was_learned_since(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Long texts are remembered once redacted: a value learned later, or a variable set later, still goes."""
    from gitteam import secrets

    monkeypatch.setattr(secrets, "_LEARNED", [])
    value = "plain-looking-words-here"
    text = "a prompt long enough to be remembered\n" * 20 + f"the value: {value}\n"
    assert redact(text, env={}) == text
    assert redact(text, env={"DEPLOY_TOKEN": value}).endswith("the value: [REDACTED:env:DEPLOY_TOKEN]\n")
    secrets.learn({"SERVICE_PASSWORD": value})
    assert redact(text, env={}).endswith("the value: [REDACTED:file:SERVICE_PASSWORD]\n")
    assert value not in secrets.redact_data({"messages": [text]})["messages"][0]


def test_remembered_redactions_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The most recently used are kept, within a budget of characters; a text too big for an eighth of it is
    redacted every time and never kept. Each answer is the redaction, remembered or not."""
    from gitteam import secrets

    remembered = secrets._Remembered(budget=16_000)
    monkeypatch.setattr(secrets, "_REMEMBERED", remembered)
    token = "ghp_" + "a1B2c3D4e5" * 4
    texts = [f"text {n}: {'x' * 700} {token}\n" for n in range(20)]
    for text in texts:
        assert redact(text, env={}) == text.replace(token, "[REDACTED:github_token]")
    assert 0 < remembered.used <= 16_000 and len(remembered._items) < 20
    kept = {text for text, _ in remembered._items}
    assert texts[-1] in kept and texts[0] not in kept  # the oldest went first
    big = "y" * 1_200 + f" {token}"
    assert redact(big, env={}).endswith("[REDACTED:github_token]")
    assert all(text != big for text, _ in remembered._items)

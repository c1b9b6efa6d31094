"""benchmarks/swebench.py's plumbing, offline: a made-up instance whose "repository" is a local git repo, the
replay model as the team, and the predictions file the official harness reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import commit_files, git
from scripts import approve, coder_edits, done, plan_turn, script, subtask, write_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "swebench.py"
BUGGY = "def mean(values):\n    return sum(values) / (len(values) - 1)\n"
FIXED = "def mean(values):\n    return sum(values) / len(values)\n"


def _upstream(tmp_path: Path) -> tuple[Path, str]:
    """The "GitHub" of the instance: mirrors/acme/stats, a commit with the bug and a later one on top."""
    repo = tmp_path / "mirrors" / "acme" / "stats"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    base = commit_files(repo, {"stats/__init__.py": "", "stats/mean.py": BUGGY}, "mean")
    commit_files(repo, {"CHANGES.md": "later work the instance must not see\n"}, "later")
    return repo, base


def _instance(tmp_path: Path, base: str, statement: str = "mean([2, 4]) returns 6.0 instead of 3.0.") -> Path:
    path = tmp_path / "instances.jsonl"
    item = {"instance_id": "acme__stats-1", "repo": "acme/stats", "base_commit": base, "version": "1.0",
            "problem_statement": statement}
    path.write_text(json.dumps(item) + "\n")
    return path


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), "--workdir", str(tmp_path / "runs"), "--repo-url",
                           str(tmp_path / "mirrors" / "{repo}"), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)


def test_a_landed_run_becomes_a_prediction_that_applies_to_the_base_commit(tmp_path: Path) -> None:
    upstream, base = _upstream(tmp_path)
    model = write_script(tmp_path / "team.json", script(
        [plan_turn([subtask("fix", ["stats/mean.py"])])],
        {"fix": [coder_edits("stats/mean.py", "(len(values) - 1)", "len(values)"), done("divide by len")]},
        {"*": [approve()]}))
    output = tmp_path / "predictions.jsonl"
    statement = "--help is what mean() needs: mean([2, 4]) returns 6.0, not 3.0"  # an issue's text, not an option
    proc = _bench(tmp_path, "--instances", str(_instance(tmp_path, base, statement)), "--output", str(output),
                  "--model", f"replay:{model}", "--model-name", "gitteam-replay")
    assert proc.returncode == 0, proc.stderr
    [prediction] = [json.loads(line) for line in output.read_text().splitlines()]
    assert set(prediction) == {"instance_id", "model_name_or_path", "model_patch"}
    assert (prediction["instance_id"], prediction["model_name_or_path"]) == ("acme__stats-1", "gitteam-replay")
    assert "CHANGES.md" not in prediction["model_patch"]  # the diff is against base_commit, not upstream's head
    # what the harness does with it: apply to a checkout of base_commit
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(upstream), str(check))
    git(check, "checkout", "-q", base)
    subprocess.run(["git", "apply"], cwd=check, input=prediction["model_patch"], text=True, check=True)
    assert (check / "stats" / "mean.py").read_text() == FIXED
    # a second call skips what is predicted already
    again = _bench(tmp_path, "--instances", str(_instance(tmp_path, base)), "--output", str(output),
                   "--model", f"replay:{model}")
    assert again.returncode == 0 and len(output.read_text().splitlines()) == 1


def test_a_refused_run_predicts_an_empty_patch(tmp_path: Path) -> None:
    _, base = _upstream(tmp_path)
    model = write_script(tmp_path / "team.json", script(
        [plan_turn([subtask("fix", ["stats/mean.py"])])],
        {"fix": [coder_edits("stats/mean.py", "(len(values) - 1)", "len(values)"), done("divide by len")]},
        {"*": [{"call": "submit_review", "args": {"decision": "BLOCK", "summary": "no", "findings": []}}]}))
    output = tmp_path / "predictions.jsonl"
    proc = _bench(tmp_path, "--instances", str(_instance(tmp_path, base)), "--output", str(output),
                  "--model", f"replay:{model}")
    assert proc.returncode == 0, proc.stderr
    [prediction] = [json.loads(line) for line in output.read_text().splitlines()]
    assert prediction["model_patch"] == "" and "exit 3" in proc.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instance_id": "x", "repo": "acme/stats"}) + "\n")
    cases = [
        (["--instances", str(bad), "--output", "p.jsonl", "--model", "replay:x.json"], "has no base_commit"),
        (["--instances", str(tmp_path / "missing.jsonl"), "--output", "p.jsonl", "--model", "replay:x.json"],
         "cannot read"),
        (["--instances", str(bad), "--output", "p.jsonl"], "no model"),  # no key in the hermetic environment
    ]
    _, base = _upstream(tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("not json\n")
    cases += [
        (["--instances", str(_instance(tmp_path, base)), "--output", str(broken), "--model", "replay:x.json"],
         "line 1 is not a prediction"),
        (["--instances", str(_instance(tmp_path, "0" * 40)), "--output", "p.jsonl", "--model", "replay:x.json"],
         "git checkout"),  # a base commit the repository does not have
    ]
    for args, needle in cases:
        proc = _bench(tmp_path, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "p.jsonl").exists() and broken.read_text() == "not json\n"

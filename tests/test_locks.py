"""locks/: path resolution, the ownership predicate, plans, and cross-run claims on real repositories."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import git
from gitteam.git import Repository, find_repository
from gitteam.locks import (
    LockConflict,
    Ownership,
    PathRefused,
    claim_files,
    held_locks,
    normalize_repo_path,
    release_files,
    resolve_path,
)
from gitteam.locks.refs import EPOCH_REF, LOCK_PREFIX, claim_subtasks, lock_ref, read_claims
from gitteam.plan import Plan, PlanError, Subtask, parse_plan, serialize_overlaps, waves

# -- normalize_repo_path -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("src/app.py", "src/app.py"),
        ("./src/app.py", "src/app.py"),
        ("././a", "a"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/b/../../c", "c"),
        ("src/", "src"),
        (".gitignore", ".gitignore"),
        (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
        ("dir/.gitkeep", "dir/.gitkeep"),
        ("a b/ü.txt", "a b/ü.txt"),
    ],
)
def test_normalize_repo_path(given: str, expected: str) -> None:
    assert normalize_repo_path(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "is empty"),
        ("a\0b", "NUL"),
        ("/etc/passwd", "is absolute"),
        ("C:\\x", "is absolute"),
        ("c:/x", "is absolute"),
        ("\\\\server\\share", "is absolute"),
        ("a\\b", "backslash"),
        ("..", "outside the repository"),
        ("../x", "outside the repository"),
        ("a/../../x", "outside the repository"),
        ("./..", "outside the repository"),
        (".git", ".git"),
        (".git/config", ".git"),
        (".GIT/config", ".git"),
        ("sub/.git/x", ".git"),
        (".git/../x", ".git"),
        (".git./x", ".git"),
        ("GIT~1/config", ".git"),
        (".g\u200cit/config", ".git"),
        (".", "repository root"),
        ("./", "repository root"),
        ("a/..", "repository root"),
    ],
)
def test_normalize_refuses(given: str, reason: str) -> None:
    with pytest.raises(PathRefused, match="^refused: ") as info:
        normalize_repo_path(given)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_refusal_message_names_the_path() -> None:
    with pytest.raises(PathRefused) as info:
        normalize_repo_path("../x")
    assert str(info.value) == "refused: ../x is outside the repository"
    assert info.value.path == "../x"


# -- resolve_path --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["../x", "/etc/passwd", "C:\\x", "a\\b", ".git/config", "sub/.git/x", ".GIT/HEAD"]
)
def test_resolve_refuses_lexically(repo: Path, given: str) -> None:
    with pytest.raises(PathRefused):
        resolve_path(repo, given)
    with pytest.raises(PathRefused):
        resolve_path(repo, given, for_write=True)


def test_resolve_returns_normalized_path(repo: Path) -> None:
    assert resolve_path(repo, "./src//app.py") == "src/app.py"
    assert resolve_path(repo, "new/dir/file.py", for_write=True) == "new/dir/file.py"


def test_resolve_refuses_symlinked_dir_outside(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    (repo / "escape").symlink_to(outside)
    with pytest.raises(PathRefused, match="symlink that points outside"):
        resolve_path(repo, "escape/secret")
    with pytest.raises(PathRefused, match="symlink that points outside"):
        resolve_path(repo, "escape/new-file", for_write=True)


def test_resolve_refuses_symlinked_file_outside_for_read(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (repo / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(PathRefused, match="outside"):
        resolve_path(repo, "link")


def test_resolve_refuses_relative_symlink_climbing_out(repo: Path) -> None:
    (repo / "src" / "up").symlink_to("../..")
    with pytest.raises(PathRefused, match="outside"):
        resolve_path(repo, "src/up/elsewhere")


def test_resolve_refuses_symlink_into_git_dir(repo: Path) -> None:
    (repo / "gitdir").symlink_to(".git")
    with pytest.raises(PathRefused, match="into .git"):
        resolve_path(repo, "gitdir/config")


def test_resolve_refuses_writing_through_final_symlink(repo: Path) -> None:
    (repo / "alias.py").symlink_to("src/app.py")
    assert resolve_path(repo, "alias.py") == "alias.py"  # reading a link inside the root is fine
    with pytest.raises(PathRefused, match="is a symlink"):
        resolve_path(repo, "alias.py", for_write=True)


def test_resolve_refuses_writing_to_dangling_final_symlink(repo: Path) -> None:
    (repo / "dangling").symlink_to("does/not/exist")
    with pytest.raises(PathRefused, match="is a symlink"):
        resolve_path(repo, "dangling", for_write=True)


def test_resolve_allows_symlinked_dir_inside_for_read_only(repo: Path) -> None:
    (repo / "lib").symlink_to("src")
    assert resolve_path(repo, "lib/app.py") == "lib/app.py"
    # writing lib/new.py would create src/new.py, which the subtask may not own (and git cannot stage)
    with pytest.raises(PathRefused, match="goes through the symlink lib: use src/new.py"):
        resolve_path(repo, "lib/new.py", for_write=True)


def test_resolve_for_delete_allows_the_link_itself_only(repo: Path, tmp_path: Path) -> None:
    (repo / "alias.py").symlink_to("src/app.py")
    (repo / "lib").symlink_to("src")
    (repo / "out").symlink_to(tmp_path)
    assert resolve_path(repo, "alias.py", for_delete=True) == "alias.py"  # unlinking removes only the link
    with pytest.raises(PathRefused, match="goes through the symlink lib"):
        resolve_path(repo, "lib/app.py", for_delete=True)
    with pytest.raises(PathRefused, match="outside"):
        resolve_path(repo, "out", for_delete=True)
    with pytest.raises(PathRefused, match=".git"):
        resolve_path(repo, ".git/index", for_delete=True)


def test_resolve_works_when_root_is_reached_through_a_symlink(repo: Path, tmp_path: Path) -> None:
    via = tmp_path / "via"
    via.symlink_to(repo)
    (repo / "lib").symlink_to("src")
    assert resolve_path(via, "lib/app.py") == "lib/app.py"


# -- Ownership ---------------------------------------------------------------------------------------------


def test_ownership_files_and_dirs() -> None:
    owner = Ownership(["src/api.py", "./docs/", "src/api.py"])
    assert owner.files == ("src/api.py", "docs/")
    assert owner.owns("src/api.py")
    assert owner.owns("./src//api.py")
    assert owner.owns("docs/index.md")
    assert owner.owns("docs/deep/er/page.md")
    assert not owner.owns("docs")  # the directory entry owns what is below it
    assert not owner.owns("docsx/a.md")
    assert not owner.owns("src/api.pyc")
    assert not owner.owns("src/other.py")
    assert not owner.owns("../src/api.py")
    assert not owner.owns("docs/../.git/config")
    assert not owner.owns("docs/.git/config")


def test_ownership_violations_sorted_and_unique() -> None:
    owner = Ownership(["a.py", "pkg/"])
    given = ["z.py", "a.py", "pkg/x.py", "b.py", "z.py", "../a.py"]
    assert owner.violations(given) == ["../a.py", "b.py", "z.py"]
    assert owner.violations([]) == []


def test_ownership_refuses_bad_entries() -> None:
    with pytest.raises(PathRefused):
        Ownership(["../x"])


def test_ownership_overlap() -> None:
    assert Ownership(["src/"]).overlap(Ownership(["src/api.py", "README.md"])) == ["src/api.py"]
    assert Ownership(["src/a/"]).overlap(Ownership(["src/"])) == ["src/a/"]
    assert Ownership(["a.py"]).overlap(Ownership(["b.py", "a/"])) == []


# -- parse_plan --------------------------------------------------------------------------------------------


def sub(id: str, files: list[str], depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": id, "title": f"do {id}", "instructions": f"implement {id}", "files": files}
    if depends_on is not None:
        item["depends_on"] = depends_on
    item.update(extra)
    return item


def problems_of(raw: object) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(raw)
    assert "\n" not in str(info.value)
    assert info.value.problems
    return info.value.problems


def test_parse_plan_valid() -> None:
    plan = parse_plan(
        {
            "subtasks": [
                sub("api", ["./src/api.py", "src/api.py", "src/models/"]),
                sub("cli", ["src/cli.py"], ["api", "api"]),
            ],
            "summary": "two steps",
        }
    )
    assert plan.summary == "two steps"
    api, cli = plan.subtasks
    assert api == Subtask("api", "do api", "implement api", ("src/api.py", "src/models/"))
    assert cli.depends_on == ("api",)
    assert list(plan.by_id()) == ["api", "cli"]


def test_parse_plan_accepts_bare_list() -> None:
    assert parse_plan([sub("a", ["a.py"])]).subtasks[0].id == "a"


def test_plan_json_round_trip() -> None:
    plan = Plan(
        (
            Subtask("a", "A", "do a\nwell", ("x/", "y.py")),
            Subtask("b", "B", "do b", ("z.py",), ("a",)),
        ),
        "sum",
    )
    data = json.loads(json.dumps(plan.to_json()))
    assert Plan.from_json(data) == plan
    assert parse_plan(data) == plan


def test_plan_from_json_malformed() -> None:
    with pytest.raises(PlanError, match="malformed"):
        Plan.from_json({"subtasks": [{"id": 1}]})


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("do it", "subtasks must be a list"),
        ({"summary": "x"}, "needs subtasks"),
        ({"subtasks": [], "extra": 1}, 'unknown argument(s) "extra"'),
        ({"subtasks": [sub("a", ["a"])], "summary": 3}, "summary must be a string"),
        ([], "no subtasks"),
        (["a"], "subtask #1 must be an object"),
        ([sub("a", ["a"], owner="me")], 'unknown field(s) "owner"'),
        ([{"title": "t", "instructions": "i", "files": ["a"]}], 'subtask #1 has no "id"'),
        ([sub(7, ["a"])], '"id" must be a string'),  # type: ignore[arg-type]
        ([sub("a b", ["a"])], "may only use letters"),
        ([sub("-a", ["a"])], "may only use letters"),
        ([sub("a\n", ["a"])], "may only use letters"),
        ([sub("x" * 65, ["a"])], "longer than 64"),
        ([sub("a..b", ["a"])], "'..'"),
        ([sub("a.lock", ["a"])], ".lock"),
        ([sub("a.", ["a"])], "'.'"),
        ([sub("integration", ["a"])], "reserved"),
        ([sub("Integration", ["a"])], "reserved"),
        ([sub("a", ["a"]), sub("a", ["b"])], "used by subtasks #1 and #2"),
        ([{"id": "a", "instructions": "i", "files": ["a"]}], 'no "title"'),
        ([sub("a", ["a"], title="  ")], '"title" must be a non-empty string, not an empty string'),
        ([sub("a", ["a"], instructions=["x"])], '"instructions" must be a non-empty string, not a list'),
        ([{"id": "a", "title": "t", "instructions": "i"}], 'no "files"'),
        ([sub("a", "a.py")], '"files" must be a list of paths, not a string'),  # type: ignore[arg-type]
        ([sub("a", [])], 'empty "files" list'),
        ([sub("a", [3])], "files[0] must be a path string, not a number"),  # type: ignore[list-item]
        ([sub("a", ["../x"])], "file ../x is outside the repository"),
        ([sub("a", [".git/hooks/pre-commit"])], "inside .git"),
        ([sub("a", ["/abs"])], "is absolute"),
        ([sub("a", ["a"], depends_on="b")], '"depends_on" must be a list'),  # type: ignore[arg-type]
        ([sub("a", ["a"], depends_on=[None])], "depends_on[0] must be a subtask id string"),  # type: ignore[list-item]
        ([sub("a", ["a"], ["zz"])], 'depends on "zz", which is not a subtask id'),
        ([sub("a", ["a"], ["a"])], "depends on itself"),
    ],
)
def test_parse_plan_problem(raw: object, needle: str) -> None:
    problems = problems_of(raw)
    assert any(needle in problem for problem in problems), problems


def test_parse_plan_collects_every_problem() -> None:
    problems = problems_of(
        {
            "subtasks": [
                sub("integration", ["../x"]),
                {"id": "b", "title": "", "files": []},
                sub("c", ["c.py"], ["nope", "c"]),
                "junk",
            ],
            "summary": 1,
        }
    )
    expected = [
        "summary must be a string",
        "reserved",
        "outside the repository",
        'subtask "b" has no "instructions"',
        '"title" must be a non-empty string',
        'empty "files" list',
        'depends on "nope"',
        "depends on itself",
        "subtask #4 must be an object",
    ]
    for needle in expected:
        assert any(needle in problem for problem in problems), (needle, problems)
    assert len(problems) == len(expected)


def test_plan_error_summary_and_feedback() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan([sub("a", []), sub("b", [])])
    assert str(info.value).startswith("the plan was refused: ")
    assert "(and 1 more problems)" in str(info.value)
    feedback = info.value.for_model()
    assert feedback.count("\n- ") == 2 and "submit_plan again" in feedback


def test_parse_plan_names_cycles() -> None:
    problems = problems_of([sub("a", ["a"], ["b"]), sub("b", ["b"], ["a"]), sub("c", ["c"], ["c"])])
    assert any("dependency cycle a -> b -> a" in problem for problem in problems), problems
    assert any('"c" depends on itself' in problem for problem in problems)


def test_parse_plan_names_longer_cycle_once() -> None:
    problems = problems_of(
        [sub("a", ["a"], ["b"]), sub("b", ["b"], ["c"]), sub("c", ["c"], ["a"]), sub("d", ["d"], ["a"])]
    )
    cycles = [problem for problem in problems if "cycle" in problem]
    assert len(cycles) == 1 and "a -> b -> c -> a" in cycles[0]


# -- serialize_overlaps and waves ----------------------------------------------------------------------------


def plan_of(*items: dict[str, Any]) -> Plan:
    return parse_plan(list(items))


def test_serialize_same_file() -> None:
    plan = plan_of(sub("a", ["src/api.py"]), sub("b", ["src/api.py", "b.py"]), sub("c", ["c.py"]))
    new, messages = serialize_overlaps(plan)
    assert messages == ['serialized: "b" now waits for "a" (both own src/api.py)']
    assert new.by_id()["b"].depends_on == ("a",)
    assert new.by_id()["a"].depends_on == () and new.by_id()["c"].depends_on == ()
    assert [s.id for s in new.subtasks] == ["a", "b", "c"]


def test_serialize_dir_prefix() -> None:
    plan = plan_of(sub("a", ["src/api.py"]), sub("b", ["src/"]))
    new, messages = serialize_overlaps(plan)
    assert messages == ['serialized: "b" now waits for "a" (both own src/api.py)']
    assert new.by_id()["b"].depends_on == ("a",)


def test_serialize_respects_existing_transitive_dependency() -> None:
    plan = plan_of(sub("a", ["x.py"]), sub("b", ["y.py"], ["a"]), sub("c", ["x.py"], ["b"]))
    new, messages = serialize_overlaps(plan)
    assert messages == [] and new == plan


def test_serialize_follows_topological_order_not_list_order() -> None:
    # "a" is listed first but waits for "c", so "b" (ready at once) comes first: "a" waits for "b".
    plan = plan_of(sub("a", ["f.py"], ["c"]), sub("b", ["f.py"]), sub("c", ["c.py"]))
    new, messages = serialize_overlaps(plan)
    assert messages == ['serialized: "a" now waits for "b" (both own f.py)']
    assert new.by_id()["a"].depends_on == ("c", "b")
    assert new.by_id()["b"].depends_on == ()
    assert [[s.id for s in wave] for wave in waves(new)] == [["b", "c"], ["a"]]


def test_serialize_ties_follow_plan_order() -> None:
    plan = plan_of(sub("a", ["f.py"], ["c"]), sub("c", ["c.py"]), sub("b", ["f.py"]))
    new, messages = serialize_overlaps(plan)  # topological order c, a, b
    assert messages == ['serialized: "b" now waits for "a" (both own f.py)']
    plan = plan_of(sub("a", ["f.py"], ["c"]), sub("b", ["f.py"]), sub("c", ["c.py"], ["b"]))
    new, messages = serialize_overlaps(plan)
    assert messages == [] and new == plan  # a -> c -> b already orders them


def test_serialize_three_owners_make_a_chain() -> None:
    plan = plan_of(sub("a", ["f.py"]), sub("b", ["f.py"]), sub("c", ["f.py"]))
    new, messages = serialize_overlaps(plan)
    assert len(messages) == 2
    assert new.by_id()["b"].depends_on == ("a",) and new.by_id()["c"].depends_on == ("b",)
    assert [[s.id for s in wave] for wave in waves(new)] == [["a"], ["b"], ["c"]]


def test_serialize_result_has_no_concurrent_overlap() -> None:
    plan = plan_of(
        sub("a", ["pkg/"]),
        sub("b", ["pkg/x.py", "docs/"]),
        sub("c", ["docs/a.md"], ["a"]),
        sub("d", ["other.py"]),
        sub("e", ["pkg/y/z.py", "other.py"]),
    )
    new, _ = serialize_overlaps(plan)
    for wave in waves(new):
        for i, first in enumerate(wave):
            for second in wave[i + 1 :]:
                assert not first.ownership.overlap(second.ownership), (first.id, second.id)


def test_waves_layering_keeps_plan_order() -> None:
    plan = plan_of(
        sub("d", ["d"], ["b", "c"]),
        sub("c", ["c"]),
        sub("b", ["b"], ["a"]),
        sub("a", ["a"]),
        sub("e", ["e"]),
    )
    assert [[s.id for s in wave] for wave in waves(plan)] == [["c", "a", "e"], ["b"], ["d"]]


def test_waves_refuse_cycles_in_unvalidated_plans() -> None:
    plan = Plan((Subtask("a", "A", "i", ("a",), ("b",)), Subtask("b", "B", "i", ("b",), ("a",))))
    with pytest.raises(PlanError, match="a -> b -> a"):
        waves(plan)
    with pytest.raises(PlanError, match="a -> b -> a"):
        serialize_overlaps(plan)


# -- claims across runs --------------------------------------------------------------------------------------


@pytest.fixture
def gateway(repo: Path) -> Repository:
    return find_repository(repo)


def test_claim_and_held_locks(gateway: Repository, repo: Path) -> None:
    claim_files(gateway, "run1", {"src/app.py": "a", "./docs/": "b"})
    assert held_locks(gateway) == {"src/app.py": ("run1", "a"), "docs/": ("run1", "b")}
    ref = lock_ref("src/app.py")
    assert ref.startswith(LOCK_PREFIX)
    blob = git(repo, "cat-file", "blob", ref)
    assert json.loads(blob) == {"path": "src/app.py", "run": "run1", "subtask": "a"}


def test_a_claim_decided_on_a_look_just_taken_lists_the_refs_once(gateway: Repository,
                                                                  started: list[list[str]]) -> None:
    """A run looks at the claims, then claims on what it saw (the epoch still guards it): the refs are listed
    once, and the locks and the new epoch are written by one process."""
    claim_files(gateway, "run0", {"other.py": "z"})
    started.clear()
    wanted = {"a": ["src/app.py"], "b": ["docs/"], "c": ["other.py"]}
    seen = read_claims(gateway)
    ahead = claim_subtasks(gateway, "run1", wanted, dry_run=True, seen=seen)
    assert list(ahead) == ["c"] and claim_subtasks(gateway, "run1", wanted, seen=seen) == ahead
    spawned = [next(arg for arg in args[1:] if arg in ("for-each-ref", "fast-import", "update-ref", "hash-object"))
               for args in started if "cat-file" not in args]
    assert spawned == ["for-each-ref", "fast-import", "update-ref"]
    assert held_locks(gateway) == {"other.py": ("run0", "z"), "src/app.py": ("run1", "a"), "docs/": ("run1", "b")}
    assert gateway.rev_parse(EPOCH_REF) != seen.epoch


def test_a_claim_on_a_stale_look_reads_again(gateway: Repository) -> None:
    seen = read_claims(gateway)
    claim_files(gateway, "run0", {"src/": "z"})  # after the look: the epoch moved
    blocked = claim_subtasks(gateway, "run1", {"a": ["src/app.py"], "b": ["docs/x.md"]}, seen=seen)
    assert list(blocked) == ["a"] and blocked["a"][0].lock.run == "run0"
    assert held_locks(gateway) == {"src/": ("run0", "z"), "docs/x.md": ("run1", "b")}

def test_two_runs_conflict(gateway: Repository) -> None:
    claim_files(gateway, "run1", {"src/app.py": "a"})
    with pytest.raises(LockConflict) as info:
        claim_files(gateway, "run2", {"src/app.py": "x"})
    message = str(info.value)
    assert "src/app.py" in message and "run1" in message
    assert "gitteam abort run1" in message and "gitteam approve run1" in message
    assert held_locks(gateway) == {"src/app.py": ("run1", "a")}


@pytest.mark.parametrize(
    ("first", "second"), [("src/", "src/app.py"), ("src/app.py", "src/"), ("a/", "a/b/")]
)
def test_dir_entries_conflict_across_runs(gateway: Repository, first: str, second: str) -> None:
    claim_files(gateway, "run1", {first: "a"})
    with pytest.raises(LockConflict, match="run1"):
        claim_files(gateway, "run2", {second: "x"})


def test_same_run_reclaims(gateway: Repository) -> None:
    claim_files(gateway, "run1", {"a.py": "a", "b.py": "b"})
    before = gateway.refs(LOCK_PREFIX)
    claim_files(gateway, "run1", {"a.py": "a", "b.py": "b"})  # resume: nothing changes
    assert gateway.refs(LOCK_PREFIX) == before
    claim_files(gateway, "run1", {"b.py": "b2", "c.py": "c"})  # a later subtask of the run takes over b.py
    assert held_locks(gateway) == {"a.py": ("run1", "a"), "b.py": ("run1", "b2"), "c.py": ("run1", "c")}


def test_conflict_claims_nothing(gateway: Repository) -> None:
    claim_files(gateway, "run1", {"shared.py": "a"})
    with pytest.raises(LockConflict) as info:
        claim_files(gateway, "run2", {"free1.py": "x", "shared.py": "x", "free2.py": "y"})
    assert [conflict.wanted for conflict in info.value.conflicts] == ["shared.py"]
    assert held_locks(gateway) == {"shared.py": ("run1", "a")}


def test_release(gateway: Repository) -> None:
    claim_files(gateway, "run1", {"a.py": "a", "dir/": "b"})
    claim_files(gateway, "run2", {"c.py": "c"})
    assert release_files(gateway, "run1") == 2
    assert held_locks(gateway) == {"c.py": ("run2", "c")}
    assert release_files(gateway, "run1") == 0
    claim_files(gateway, "run3", {"a.py": "z", "dir/x.py": "z"})  # freed for others
    assert held_locks(gateway)["a.py"] == ("run3", "z")


def test_claim_refuses_bad_run_id_and_paths(gateway: Repository) -> None:
    with pytest.raises(Exception, match="invalid run id"):
        claim_files(gateway, "integration", {"a.py": "a"})
    with pytest.raises(PathRefused):
        claim_files(gateway, "run1", {"../a.py": "a"})
    assert held_locks(gateway) == {}


def test_foreign_blob_at_our_lock_ref_conflicts(gateway: Repository, repo: Path) -> None:
    blob = gateway.write_blob(b"not json")
    git(repo, "update-ref", lock_ref("a.py"), blob)
    with pytest.raises(LockConflict, match="not a gitteam lock"):
        claim_files(gateway, "run1", {"a.py": "a"})
    assert held_locks(gateway) == {}


def test_claim_moves_the_epoch(gateway: Repository) -> None:
    assert lock_ref("x") < EPOCH_REF and not EPOCH_REF.startswith(LOCK_PREFIX)  # committed after the locks
    claim_files(gateway, "run1", {"a.py": "a"})
    first = gateway.rev_parse(EPOCH_REF)
    claim_files(gateway, "run2", {"b.py": "b"})
    assert first is not None and gateway.rev_parse(EPOCH_REF) not in (None, first)


def _race(gateway: Repository, claims: dict[str, str]) -> dict[str, str]:
    """Start one claim per run at the same moment; run -> "won" or "lost"."""
    results: dict[str, str] = {}
    barrier = threading.Barrier(len(claims))

    def claim(run: str, path: str) -> None:
        barrier.wait()
        try:
            claim_files(gateway, run, {path: "s"})
            results[run] = "won"
        except LockConflict:
            results[run] = "lost"

    threads = [threading.Thread(target=claim, args=item) for item in claims.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("paths", [("pkg/", "pkg/mod.py"), ("pkg/mod.py", "pkg/mod.py")])
def test_concurrent_overlapping_claims_one_wins(gateway: Repository, paths: tuple[str, str]) -> None:
    for round_ in range(8):
        results = _race(gateway, {f"r{round_}a": paths[0], f"r{round_}b": paths[1], f"r{round_}c": paths[0]})
        assert sorted(results.values()) == ["lost", "lost", "won"], results
        winner = next(run for run, result in results.items() if result == "won")
        assert release_files(gateway, winner) == 1


def test_locks_live_outside_notes(gateway: Repository, repo: Path) -> None:
    claim_files(gateway, "run1", {"a.py": "a"})
    refs = git(repo, "for-each-ref", "--format=%(refname)").splitlines()
    assert all(ref.startswith("refs/gitteam/") or ref.startswith("refs/heads/") for ref in refs)
    assert os.path.isdir(repo / ".git")  # sanity: locks are refs, not files in the worktree
    assert git(repo, "status", "--porcelain") == ""

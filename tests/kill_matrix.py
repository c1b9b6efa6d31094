"""Invariant 8, the whole matrix: a two-wave, four-subtask run killed (SIGKILL, its process group) at every
model request, inside every ref transaction and inside every run of git's clean/smudge filter (checkouts of new
worktrees, the fast-forward of the user's checkout, index refreshes), then resumed: it lands exactly the tree
an unkilled run lands, and leaves no worktree, no directory, no git lock, no claim behind. Every time.

A run of its own per kill point makes this slow (about 75 points), so it is not named test_*.py: the README's
test command leaves it out, and `.ci/run` runs it, more than once. tests/test_resume.py holds a few points of
each kind for the fast suite. Run it alone with:

    .venv/bin/python -m pytest -n 4 -q -p no:cacheprovider tests/kill_matrix.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from killing import kill_and_resume, reference_tree, team

SHARDS = 3  # each kind's points spread over this many tests, for pytest-xdist


@pytest.mark.parametrize("shard", range(SHARDS))
@pytest.mark.parametrize("kind", ["request", "transaction", "filter"])
@pytest.mark.usefixtures("loopback_env")
def test_killed_at_every_point_the_run_resumes_to_the_same_tree(tmp_path: Path, kind: str, shard: int) -> None:
    home = Path.home()
    with team(home) as crew:
        tree = reference_tree(tmp_path, home, crew)
        n = shard + 1
        while kill_and_resume(tmp_path, home, crew, kind, n, tree):
            n += SHARDS
        assert n > SHARDS, f"no {kind} kill point was reached"

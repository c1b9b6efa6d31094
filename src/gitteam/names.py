"""The names a run gives git: run and subtask ids, and the branches made of them.

Every ref gitteam writes for a run is `refs/heads/gitteam/<run>/<agent>`; the ids are checked here, once,
so a plan, a lock and a branch agree on what a valid name is. `integration` and `planner` are gitteam's
own agents, never a subtask's id.
"""

from __future__ import annotations

import re

BRANCH_PREFIX = "gitteam"
INTEGRATION = "integration"
PLANNER = "planner"
RESERVED_IDS = frozenset({INTEGRATION, PLANNER})
MAX_ID_LENGTH = 64
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def agent_branch(run: str, agent: str) -> str:
    """The branch of one agent of a run (`agent` may be INTEGRATION)."""
    return f"{BRANCH_PREFIX}/{run}/{agent}"


def agent_ref(run: str, agent: str) -> str:
    return f"refs/heads/{agent_branch(run, agent)}"

def ref_component_problem(name: str) -> str | None:
    """Why `name` cannot be a run or subtask id (a ref-name component), or None if it can."""
    if len(name) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    if not _ID.fullmatch(name):
        return "may only use letters, digits, '.', '_' and '-', and must start with a letter or digit"
    if ".." in name:
        return "may not contain '..'"
    if name.endswith(".lock") or name.endswith("."):
        return "may not end with '.lock' or '.'"
    if name.casefold() in RESERVED_IDS:
        return "is reserved for gitteam's own agents (integration, planner)"
    return None

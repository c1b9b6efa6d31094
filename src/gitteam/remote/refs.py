"""Names of the distributed mode's refs: one namespace per run on the remote, and each clone's mirror of it.

    refs/gitteam/runs/<run>/plan             run.json: the run, written by its owner only
    refs/gitteam/runs/<run>/jobs/<agent>     job.json, parent = where the worker starts; owner only
    refs/gitteam/runs/<run>/leases/<agent>   lease.json: who holds the job now; workers only, by CAS
    refs/gitteam/runs/<run>/work/<agent>     the worker's commits on top of the job's parent
    refs/gitteam/runs/<run>/results/<agent>  result.json, parent = the final work commit
"""

from __future__ import annotations

import hashlib
import re

NAMESPACE = "refs/gitteam/runs/"
MIRRORS = "refs/gitteam/mirror/"
KINDS = ("jobs", "leases", "work", "results")  # the per-agent refs of a run, besides its plan

# A remote name used as it is in a ref name; anything else (a URL, a path, an odd name) is hashed.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def run_prefix(run: str) -> str:
    return f"{NAMESPACE}{run}/"


def plan_ref(run: str) -> str:
    return f"{run_prefix(run)}plan"


def job_ref(run: str, agent: str) -> str:
    return f"{run_prefix(run)}jobs/{agent}"


def lease_ref(run: str, agent: str) -> str:
    return f"{run_prefix(run)}leases/{agent}"


def work_ref(run: str, agent: str) -> str:
    return f"{run_prefix(run)}work/{agent}"


def result_ref(run: str, agent: str) -> str:
    return f"{run_prefix(run)}results/{agent}"


def mirror_prefix(remote: str) -> str:
    """Where this clone keeps its copy of `remote`'s runs: "refs/gitteam/mirror/<safe name>/runs/"."""
    if _PLAIN_NAME.fullmatch(remote):
        safe = remote
    else:
        safe = "url-" + hashlib.sha256(remote.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{MIRRORS}{safe}/runs/"


def split(name: str, prefix: str) -> tuple[str, str, str] | None:
    """(run, kind, agent) of a ref under `prefix` (kind "plan" has agent ""); None for any other shape."""
    parts = name.removeprefix(prefix).split("/")
    if not name.startswith(prefix) or not parts[0]:
        return None
    if len(parts) == 2 and parts[1] == "plan":
        return parts[0], "plan", ""
    if len(parts) == 3 and parts[1] in KINDS and parts[2]:
        return parts[0], parts[1], parts[2]
    return None

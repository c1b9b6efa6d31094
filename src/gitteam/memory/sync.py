"""Sharing memory with other clones: refspecs for plain `git push`/`git fetch`, and `gitteam memory push|pull`.

Every clone writes only its own ref, `refs/notes/gitteam-memory/<writer>`, so:
- `git fetch` brings other clones' refs straight into `refs/notes/gitteam-memory/*` as fast-forwards (never
  forced; this clone's own ref is excluded by a negative refspec, so an unpushed ref is never "rewound");
- `git push` sends this clone's ref only (a glob that matches nothing is not an error, so a clone that
  has remembered nothing yet can still push its branches);
- `gitteam memory pull` fetches into a scratch namespace under refs/gitteam/ and merges each ref: create,
  fast-forward, or, for copies that diverged, a union commit in which a tombstone beats the entry it hides.
Entries are content-addressed, so a union never holds one entry twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gitteam.errors import GitteamError, UsageError
from gitteam.git import GitError, Repository
from gitteam.memory.store import PREFIX, Store, writer_id

SCRATCH = "refs/gitteam/memory-fetch/"


@dataclass
class SyncResult:
    remote: str
    refs: dict[str, str] = field(default_factory=dict)  # memory ref -> what happened to it
    configured: list[str] = field(default_factory=list)  # config lines added
    before: int = 0  # visible entries before and after
    after: int = 0


def _reason(exc: GitError) -> str:
    lines = [line.strip() for line in exc.stderr.splitlines() if line.strip()]
    return lines[0].removeprefix("fatal: ") if lines else str(exc)


def _remote(repo: Repository, remote: str | None) -> str:
    name = remote or default_remote(repo)
    if name.startswith("-"):
        raise UsageError(f"invalid remote {name!r}: give a remote name, URL or path")
    return name


def default_remote(repo: Repository) -> str:
    """The current branch's remote, else `origin`, else the only remote."""
    remotes = repo.remote_names()
    branch = repo.head_branch()
    upstream = repo.config_values(f"branch.{branch}.remote") if branch else []
    if upstream and upstream[-1] in remotes:
        return upstream[-1]
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return remotes[0]
    if not remotes:
        raise UsageError("this repository has no remote: add one (git remote add NAME URL) or pass REMOTE")
    raise UsageError(f"several remotes ({', '.join(remotes)}) and none is origin: pass REMOTE")


def configure_remote(repo: Repository, remote: str) -> list[str]:
    """Make plain `git fetch`/`git push` of `remote` carry the memory refs; returns the config lines added.

    A remote without push refspecs pushes the current branch by `push.default`; a push refspec replaces
    that, so `HEAD` (the current branch, to the same name) is added first to keep `git push` pushing it.
    A URL or path instead of a configured remote is left alone.
    """
    if remote not in repo.remote_names():
        return []
    me = writer_id(repo)
    wanted = {
        f"remote.{remote}.fetch": [f"{PREFIX}*:{PREFIX}*", f"^{PREFIX}{me}"],
        f"remote.{remote}.push": [f"{PREFIX}{me}*:{PREFIX}{me}*"],
    }
    added = []
    for key, values in wanted.items():
        present = repo.config_values(key)
        if key.endswith(".push") and not present:
            values = ["HEAD", *values]
        for value in values:
            if value not in present:
                repo.add_config(key, value)
                added.append(f"{key} = {value}")
    return added


def pull(repo: Repository, remote: str | None = None, configure: bool = True) -> SyncResult:
    """Fetch every memory ref of `remote` and merge it into ours; nothing is ever rewound or lost. `configure`:
    also set up the remote's refspecs for plain `git fetch`/`git push` (what `gitteam memory pull` does; a
    distributed run's own syncs leave the user's git config alone)."""
    name = _remote(repo, remote)
    store = Store(repo)
    store.migrate_legacy()
    configured = configure_remote(repo, name) if configure else []
    result = SyncResult(name, configured=configured, before=len(store.snapshot().visible()))
    scratch = f"{SCRATCH}{secrets.token_hex(4)}/"
    try:
        try:
            repo.fetch_refs(name, [f"+{PREFIX}*:{scratch}*"])
        except GitError as exc:
            raise GitteamError(f"could not fetch memory from {name}: {_reason(exc)}") from exc
        fetched = repo.refs(scratch)
        for ref, tip in sorted(fetched.items()):
            target = PREFIX + ref.removeprefix(scratch)
            result.refs[target] = store.merge_ref(target, tip, f"memory: merge {target} from {name}")
    finally:
        leftovers = repo.refs(scratch)
        if leftovers:
            repo.update_refs([(ref, None, tip) for ref, tip in leftovers.items()])
    result.after = len(store.snapshot().visible())
    return result


def push(repo: Repository, remote: str | None = None, configure: bool = True) -> SyncResult:
    """Push every memory ref this clone has (never forced): its own, and copies of others' the remote lacks.

    Fails only if the remote refuses this clone's own ref (it holds entries this clone has not pulled).
    `configure` as for `pull`.
    """
    name = _remote(repo, remote)
    store = Store(repo)
    store.migrate_legacy()
    result = SyncResult(name, configured=configure_remote(repo, name) if configure else [])
    refs = sorted(ref for ref in store.refs() if ref.startswith(PREFIX))
    result.before = result.after = len(store.snapshot().visible())
    if not refs:
        return result
    try:
        pushed = repo.push_refs(name, [f"{ref}:{ref}" for ref in refs])
    except GitError as exc:
        raise GitteamError(f"could not push memory to {name}: {_reason(exc)}") from exc
    meaning = {" ": "updated", "*": "new", "=": "up to date", "!": "refused (the remote is ahead; pull first)"}
    for item in pushed:
        result.refs[item.destination] = meaning.get(item.status, item.summary)
    own = store.writer_ref
    if any(item.status == "!" and item.destination == own for item in pushed):
        raise GitteamError(f"{name} refused {own}: it holds memory this clone has not pulled; run "
                           f"gitteam memory pull {name}, then push again")
    return result

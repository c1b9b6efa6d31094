"""Where a run's worktrees live, and everything that finds, recovers, empties, measures and removes them.

Every worktree of a run is `<root>/<repository key>/<run>/<agent>`. The root is `[worktrees] root` (user config
only), else `$XDG_DATA_HOME/gitteam/worktrees`, else `~/.local/share/gitteam/worktrees`, as claude-squad and
Conductor keep theirs under the user's data dir: outside the repository's git dir (Claude Code refuses to edit
under `.git/`) and outside its working tree (the user's `git status` never sees them). The key is the
repository's name and a short hash of its common git dir's path, so two clones never share a directory.

A repository moved after its run started gets a new key for the worktrees made from then on; those made before
stay where git's own records and the journal (agent_started) say, and `recover` reconnects them (`git worktree
repair`). Runs started before this layout have theirs in `<common dir>/gitteam/worktrees/<run>/<agent>`
(`legacy_run_dir`), moved along with the repository: found, reconnected and removed the same way. A deleted
repository's worktrees are `orphans`, which `gitteam clean` lists (and removes with --orphans).

Nothing is lost when a worktree goes: what its agent left uncommitted there (files it does not own, anything a
kill left unsaved) is first committed on `refs/gitteam/leftovers/<run>/<agent>`, from the worktree with git's
plumbing, no branch moved. Build output is not work and goes with the worktree: what the repository ignores,
and BUILD_OUTPUT (caches no one commits), which gitteam adds to its own view of every worktree only (never to
the user's `info/exclude` or config).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitteam.cone import Cone
from gitteam.config import Config, user_config_path
from gitteam.errors import GitteamError, UsageError
from gitteam.events import LeftoversSaved, WorktreesRemoved
from gitteam.git import GitError, Repository, Worktree
from gitteam.journal import Journal
from gitteam.names import agent_ref

BUILD_OUTPUT = ("__pycache__/", "*.py[cod]", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "node_modules/",
                ".tox/", ".nox/")
LEFTOVERS = "refs/gitteam/leftovers/"
AUTHOR = ("gitteam", "gitteam@gitteam.invalid")
YOUNG = 60.0  # seconds: a directory this new under the root may be a worktree another gitteam is making


# --- where ---------------------------------------------------------------------------------------------------

def root(config: Config) -> Path:
    """The directory of every repository's worktrees."""
    if config.worktrees.root:
        return Path(os.path.expanduser(config.worktrees.root))
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if os.path.isabs(data) else Path.home() / ".local" / "share"  # a relative one is invalid
    return base / "gitteam" / "worktrees"


def repo_key(repo: Repository) -> str:
    """`<name>-<12 hex digits>`: the repository's directory name, and a hash of its common dir's path."""
    common = repo.common_dir.resolve()
    top = common.parent if common.name == ".git" else common
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", top.name.removesuffix(".git")).strip(".-")[:40] or "repo"
    return f"{name}-{hashlib.sha256(os.fsencode(str(common))).hexdigest()[:12]}"


def repo_dir(repo: Repository, config: Config) -> Path:
    """This repository's directory under the root; UsageError when the root lies inside the repository."""
    top = root(config)
    real = top.resolve()
    common = repo.common_dir.resolve()
    places = [(common, "git dir"), (repo.root.resolve(), "working tree")]
    if common.name == ".git":
        places.append((common.parent, "working tree"))
    for place, what in places:
        if real == place or place in real.parents:
            raise UsageError(f"the worktrees' directory {top} is inside the repository's {what} {place}: set "
                             f"[worktrees] root in {user_config_path()} to a directory outside it")
    return top / repo_key(repo)


def run_dir(repo: Repository, config: Config, run: str) -> Path:
    return repo_dir(repo, config) / run


def legacy_run_dir(repo: Repository, run: str) -> Path:
    """Where runs started before worktrees left the git dir have theirs."""
    return repo.state_dir / "worktrees" / run


def new_path(repo: Repository, config: Config, run: str, agent: str) -> Path:
    """Where a new worktree of `agent` (a subtask, or the integration review's checkout) goes."""
    return run_dir(repo, config, run) / agent


def belongs(repo: Repository, config: Config, run: str, path: Path) -> bool:
    """Whether `path` is a place of `run`'s worktrees: under the root with any repository key (the repository's
    key when that worktree was made), or the legacy dir."""
    real = path.resolve()
    if real.parent.name == run and real.parent.parent.parent == root(config).resolve():
        return True
    return legacy_run_dir(repo, run).resolve() in real.parents


def of_run(repo: Repository, config: Config, run: str) -> list[Worktree]:
    """The registered worktrees of `run` (never the user's main checkout, nor a worktree of theirs elsewhere)."""
    return [wt for wt in repo.list_worktrees()[1:] if belongs(repo, config, run, wt.path)]


def find(repo: Repository, config: Config, run: str, agent: str) -> Path | None:
    """Where `agent`'s branch is checked out in a worktree of the run, if it is."""
    return checked_out(repo, config, run, agent)[0]


def elsewhere(repo: Repository, config: Config, run: str, agent: str) -> Path | None:
    """Where `agent`'s branch is checked out outside the run's places (by the user), if it is and that exists."""
    return checked_out(repo, config, run, agent)[1]


def checked_out(repo: Repository, config: Config, run: str, agent: str) -> tuple[Path | None, Path | None]:
    """`find` and `elsewhere` from one listing of the worktrees."""
    path = repo.worktree_of_branch(agent_ref(run, agent))
    if path is None:
        return None, None
    if belongs(repo, config, run, path):
        return path, None
    return None, path if path.is_dir() else None


# --- how much of the tree ---------------------------------------------------------------------------------------

def cone_for(repo: Repository, config: Config, files: Sequence[str], start: str, external: bool) -> Cone | None:
    """The cone of a new worktree for an agent owning `files`, or None for a full checkout: [worktrees] mode,
    "auto" going sparse above `sparse_above` tracked files, except for an `external` coder (a `command:` CLI
    reads the disk with its own tools: only gitteam's read tools see past the cone)."""
    mode = config.worktrees.mode
    if mode == "full" or mode == "auto" and (external or tracked_count(repo, start) <= config.worktrees.sparse_above):
        return None
    return Cone.around(files, config.worktrees.always)


def tracked_count(repo: Repository, start: str) -> int:
    """How many files the repository tracks: the count in its own index's header (no git process; a sparse
    index counts a collapsed directory once, so it falls back), else the files of commit `start`."""
    try:
        with open(repo.git_dir / "index", "rb") as index:
            header = index.read(12)
    except OSError:
        header = b""
    if len(header) == 12 and header[:4] == b"DIRC" and repo.sparse_cone(repo.root) is None:
        return int.from_bytes(header[8:12], "big")
    return len(repo.tracked_files(start))


# --- after a kill or a move ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recovered:
    locks: list[Path]  # git lock files dead gitteam processes left, removed
    reconnected: list[Path]  # worktrees whose links broke when the repository moved, repaired


def recover(repo: Repository) -> Recovered:
    """Before a command works on runs: clear the git locks killed gitteam processes left, reconnect the
    worktrees a move of the repository cut off."""
    locks = repo.clear_stale_locks()
    legacy = repo.state_dir / "worktrees"
    moved_along = [path for path in legacy.glob("*/*") if (path / ".git").is_file()] if legacy.is_dir() else []
    return Recovered(locks, repo.reconnect_worktrees(moved_along))


def discard(repo: Repository, path: Path) -> None:
    """Clear the place a new worktree is about to take: a worktree or a directory a kill left there, which can
    hold no one's work (never checked out, or a throwaway copy of a commit)."""
    try:
        repo.remove_worktree(path, force=True)
    except GitError:  # no longer registered: only a directory
        shutil.rmtree(path, ignore_errors=True)
    repo.prune_worktrees()


# --- leftovers, removal ----------------------------------------------------------------------------------------

def leftovers_ref(run: str, agent: str) -> str:
    return f"{LEFTOVERS}{run}/{agent}"


@dataclass(frozen=True)
class Saved:
    agent: str
    ref: str
    commit: str
    paths: list[str]


def save_leftovers(repo: Repository, run: str, agent: str, worktree: Path) -> Saved | None:
    """Commit what `agent` left uncommitted in its worktree (modified and untracked files; not what is ignored or
    build output, nor deletions: a deleted file is still on the branch) on its leftovers ref, on top of its
    branch head; None when it left nothing. A later save replaces an earlier one (the files are still there)."""
    if not repo.has_index(worktree):
        return None  # never checked out: no agent worked there
    present = sorted(path for path in repo.worktree_changes(worktree, exclude=BUILD_OUTPUT)
                     if os.path.lexists(worktree / path))
    if not present:
        return None
    shown = "".join(f"  {path}\n" for path in present[:100]) + (f"  and {len(present) - 100} more\n"
                                                               if len(present) > 100 else "")
    message = (f"gitteam: what {agent} left uncommitted in its worktree\n\n{shown}\n"
               f"gitteam-run: {run}\ngitteam-agent: {agent}\n")
    commit = repo.snapshot(worktree, present, message, AUTHOR)
    if commit is None:
        return None
    ref = leftovers_ref(run, agent)
    for _ in range(5):
        if repo.update_ref(ref, commit, repo.rev_parse(ref)):
            return Saved(agent, ref, commit, present)
    raise GitteamError(f"{ref} keeps moving; is another gitteam removing run {run}'s worktrees?")


@dataclass
class Removal:
    removed: list[tuple[Path, int]] = field(default_factory=list)  # (worktree, bytes it took)
    saved: list[Saved] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)  # (worktree, why)

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.removed)


def remove_run(repo: Repository, config: Config, run: str, journal: Journal | None, force: bool,
               measure: bool = True, agents: Collection[str] | None = None) -> Removal:
    """Remove every worktree of `run`, each after its leftovers are saved; one whose leftovers cannot be saved
    is kept (and named) unless `force`. Directories a kill left in the run's places go too. `measure`: count
    the disk they took (`gitteam clean` says it; a run that removes its own at its end, on the way to its
    result, does not walk them for a number no one reads). `agents`: only the worktrees of these agents'
    branches (the run's other checkouts, and what a kill left, stay for the removal at its end)."""
    removal = Removal()
    trees = of_run(repo, config, run)
    if agents is not None:
        branches = {agent_ref(run, agent) for agent in agents}
        trees = [wt for wt in trees if wt.branch in branches]
        if not trees:
            return removal
    size_of = disk_usage if measure else lambda paths: 0
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="cleanup") as pool:
        for path, size, saved, why in pool.map(lambda wt: _remove_one(repo, run, wt, journal, force, size_of),
                                               trees):
            if saved is not None:
                removal.saved.append(saved)
            if why:
                removal.kept.append((path, why))
            else:
                removal.removed.append((path, size))
    repo.prune_worktrees()
    if agents is None:  # the whole run: what a kill left in its places goes too, then its emptied directories
        registered = {wt.path.resolve() for wt in repo.list_worktrees()}
        places = [legacy_run_dir(repo, run), *([run_dir(repo, config, run)] if _has_root(repo, config) else [])]
        for place in places:
            for child in sorted(place.iterdir()) if place.is_dir() else []:
                if child.resolve() not in registered:  # a kill before it was registered, or after git let go of it
                    size = size_of([child])
                    shutil.rmtree(child, ignore_errors=True)
                    removal.removed.append((child, size))
        _prune_empty([*(path for path, _ in removal.removed), *places], [repo.state_dir, root(config)])
    else:  # the run's own directory stays: its other checkouts are made there while it runs
        current = [run_dir(repo, config, run)] if _has_root(repo, config) else []
        _prune_empty([path for path, _ in removal.removed], [*current, repo.state_dir, root(config)])
    if journal is not None and not removal.kept:
        journal.append(WorktreesRemoved(removed=[str(path) for path, _ in removal.removed],
                                        freed=removal.freed if measure else None))
    return removal


def _remove_one(repo: Repository, run: str, wt: Worktree, journal: Journal | None, force: bool,
                size_of: Callable[[Iterable[Path]], int]) -> tuple[Path, int, Saved | None, str]:
    """(path, bytes, leftovers saved, why it was kept: "" when it was removed)."""
    size = size_of([wt.path])
    prefix = agent_ref(run, "")
    agent = wt.branch.removeprefix(prefix) if wt.branch and wt.branch.startswith(prefix) else None
    saved = None
    if agent is not None and wt.path.is_dir():
        try:
            saved = save_leftovers(repo, run, agent, wt.path)
            if saved is not None and journal is not None:  # journaled before the worktree goes
                journal.append(LeftoversSaved(agent=agent, ref=saved.ref, commit=saved.commit, paths=saved.paths))
        except GitteamError as exc:
            if not force:
                return wt.path, size, None, f"its uncommitted files could not be saved ({exc})"
    try:
        repo.delete_worktree_files(wt.path)  # its admin dir goes with the one prune after them all
    except GitError as exc:
        return wt.path, size, saved, str(exc)
    return wt.path, size, saved, ""


def _has_root(repo: Repository, config: Config) -> bool:
    try:
        repo_dir(repo, config)
    except UsageError:
        return False
    return True


def _prune_empty(paths: Iterable[Path], stops: Sequence[Path]) -> None:
    """Remove each of `paths` that is an empty directory, and the directories left empty above it, up to (not
    including) the first of `stops` above them."""
    tops = {stop.resolve() for stop in stops}
    for path in paths:
        here = path.resolve()
        while here not in tops and any(top in here.parents for top in tops):
            try:
                here.rmdir()
            except FileNotFoundError:
                pass  # removed already: on to its parent
            except OSError:
                break  # not empty
            here = here.parent


# --- disk ------------------------------------------------------------------------------------------------------

def disk_usage(paths: Iterable[Path]) -> int:
    """Bytes the files under `paths` take on disk (as `du` counts them: blocks, a hard link once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top in paths:
        for parent, dirs, files in os.walk(top):
            for name in [*dirs, *files, ""]:
                try:
                    info = os.lstat(os.path.join(parent, name) if name else parent)
                except OSError:
                    continue
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                total += getattr(info, "st_blocks", 0) * 512 or info.st_size
    return total


def disk_by_run(repo: Repository, recorded: dict[str, list[str]]) -> dict[str, int]:
    """Disk taken now by each run's worktrees: those its journal recorded, and the registered ones made for it
    (a worktree's directory is named after its agent, in one named after its run)."""
    paths: dict[str, set[Path]] = {run: {Path(p) for p in found if p} for run, found in recorded.items()}
    for wt in repo.list_worktrees()[1:]:
        if wt.path.parent.name in paths:
            paths[wt.path.parent.name].add(wt.path)
    return {run: disk_usage(p for p in found if p.is_dir()) for run, found in paths.items()}


# --- orphans ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Orphan:
    path: Path
    size: int
    why: str


def orphans(repo: Repository, config: Config) -> list[Orphan]:
    """Worktrees under the root that no repository knows any more: their repository was deleted (or moved
    with its worktrees cut off and not yet reconnected), or a kill stopped `git worktree add` before they were
    registered. A worktree of another live repository is never one."""
    top = root(config)
    registered = {wt.path.resolve() for wt in repo.list_worktrees()}
    found = []
    for path in sorted(top.glob("*/*/*")) if top.is_dir() else []:
        if not path.is_dir() or path.is_symlink() or path.resolve() in registered:
            continue
        why = _orphaned(path)
        if why and time.time() - path.stat().st_mtime > YOUNG:
            found.append(Orphan(path, disk_usage([path]), why))
    return found


def _orphaned(path: Path) -> str:
    """Why the worktree at `path` belongs to no repository, or "" when one still has it."""
    try:
        text = (path / ".git").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return "it has no .git file: it was never made whole"
    named = Path(text.removeprefix("gitdir: ").strip())
    admin = named if named.is_absolute() else path / named
    try:
        points_back = Path((admin / "gitdir").read_text(encoding="utf-8", errors="surrogateescape").strip())
    except OSError:
        return f"its repository's record of it, {admin}, is gone"
    return "" if points_back.parent.resolve() == path.resolve() else f"{admin} records another worktree"


def remove_orphans(config: Config, found: Sequence[Orphan]) -> None:
    for orphan in found:
        shutil.rmtree(orphan.path, ignore_errors=True)
    _prune_empty([orphan.path for orphan in found], [root(config)])

"""Merges whose result is certain without asking git: changes to disjoint files, one after another.

A wave's approved subtasks merge into the integration branch one by one, in plan order, and their files are
disjoint by construction: each merge is the integration's tree with the subtask's changed files put in. Asking
git costs four processes a merge (`merge-base`, `merge-tree`, `commit-tree`, `update-ref`), one after another,
and the merges of a wave whose reviews end together wait for each other. `DisjointMerges` reads commits and trees
through the caller's readers (git.py: this thread's `cat-file`) and tells, merge by merge, which ones come out
as `git merge-tree` would make them and what each puts in; `Repository.merge_chain` writes all of those, and
moves the ref once, in one `git fast-import`, and leaves the others to git. It runs no git itself.

A merge of `theirs`, which began at `base`, onto the chain so far is taken here when:
- `base` is the merge base: `theirs` is `base` plus commits of one parent each, none of them in the history of
  the chain's head above `base` (walked whole, and at most HISTORY_LIMIT commits), which reaches `base`;
- nothing is deleted on either side since `base`, so no rename, and no directory rename, can be detected;
- every path `theirs` changes holds a file or a symlink, and none is, holds or is held by a path the chain
  changed since `base`.
Then every path changed since `base` changed on one side only, and merge-ort takes that side's entry (content
merges, merge drivers and renormalization only apply to a path both sides changed). When the chain's head is
`base` itself, git fast-forwards to `theirs`; when `theirs` is `base`, there is nothing to merge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gitteam.gittree import Entry, Reader, changes_between

Commits = Callable[[Sequence[str]], Sequence[tuple[str, tuple[str, ...]] | None]]  # ids -> (tree, parents)

HISTORY_LIMIT = 512  # commits of the head's history above the base walked before leaving the merge to git
CHAIN_LIMIT = 256  # commits of a merged branch above its base
FILE_MODES = frozenset({"100644", "100755", "120000"})


@dataclass(frozen=True, slots=True)
class Step:
    """How one merge of the chain is made: "same" (theirs is the base: the head stays), "forward" (the head
    becomes theirs, as git fast-forwards) or "merge" (a merge commit: the head's tree with `changes` put in)."""

    kind: str
    theirs: str
    changes: dict[str, Entry] = field(default_factory=dict)


class DisjointMerges:
    """The merges of one chain that start on `head`, as far as they can be made here (module docstring)."""

    def __init__(self, head: str, commits: Commits, trees: Reader, width: int) -> None:
        self._head = head
        self._read = commits
        self._known: dict[str, tuple[str, tuple[str, ...]] | None] = {}
        self._trees = trees
        self._width = width
        self._base: str | None = None
        self._base_tree = ""
        self._at_base = False  # the chain's head is still `base`
        self._seen: set[str] = set()  # the head's history above the base
        self._files: set[str] = set()  # paths the chain changed since the base
        self._dirs: set[str] = set()  # directories holding them
        self._closed = False  # a merge this chain cannot see through was needed: git makes the rest

    def next(self, theirs: str, base: str | None) -> Step | None:
        """The step that merges `theirs` (begun at `base`) onto the chain, or None: git must make this merge, and
        a new chain starts on its result."""
        if self._closed or base is None or (self._base is not None and base != self._base):
            return None
        if self._base is None and not self._start(base):
            self._closed = True
            return None
        line = self._line(theirs, base)
        if line is None or self._seen.intersection(line):
            return None
        if not line:
            return Step("same", theirs)
        tree = self._commits([theirs])[0]
        assert tree is not None  # read by _line
        changes = changes_between(self._base_tree, tree[0], self._trees, self._width)
        if self._at_base:
            step = Step("forward", theirs)
        elif self._disjoint(changes):
            step = Step("merge", theirs, {path: new for path, (_, new) in changes.items() if new is not None})
        else:
            return None
        self._at_base = False
        self._seen.update(line)
        if not self._record(changes):  # a forward that deletes: what follows goes to git
            self._closed = True
        return step

    def _commits(self, oids: Sequence[str]) -> list[tuple[str, tuple[str, ...]] | None]:
        asked = [oid for oid in oids if oid not in self._known]
        if asked:
            self._known.update(zip(asked, self._read(asked), strict=True))
        return [self._known[oid] for oid in oids]

    def _start(self, base: str) -> bool:
        """Read the head's history above `base` and its changes since; False when this chain cannot be made."""
        found = self._commits([base])[0]
        if found is None:
            return False
        self._base, self._base_tree, self._at_base = base, found[0], self._head == base
        reached, frontier = self._at_base, [] if self._at_base else [self._head]
        while frontier:
            if len(self._seen) + len(frontier) > HISTORY_LIMIT:
                return False
            read = self._commits(frontier)
            parents: set[str] = set()
            for oid, commit in zip(frontier, read, strict=True):
                if commit is None:
                    return False
                self._seen.add(oid)
                parents.update(commit[1])
            reached = reached or base in parents
            frontier = sorted(parents - self._seen - {base})
        if not reached:
            return False
        head = self._commits([self._head])[0]
        assert head is not None
        return self._record(changes_between(self._base_tree, head[0], self._trees, self._width))

    def _line(self, theirs: str, base: str) -> list[str] | None:
        """The commits from `theirs` down to `base` (excluded), each of one parent; None when it is not such a
        line (a merge on the way, history not reaching `base` within CHAIN_LIMIT)."""
        line: list[str] = []
        at = theirs
        while at != base:
            if len(line) >= CHAIN_LIMIT:
                return None
            commit = self._commits([at])[0]
            if commit is None or len(commit[1]) != 1:
                return None
            line.append(at)
            at = commit[1][0]
        return line

    def _disjoint(self, changes: dict[str, tuple[Entry | None, Entry | None]]) -> bool:
        for path, (_, new) in changes.items():
            if new is None or new.mode not in FILE_MODES or path in self._files or path in self._dirs:
                return False
            if any(directory in self._files for directory in _directories(path)):
                return False
        return True

    def _record(self, changes: dict[str, tuple[Entry | None, Entry | None]]) -> bool:
        """Add one side's changes to the chain's; False when they delete anything."""
        for path, (_, new) in changes.items():
            if new is None:
                return False
            self._files.add(path)
            self._dirs.update(_directories(path))
        return True


def _directories(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]

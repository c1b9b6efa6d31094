"""A tree with some paths changed, built from the trees along those paths alone.

A commit of one file in a 100,000-file repository should cost what that file costs, not what the repository
does: `TreeEdit` reads only the trees on the way from the root to each changed path (through a reader the
caller gives, `git cat-file` in git.py), applies the changes, and returns the new trees, children first, with
the ids git will give them (computed here, checked by git when it writes them). It runs no git itself.

The result is the tree an index would write with the same entries: entries sorted as git sorts them (a tree's
name compares as if it ended in "/"), directories left empty dropped, a path written where a directory was
replacing it, and a directory made where a file was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

TREE = "40000"  # a tree entry's mode, as git writes it in trees
GITLINK = "160000"


@dataclass(frozen=True, slots=True)
class Entry:
    mode: str  # as git writes it in a tree: "100644", "100755", "120000", "160000", "40000"
    oid: str

    @property
    def kind(self) -> str:
        return "tree" if self.mode == TREE else "commit" if self.mode == GITLINK else "blob"


class BadPath(ValueError):
    """A path git would refuse in a tree (empty, ".", "..", ".git" components)."""


Reader = Callable[[Sequence[str]], Sequence[bytes | None]]  # tree ids -> raw trees (None: not a tree)


def components(path: str) -> tuple[bytes, ...]:
    """`path`'s components as bytes, checked as git's verify_path checks an index entry's."""
    parts = tuple(path.encode("utf-8", "surrogateescape").split(b"/"))
    for part in parts:
        if part in (b"", b".", b"..") or part.lower() == b".git" or b"\0" in part:
            raise BadPath(f"invalid path {path!r}: git stores no such path")
    return parts


def parse(data: bytes, width: int) -> dict[bytes, Entry]:
    """The entries of a raw tree (`<octal mode> <name>\\0<raw id>`...), name -> entry, in git's order."""
    entries: dict[bytes, Entry] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        end = nul + 1 + width
        if end > len(data):
            raise ValueError("truncated tree")
        entries[data[space + 1:nul]] = Entry(data[pos:space].decode(), data[nul + 1:end].hex())
        pos = end
    return entries


def serialize(entries: Mapping[bytes, Entry]) -> bytes:
    """A raw tree of `entries`, sorted as git sorts them."""
    def key(name: bytes) -> bytes:
        return name + b"/" if entries[name].mode == TREE else name
    return b"".join(entries[name].mode.encode() + b" " + name + b"\0" + bytes.fromhex(entries[name].oid)
                    for name in sorted(entries, key=key))


def object_id(data: bytes, algorithm: str) -> str:
    """The id git gives a tree object of content `data` ("sha1" or "sha256" repository)."""
    return hashlib.new(algorithm, b"tree %d\0" % len(data) + data).hexdigest()


class TreeEdit:
    """Changes to the tree `base` (None: the empty tree). `load` reads the trees along some paths, a level of
    the tree at a time (one round trip each); `entry` answers what `base` has at a loaded path; `build` makes
    the new trees."""

    def __init__(self, base: str | None, read: Reader, algorithm: str) -> None:
        self._algorithm = algorithm
        self._width = hashlib.new(algorithm).digest_size
        self._read = read
        self._base = base
        # directory (its components) -> its entries in base ({} where base has no tree there), and its id
        self._trees: dict[tuple[bytes, ...], dict[bytes, Entry]] = {}
        self._oids: dict[tuple[bytes, ...], str | None] = {}

    def load(self, paths: Iterable[str]) -> None:
        """Read the trees of `base` that hold `paths` (BadPath for a path git refuses)."""
        wanted = {parts[:depth] for parts in map(components, paths) for depth in range(len(parts))}
        if () not in self._trees:
            self._fetch({(): self._base})
        for depth in range(1, max((len(d) for d in wanted), default=0) + 1):
            level: dict[tuple[bytes, ...], str | None] = {}
            for directory in wanted:
                if len(directory) != depth or directory in self._trees:
                    continue
                parent = self._trees.get(directory[:-1], {}).get(directory[-1])
                level[directory] = parent.oid if parent is not None and parent.mode == TREE else None
            self._fetch(level)

    def entry(self, path: str) -> Entry | None:
        """`base`'s entry at a loaded path, if it has one."""
        parts = components(path)
        return self._trees.get(parts[:-1], {}).get(parts[-1])

    def build(self, changes: Mapping[str, Entry | None]) -> tuple[str, list[tuple[str, dict[bytes, Entry]]]]:
        """The new root tree's id and the trees to write for it, children first: `changes` maps each path to
        its new entry (a blob, a link, a gitlink) or None to delete it. A path that is a directory in `base`
        is never deleted as one. Paths must have been loaded."""
        self.load(changes)
        leaves: dict[tuple[bytes, ...], Entry | None] = {components(path): entry for path, entry in changes.items()}
        below: dict[tuple[bytes, ...], set[bytes]] = {}  # directory -> names under it that change
        for parts in leaves:
            for depth in range(len(parts)):
                below.setdefault(parts[:depth], set()).add(parts[depth])
        written: list[tuple[str, dict[bytes, Entry]]] = []

        def rebuild(directory: tuple[bytes, ...]) -> Entry | None:
            entries = dict(self._trees.get(directory, {}))
            for name in sorted(below.get(directory, ())):
                path = (*directory, name)
                leaf = leaves.get(path)
                if leaf is not None and path in below:  # a file where a directory was: what was under it is gone
                    if any(entry is not None for under, entry in leaves.items() if under[:len(path)] == path
                           and under != path):
                        raise BadPath(f"{b'/'.join(path).decode(errors='replace')} is both a file and a directory "
                                      "among the changed paths")
                    entries[name] = leaf
                elif path in below:  # a directory with changes under it (made where a file was, if one was)
                    sub = rebuild(path)
                    if sub is None:
                        entries.pop(name, None)
                    else:
                        entries[name] = sub
                elif leaf is not None:
                    entries[name] = leaf
                elif name in entries and entries[name].mode != TREE:
                    del entries[name]
            if not entries and directory:
                return None
            unchanged = self._oids.get(directory)
            if unchanged is not None and entries == self._trees[directory]:
                return Entry(TREE, unchanged)
            oid = object_id(serialize(entries), self._algorithm)
            written.append((oid, entries))
            return Entry(TREE, oid)

        root = rebuild(())
        assert root is not None
        return root.oid, written

    def _fetch(self, level: Mapping[tuple[bytes, ...], str | None]) -> None:
        asked = [(directory, oid) for directory, oid in level.items() if oid is not None]
        found = self._read([oid for _, oid in asked]) if asked else []
        for directory, oid in level.items():
            self._trees[directory], self._oids[directory] = {}, oid
        for (directory, oid), data in zip(asked, found, strict=True):
            if data is None:
                raise ValueError(f"tree {oid} cannot be read")
            self._trees[directory] = parse(data, self._width)


def changes_between(old: str | None, new: str | None, read: Reader,
                    width: int) -> dict[str, tuple[Entry | None, Entry | None]]:
    """Every path that is not a directory and differs between the trees `old` and `new` (None: the empty tree):
    path -> (its entry in `old`, in `new`), None where a tree has none. Only the subtrees that differ are read,
    a level at a time (one round trip each), so the cost is the change's, not the repository's."""
    found: dict[str, tuple[Entry | None, Entry | None]] = {}
    level: list[tuple[str, str | None, str | None]] = [("", old, new)]  # (directory, its tree in old, in new)
    while level:
        wanted = sorted({oid for _, one, other in level for oid in (one, other) if oid is not None})
        trees = dict(zip(wanted, read(wanted), strict=True))
        below: list[tuple[str, str | None, str | None]] = []
        for directory, one, other in level:
            before, after = (_entries(trees, oid, width) for oid in (one, other))
            for name in before.keys() | after.keys():
                was, now = before.get(name), after.get(name)
                if was == now:
                    continue
                path = directory + name.decode("utf-8", "surrogateescape")
                sub_was = was.oid if was is not None and was.mode == TREE else None
                sub_now = now.oid if now is not None and now.mode == TREE else None
                if sub_was is not None or sub_now is not None:
                    below.append((path + "/", sub_was, sub_now))
                file_was = None if was is None or was.mode == TREE else was
                file_now = None if now is None or now.mode == TREE else now
                if file_was is not None or file_now is not None:
                    found[path] = (file_was, file_now)
        level = below
    return found


def _entries(trees: Mapping[str, bytes | None], oid: str | None, width: int) -> dict[bytes, Entry]:
    if oid is None:
        return {}
    data = trees[oid]
    if data is None:
        raise ValueError(f"tree {oid} cannot be read")
    return parse(data, width)

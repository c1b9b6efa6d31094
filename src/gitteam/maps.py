"""The coder's map: its files' neighbours at the commit it starts from, with their signatures, in a few thousand
tokens.

A neighbour is a file one of the coder's files imports from this repository, or one that imports one of them
(a caller that may break). Python imports are read from the syntax tree (`import a.b`, `from .x import y`,
resolved the way the interpreter would from the package layout: a directory is a package while it has an
`__init__.py`); JavaScript and TypeScript by a regular expression for `import ... from`, `export ... from`,
`require(...)` and `import(...)` of relative paths. Other languages get the files of the same directory. The
importers are found by reading the source files of the same language once (one `git cat-file` batch) and
parsing only those that mention a file's name. Everything is read from the commit through the git gateway,
never from a working tree; what a commit's files import is kept per commit for the rest of the process (a run's
subtasks mostly start from the same commit).

Each neighbour is shown with its public signatures (Python: annotated, methods under their class; the names the
coder's files import from it first). Callers and tests come after what the files use; what does not fit the
budget is named without signatures.
"""

from __future__ import annotations

import ast
import posixpath
import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gitteam.git import Repository
from gitteam.outline import is_test, language, parse_python, signatures
from gitteam.tokens import CHARS_PER_TOKEN

MAP_TOKENS = 3000
MAX_NEIGHBOURS = 30
MAX_SIGNATURES = 24  # lines of one neighbour's signatures
MAX_LISTED = 12  # paths on one `imports:` or `imported by:` line
MAX_NAMES = 4  # names shown with a path on an `imports:` line
MAX_SOURCE_BYTES = 300_000
MAX_SCAN_FILES = 20_000  # files read to find importers, the nearest to the coder's files first
MAX_SNAPSHOTS = 8  # commits whose import facts are kept

_JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_JS_IMPORT = re.compile(
    r"""(?:\bimport|\bexport)\s[^'";]*?\bfrom\s*['"]([^'"\n]+)['"]"""
    r"""|\bimport\s*['"]([^'"\n]+)['"]"""
    r"""|\b(?:require|import)\s*\(\s*['"]([^'"\n]+)['"]\s*\)""")
_JS_NAMES = re.compile(r"\{([^}]*)\}")
_DEFINED = re.compile(r"(?:def|class|function|func|fn|interface|type|struct|enum|trait|const|let|var)\s+\*?([\w$]+)")


def coder_map(repo: Repository, rev: str, files: Sequence[str], token_budget: int = MAP_TOKENS,
              hidden: Callable[[str], bool] | None = None) -> str:
    """The map of `files` (a subtask's) at commit `rev`, in at most `token_budget` tokens ("" when there is
    nothing to show). `hidden`: paths never read nor shown (the secret files)."""
    conceal = hidden or (lambda path: False)
    snap = _snapshot(repo, rev)
    owned = sorted({path for path in files if not conceal(path)})
    if not owned or token_budget <= 0:
        return ""
    links = _Links()
    blobs = _scan(repo, snap, owned, links, conceal)
    for path in owned:
        if path not in snap.present or language(path) not in ("python", "js"):
            for sibling in _siblings(snap, path, conceal):
                if sibling not in owned:
                    links.add(sibling, "same directory", path)
    return _render(repo, snap, owned, links, blobs, token_budget * CHARS_PER_TOKEN, conceal)


# -- one commit's facts, kept --------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    rev: str
    files: list[str]
    present: frozenset[str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    imports: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = field(default_factory=dict)  # path -> (target, names)
    # (languages, what is concealed) -> the files of those languages, not concealed, by directory: every coder of
    # a run asks the same of the same commit, and at 100,000 files the answer costs a tenth of a second
    pools: dict[tuple[frozenset[str], object, object], _Pool] = field(default_factory=dict)
    _modules: dict[str, list[str]] | None = None

    def modules(self) -> dict[str, list[str]]:
        """Dotted Python module name -> the files that are it (a package: its `__init__.py`), and each file's
        dotted path under every directory above it too, for layouts without `__init__.py` files."""
        with self.lock:
            if self._modules is None:
                found: dict[str, list[str]] = {}
                for path in self.files:
                    if language(path) == "python":
                        for name in _module_names(path, self.present):
                            found.setdefault(name, []).append(path)
                self._modules = found
            return self._modules


class _Sources:
    """Source files read to find importers, kept for the next coder (by repository, commit and path), up to
    `budget` bytes, least recently used out first: the coders of a run map the same commit, and the files
    nearest theirs overlap (at 100,000 files each reads MAX_SCAN_FILES of them)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._size = 0
        self._reading: dict[tuple[str, str], threading.Lock] = {}  # (repository, commit) -> one reader at a time

    def read(self, repo: Repository, rev: str, paths: Sequence[str]) -> dict[str, bytes]:
        """The blobs of `paths` at `rev`. Coders reading the same commit read one after another (they start
        together): the second finds what the first read instead of reading it beside it."""
        where = str(repo.common_dir)
        with self._lock:
            reading = self._reading.setdefault((where, rev), threading.Lock())
        with reading:
            return self._read(repo, where, rev, paths)

    def _read(self, repo: Repository, where: str, rev: str, paths: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._lock:
            for path in paths:
                data = self._kept.get((where, rev, path))
                if data is not None:
                    self._kept.move_to_end((where, rev, path))
                    found[path] = data
        missing = [path for path in paths if path not in found]
        read = repo.read_blobs(rev, missing) if missing else {}
        with self._lock:
            for path, data in read.items():
                if len(data) <= self.budget // 64 and (where, rev, path) not in self._kept:
                    self._kept[(where, rev, path)] = data
                    self._size += len(data)
            while self._size > self.budget:
                self._size -= len(self._kept.popitem(last=False)[1])
        return {path: found[path] if path in found else read[path] for path in paths if path in found or path in read}


_SOURCES = _Sources(32 << 20)
_SNAPSHOTS: OrderedDict[tuple[str, str], _Snapshot] = OrderedDict()
_SNAPSHOTS_LOCK = threading.Lock()


def _snapshot(repo: Repository, rev: str) -> _Snapshot:
    commit = rev if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", rev) else (repo.rev_parse(rev) or rev)
    key = (str(repo.common_dir), commit)
    with _SNAPSHOTS_LOCK:
        snap = _SNAPSHOTS.get(key)
        if snap is not None:
            _SNAPSHOTS.move_to_end(key)
            return snap
    files = sorted(repo.tracked_files(commit))
    snap = _Snapshot(commit, files, frozenset(files))
    with _SNAPSHOTS_LOCK:
        snap = _SNAPSHOTS.setdefault(key, snap)  # another thread's, if it was first
        while len(_SNAPSHOTS) > MAX_SNAPSHOTS:
            _SNAPSHOTS.popitem(last=False)
    return snap


def _module_names(path: str, present: frozenset[str]) -> list[str]:
    """`sphinx/ext/autodoc/__init__.py` -> ["sphinx.ext.autodoc"] (from the first directory up that is not a
    package), then the longer dotted paths (for namespace packages and scripts run from the top)."""
    stem = path[: -len(".pyi")] if path.endswith(".pyi") else path[: -len(".py")]
    parts = stem.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    top = len(path.split("/")) - 1
    while top > 0 and "/".join(path.split("/")[:top]) + "/__init__.py" in present:
        top -= 1
    names = [".".join(parts[top:])] if parts[top:] else []
    names += [".".join(parts[i:]) for i in range(top - 1, -1, -1)]
    return names


# -- imports ----------------------------------------------------------------------------------------------------


@dataclass
class _Links:
    """Neighbour -> how it relates to the coder's files: ("imported by yours" | "imports yours" |
    "same directory", owned path) pairs, and the names the coder's files import from it."""

    relations: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    used: dict[str, set[str]] = field(default_factory=dict)
    imported: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (owned, neighbour) -> names

    def add(self, neighbour: str, relation: str, owned: str, names: Iterable[str] = ()) -> None:
        self.relations.setdefault(neighbour, set()).add((relation, owned))
        self.used.setdefault(neighbour, set()).update(names)
        self.imported.setdefault((owned, neighbour), set()).update(names)

    def names(self, owned: str, neighbour: str) -> list[str]:
        return sorted(self.imported.get((owned, neighbour), ()))

    def of(self, owned: str, relation: str) -> list[str]:
        return sorted(n for n, rel in self.relations.items() if (relation, owned) in rel)


def _scan(repo: Repository, snap: _Snapshot, owned: Sequence[str], links: _Links,
          conceal: Callable[[str], bool]) -> dict[str, bytes]:
    """Fill `links` with the imports of the owned files and their importers; returns the blobs it read."""
    kinds = frozenset({str(language(path)) for path in owned} & {"python", "js"})
    near = _nearest(_pool(snap, kinds, conceal), owned, MAX_SCAN_FILES)
    blobs = _SOURCES.read(repo, snap.rev, near)
    needles = {path: _needle(path) for path in owned if language(path) in kinds}
    for path in owned:
        if path in blobs:
            for target, names in _imports_of(snap, path, blobs[path]):
                if target != path and target not in owned:
                    links.add(target, "imported by yours", path, names)
    wanted = set(needles.values())
    for path in near:
        data = blobs.get(path)
        if data is None or path in needles or not any(needle in data for needle in wanted):
            continue
        for target, _ in _imports_of(snap, path, data):
            if target in needles:
                links.add(path, "imports yours", target)
    return blobs


def _needle(path: str) -> bytes:
    """What a file that imports `path` must contain: its module's last name (a package's: the directory's)."""
    name = path.rpartition("/")[2]
    stem = name.split(".", 1)[0]
    if stem in ("__init__", "index"):
        stem = path.rpartition("/")[0].rpartition("/")[2] or stem
    return stem.encode()


@dataclass(frozen=True)
class _Pool:
    """The files of some languages in a snapshot: by directory, and all of them in path order."""

    by_directory: dict[str, list[str]]
    ordered: list[str]


def _pool(snap: _Snapshot, kinds: frozenset[str], conceal: Callable[[str], bool]) -> _Pool:
    """The files of `snap` in the languages `kinds` that `conceal` leaves; made once per snapshot (coders
    starting together wait for the first), unless `conceal` cannot be a key (rare: made each time)."""
    try:  # a bound method (SecretFiles.hides) is keyed by its object's value: each coder's is a new object
        key = (kinds, getattr(conceal, "__self__", conceal), getattr(conceal, "__func__", None))
        hash(key)
    except TypeError:
        return _pool_of(snap.files, kinds, conceal)
    with snap.lock:
        found = snap.pools.get(key)
        if found is None:
            found = snap.pools[key] = _pool_of(snap.files, kinds, conceal)
        return found


def _pool_of(files: Sequence[str], kinds: frozenset[str], conceal: Callable[[str], bool]) -> _Pool:
    ordered = sorted(path for path in files if language(path) in kinds and not conceal(path))
    pool: dict[str, list[str]] = {}
    for path in ordered:
        pool.setdefault(path.rpartition("/")[0], []).append(path)
    return _Pool(pool, ordered)


def _nearest(pool: _Pool, owned: Sequence[str], limit: int) -> list[str]:
    """The first `limit` files of `pool` ordered by how many leading directories they share with one of the
    owned files, most first, then by path. Every file of a directory shares as many: the directories are
    scored; the files of those scoring above the last score the first `limit` reach are sorted (few: the owned
    files' own neighbourhood), and the rest are taken from the pool's path order as far as needed (at 100,000
    files, sorting every candidate took each coder a tenth of a second)."""
    owned_parts = [path.split("/")[:-1] for path in owned]

    def shared(directory: str) -> int:
        parts = directory.split("/") if directory else []
        best = 0
        for other in owned_parts:
            n = 0
            for a, b in zip(parts, other, strict=False):
                if a != b:
                    break
                n += 1
            best = max(best, n)
        return best

    scores = {directory: shared(directory) for directory in pool.by_directory}
    sizes: dict[int, int] = {}
    for directory, score in scores.items():
        sizes[score] = sizes.get(score, 0) + len(pool.by_directory[directory])
    counted, floor = 0, 0
    for score in sorted(sizes, reverse=True):  # the lowest score the first `limit` files reach
        floor = score
        counted += sizes[score]
        if counted >= limit:
            break
    above = sorted((-scores[directory], path) for directory, files in pool.by_directory.items()
                   if scores[directory] > floor for path in files)
    near = [path for _, path in above[:limit]]
    for path in pool.ordered:
        if len(near) >= limit:
            break
        if scores[path.rpartition("/")[0]] == floor:
            near.append(path)
    return near


def _imports_of(snap: _Snapshot, path: str, data: bytes) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = snap.imports.get(path)
    if found is None:
        if len(data) > MAX_SOURCE_BYTES or b"\0" in data[:8000]:
            found = ()
        elif language(path) == "python":
            found = _python_imports(snap, path, data.decode("utf-8", "replace"))
        else:
            found = _js_imports(snap, path, data.decode("utf-8", "replace"))
        snap.imports[path] = found
    return found


def _python_imports(snap: _Snapshot, path: str, source: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    module = parse_python(source)
    if module is None:
        return ()
    own = _module_names(path, snap.present)
    package = (own[0] if path.endswith(("/__init__.py", "/__init__.pyi")) or path in ("__init__.py",)
               else own[0].rpartition(".")[0]) if own else ""
    found: dict[str, set[str]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _note(found, _resolve(snap, alias.name, path), ())
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [alias.name for alias in node.names if alias.name != "*"]
            submodules = [name for name in names if _resolve(snap, f"{base}.{name}" if base else name, path)]
            for name in submodules:
                _note(found, _resolve(snap, f"{base}.{name}" if base else name, path), ())
            rest = [name for name in names if name not in submodules]
            if base and (rest or not names):
                _note(found, _resolve(snap, base, path), rest)
    return tuple((target, tuple(sorted(names))) for target, names in sorted(found.items()))


def _note(found: dict[str, set[str]], target: str | None, names: Iterable[str]) -> None:
    if target is not None:
        found.setdefault(target, set()).update(names)


def _resolve(snap: _Snapshot, dotted: str, importer: str) -> str | None:
    """The file a dotted module name is in this commit, nearest the importer when several claim it."""
    candidates = snap.modules().get(dotted)
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    here = importer.split("/")[:-1]
    return min(candidates, key=lambda c: (-_common(c.split("/")[:-1], here), c.count("/"), c))


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _js_imports(snap: _Snapshot, path: str, source: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found: dict[str, set[str]] = {}
    folder = path.rpartition("/")[0]
    for match in _JS_IMPORT.finditer(source):
        spec = next(group for group in match.groups() if group)
        if not spec.startswith(("./", "../")):
            continue  # a package, not this repository's file
        target = _js_target(snap, posixpath.normpath(posixpath.join(folder, spec)))
        if target is not None:
            braces = _JS_NAMES.search(match.group())
            names = [n.split(" as ")[0].strip().removeprefix("type ").strip() for n in braces.group(1).split(",")
                     ] if braces else []
            _note(found, target, [n for n in names if n])
    return tuple((target, tuple(sorted(names))) for target, names in sorted(found.items()))


def _js_target(snap: _Snapshot, base: str) -> str | None:
    if base.startswith("../"):
        return None
    tries = [base, *(base + ext for ext in _JS_EXTENSIONS), *(f"{base}/index{ext}" for ext in _JS_EXTENSIONS)]
    stem, dot, ext = base.rpartition(".")
    if dot and "." + ext in (".js", ".jsx", ".mjs", ".cjs"):  # TypeScript's ESM style: "./x.js" is x.ts
        tries += [stem + ts for ts in (".ts", ".tsx", ".mts", ".cts")]
    return next((candidate for candidate in tries if candidate in snap.present), None)


def _siblings(snap: _Snapshot, path: str, conceal: Callable[[str], bool]) -> list[str]:
    folder = path.rpartition("/")[0]
    prefix = folder + "/" if folder else ""
    found: list[str] = []
    for other in snap.files[bisect_left(snap.files, prefix):]:  # sorted: the directory's files are together
        if not other.startswith(prefix) or len(found) >= MAX_NEIGHBOURS:
            break
        if other != path and "/" not in other[len(prefix):] and language(other) and not conceal(other):
            found.append(other)
    return found


# -- rendering --------------------------------------------------------------------------------------------------


_ORDER = {"imported by yours": 0, "imports yours": 1, "same directory": 2}


def _render(repo: Repository, snap: _Snapshot, owned: Sequence[str], links: _Links, blobs: Mapping[str, bytes],
            room: int, conceal: Callable[[str], bool]) -> str:
    if not links.relations:  # no neighbour of any file: a list of the files the brief names already says nothing
        return ""
    # no commit id: the same tree gives the same map (a replay's commits are new, its trees the same)
    head = ["# Your files as your start commit has them: what they import from this repository, what imports them, "
            "and those files' signatures (read_file shows more)."]
    for path in owned:
        head.append(path if path in snap.present else f"{path} (new: not in your start commit)")
        for label, relation in (("imports", "imported by yours"), ("imported by", "imports yours"),
                                ("same directory", "same directory")):
            listed = links.of(path, relation)
            if listed:
                more = f" (+{len(listed) - MAX_LISTED} more)" if len(listed) > MAX_LISTED else ""
                shown = [_with_names(n, links.names(path, n)) if relation == "imported by yours" else n
                         for n in listed[:MAX_LISTED]]
                head.append(f"  {label}: {', '.join(shown)}{more}")
    text = "\n".join(head) + "\n"
    if len(text) > room:
        return _cut(text, room)
    ranked = sorted(links.relations, key=lambda n: (min(_ORDER[r] for r, _ in links.relations[n]), is_test(n), n))
    ranked = [n for n in ranked if not conceal(n)][:MAX_NEIGHBOURS]
    missing = [n for n in ranked if n not in blobs]
    data = {**blobs, **(repo.read_blobs(snap.rev, missing) if missing else {})}
    unshown: list[str] = []
    for neighbour in ranked:
        block = _neighbour_block(neighbour, data.get(neighbour), links.used.get(neighbour, set()))
        if block and len(text) + len(block) <= room - 200:  # room for the line about the rest
            text += block
        else:
            unshown.append(neighbour)
    return text + _also(unshown, room - len(text))


def _also(paths: Sequence[str], room: int) -> str:
    """One line naming the neighbours that did not fit, as many as fit it."""
    if not paths:
        return ""
    for count in range(len(paths), 0, -1):
        more = f" (+{len(paths) - count} more)" if count < len(paths) else ""
        line = f"\n# also near your files, not shown: {', '.join(paths[:count])}{more}\n"
        if len(line) <= room:
            return line
    return ""


def _with_names(path: str, names: Sequence[str]) -> str:
    if not names:
        return path
    more = f", +{len(names) - MAX_NAMES}" if len(names) > MAX_NAMES else ""
    return f"{path} ({', '.join(names[:MAX_NAMES])}{more})"


def _neighbour_block(path: str, data: bytes | None, used: set[str]) -> str:
    if data is None or len(data) > MAX_SOURCE_BYTES or b"\0" in data[:8000]:
        return ""
    lines = signatures(path, data.decode("utf-8", "replace"))
    if len(lines) > MAX_SIGNATURES:
        lines = _keep_used(lines, used)
    return "\n" + path + "\n" + "".join(f"  {line}\n" for line in lines)


def _keep_used(lines: list[str], used: set[str]) -> list[str]:
    """At most MAX_SIGNATURES lines in file order: the used names' (and their classes') first, then the others."""
    keep: set[int] = set()
    owner = -1
    for index, line in enumerate(lines):
        if not line.startswith(" "):
            owner = index
        match = _DEFINED.search(line)
        if match and match.group(1) in used:
            keep.update({index, owner} if owner >= 0 else {index})
    for index in range(len(lines)):
        if len(keep) >= MAX_SIGNATURES:
            break
        keep.add(index)
    chosen = sorted(keep)[:MAX_SIGNATURES]
    return [lines[i] for i in chosen] + [f"... {len(lines) - len(chosen)} more"]


def _cut(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    cut = text[: max(room, 0)]
    return cut[: cut.rfind("\n") + 1] if "\n" in cut else ""

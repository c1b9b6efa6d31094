"""The repository overview the planner starts from: tracked paths and top-level definitions, within a budget.

Any repository fits: paths are listed while they fit, shallow and small directories first, and the rest
collapse into `dir/ (N files: ...)` lines; definitions are read in one batch, only for as many listed source
files as the budget can show. The output depends only on the tree at `rev` and the budget.
"""

from __future__ import annotations

import ast
import heapq
import re
import warnings
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from gitteam.git import Repository
from gitteam.tokens import CHARS_PER_TOKEN, estimate_tokens

MAX_SOURCE_BYTES = 200_000
LISTING_SHARE = 0.6  # of the budget the path listing may take before definitions get theirs
MAX_DEFS_PER_FILE = 30
MAX_DEF_LINE = 160
MAX_READS = 600
CHARS_PER_DEFINED_FILE = 60  # a guess, used only to decide how many files are worth reading
# Directories of other people's or generated code: listed and read last.
LOW_PRIORITY_DIRS = frozenset({
    "node_modules", "vendor", "third_party", "third-party", "external", "dist", "build", "target", "out",
    ".venv", "venv", "__pycache__", "site-packages", "generated", "gen", "deps", "Pods",
})
TEST_DIRS = frozenset({"test", "tests", "testing", "spec", "specs", "__tests__", "testdata", "fixtures"})

_JS = [
    r"^(?:export[ \t]+(?:default[ \t]+)?)?(?:async[ \t]+)?function[ \t]*\*?[ \t]*[A-Za-z_$][\w$]*[ \t]*(?:<[^>\n]*>)?"
    r"\([^)\n]*\)?",
    r"^(?:export[ \t]+(?:default[ \t]+)?)?(?:abstract[ \t]+)?class[ \t]+[A-Za-z_$][\w$]*[^{\n]*",
    r"^export[ \t]+(?:const|let|var)[ \t]+[A-Za-z_$][\w$]*",
    r"^(?:export[ \t]+)?(?:declare[ \t]+)?(?:interface|type|enum)[ \t]+[A-Za-z_$][\w$]*",
]
_RUST_VIS = r"(?:pub(?:\([^)\n]*\))?[ \t]+)?"
_LANGUAGES: dict[str, list[str]] = {
    "js": _JS,
    "go": [r"^func[ \t]+(?:\([^)\n]*\)[ \t]*)?[A-Za-z_]\w*[ \t]*(?:\[[^\]\n]*\])?\([^)\n]*\)?",
           r"^type[ \t]+[A-Za-z_]\w*[ \t]+\w+"],
    "rust": [rf"^(?: {{4}})?{_RUST_VIS}(?:(?:async|const|unsafe|extern(?:[ \t]+\"[^\"\n]*\")?)[ \t]+)*fn[ \t]+\w+"
             r"(?:<[^>\n]*>)?\([^)\n]*\)?",
             rf"^{_RUST_VIS}(?:struct|enum|trait|union|type|mod)[ \t]+\w+",
             r"^impl\b[^{\n]*"],
    "jvm": [r"^[ \t]*(?:(?:public|private|protected|internal|abstract|final|static|sealed|open|data|partial|inner"
            r"|annotation|override|readonly)[ \t]+)*(?:class|interface|enum|record|object|struct)[ \t]+\w+[^{\n]*",
            r"^(?:(?:private|internal|public|suspend|inline)[ \t]+)*fun[ \t]+[\w.<>]+\([^)\n]*\)?"],
    "c": [r"^(?!(?:if|for|while|switch|return|else|do|case|typedef|static_assert)\b)[A-Za-z_][\w \t*&:<>,~]*?"
          r"[ \t*&]+[A-Za-z_][\w:~]*[ \t]*\([^;{}\n]*\)[ \t]*(?:const[ \t]*)?\{?[ \t]*$",
          r"^(?:typedef[ \t]+)?(?:struct|class|enum|union|namespace)[ \t]+\w+[^;{\n]*\{?[ \t]*$"],
    "shell": [r"^(?:function[ \t]+)?[A-Za-z_][\w-]*[ \t]*\(\)", r"^function[ \t]+[A-Za-z_][\w-]*"],
    "ruby": [r"^(?: {2})?(?:class|module|def)[ \t]+[^\n#]+"],
    "php": [r"^(?:(?:abstract|final)[ \t]+)?(?:class|interface|trait)[ \t]+\w+",
            r"^function[ \t]+\w+[ \t]*\([^)\n]*\)?"],
}
_PATTERNS = {name: re.compile("|".join(f"(?:{p})" for p in pats), re.MULTILINE)
             for name, pats in _LANGUAGES.items()}
_EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    **dict.fromkeys((".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"), "js"),
    ".go": "go", ".rs": "rust",
    **dict.fromkeys((".java", ".kt", ".kts", ".cs", ".scala"), "jvm"),
    **dict.fromkeys((".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), "c"),
    **dict.fromkeys((".sh", ".bash", ".zsh"), "shell"),
    ".rb": "ruby", ".php": "php",
}


def repository_overview(repo: Repository, rev: str, token_budget: int) -> str:
    """Tracked paths at `rev` and the definitions of source files, in at most `token_budget` tokens."""
    limit = max(token_budget, 0) * CHARS_PER_TOKEN
    tree = _Tree(sorted(repo.tracked_files(rev)))
    room = max(limit - len(_header(len(tree.files), len(tree.files), len(tree.subdirs))), 0)
    listing = _Listing(tree, room)
    listing.grow(int(room * LISTING_SHARE))
    blocks = _definitions(repo, rev, listing.listed_files(), room - listing.cost)
    listing.grow(room - sum(len(block) for block in blocks.values()))
    text = _render(tree, listing, blocks)
    return _fit(text, token_budget)


def _fit(text: str, token_budget: int) -> str:
    if estimate_tokens(text) <= token_budget:
        return text
    cut = text[:max(token_budget, 0) * CHARS_PER_TOKEN]
    return cut[:cut.rfind("\n") + 1] if "\n" in cut else ""


# -- paths --------------------------------------------------------------------------------------------------


@dataclass
class _Tree:
    files: list[str]  # sorted
    subdirs: dict[str, list[str]] = field(default_factory=dict)  # dir ("" is the root) -> child dirs
    direct: dict[str, list[str]] = field(default_factory=dict)  # dir -> files directly in it
    _summaries: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subdirs[""] = []
        for path in self.files:
            parent = ""
            slash = path.find("/")
            while slash != -1:
                folder = path[:slash]
                if folder not in self.subdirs:
                    self.subdirs[folder] = []
                    self.subdirs[parent].append(folder)
                parent = folder
                slash = path.find("/", slash + 1)
            self.direct.setdefault(parent, []).append(path)

    def count(self, folder: str) -> int:
        lo, hi = self._range(folder)
        return hi - lo

    def _range(self, folder: str) -> tuple[int, int]:
        if not folder:
            return 0, len(self.files)
        # "/" sorts just below "0", so every path under folder/ lies in [folder/, folder0)
        return bisect_left(self.files, folder + "/"), bisect_left(self.files, folder + "0")

    def collapsed_line(self, folder: str) -> str:
        return self._summary(folder)[0]

    def has_source(self, folder: str) -> bool:
        return self._summary(folder)[1]

    def _summary(self, folder: str) -> tuple[str, bool]:
        summary = self._summaries.get(folder)
        if summary is None:
            lo, hi = self._range(folder)
            kinds = Counter(_extension(path) for path in self.files[lo:hi])
            top = sorted(((n, ext) for ext, n in kinds.items() if ext), key=lambda item: (-item[0], item[1]))[:3]
            parts = [f"{n:,} {ext}" for n, ext in top]
            other = (hi - lo) - sum(n for n, _ in top)
            parts += [f"{other:,} other"] if other else []
            noun = "file" if hi - lo == 1 else "files"
            line = f"{folder}/ ({hi - lo:,} {noun}: {', '.join(parts)})\n"
            source = any(ext.lower() in _EXTENSIONS for ext in kinds)
            summary = self._summaries[folder] = (line, source)
        return summary


def _extension(path: str) -> str:
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def _depth(path: str) -> int:
    return path.count("/")


def _low_priority(path: str) -> bool:
    return any(part in LOW_PRIORITY_DIRS for part in path.split("/")[:-1]) or path.endswith(".min.js")


class _Listing:
    """Which directories are expanded; grows greedily, shallow directories first (see `_push`)."""

    def __init__(self, tree: _Tree, room: int) -> None:
        self.tree = tree
        self.expanded: set[str] = {""}
        self.collapsed: set[str] = set(tree.subdirs[""])
        self.cost = self._expansion_cost("")
        self.frontier: list[tuple[bool, int, bool, int, str]] = []
        self.root_shown: list[str] | None = None  # set when even the top level does not fit
        if self.cost > room:
            self._partial_root(room)
        else:
            for folder in tree.subdirs[""]:
                self._push(folder)

    def _push(self, folder: str) -> None:
        """Queue a collapsed directory: others' code last, then shallow first, code before other files,
        and of those the cheapest to open (fewest entries of its own) first."""
        tree = self.tree
        entries = len(tree.direct.get(folder, ())) + len(tree.subdirs[folder])
        key = (_low_priority(folder + "/"), _depth(folder), not tree.has_source(folder), entries, folder)
        heapq.heappush(self.frontier, key)

    def _expansion_cost(self, folder: str) -> int:
        files = sum(len(path) + 1 for path in self.tree.direct.get(folder, ()))
        return files + sum(len(self.tree.collapsed_line(sub)) for sub in self.tree.subdirs[folder])

    def grow(self, limit: int) -> None:
        skipped = []
        while self.frontier:
            item = heapq.heappop(self.frontier)
            folder = item[-1]
            delta = self._expansion_cost(folder) - len(self.tree.collapsed_line(folder))
            if self.cost + delta > limit:
                skipped.append(item)
                continue
            self.cost += delta
            self.expanded.add(folder)
            self.collapsed.discard(folder)
            self.collapsed.update(self.tree.subdirs[folder])
            for sub in self.tree.subdirs[folder]:
                self._push(sub)
        for item in skipped:
            heapq.heappush(self.frontier, item)

    def _partial_root(self, room: int) -> None:
        entries = sorted(self.tree.direct.get("", []) + [folder + "/" for folder in self.tree.subdirs[""]])
        shown: list[str] = []
        cost = 0
        for entry in entries:
            line = self.tree.collapsed_line(entry[:-1]) if entry.endswith("/") else entry + "\n"
            if cost + len(line) > room - 60:  # room for the line about the rest
                break
            shown.append(entry)
            cost += len(line)
        self.root_shown = shown
        self.collapsed = {entry[:-1] for entry in shown if entry.endswith("/")}
        self.cost = cost + 60

    def listed_files(self) -> list[str]:
        if self.root_shown is not None:
            return [entry for entry in self.root_shown if not entry.endswith("/")]
        return [path for folder in self.expanded for path in self.tree.direct.get(folder, ())]


# -- definitions ----------------------------------------------------------------------------------------------


def _definitions(repo: Repository, rev: str, listed: Sequence[str], room: int) -> dict[str, str]:
    """path -> its definitions block ("  def f(x)\\n..."), for as many listed source files as fit in room."""
    candidates = sorted((path for path in listed if _language(path) and not _low_priority(path)),
                        key=lambda path: (_is_test(path), _depth(path), path))
    reads = min(len(candidates), MAX_READS, room // CHARS_PER_DEFINED_FILE)
    if reads <= 0:
        return {}
    blobs = repo.read_blobs(rev, candidates[:reads])
    blocks: dict[str, str] = {}
    used = 0
    for path in candidates[:reads]:
        data = blobs.get(path)
        if data is None or len(data) > MAX_SOURCE_BYTES or b"\0" in data[:8000]:
            continue
        lines = list(definitions(path, data.decode("utf-8", "replace")))
        block = _block(lines, room - used)
        if block:
            blocks[path] = block
            used += len(block)
    return blocks


def _block(lines: list[str], room: int) -> str:
    if len(lines) > MAX_DEFS_PER_FILE:
        lines = lines[:MAX_DEFS_PER_FILE] + [f"... {len(lines) - MAX_DEFS_PER_FILE} more"]
    text = ""
    for line in lines:
        entry = f"  {line}\n"
        if len(text) + len(entry) > room:
            break
        text += entry
    return text


def _language(path: str) -> str | None:
    return _EXTENSIONS.get(_extension(path).lower())


def _is_test(path: str) -> bool:
    name = path.rpartition("/")[2]
    return (name.startswith("test_") or name.rpartition(".")[0].endswith(("_test", ".test", ".spec"))
            or any(part in TEST_DIRS for part in path.split("/")[:-1]))


def definitions(path: str, source: str) -> Iterator[str]:
    """Top-level definitions of one source file, one short line each (Python: with argument names)."""
    language = _language(path)
    if language == "python":
        found = _python_definitions(source)
        if found is not None:
            yield from found
            return
        language = "python-regex"
    pattern = _PYTHON_FALLBACK if language == "python-regex" else _PATTERNS.get(language or "")
    if pattern is None:
        return
    for match in pattern.finditer(source):
        line = " ".join(match.group().split()).rstrip("{ ").rstrip()
        if line:
            yield _shorten(line)


_PYTHON_FALLBACK = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+\w+[^:\n]*", re.MULTILINE)


def _python_definitions(source: str) -> list[str] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes and the like are not our business here
        try:
            module = ast.parse(source)
        except (SyntaxError, ValueError):
            return None
    found = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(_shorten(_signature(node, method=False)))
        elif isinstance(node, ast.ClassDef):
            found.append(_shorten(_class_line(node)))
    return found


def _class_line(node: ast.ClassDef) -> str:
    bases = ", ".join(ast.unparse(base) for base in node.bases)
    head = f"class {node.name}({bases})" if bases else f"class {node.name}"
    members = [_signature(item, method=True).removeprefix("def ") for item in node.body
               if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)]
    members += [f"class {item.name}" for item in node.body if isinstance(item, ast.ClassDef)]
    return f"{head}: {', '.join(members)}" if members else head


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> str:
    args = node.args
    positional = [arg.arg for arg in [*args.posonlyargs, *args.args]]
    if method and positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    names = positional
    if args.vararg:
        names.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        names.append("*")
    names += [arg.arg for arg in args.kwonlyargs]
    if args.kwarg:
        names.append(f"**{args.kwarg.arg}")
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({', '.join(names)})"


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_DEF_LINE else line[:MAX_DEF_LINE - 3] + "..."


# -- rendering ----------------------------------------------------------------------------------------------


def _render(tree: _Tree, listing: _Listing, blocks: dict[str, str]) -> str:
    entries: list[tuple[str, str]] = []
    for path in listing.listed_files():
        entries.append((path, path + "\n" + blocks.get(path, "")))
    for folder in listing.collapsed:
        entries.append((folder + "/", tree.collapsed_line(folder)))
    entries.sort()
    body = "".join(text for _, text in entries)
    if listing.root_shown is not None:
        shown = sum(tree.count(e[:-1]) if e.endswith("/") else 1 for e in listing.root_shown)
        rest = len(tree.files) - shown
        if rest:
            body += f"... {rest:,} more files at the top level and below, not shown\n"
    shown_defs = sum(1 for block in blocks.values() if block)
    return _header(len(tree.files), shown_defs, len(listing.collapsed)) + body


def _header(files: int, defined: int, collapsed: int) -> str:
    header = f"# {files:,} files; definitions shown for {defined:,}"
    if collapsed:
        header += f"; {collapsed:,} directories collapsed"
    return header + "\n"

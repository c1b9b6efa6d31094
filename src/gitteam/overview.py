"""The repository overview the planner starts from: tracked paths and top-level definitions, within a budget,
weighted toward the task.

Any repository fits: paths are listed while they fit and the rest collapse into `dir/ (N files: ...)` lines;
definitions are read in one batch, only for as many listed source files as the budget can show.

What is shown first follows the task (focus.py): the paths it names are always shown, even inside a collapsed
directory; the files whose paths share its words (or that define the names it mentions) are shown next,
their directories are expanded before any other and their definitions come first. Then the rest of the tree,
shallow and small directories first, others' code (vendor/, node_modules/) last. Documentation directories
(`docs/`, or mostly .rst/.md files) are opened only after everything else, so a planner asked about code
sees code, and the docs as one line with their counts. With no task the ranking is by depth alone.
The output depends only on the tree at `rev`, the task and the budget.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from gitteam.focus import Focus, code_names, focus
from gitteam.git import Repository
from gitteam.outline import EXTENSIONS, definitions, extension, is_test, language
from gitteam.tokens import CHARS_PER_TOKEN, estimate_tokens

MAX_SOURCE_BYTES = 200_000
LISTING_SHARE = 0.6  # of the budget the path listing may take before definitions get theirs
PIN_SHARE = 0.15  # of the budget for task-relevant files shown inside collapsed directories
MAX_PINS = 40
MAX_PINS_PER_DIR = 3  # more relevant files in one collapsed directory: its line says how many
NEAR_SHARE = 0.15  # of the budget for the definitions of files near the relevant ones, before the listing grows
FOCUS_MAX_SHARE = 0.15  # a relevant directory costing more than this to open waits for its turn by depth
MAX_DEFS_PER_FILE = 30
MAX_READS = 600
CHARS_PER_DEFINED_FILE = 60  # a guess, used only to decide how many files are worth reading
# Directories of other people's or generated code: listed and read last.
LOW_PRIORITY_DIRS = frozenset({
    "node_modules", "vendor", "third_party", "third-party", "external", "dist", "build", "target", "out",
    ".venv", "venv", "__pycache__", "site-packages", "generated", "gen", "deps", "Pods",
})
DOC_DIRS = frozenset({"doc", "docs", "documentation", "man", "manual", "manpages"})
DOC_EXTENSIONS = frozenset({".rst", ".md", ".markdown", ".mdx", ".txt", ".adoc", ".asciidoc", ".rdoc", ".texi",
                            ".tex", ".org", ".pod"})
DOC_SHARE = 0.6  # a directory of at least DOC_MIN_FILES files, this share of them documents, is documentation
DOC_MIN_FILES = 5
MAX_GREP_FILES = 50_000
GREP_SECONDS = 10.0  # generous: the overview should not depend on the machine's speed
MAX_GREP_MATCHES = 400


def repository_overview(repo: Repository, rev: str, token_budget: int, task: str = "",
                        named: Sequence[str] = ()) -> str:
    """Tracked paths at `rev` and the definitions of source files, in at most `token_budget` tokens, the ones
    relevant to `task` first; `named`: the paths the task names (memory.recall.mentioned_paths)."""
    limit = max(token_budget, 0) * CHARS_PER_TOKEN
    tree = _Tree(sorted(repo.tracked_files(rev)))
    weights = Focus({}, (), ())
    if task or named:
        weights = focus(tree.files, task, named, _defining(repo, rev, tree.files, code_names(task)))
    note = _focus_note(weights)
    room = max(limit - len(_header(len(tree.files), len(tree.files), len(tree.subdirs))) - len(note), 0)
    listing = _Listing(tree, room, weights)
    listing.grow(int(room * LISTING_SHARE))
    blocks = _ranked_definitions(repo, rev, listing, weights.scores, room)
    listing.grow(room - _used(blocks))
    return _fit(_render(tree, listing, blocks, note), token_budget)


def _ranked_definitions(repo: Repository, rev: str, listing: _Listing, scores: Mapping[str, float],
                        room: int) -> dict[str, str]:
    """The listed files' definitions that fit beside the listing. With a task: its relevant files' first, then
    those of the files nearest them (up to NEAR_SHARE), then the listing takes what it can use and the rest of
    the files get what is left. Without one: shallow files first, code before tests."""
    blocks: dict[str, str] = {}
    tried: set[str] = set()

    def untried() -> list[str]:
        return [path for path in listing.listed_files() if path not in tried]

    def free() -> int:
        return room - listing.cost - _used(blocks)

    if not scores:
        _definitions(repo, rev, untried(), free(), lambda path: 0.0, blocks, tried)
        return blocks
    _definitions(repo, rev, [path for path in untried() if path in scores], free(), lambda path: scores[path],
                 blocks, tried)
    nearness = _Nearness(scores).of
    _definitions(repo, rev, untried(), min(free(), int(room * NEAR_SHARE)), nearness, blocks, tried)
    listing.grow(room - _used(blocks))
    _definitions(repo, rev, untried(), free(), nearness, blocks, tried)
    return blocks


class _Nearness:
    """How close a file is to the task's relevant files: the depth of the deepest directory it shares with one
    of them (its own directory counts), so siblings come first and a distant `utils/` last."""

    def __init__(self, scores: Mapping[str, float]) -> None:
        self.near: set[str] = set()
        for path in scores:
            folder = _parent(path)
            while folder and folder not in self.near:
                self.near.add(folder)
                folder = _parent(folder)

    def of(self, path: str) -> float:
        folder = _parent(path)
        while folder and folder not in self.near:
            folder = _parent(folder)
        return float(folder.count("/") + 1) if folder else 0.0


def _used(blocks: Mapping[str, str]) -> int:
    return sum(len(block) for block in blocks.values())


def _fit(text: str, token_budget: int) -> str:
    if estimate_tokens(text) <= token_budget:
        return text
    cut = text[:max(token_budget, 0) * CHARS_PER_TOKEN]
    return cut[:cut.rfind("\n") + 1] if "\n" in cut else ""


def _defining(repo: Repository, rev: str, files: Sequence[str], names: Sequence[str]) -> list[str]:
    """Source files at `rev` that define one of `names` (identifiers: nothing to escape), by one `git grep`."""
    if not names:
        return []
    sources = [path for path in files if language(path) and not _low_priority(path)][:MAX_GREP_FILES]
    alternatives = "|".join(names)
    # plain groups: the same pattern reads as PCRE and as POSIX extended (a git without PCRE)
    pattern = (rf"\b(def|class|function|func|fn|interface|type|struct|enum|trait|module)\s+({alternatives})\b"
               rf"|^({alternatives})\s*[:=]")
    found = repo.grep(pattern, sources, rev=rev, seconds=GREP_SECONDS, max_matches=MAX_GREP_MATCHES, max_line=200)
    return sorted({match.path for match in found.matches})


def _focus_note(weights: Focus) -> str:
    if not weights:
        return ""
    if weights.words:
        return f"# ranked for the task: paths sharing its words ({', '.join(weights.words[:8])}) first\n"
    return "# ranked for the task: the paths and names it mentions first\n"


# -- paths --------------------------------------------------------------------------------------------------


@dataclass
class _Tree:
    files: list[str]  # sorted
    subdirs: dict[str, list[str]] = field(default_factory=dict)  # dir ("" is the root) -> child dirs
    direct: dict[str, list[str]] = field(default_factory=dict)  # dir -> files directly in it
    _summaries: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)

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

    def is_doc(self, folder: str) -> bool:
        """Documentation: named like it (docs/, man/), or mostly .rst, .md and such files."""
        return folder.rpartition("/")[2].lower() in DOC_DIRS or self._summary(folder)[2]

    def _summary(self, folder: str) -> tuple[str, bool, bool]:
        summary = self._summaries.get(folder)
        if summary is None:
            lo, hi = self._range(folder)
            kinds = Counter(extension(path) for path in self.files[lo:hi])
            top = sorted(((n, ext) for ext, n in kinds.items() if ext), key=lambda item: (-item[0], item[1]))[:3]
            parts = [f"{n:,} {ext}" for n, ext in top]
            other = (hi - lo) - sum(n for n, _ in top)
            parts += [f"{other:,} other"] if other else []
            noun = "file" if hi - lo == 1 else "files"
            line = f"{folder}/ ({hi - lo:,} {noun}: {', '.join(parts)})\n"
            source = any(ext.lower() in EXTENSIONS for ext in kinds)
            docs = sum(n for ext, n in kinds.items() if ext.lower() in DOC_EXTENSIONS)
            documents = hi - lo >= DOC_MIN_FILES and docs >= DOC_SHARE * (hi - lo)
            summary = self._summaries[folder] = (line, source, documents)
        return summary


def _depth(path: str) -> int:
    return path.count("/")


def _parent(path: str) -> str:
    return path.rstrip("/").rpartition("/")[0]


def _low_priority(path: str) -> bool:
    return any(part in LOW_PRIORITY_DIRS for part in path.split("/")[:-1]) or path.endswith(".min.js")


class _Listing:
    """Which directories are expanded, and which entries are shown apart (pinned) inside collapsed ones.

    Grows greedily (see `_push` for the order). Pins are the paths the task names and its most relevant files:
    shown whatever is expanded, each counted until the expansion of its directory shows it anyway."""

    def __init__(self, tree: _Tree, room: int, weights: Focus) -> None:
        self.tree = tree
        self.room = room
        self.relevance = _folder_relevance(tree, weights.scores)
        self.named_dirs = tuple(entry[:-1] for entry in weights.named if entry.endswith("/"))
        self.expanded: set[str] = {""}
        self.collapsed: set[str] = set(tree.subdirs[""])
        self.pins: dict[str, int] = {}  # entry ("path" or "dir/") -> its cost while its directory is collapsed
        self.cost = self._expansion_cost("")
        self.frontier: list[tuple[bool, bool, bool, float, int, bool, int, str]] = []
        self.root_shown: list[str] | None = None  # set when even the top level does not fit
        named = [entry for entry in weights.named if _parent(entry)]
        named_cost = sum(self._entry_cost(entry) for entry in named)
        if self.cost + named_cost > room:
            self._partial_root(room - named_cost, [entry for entry in weights.named if not _parent(entry)])
        else:
            for folder in tree.subdirs[""]:
                self._push(folder)
        for entry in named:
            self._pin(entry)
            if entry.endswith("/") and self.root_shown is None:
                self._push(entry[:-1])  # a named directory opens even where its parent stays collapsed
        if self.root_shown is None:
            self._pin_relevant(weights.scores, int(room * PIN_SHARE))

    def _entry_cost(self, entry: str) -> int:
        return len(self.tree.collapsed_line(entry[:-1])) if entry.endswith("/") else len(entry) + 1

    def _pin(self, entry: str) -> None:
        if _parent(entry) not in self.expanded and entry not in self.pins:
            self.pins[entry] = self._entry_cost(entry)
            self.cost += self.pins[entry]

    def _pin_relevant(self, scores: Mapping[str, float], budget: int) -> None:
        """The most relevant files, a few to a directory: a directory with many says how many in its line."""
        ranked = sorted(scores, key=lambda p: (-scores[p], is_test(p), _depth(p), p))
        used, pinned = 0, 0
        per_dir: Counter[str] = Counter()
        for path in ranked:
            folder = _parent(path)
            cost = len(path) + 1
            if folder in self.expanded or path in self.pins or per_dir[folder] >= MAX_PINS_PER_DIR:
                continue
            if used + cost > budget or pinned >= MAX_PINS:
                break
            self._pin(path)
            per_dir[folder] += 1
            used += cost
            pinned += 1

    def _push(self, folder: str) -> None:
        """Queue a collapsed directory: others' code last, documentation just before it; before both, the
        directories with files relevant to the task (most relevant first) unless they cost much to open;
        then shallow first, code before other files, and of those the cheapest to open first."""
        tree = self.tree
        entries = len(tree.direct.get(folder, ())) + len(tree.subdirs[folder])
        named = any(folder == d or folder.startswith(d + "/") for d in self.named_dirs)
        relevance = self.relevance.get(folder, 0.0)
        delta = self._expansion_cost(folder) - len(tree.collapsed_line(folder))
        focused = relevance > 0 and (named or delta <= self.room * FOCUS_MAX_SHARE)
        key = (_low_priority(folder + "/"), tree.is_doc(folder) and not named, not focused,
               -relevance if focused else 0.0, _depth(folder), not tree.has_source(folder), entries, folder)
        heapq.heappush(self.frontier, key)

    def _expansion_cost(self, folder: str) -> int:
        files = sum(len(path) + 1 for path in self.tree.direct.get(folder, ()))
        return files + sum(len(self.tree.collapsed_line(sub)) for sub in self.tree.subdirs[folder])

    def grow(self, limit: int) -> None:
        if self.root_shown is not None:
            return
        skipped = []
        while self.frontier:
            item = heapq.heappop(self.frontier)
            folder = item[-1]
            if folder in self.expanded:
                continue  # a named directory, queued twice
            subdirs = self.tree.subdirs[folder]
            # what shows it now (its line: in its parent's listing, or pinned) and the pins it will show
            absorbed = [entry for entry in self.pins if _parent(entry) == folder or entry == folder + "/"]
            shown = 0 if folder + "/" in self.pins else len(self.tree.collapsed_line(folder))
            opened = [sub for sub in subdirs if sub in self.expanded]
            delta = (self._expansion_cost(folder) - shown - sum(self.pins[entry] for entry in absorbed)
                     - sum(len(self.tree.collapsed_line(sub)) for sub in opened))
            if self.cost + delta > limit:
                skipped.append(item)
                continue
            self.cost += delta
            for entry in absorbed:
                del self.pins[entry]
            self.expanded.add(folder)
            self.collapsed.discard(folder)
            for sub in subdirs:
                if sub not in self.expanded:
                    self.collapsed.add(sub)
                    self._push(sub)
        for item in skipped:
            heapq.heappush(self.frontier, item)

    def _partial_root(self, room: int, first: Collection[str]) -> None:
        entries = sorted(self.tree.direct.get("", []) + [folder + "/" for folder in self.tree.subdirs[""]],
                         key=lambda entry: (entry not in first, entry))
        shown: list[str] = []
        cost = 0
        for entry in entries:
            line = self.tree.collapsed_line(entry[:-1]) if entry.endswith("/") else entry + "\n"
            if cost + len(line) > room - 60 and entry not in first:  # room for the line about the rest
                break
            shown.append(entry)
            cost += len(line)
        self.root_shown = shown
        self.collapsed = {entry[:-1] for entry in shown if entry.endswith("/")}
        self.cost = cost + 60

    def listed_files(self) -> list[str]:
        """Files shown by name: in expanded directories (or the part of the top level shown) and pinned."""
        pinned = [entry for entry in self.pins if not entry.endswith("/")]
        if self.root_shown is not None:
            return [entry for entry in self.root_shown if not entry.endswith("/")] + pinned
        return [path for folder in self.expanded for path in self.tree.direct.get(folder, ())] + pinned


def _folder_relevance(tree: _Tree, scores: Mapping[str, float]) -> dict[str, float]:
    """Directory -> the relevance of its most relevant file, for every directory above a relevant file."""
    relevance: dict[str, float] = {}
    for path, score in scores.items():
        folder = _parent(path)
        while folder:
            if relevance.get(folder, 0.0) >= score:
                break  # its ancestors have at least as much already
            relevance[folder] = score
            folder = _parent(folder)
    return relevance


# -- definitions ----------------------------------------------------------------------------------------------


def _definitions(repo: Repository, rev: str, listed: Sequence[str], room: int, rank: Callable[[str], float],
                 blocks: dict[str, str], tried: set[str]) -> None:
    """Add to `blocks` path -> its definitions block ("  def f(x)\\n..."), for as many of the listed source files
    as fit in room: the highest `rank` first, then code before tests, shallow first. `tried`: files read."""
    candidates = sorted((path for path in listed if language(path) and not _low_priority(path)),
                        key=lambda path: (-rank(path), is_test(path), _depth(path), path))
    reads = min(len(candidates), MAX_READS, room // CHARS_PER_DEFINED_FILE)
    if reads <= 0:
        return
    blobs = repo.read_blobs(rev, candidates[:reads])
    used = 0
    for path in candidates[:reads]:
        tried.add(path)
        data = blobs.get(path)
        if data is None or len(data) > MAX_SOURCE_BYTES or b"\0" in data[:8000]:
            continue
        lines = list(definitions(path, data.decode("utf-8", "replace")))
        block = _block(lines, room - used)
        if block:
            blocks[path] = block
            used += len(block)


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


# -- rendering ----------------------------------------------------------------------------------------------


def _render(tree: _Tree, listing: _Listing, blocks: dict[str, str], note: str) -> str:
    entries: list[tuple[str, str]] = []
    for path in listing.listed_files():
        entries.append((path, path + "\n" + blocks.get(path, "")))
    for folder in listing.collapsed:
        entries.append((folder + "/", tree.collapsed_line(folder)))
    for entry in listing.pins:
        if entry.endswith("/"):
            entries.append((entry, tree.collapsed_line(entry[:-1])))
    entries.sort()
    body = "".join(text for _, text in entries)
    if listing.root_shown is not None:
        shown = sum(tree.count(e[:-1]) if e.endswith("/") else 1 for e in listing.root_shown)
        rest = len(tree.files) - shown
        if rest:
            body += f"... {rest:,} more files at the top level and below, not shown\n"
    shown_defs = sum(1 for block in blocks.values() if block)
    return _header(len(tree.files), shown_defs, len(listing.collapsed)) + note + body


def _header(files: int, defined: int, collapsed: int) -> str:
    header = f"# {files:,} files; definitions shown for {defined:,}"
    if collapsed:
        header += f"; {collapsed:,} directories collapsed"
    return header + "\n"

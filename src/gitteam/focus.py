"""What a task is about, in a repository's tree of paths: a relevance score for each file.

A file is relevant when its path shares a word with the task (a directory or file name: `autodoc` in
`sphinx/ext/autodoc/directive.py` and in `tests/test_ext_autodoc.py`), weighted by rarity: a word found in
most paths (`sphinx` in a repository of that name) tells nothing, and one found in more than a quarter of them
is ignored. Paths the task names are found as they are in the tree (exactly, or as the end of a longer path)
and outrank everything; files that define a name the task mentions (`ClassDocumenter`, `format_args`) count
as much as the rarest word. Tests weigh half: the code under test is what a plan starts from.
Deterministic and cheap: no model call, one pass over the paths.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from gitteam.outline import extension, is_test

MAX_WORD_SHARE = 0.25  # a word in more of the paths than this picks nothing...
ALWAYS_RARE = 10  # ...unless it is in this many paths or fewer
TEST_WEIGHT = 0.5
NAMED_SCORE = 1000.0
MAX_NAMED_MATCHES = 3  # paths one named fragment may stand for ("README.md" in many directories)
MAX_CODE_NAMES = 12

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_PIECE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")  # camelCase and HTTPServer apart
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CODE_LIKE = re.compile(r"[a-z0-9][A-Z]|[A-Za-z0-9]_[A-Za-z0-9]")
_QUOTED = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)(?:\(\))?`|([A-Za-z_][A-Za-z0-9_]*)\(")
_STOPWORD_TEXT = """
the and for are but not you all any can had her was one our out has him his how its may new now old see two
way who did get let put say she too use this that with from have they will your what when which their there
been were into than then them these some would could should about also more most other only over such very
just like make does done each many much must need here where why while after before under above same both
file code add fix change update please using used via yet per bug issue problem wrong instead handle
handling handled support supported work works working something thing things case cases
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Focus:
    scores: Mapping[str, float]  # file -> its relevance; files without any are left out
    named: tuple[str, ...]  # what the task names, as the tree has it: files, and directories ending in "/"
    words: tuple[str, ...]  # the task's words that picked files, rarest first

    def __bool__(self) -> bool:
        return bool(self.scores or self.named)


def words(text: str) -> frozenset[str]:
    """The words of a text or a path component, lower case, camelCase and snake_case split (and whole), plural
    folded into singular; short words, numbers and common English left out."""
    found: set[str] = set()
    for token in _TOKEN.findall(text):
        found.add(token.lower())
        found.update(piece.lower() for piece in _PIECE.findall(token))
    return frozenset(_stem(w) for w in found if len(w) >= 3 and not w.isdigit() and w not in _STOPWORDS)


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def code_names(task: str) -> list[str]:
    """Names in a task that look like code (`format_args`, `ClassDocumenter`, `run(`, anything in backticks):
    the ones worth looking up as definitions. Sorted, at most MAX_CODE_NAMES."""
    found: set[str] = set()
    for match in _NAME.finditer(task):
        found.update(part for part in match.group().split(".") if len(part) >= 3 and _CODE_LIKE.search(part))
    for quoted, called in _QUOTED.findall(task):
        found.update(part for part in (quoted or called).split(".") if len(part) >= 3)
    return sorted(found)[:MAX_CODE_NAMES]


def focus(files: Sequence[str], task: str, named: Sequence[str] = (), defining: Collection[str] = ()) -> Focus:
    """The relevance of each of `files` (sorted) to `task`; `named`: the paths the task names as it wrote them
    (memory.recall.mentioned_paths), `defining`: files that define a name the task mentions."""
    prose = task
    for path in sorted(named, key=len, reverse=True):  # a named path counts as itself, not as its words
        prose = prose.replace(path, " ")
    wanted = words(prose)
    found = resolve_named(files, named)
    if not (wanted or found or defining):
        return Focus({}, (), ())
    matches: dict[str, frozenset[str]] = {}
    counts: Counter[str] = Counter()
    hits = _Hits(wanted)
    for path in files:
        folder, _, name = path.rpartition("/")
        hit = hits.of_folder(folder) | hits.of(name[:len(name) - len(extension(name))] or name)
        if hit:
            matches[path] = hit
            counts.update(hit)
    total = len(files)
    common = max(ALWAYS_RARE, total * MAX_WORD_SHARE)
    weight = {w: math.log((total + 1) / n) for w, n in counts.items() if n <= common}
    rarest = math.log(total + 1)
    scores: dict[str, float] = {}
    for path, hit in matches.items():
        score = sum(weight.get(w, 0.0) for w in hit)
        if score > 0:
            scores[path] = score
    for path in defining:
        scores[path] = scores.get(path, 0.0) + rarest
    named_dirs = tuple(entry for entry in found if entry.endswith("/"))
    for path in _under(files, named_dirs):
        scores[path] = scores.get(path, 0.0) + 2 * rarest
    for entry in found:
        if not entry.endswith("/"):
            scores[entry] = scores.get(entry, 0.0) + NAMED_SCORE
    scores = {path: round(score * (TEST_WEIGHT if is_test(path) else 1.0), 6) for path, score in scores.items()}
    used = sorted(weight, key=lambda w: (-weight[w], w))
    return Focus(scores, tuple(found), tuple(used))


class _Hits:
    """The task's words in each path component and folder, each worked out once. A component none of whose
    substrings could be one of the words (every word the task has comes from a token that contains the word
    less its last letter: "policy" from "policies") is settled by one search, not split into words."""

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        roots = sorted({word[:-1] for word in wanted}, key=len)
        self._could = re.compile("|".join(map(re.escape, roots))).search if roots else None
        self._parts: dict[str, frozenset[str]] = {}
        self._folders: dict[str, frozenset[str]] = {"": frozenset()}

    def of(self, part: str) -> frozenset[str]:
        found = self._parts.get(part)
        if found is None:
            could = self._could is not None and self._could(part.lower())
            found = self._parts[part] = words(part) & self.wanted if could else frozenset()
        return found

    def of_folder(self, folder: str) -> frozenset[str]:
        found = self._folders.get(folder)
        if found is None:
            parent, _, name = folder.rpartition("/")
            found = self._folders[folder] = self.of_folder(parent) | self.of(name)
        return found


def resolve_named(files: Sequence[str], named: Sequence[str]) -> list[str]:
    """Each named path as the tree has it: the file or directory itself, else the paths that end with it (the
    shallowest few), else, for a file still to be written, the deepest directory of it that exists."""
    if not named:
        return []
    present = set(files)
    folders = {path[:i] for path in files for i in _slashes(path)}
    found: list[str] = []
    for raw in named:
        name = raw.strip().removeprefix("./").strip("/")
        if not name or name.startswith("../"):
            continue
        if name in present:
            found.append(name)
            continue
        if name in folders:
            found.append(name + "/")
            continue
        tail = "/" + name
        ends = [path for path in files if path.endswith(tail)]
        ends += [folder + "/" for folder in folders if folder.endswith(tail)]
        if ends:
            found += sorted(ends, key=lambda p: (p.rstrip("/").count("/"), p))[:MAX_NAMED_MATCHES]
            continue
        parent = name.rpartition("/")[0]
        while parent and parent not in folders:
            parent = parent.rpartition("/")[0]
        if parent:
            found.append(parent + "/")
    return sorted(set(found))


def _slashes(path: str) -> list[int]:
    return [i for i, char in enumerate(path) if char == "/"]


def _under(files: Sequence[str], folders: Sequence[str]) -> list[str]:
    return [path for path in files if any(path.startswith(folder) for folder in folders)] if folders else []

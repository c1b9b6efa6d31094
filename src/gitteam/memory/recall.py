"""Recall: which entries matter for a question, a set of files and tags, and how much of them fits a prompt.

Ranking is by shared tags first (given tags also restrict), then by files (the same file, then the same
directory, then the path named in the text), then by the query's words weighted by rarity (idf), newest
first among equals. Deterministic and cheap: no embeddings, no model call.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from gitteam.memory.entries import BACKLOG, Entry, normalize_tags
from gitteam.tokens import estimate_tokens

# Prompt budgets, in estimated tokens: what each role is handed before it asks `recall` for more.
PLANNER_TOKENS = 1500
REVIEWER_TOKENS = 800
CODER_TOKENS = 800
MAX_LINE_CHARS = 1200

WORD = re.compile(r"[A-Za-z0-9_]{3,}")
PATH_LIKE = re.compile(r"(?<![\w/.-])(?:[\w.-]+/)+[\w.-]+|(?<![\w/.-])[\w-]+\.(?:py|js|ts|tsx|jsx|go|rs|rb|java|kt|c|h|"
                       r"cc|cpp|hpp|cs|php|swift|md|rst|txt|toml|yaml|yml|json|cfg|ini|sh|sql|html|css)\b")
_STOPWORDS = """
the and for are but not you all any can had her was one our out has him his how its may new now old see two
way who did get let put say she too use this that with from have they will your what when which their there
been were into than then them these some would could should about also more most other only over such very
just like make does done each many much must need here where why while after before under above same both
file files code add fix change update please using used via yet per
"""
STOPWORDS = frozenset(_STOPWORDS.split())


def _stem(word: str) -> str:
    """Plural and singular meet ("retries"/"retry", "tokens"/"token"); nothing more clever than that."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


@lru_cache(maxsize=65536)
def words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in (m.lower() for m in WORD.findall(text)) if w not in STOPWORDS)


def mentioned_paths(text: str) -> list[str]:
    """Paths a text names (`src/app.py`, `README.md`): the files a task is about, before any plan exists."""
    return sorted({m.group().strip(".") for m in PATH_LIKE.finditer(text)})


def _file_score(entry: Entry, wanted: set[str], wanted_dirs: set[str]) -> int:
    score = 0
    for path in entry.files:
        if path in wanted:
            score += 4
        elif posixpath.dirname(path.rstrip("/")) in wanted_dirs or path.rstrip("/") in wanted_dirs:
            score += 1
    if not score and wanted:
        score += sum(2 for path in wanted if path in entry.content)
    return score


def rank(entries: Iterable[Entry], query: str = "", *, tags: Sequence[str] = (), files: Sequence[str] = (),
         limit: int = 20) -> list[Entry]:
    """Entries for a query, files and tags, best first: given tags restrict, and without a shared tag an entry
    needs a file or a word in common with the query."""
    pool = list(entries)
    wanted_tags = set(normalize_tags(tags))
    wanted_words = words(query)
    wanted_files = {f.strip("/") for f in files if f.strip("/")}
    wanted_dirs = {posixpath.dirname(f) for f in wanted_files} - {""}
    shared = {e.id: wanted_words & words(e.content) for e in pool} if wanted_words else {}
    frequency: dict[str, int] = {}
    for found in shared.values():
        for w in found:
            frequency[w] = frequency.get(w, 0) + 1
    weight = {w: math.log(1 + len(pool) / n) for w, n in frequency.items()}  # rare words weigh more
    scored = []
    for entry in pool:
        tag_hits = len(wanted_tags.intersection(entry.tags))
        if wanted_tags and not tag_hits:
            continue
        file_score = _file_score(entry, wanted_files, wanted_dirs) if wanted_files else 0
        word_score = sum(weight[w] for w in shared[entry.id]) if wanted_words else 0.0
        if (wanted_words or wanted_files) and not (tag_hits or file_score or word_score):
            continue
        scored.append(((tag_hits, file_score, round(word_score, 6), entry.created, entry.id), entry))
    scored.sort(key=lambda item: item[0], reverse=True)
    return [entry for _, entry in scored[:limit]]


def describe(entry: Entry) -> str:
    """One line for a prompt or a tool result: what, where, who."""
    where = ""
    if entry.files:
        line = entry.meta.get("line")
        first = f"{entry.files[0]}:{line}" if line and len(entry.files) == 1 else ", ".join(entry.files[:4])
        where = f" ({first})"
    tags = f"[{', '.join(entry.tags)}] " if entry.tags else ""
    content = " ".join(entry.content.split())
    if len(content) > MAX_LINE_CHARS:
        content = content[:MAX_LINE_CHARS] + "..."
    origin = " ".join(part for part in (entry.role, entry.agent) if part)
    run = f", run {entry.run}" if entry.run else ""
    return f"- {tags}{content}{where} ({origin}{run}; {entry.id[:10]})"


def digest(entries: Sequence[Entry], budget_tokens: int) -> str:
    """As many of `entries` (best first) as fit in `budget_tokens`; backlog items say they are open findings."""
    lines: list[str] = []
    used = 0
    for entry in entries:
        line = describe(entry)
        if BACKLOG in entry.tags:
            line = line.replace("- ", "- open review finding: ", 1)
        cost = estimate_tokens(line) + 1
        if used + cost > budget_tokens:
            continue  # a shorter entry further down may still fit
        lines.append(line)
        used += cost
    return "\n".join(lines)

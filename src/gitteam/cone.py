"""The part of a repository a sparse worktree has on disk: git's cone mode, as paths.

A cone is a set of directories, each present with everything below it, plus every file at the top of the
repository and the files directly inside each ancestor of a cone directory (git's cone mode works on whole
directories: owning `src/app/main.py` brings all of `src/app/`, and the files, not the subdirectories, of
`src/`). A leaf: it knows git's pattern file format, and nothing of gitteam.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cone:
    directories: tuple[str, ...]  # sorted, none inside another, without a trailing "/"

    @classmethod
    def around(cls, files: Iterable[str], always: Iterable[str] = ()) -> Cone:
        """The cone holding `files` (their directories) and the directories `always`."""
        wanted = {path.rsplit("/", 1)[0] for path in files if "/" in path}
        wanted |= {directory.strip("/") for directory in always}
        wanted.discard("")
        kept = sorted(d for d in wanted if not any(d.startswith(other + "/") for other in wanted))
        return cls(tuple(kept))

    @classmethod
    def parse(cls, patterns: str) -> Cone:
        """The cone that `patterns` (cone-mode `info/sparse-checkout`) holds: its recursive directories, not the
        parents whose files only are in (each followed by a `!/PARENT/*/` line)."""
        lines = [line.rstrip("\n") for line in patterns.splitlines()]
        parents = {line[2:-3] for line in lines if line.startswith("!/") and line.endswith("/*/")}
        named = [line[1:-1] for line in lines if line.startswith("/") and line.endswith("/") and line != "/*/"]
        return cls(tuple(sorted(_unescape(d) for d in named if d not in parents and d != "*")))

    def contains(self, path: str) -> bool:
        """Whether git checks `path` (a file's path) out in this cone."""
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent == "":
            return True
        # inside a cone directory, or directly inside one of its ancestors
        return any(path.startswith(d + "/") or d.startswith(parent + "/") for d in self.directories)

    def patterns(self) -> str:
        """The content of `info/sparse-checkout` in cone mode, as `git sparse-checkout set --cone` writes it."""
        lines = ["/*", "!/*/"]
        parents = sorted({"/".join(d.split("/")[:depth]) for d in self.directories
                          for depth in range(1, d.count("/") + 1)})
        for parent in parents:
            lines += [f"/{_escape(parent)}/", f"!/{_escape(parent)}/*/"]
        lines += [f"/{_escape(d)}/" for d in self.directories]
        return "".join(f"{line}\n" for line in lines)


def _escape(path: str) -> str:
    """A path as a pattern matches it literally: git escapes its glob characters (every cone pattern starts
    with "/" and ends with "/", so neither a leading "!" or "#" nor a trailing space needs it)."""
    return "".join(f"\\{ch}" if ch in "\\*?[" else ch for ch in path)


def _unescape(pattern: str) -> str:
    out, escaped = [], False
    for ch in pattern:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)

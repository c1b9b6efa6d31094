"""What a finding may point at: the files of the diff, and the lines of their new versions.

A reviewer model names files and lines from what it read; `DiffScope.place` keeps each finding where it can
be shown. A file outside the diff becomes a finding about the change as a whole (file ""), with the path
kept in its message; a line that is not in the file's new version is dropped (the finding stays on the
file, saying which line was meant). A rename's old path is taken for its new one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence

from gitteam.git import Repository
from gitteam.review.diff import FileChange
from gitteam.review.verdict import Finding, Verdict


class DiffScope:
    def __init__(self, repo: Repository, head: str, changes: Sequence[FileChange]) -> None:
        self.repo = repo
        self.head = head
        self.changes = {change.path: change for change in changes}
        self.renamed = {change.old_path: change.path for change in changes if change.old_path}
        self._lines: dict[str, int | None] = {}
        self._lock = threading.Lock()

    @property
    def paths(self) -> set[str]:
        return set(self.changes)

    def place(self, finding: Finding) -> Finding:
        path = self._path(finding.file)
        if path is None:
            if not finding.file:
                return dataclasses.replace(finding, line=None)
            return dataclasses.replace(finding, file="", line=None, message=f"{finding.file}: {finding.message}")
        if finding.line is None:
            return dataclasses.replace(finding, file=path)
        count = self.line_count(path)
        if count is not None and 1 <= finding.line <= count:
            return dataclasses.replace(finding, file=path)
        shown = "the file has no lines to point at" if count is None else f"the file has {count} line(s)"
        message = f"{finding.message} (line {finding.line} given; {shown})"
        return dataclasses.replace(finding, file=path, line=None, message=message)

    def place_all(self, verdict: Verdict) -> Verdict:
        return dataclasses.replace(verdict, findings=tuple(self.place(f) for f in verdict.findings))

    def text(self, path: str) -> str | None:
        """The file's text at head, if it is a readable file of the diff (what evidence is checked against)."""
        change = self.changes.get(path)
        if change is None or change.binary or change.status == "deleted":
            return None
        data = self.repo.read_blobs(self.head, [path]).get(path)
        return None if data is None else data.decode("utf-8", "replace")

    def line_count(self, path: str) -> int | None:
        """Lines of the file at head; None when it has none to point at (deleted, binary, empty)."""
        with self._lock:
            if path not in self._lines:
                self._count([path])
            return self._lines[path]

    def prefetch(self, paths: Iterable[str]) -> None:
        with self._lock:
            self._count([path for path in paths if path in self.changes and path not in self._lines])

    def _count(self, paths: list[str]) -> None:
        readable = [p for p in paths if not self.changes[p].binary and self.changes[p].status != "deleted"]
        blobs = self.repo.read_blobs(self.head, readable) if readable else {}
        for path in paths:
            data = blobs.get(path)
            lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1) if data else 0
            self._lines[path] = lines or None

    def _path(self, file: str) -> str | None:
        name = file.strip().replace("\\", "/").removeprefix("./")
        candidates = [name] + [name[2:] for prefix in ("a/", "b/") if name.startswith(prefix)]
        for candidate in candidates:
            if candidate in self.changes:
                return candidate
            if candidate in self.renamed:
                return self.renamed[candidate]
        return None

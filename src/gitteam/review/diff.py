"""Parse `git diff` output (as `Repository.diff` writes it) into one `FileChange` per file.

Paths, status and binary-ness come from git's own header lines, read here: git quotes unusual names
("a/\\303\\251.py") and leaves names with spaces ambiguous in `diff --git a/x b/y`, which unidiff misreads.
unidiff then parses the hunks of a copy of the diff whose headers name each file by a stand-in name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unidiff import PatchedFile, PatchSet, UnidiffParseError

from gitteam.errors import GitteamError

ChangeStatus = Literal["added", "modified", "deleted", "renamed"]

_GIT_HEADER = "diff --git "
_DEV_NULL = "/dev/null"
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # the new path; for a deletion, the deleted path
    old_path: str | None  # the old path of a rename, else None
    status: ChangeStatus
    binary: bool
    added: tuple[tuple[int, str], ...]  # (line number in the new version, text without its line ending)


@dataclass(frozen=True, slots=True)
class _Header:
    path: str
    old_path: str | None
    status: ChangeStatus
    binary: bool


def parse_diff(text: str) -> list[FileChange]:
    """One FileChange per file of a git diff, in diff order; [] for an empty diff."""
    if not text.strip():
        return []
    sections = _sections(_lines(text))
    if not sections:  # not git's format: a plain unified diff
        return [_plain_change(patched) for patched in _patch(text)]
    headers = [_read_header(lines[:_hunk_start(lines)]) for lines in sections]
    rewritten = "".join(line for index, lines in enumerate(sections) for line in _stand_in_names(index, lines))
    patched_files = _patch(rewritten)
    if len(patched_files) != len(headers):
        raise GitteamError("cannot parse the diff: its file headers are inconsistent (is it `git diff` output?)")
    return [
        FileChange(header.path, header.old_path, header.status, header.binary or bool(patched.is_binary_file),
                   _added(patched))
        for header, patched in zip(headers, patched_files, strict=True)
    ]


def file_sections(text: str) -> list[tuple[str, list[str]]]:
    """Each file's path (as in its FileChange) and its lines, each ending in "\n", header and hunks alike.

    A plain unified diff (no `diff --git` lines) is one section named after its first file.
    """
    lines = _lines(text)
    sections = _sections(lines)
    if sections:
        return [(_read_header(section[:_hunk_start(section)]).path, section) for section in sections]
    changes = [_plain_change(patched) for patched in _patch(text)] if text.strip() else []
    return [(changes[0].path, lines)] if changes else []


def hunk_start(lines: list[str]) -> int:
    """Index of the first hunk line ("@@ ...") of a file section; len(lines) when it has none."""
    return _hunk_start(lines)


def _patch(text: str) -> PatchSet:
    try:
        return PatchSet(text)
    except UnidiffParseError as exc:
        raise GitteamError(f"cannot parse the diff: {exc} (is it `git diff` output?)") from None


def _lines(text: str) -> list[str]:
    """Lines ending in "\n" (str.splitlines would also split at \r, \f and others inside a line)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def _sections(lines: list[str]) -> list[list[str]]:
    """The lines of each file, from its `diff --git` line; anything before the first one is dropped."""
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith(_GIT_HEADER):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    return sections


def _hunk_start(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))


def _read_header(lines: list[str]) -> _Header:
    fields = [line.rstrip("\n") for line in lines]

    def raw(prefix: str) -> str | None:
        return next((line[len(prefix):] for line in fields if line.startswith(prefix)), None)

    def value(prefix: str) -> str | None:
        found = raw(prefix)
        return None if found is None else unquote(found)

    renamed_from, renamed_to = value("rename from "), value("rename to ")
    binary = any(line.startswith("Binary files ") or line == "GIT binary patch" for line in fields)
    source, target = _side(raw("--- "), "a/"), _side(raw("+++ "), "b/")
    if renamed_from is not None and renamed_to is not None:
        return _Header(renamed_to, renamed_from, "renamed", binary)
    name = target or source or _header_name(fields[0])
    if value("new file mode ") is not None or value("copy to ") is not None or source == _DEV_NULL:
        return _Header(value("copy to ") or _real(target) or name, None, "added", binary)
    if value("deleted file mode ") is not None or target == _DEV_NULL:
        return _Header(_real(source) or name, None, "deleted", binary)
    return _Header(_real(target) or name, None, "modified", binary)


def _side(name: str | None, prefix: str) -> str | None:
    if name is None:
        return None
    if name.endswith("\t"):  # git ends ---/+++ names that contain a space with a tab
        name = name[:-1]
    name = unquote(name)
    return name[len(prefix):] if name.startswith(prefix) else name


def _real(name: str | None) -> str | None:
    return None if name == _DEV_NULL else name


def _header_name(line: str) -> str:
    """The path in `diff --git a/P b/P` (both sides equal when nothing says otherwise)."""
    rest = line.rstrip("\n")[len(_GIT_HEADER):]
    if rest.startswith('"'):
        end = _closing_quote(rest)
        return unquote(rest[:end + 1]).removeprefix("a/")
    if rest.endswith('"'):
        return unquote(rest[rest.rindex(' "') + 1:]).removeprefix("b/")
    half = (len(rest) - 5) // 2  # "a/" P " b/" P
    return rest[2:2 + half]


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i


def _stand_in_names(index: int, lines: list[str]) -> list[str]:
    """The section with every file name in its header replaced by a name unidiff cannot misread."""
    end = _hunk_start(lines)
    name = f"gitteam-file-{index}"
    header = []
    for line in lines[:end]:
        if line.startswith(_GIT_HEADER):
            line = f"{_GIT_HEADER}a/{name} b/{name}\n"
        elif line.startswith(("--- ", "+++ ")):
            side = "a/" if line.startswith("-") else "b/"
            null = line.rstrip("\n").endswith(_DEV_NULL)
            line = f"{line[:4]}{_DEV_NULL if null else side + name}\n"
        elif line.startswith("Binary files "):
            old = _DEV_NULL if line.startswith(f"Binary files {_DEV_NULL} ") else f"a/{name}"
            new = _DEV_NULL if line.rstrip("\n").endswith(f" {_DEV_NULL} differ") else f"b/{name}"
            line = f"Binary files {old} and {new} differ\n"
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            continue
        header.append(line)
    return header + lines[end:]


def _added(patched: PatchedFile) -> tuple[tuple[int, str], ...]:
    return tuple(
        (line.target_line_no, _without_ending(line.value))
        for hunk in patched
        for line in hunk
        if line.is_added and line.target_line_no is not None
    )


def _plain_change(patched: PatchedFile) -> FileChange:
    source, target = _side(patched.source_file, "a/"), _side(patched.target_file, "b/")
    status: ChangeStatus = "added" if source == _DEV_NULL else "deleted" if target == _DEV_NULL else "modified"
    path = (target if status != "deleted" else source) or ""
    return FileChange(path, None, status, bool(patched.is_binary_file), _added(patched))


def _without_ending(value: str) -> str:
    return value.removesuffix("\n").removesuffix("\r")


def unquote(name: str) -> str:
    """Undo git's C-style quoting of a path ("a/\\303\\251.py" -> "a/é.py"); unquoted names pass through."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body = name[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += char.encode("utf-8", "surrogateescape")
            i += 1
        elif body[i + 1] in "01234567" and len(body) >= i + 4:
            out.append(int(body[i + 1:i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(body[i + 1], ord(body[i + 1]) & 0xFF))
            i += 2
    return out.decode("utf-8", "surrogateescape")

"""Parse `git diff` output (as `Repository.diff` writes it) into one `FileChange` per file.

unidiff does the hunk arithmetic; paths are taken from git's own header lines and unquoted here, because
git quotes names with non-ASCII or control characters ("a/\\303\\251.py") and unidiff keeps the quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unidiff import PatchedFile, PatchSet, UnidiffParseError

from gitteam.errors import GitteamError

ChangeStatus = Literal["added", "modified", "deleted", "renamed"]

_DEV_NULL = "/dev/null"
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str  # the new path; for a deletion, the deleted path
    old_path: str | None  # the old path of a rename, else None
    status: ChangeStatus
    binary: bool
    added: tuple[tuple[int, str], ...]  # (line number in the new version, text without its line ending)
    hunks: int


def parse_diff(text: str) -> list[FileChange]:
    """One FileChange per file of a git diff, in diff order; [] for an empty diff."""
    if not text.strip():
        return []
    try:
        patch = PatchSet(text)
    except UnidiffParseError as exc:
        raise GitteamError(f"cannot parse the diff: {exc} (is it `git diff` output?)") from None
    return [_change(patched) for patched in patch]


def _change(patched: PatchedFile) -> FileChange:
    info = [line.rstrip("\n") for line in (patched.patch_info or [])]
    renamed_from = _header_value(info, "rename from ")
    renamed_to = _header_value(info, "rename to ")
    source = _strip_prefix(patched.source_file, "a/")
    target = _strip_prefix(patched.target_file, "b/")
    status: ChangeStatus
    if renamed_from is not None and renamed_to is not None:
        status, path, old_path = "renamed", renamed_to, renamed_from
    elif source is None or any(line.startswith(("new file mode ", "copy to ")) for line in info):
        status, path, old_path = "added", target or "", None
    elif target is None or any(line.startswith("deleted file mode ") for line in info):
        status, path, old_path = "deleted", source, None
    else:
        status, path, old_path = "modified", target, None
    added = tuple(
        (line.target_line_no, _without_ending(line.value))
        for hunk in patched
        for line in hunk
        if line.is_added and line.target_line_no is not None
    )
    return FileChange(path, old_path, status, bool(patched.is_binary_file), added, len(patched))


def _header_value(info: list[str], prefix: str) -> str | None:
    value = next((line[len(prefix):] for line in info if line.startswith(prefix)), None)
    return None if value is None else unquote(value)


def _strip_prefix(name: str | None, prefix: str) -> str | None:
    if name is None or name == _DEV_NULL:
        return None
    name = unquote(name.split("\t", 1)[0])
    return name[len(prefix):] if name.startswith(prefix) else name


def _without_ending(value: str) -> str:
    value = value.removesuffix("\n")
    return value.removesuffix("\r")


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

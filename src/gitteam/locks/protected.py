"""Protected paths: files that make git, CI or gitteam itself run something on the user's next command
(`.gitteam.toml`, CI workflows, hooks, attributes, editor tasks). No agent may change one unless the
person allowed it, whatever directory its subtask owns; the ownership predicate asks `Protection.blocks`.

A pattern is a file, a directory ending in `/`, or a glob: `*`, `?` and `[...]` within one path component,
`**` as a whole component for any number of them. Every pattern covers the path it names and everything
below it (`.vscode` and `.vscode/` both cover `.vscode/settings.json`). Matching ignores case and what some
filesystems ignore in names (trailing dots and spaces, HFS+'s invisible code points): on those, `.GitHub/`
or `.gitattributes.` opens the protected file.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from gitteam.config import PROTECTED_PATHS, Config, ProtectConfig
from gitteam.errors import UsageError
from gitteam.locks.paths import PathRefused, fold_name, normalize_entry, normalize_repo_path, show_path

_GLOB_CHARS = frozenset("*?[")


def _is_glob(component: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(component)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One normalized protect or allow pattern."""

    text: str  # normalized, as shown in messages (a directory keeps its trailing /)
    parts: tuple[str, ...]  # folded components

    @classmethod
    def parse(cls, raw: str, where: str) -> Pattern:
        try:
            text = normalize_entry(raw.strip())
        except PathRefused as exc:
            raise UsageError(f"{where}: {show_path(raw)} {exc.reason}; give a path relative to the repository "
                             "root, such as .github/ or **/.gitattributes") from None
        return cls(text, tuple(fold_name(part) for part in text.rstrip("/").split("/")))

    def covers(self, parts: Sequence[str]) -> bool:
        """True when the folded path `parts` is this pattern's path or lies below it."""
        return _covers(self.parts, tuple(parts))

    @property
    def is_glob(self) -> bool:
        return any(map(_is_glob, self.parts))


def _covers(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return True  # the pattern is used up: the rest of the path lies below what it named
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_covers(rest, parts[skip:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _covers(rest, parts[1:])


def _folded(path: str) -> tuple[str, ...] | None:
    """A path's folded components, or None when it is no repository path at all."""
    try:
        normalized = normalize_repo_path(path)
    except PathRefused:
        return None
    return tuple(fold_name(part) for part in normalized.split("/"))


class Protection:
    """The protected patterns and the allowed ones; `blocks` is what the ownership predicate asks."""

    __slots__ = ("_allowed", "_protected")

    def __init__(self, paths: Iterable[str] = PROTECTED_PATHS, allow: Iterable[str] = ()) -> None:
        self._protected = tuple(Pattern.parse(raw, "protect.paths") for raw in paths)
        self._allowed = tuple(Pattern.parse(raw, "protect.allow") for raw in allow)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.text for p in self._protected)

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(p.text for p in self._allowed)

    def protects(self, path: str) -> bool:
        """True for a protected path, allowed or not; a path that cannot be normalized counts as protected."""
        parts = _folded(path)
        return parts is None or any(p.covers(parts) for p in self._protected)

    def allows(self, path: str) -> bool:
        """True when an allow pattern covers `path`."""
        parts = _folded(path)
        return parts is not None and any(p.covers(parts) for p in self._allowed)

    def blocks(self, path: str) -> bool:
        """True for a protected path that is not allowed: no agent may change it."""
        return self.protects(path) and not self.allows(path)

    def refused_entries(self, entries: Iterable[str]) -> list[str]:
        """What a plan's ownership entries would hand out against this protection, as paths to allow.

        A file entry is refused when blocked. A directory entry is refused when it lies in a protected
        area (`.github/workflows/` under `.github/`), or holds a protected path named without wildcards
        (`config/` holding `config/deploy.sh`, which is then what to allow). A glob (`**/.gitattributes`)
        refuses the files it matches; it does not refuse every directory it could match in: the tools
        refuse those paths when an agent tries them.
        """
        refused: dict[str, None] = {}
        for entry in entries:
            name = normalize_entry(entry)
            if self.blocks(name.rstrip("/")):
                refused[name] = None
            elif name.endswith("/"):
                inside = _folded(name.rstrip("/")) or ()
                for pattern in self._protected:
                    held = not pattern.is_glob and pattern.parts[: len(inside)] == inside
                    if held and not self.allows(pattern.text):
                        refused[pattern.text] = None
        return list(refused)


@functools.cache
def protection_for(config: ProtectConfig) -> Protection:
    """The protection a [protect] section describes (cached: ownership checks build it per subtask)."""
    return Protection(config.paths, config.allow)


DEFAULT = Protection()


def check_patterns(values: Iterable[str], where: str) -> tuple[str, ...]:
    """Validate patterns given on the command line; UsageError naming `where` for a bad one."""
    return tuple(Pattern.parse(value, where).text for value in values)


def allowing(config: Config, paths: Iterable[str]) -> Config:
    """The configuration with more allowed protected paths, for one run (`--allow-protected`)."""
    extra = [path for path in paths if path not in config.protect.allow]
    if not extra:
        return config
    protect = dataclasses.replace(config.protect, allow=(*config.protect.allow, *extra))
    return dataclasses.replace(config, protect=protect)


@dataclass(frozen=True, slots=True)
class Refusal:
    subtask: str
    paths: tuple[str, ...]


def plan_refusals(subtasks: Iterable[tuple[str, Sequence[str]]], protection: Protection) -> list[Refusal]:
    """Per subtask (id, files), the protected paths it would be handed that are not allowed."""
    found = []
    for subtask, files in subtasks:
        paths = protection.refused_entries(files)
        if paths:
            found.append(Refusal(subtask, tuple(paths)))
    return found


def refusal_error(refusals: Sequence[Refusal], run: str | None) -> UsageError:
    """One line: which subtasks got which protected paths, and the flag that allows them."""
    listed = "; ".join(f'subtask "{r.subtask}": {", ".join(map(show_path, r.paths))}' for r in refusals)
    paths = list(dict.fromkeys(path for r in refusals for path in r.paths))
    flags = " ".join(f"--allow-protected {shlex.quote(path)}" for path in paths)
    again = f"gitteam run {flags} TASK"
    how = f"gitteam resume {run} {flags} (this plan) or {again}" if run else again
    return UsageError(f"the plan gives agents protected paths ({listed}); nothing was coded. These files can make "
                      f"git, CI or gitteam run code; if the task needs them, allow them: {how}")


def planner_note(protection: Protection) -> str:
    """The planner's line about protected paths, so an honest plan avoids them ("" when none)."""
    if not protection.paths:
        return ""
    note = (f"Protected paths: {', '.join(protection.paths)}. They can make git, CI or gitteam run code, so no "
            "subtask may list them, nor a directory holding them; a plan that does is refused.")
    if protection.allowed:
        note += (f" Allowed for this run: {', '.join(protection.allowed)}; list one only if the request needs "
                 "that file changed.")
    return note

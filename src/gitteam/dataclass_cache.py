"""Compiled dataclass methods, kept between commands the way the interpreter keeps modules in .pyc files.

`@dataclass` writes the source of a class's `__init__`, `__repr__` and `__eq__` (and `__hash__`, `__setattr__`,
`__delattr__` when frozen) and compiles it with `exec` as the class is made, at import. On Python 3.11 that is
about 50 microseconds a method, and a `gitteam run` makes some 1,100 of them (gitteam's, typer's, rich's):
55 ms of every command's start, more than a third of its imports. Python 3.13 compiles a class's methods in
one go, which helps, but still compiles them every time.

`install` gives the `dataclasses` module an `exec` of its own that looks the compiled code up by a digest of
its exact source text before it compiles. Nothing else changes: the code is what `exec` would have compiled
from that text, and `dataclasses` builds the class with it as always. The cache is a file beside gitteam's
.pyc files, read once at import and written at exit when this process compiled something new, under the same
rules as .pyc files: not when Python writes no bytecode, not where the directory is not writable. A file of
another interpreter, a damaged one or an unreadable one is the same as none.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import hashlib
import marshal
import os
import sys
from importlib.util import cache_from_source
from pathlib import Path
from types import CodeType
from typing import Any

# What the compiled code depends on besides its text: a file made by another build or optimization level is
# ignored whole.
_HEADER = f"gitteam dataclass code 1 {sys.version} O{sys.flags.optimize}"
_MAX_ENTRIES = 5000  # past this (old sources pile up across upgrades), keep only what this process used


class _Cache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stored: dict[bytes, bytes] = _read(path) if path is not None else {}
        self.new: dict[bytes, bytes] = {}
        self.used: set[bytes] = set()

    def compiled(self, source: str) -> Any:
        key = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        self.used.add(key)
        blob = self.stored.get(key) or self.new.get(key)
        if blob is not None:
            try:
                code = marshal.loads(blob)
            except (ValueError, EOFError, TypeError):
                code = None
            if isinstance(code, CodeType):
                return code
        # dont_inherit: `dataclasses` has no __future__ imports, so its own exec compiles with no flags, and
        # this module's `annotations` future must not leak into the code
        code = compile(source, "<string>", "exec", dont_inherit=True)
        self.new[key] = marshal.dumps(code)
        return code

    def save(self) -> None:
        if not self.new or self.path is None or sys.dont_write_bytecode:
            return
        kept = {**self.stored, **self.new}
        if len(kept) > _MAX_ENTRIES:
            kept = {key: blob for key, blob in kept.items() if key in self.used}
        scratch = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch.write_bytes(marshal.dumps((_HEADER, kept)))
            os.replace(scratch, self.path)  # whole or not at all, whatever other process writes it at once
        except OSError:
            with contextlib.suppress(OSError):
                scratch.unlink(missing_ok=True)


def _read(path: Path) -> dict[bytes, bytes]:
    try:
        header, entries = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if header != _HEADER or not isinstance(entries, dict):
        return {}
    return entries


def cache_path() -> Path | None:
    """Where the cache lives: gitteam's __pycache__ (or PYTHONPYCACHEPREFIX's), None when Python keeps no
    bytecode caches at all."""
    try:
        return Path(cache_from_source(__file__)).with_name(f"dataclass-code.{sys.implementation.cache_tag}.bin")
    except NotImplementedError:  # sys.implementation.cache_tag is None
        return None


_cache: _Cache | None = None


def install(path: Path | None = None) -> None:
    """From now on, dataclasses compile through the cache at `path` (default: cache_path()). Idempotent."""
    global _cache
    if _cache is not None:
        return
    _cache = _Cache(path if path is not None else cache_path())
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # a module global shadows the builtin for it alone
    atexit.register(_cache.save)


def _exec(source: Any, globals: dict[str, Any] | None = None, locals: Any = None, /, **kwargs: Any) -> None:
    """The builtin `exec`, with source text compiled through the cache."""
    if globals is None:  # as the builtin does: the caller's namespaces, not this function's
        frame = sys._getframe(1)
        globals, locals = frame.f_globals, (frame.f_locals if locals is None else locals)
    if isinstance(source, str) and _cache is not None and not kwargs:
        source = _cache.compiled(source)
    builtins.exec(source, globals, locals, **kwargs)

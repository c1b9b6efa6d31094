"""The compiled-dataclass-method cache: classes built from cached code behave exactly as compiled ones, and a
cache that is foreign, damaged or unwritable is the same as none."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitteam import dataclass_cache

CLASSES = '''
from __future__ import annotations
import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

@dataclass
class Plain:
    a: int
    b: str = "b"
    c: list = field(default_factory=list)
    d: ClassVar[int] = 7

@dataclass(frozen=True, slots=True)
class Frozen:
    a: int
    b: tuple = ()

@dataclass(frozen=True, kw_only=True)
class KeywordOnly:
    a: int
    b: float = 1.5

@dataclass(order=True, unsafe_hash=True)
class Ordered:
    a: int
    b: str = field(default="x", compare=False)

@dataclass(eq=False)
class Posted:
    a: int
    scale: InitVar[int] = 2
    doubled: int = field(init=False, default=0)

    def __post_init__(self, scale: int) -> None:
        self.doubled = self.a * scale
'''


def behaviour(namespace: dict) -> list:
    """What the classes do, as plain data: construction, defaults, repr, equality, order, hashing, freezing."""
    Plain, Frozen, KeywordOnly = namespace["Plain"], namespace["Frozen"], namespace["KeywordOnly"]
    Ordered, Posted = namespace["Ordered"], namespace["Posted"]
    seen: list = []
    p = Plain(1)
    seen += [repr(p), p == Plain(1, "b", []), p == Plain(2), Plain(1).c is not Plain(1).c, Plain.d]
    f = Frozen(1, (2,))
    seen += [repr(f), f == Frozen(1, (2,)), hash(f) == hash(Frozen(1, (2,))), Frozen.__slots__]
    try:
        f.a = 2  # type: ignore[misc]
    except dataclasses.FrozenInstanceError as exc:
        seen.append(type(exc).__name__)
    try:
        KeywordOnly(1)  # type: ignore[misc]
    except TypeError:
        seen.append("positional refused")
    seen += [repr(KeywordOnly(a=1)), Ordered(1, "x") < Ordered(2, "a"), Ordered(1, "x") == Ordered(1, "y"),
             hash(Ordered(1)) == hash(Ordered(1, "z")), Posted(3).doubled, Posted(3, 5).doubled,
             Posted(1) == Posted(1), [f.name for f in dataclasses.fields(Posted)]]
    return seen


def build(cache_file: Path | None, monkeypatch: pytest.MonkeyPatch) -> tuple[list, dataclass_cache._Cache | None]:
    """The classes built through a cache read from `cache_file` (None: through the builtin exec), saved after."""
    cache = dataclass_cache._Cache(cache_file) if cache_file is not None else None
    monkeypatch.setattr(dataclass_cache, "_cache", cache)
    if cache is None:
        monkeypatch.delattr(dataclasses, "exec", raising=False)
    else:
        monkeypatch.setattr(dataclasses, "exec", dataclass_cache._exec, raising=False)
    module = type(sys)("built")
    namespace = module.__dict__
    sys.modules["built"] = module  # dataclasses reads string annotations (InitVar, ClassVar) in the module
    try:
        exec(compile(CLASSES, "built.py", "exec", dont_inherit=True), namespace)
    finally:
        del sys.modules["built"]
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    if cache is not None:
        cache.save()
    return behaviour(namespace), cache


def test_cached_code_builds_the_same_classes_as_compiled_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain, _ = build(None, monkeypatch)
    cache_file = tmp_path / "code.bin"
    first, cache = build(cache_file, monkeypatch)
    assert cache is not None and cache.new and cache_file.is_file()  # compiled, then saved
    second, cache = build(cache_file, monkeypatch)
    assert cache is not None and not cache.new and cache.used  # every method came from the file
    assert first == second == plain


@pytest.mark.parametrize("content", [b"", b"not marshal at all", None])
def test_a_damaged_or_foreign_cache_is_ignored_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            content: bytes | None) -> None:
    import marshal

    cache_file = tmp_path / "code.bin"
    foreign = marshal.dumps(("gitteam dataclass code 1 another python", {b"k" * 16: b"garbage"}))
    cache_file.write_bytes(foreign if content is None else content)
    plain, _ = build(None, monkeypatch)
    seen, cache = build(cache_file, monkeypatch)
    assert seen == plain
    assert cache is not None and not cache.stored and cache.new
    assert dataclass_cache._read(cache_file).keys() == cache.new.keys()  # rewritten, now this interpreter's


def test_damaged_entries_are_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    cache_file = tmp_path / "code.bin"
    plain, cache = build(cache_file, monkeypatch)
    assert cache is not None
    for damaged in (b"\xff", marshal.dumps(42)):  # not marshal data; marshal data that is no code
        cache_file.write_bytes(marshal.dumps((dataclass_cache._HEADER, {key: damaged for key in cache.new})))
        seen, cache = build(cache_file, monkeypatch)
        assert seen == plain and cache is not None and cache.new


def test_nothing_is_written_without_bytecode_or_where_it_cannot_be(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cache = dataclass_cache._Cache(tmp_path / "code.bin")
    cache.compiled("def __create_fn__():\n def f(): return 1\n return f")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.save()
    assert not (tmp_path / "code.bin").exists()
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the directory would be")
    cache.path = blocked / "code.bin"
    cache.save()  # no error
    assert blocked.read_text() == "a file where the directory would be"
    assert list(tmp_path.iterdir()) == [blocked]  # no scratch file left


def test_a_second_command_compiles_no_dataclass_method(tmp_path: Path) -> None:
    """End to end, in fresh interpreters: the first import of the CLI writes the cache (under
    PYTHONPYCACHEPREFIX, as .pyc files go), the second finds every method in it and leaves the file as it is."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    probe = ("import gitteam.cli, gitteam.run.orchestrator\n"
             "from gitteam import dataclass_cache as d\n"
             "print(len(d._cache.new), len(d._cache.used), d._cache.path)")
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    compiled, used, path = first.stdout.split()
    assert int(compiled) == int(used) > 100
    assert Path(path).is_file() and str(tmp_path) in path
    written = Path(path).stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    compiled, used, _ = second.stdout.split()
    assert int(compiled) == 0 and int(used) > 100
    assert Path(path).stat().st_mtime_ns == written

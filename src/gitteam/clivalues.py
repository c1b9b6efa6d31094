"""The command line's option values, converted without pydantic.

typer (from 0.2x) converts each parameter's value with a pydantic TypeAdapter, built at the first value: for
`gitteam run`, importing pydantic and building fourteen adapters took 50-60 ms of a start that is otherwise
about 150 ms, and a git hook pays it on every commit. gitteam's parameters are strings, paths without checks,
integers and numbers with bounds, lists of strings, and flags. `convert_plainly` gives each such parameter a
converter of its own, with the same results and refusals; anything else, and every parameter under a typer
whose hook is not the one this was written for (`_hook_fits`: typer's internals, checked once), is left to
typer.

A leaf: it imports nothing of gitteam.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import typer

TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
FALSE = frozenset({"", "0", "off", "f", "false", "n", "no"})
INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: Python's int() would take "٣" too, typer's did not


def convert_plainly(params: Iterable[Any]) -> None:
    """Give every parameter of a plain kind (see `_plain_kind`) a converter that needs no pydantic."""
    if not _hook_fits():
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue  # not typer's lazily converted parameter: another typer, or one already converted
        convert = _plain_kind(descriptor.annotation, descriptor.parameter_info)
        if convert is not None:
            param._runtime_param = PlainValue(convert, descriptor.parameter_info)


@cache
def _hook_fits() -> bool:
    """Whether this typer asks a parameter's converter what `PlainValue` answers: a lazily made `_runtime_param`
    whose `coerce(value, param, ctx)` converts. A typer that asks otherwise keeps its own conversion."""
    try:
        from typer import _coercion, core
    except ImportError:
        return False
    hook = getattr(getattr(core, "_TyperParameter", None), "get_runtime_param", None)
    coerce = getattr(getattr(_coercion, "RuntimeParam", None), "coerce", None)
    return callable(hook) and callable(coerce) and \
        list(inspect.signature(coerce).parameters) == ["self", "value", "param", "ctx"]


class PlainValue:
    """What typer asks of a parameter's converter (`coerce`), for one plain kind."""

    def __init__(self, convert: Callable[[Any], Any], info: Any) -> None:
        self.convert = convert
        self.minimum = info.min
        self.maximum = info.max

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        many = param.multiple or param.nargs == -1
        if value is None:
            return () if many else None
        try:
            if not many:
                return self._one(value)
            if isinstance(value, str):
                raise ValueError("Value must be an iterable.")
            return [self._one(item) for item in value]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None

    def _one(self, value: Any) -> Any:
        converted = self.convert(value)
        if self.minimum is not None and converted < self.minimum:
            raise ValueError(f"{value!r} is below the minimum, {self.minimum}.")
        if self.maximum is not None and converted > self.maximum:
            raise ValueError(f"{value!r} is above the maximum, {self.maximum}.")
        return converted


def _plain_kind(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    """The converter for a parameter this module takes over, or None for typer's own: enumerations, dates,
    files, parsers, clamped bounds and checked paths stay with typer."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None \
            or getattr(info, "clamp", False):
        return None
    if getattr(annotation, "__origin__", None) is list and getattr(annotation, "__args__", ()) == (str,):
        annotation = str  # each item of a repeatable option
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation is int:
        return _integer
    if annotation is float:
        return _number
    if annotation is Path and all(getattr(info, name, value) == value for name, value in PATH_DEFAULTS.items()):
        return _path
    return None


# A path option's checks as typer sets them by default: the only ones `_path` makes
PATH_DEFAULTS = {"exists": False, "file_okay": True, "dir_okay": True, "writable": False, "readable": True,
                 "resolve_path": False, "allow_dash": False, "path_type": None}


def _path(value: Any) -> Path:
    """A path, refused only when it exists and cannot be read (typer's default check)."""
    path = Path(value)
    if os.path.exists(path) and not os.access(path, os.R_OK):
        raise ValueError(f"Path {str(value)!r} is not readable.")
    return path


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise ValueError(f"{value!r} is not a string.")


def _flag(value: Any) -> bool:
    """A flag's value: a flag gives a bool, an environment variable or a default may give words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise ValueError(f"{value!r} is not a boolean.")


def _integer(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        return int(value)
    raise ValueError(f"{value!r} is not a whole number.")


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a number.") from None
    if math.isnan(number):  # compares false with every bound: a budget of nan would never be reached
        raise ValueError(f"{value!r} is not a number.")
    return number

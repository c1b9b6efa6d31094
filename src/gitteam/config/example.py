"""The `.gitteam.toml` that `gitteam init` writes: the shipped example, headed for a repository; with `--force`,
the settings the replaced file made are carried into it (the new documentation around the person's values).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from gitteam.config.loader import example_text
from gitteam.errors import UsageError

HEADER_END = "# Every setting below"
SECTION = re.compile(r"^\[([A-Za-z0-9_.-]+)\]\s*$")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def repo_config_text() -> str:
    """The example, introduced as this repository's file (the shipped one starts "Copy this file to ...")."""
    text = example_text()
    return ("# gitteam settings for this repository, written by `gitteam init`. Settings of your own, for every\n"
            "# repository, go in ~/.config/gitteam/config.toml ($XDG_CONFIG_HOME/gitteam/config.toml).\n#\n"
            + text[text.index(HEADER_END):])


def write_example(path: Path, force: bool = False) -> list[str]:
    """Write the repository's configuration file; an existing one is replaced only with `force`, and then the
    settings it made are kept. Returns those settings' names ("run.max_agents", ...)."""
    text = repo_config_text()
    if not force:
        try:
            with path.open("xb") as out:
                out.write(text.encode("utf-8"))
        except FileExistsError:
            raise UsageError(f"{path} already exists; edit it, or pass --force to rewrite it around your "
                             "settings") from None
        return []
    kept: list[str] = []
    if path.exists():
        try:
            old = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path} is not valid TOML ({exc}); --force keeps the settings of the file it "
                             "replaces, so fix it or move it away first") from None
        text, kept = carry_settings(text, old)
        if pruned(tomllib.loads(text)) != pruned(old):  # never lose a setting: refuse rather than guess
            raise UsageError(f"{path}: its settings could not all be carried into a new file; it is left as it is")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return kept


def carry_settings(text: str, old: dict[str, Any]) -> tuple[str, list[str]]:
    """`text` with each setting of `old` written in: in place of the commented default where the example has
    one, else at the top of its section; sections the example lacks ([models.NAME], ...) at the end."""
    preamble, sections = split_sections(text)
    kept: list[str] = []
    appended: list[str] = []
    for table, values in old.items():
        if not isinstance(values, dict):
            preamble.append(f"{key_text(table)} = {value_text(values)}\n")
            kept.append(table)
            continue
        body = sections.get(table)
        if body is None:
            appended.append(f"\n[{key_text(table)}]\n")
            appended += [f"{key_text(key)} = {value_text(value)}\n" for key, value in values.items()]
        else:
            for key, value in values.items():
                place(body, key, value)
        kept += [f"{table}.{key}" for key in values]
    lines = preamble + [line for body in sections.values() for line in body] + appended
    return "".join(lines), kept


def split_sections(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines before the first table, and each table's lines (its header first), in order."""
    preamble: list[str] = []
    sections: dict[str, list[str]] = {}
    current = preamble
    for line in text.splitlines(keepends=True):
        match = SECTION.match(line)
        if match:
            current = sections.setdefault(match.group(1), [])
        current.append(line)
    return preamble, sections


def place(body: list[str], key: str, value: Any) -> None:
    setting = f"{key_text(key)} = {value_text(value)}\n"
    commented = re.compile(rf"^#\s*{re.escape(key)}\s*=")
    for n, line in enumerate(body):
        if commented.match(line):
            body[n] = setting
            return
    body.insert(1, setting)


def key_text(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def value_text(value: Any) -> str:
    """A TOML value on one line (inline tables and arrays for nested values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")) if not math.isfinite(value) \
            else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key_text(k)} = {value_text(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    raise UsageError(f"a setting of type {type(value).__name__} cannot be carried over")


def pruned(data: Any) -> Any:
    """Tables without settings left out: the example's section headers add empty ones."""
    if isinstance(data, dict):
        kept = {key: pruned(value) for key, value in data.items()}
        return {key: value for key, value in kept.items() if value != {}}
    return data

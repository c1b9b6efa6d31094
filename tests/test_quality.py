"""The code stays typed and linted: the same checks a reviewer would run, as part of the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI checks quality, it never skips it")
        pytest.skip(message)
    return found


def test_ruff_is_clean() -> None:
    result = subprocess.run([tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

"""The team suite's tests: every synthetic task through the real `gitteam run`, scripted (see run.py). Slower
than the main suite (a minute or two), so a step of its own in .ci/run: `pytest -q tests_team`. Each run
gets its own HOME (suite.environment); the main suite's hermetic fixture keeps this process clean too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The main suite's conftest under a name of its own: this file is `conftest` too.
_spec = importlib.util.spec_from_file_location("gitteam_tests_conftest", TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)
hermetic_env = _main.hermetic_env  # autouse: a temp HOME, no system git config, fixed identities

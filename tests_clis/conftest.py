"""The agent-CLI tests: real coding-agent CLIs as gitteam's `command:` coder, each talking to a scripted
loopback server. Slow (they install the CLIs once, into a cache), so they are a step of their own in .ci/run:
`pytest -n 2 -q tests_clis`. They reuse the main suite's helpers (tests/) and its hermetic fixtures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(TESTS))

# The main suite's conftest under a name of its own: this file is `conftest` too.
_spec = importlib.util.spec_from_file_location("gitteam_tests_conftest", TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)
hermetic_env = _main.hermetic_env  # autouse: a temp HOME, no system git config, fixed identities
repo = _main.repo

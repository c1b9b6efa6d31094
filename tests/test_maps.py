"""The coder's map: its files' imports and importers at the subtask's start commit, with their signatures,
within its budget; and the planner's overview and the map reaching the models in a run."""

from __future__ import annotations

from pathlib import Path

import pytest

import sphinxlike
from conftest import commit_files
from crews import configure
from gitteam.git import find_repository
from gitteam.maps import MAP_TOKENS, coder_map
from gitteam.tokens import estimate_tokens
from loopback import call, first_user_text, plan, run, subtask, team, turn


def sphinx_map(repo: Path, files: list[str], **kw: object) -> str:
    rev = sphinxlike.commit(repo)
    return coder_map(find_repository(repo), rev, files, **kw)  # type: ignore[arg-type]


def test_the_map_lists_imports_and_importers_with_their_signatures(repo: Path) -> None:
    text = sphinx_map(repo, ["sphinx/ext/autodoc/directive.py"])

    assert estimate_tokens(text) <= MAP_TOKENS
    lines = text.splitlines()
    owned = lines.index("sphinx/ext/autodoc/directive.py")
    assert lines[owned + 1:owned + 3] == [
        "  imports: sphinx/ext/autodoc/__init__.py (Documenter, Options), "
        "sphinx/util/docutils.py (SphinxDirective, switch_source_input)",
        # __init__ imports it inside setup(); the test at the top
        "  imported by: sphinx/ext/autodoc/__init__.py, tests/test_ext_autodoc.py",
    ]
    assert ("\nsphinx/ext/autodoc/__init__.py\n  class Options(dict)\n      def copy(self) -> Options\n"
            "  class Documenter\n      def __init__(self, directive: Any, name: str, indent: str='') -> None\n") in text
    assert "\nsphinx/util/docutils.py\n  class SphinxDirective\n" in text
    assert "\ntests/test_ext_autodoc.py\n  def do_autodoc(app, objtype, name, options=None)\n" in text
    assert "bump_version" not in text and "napoleon" not in text  # neighbours only
    # what the files use comes before the callers, and the callers' tests last
    assert text.index("\nsphinx/util/docutils.py\n") < text.index("\ntests/test_ext_autodoc.py\n")


def test_importers_are_found_through_packages_and_relative_imports(repo: Path) -> None:
    rev = sphinxlike.commit(repo)
    gateway = find_repository(repo)

    inspect_map = coder_map(gateway, rev, ["sphinx/util/inspect.py"])
    napoleon_map = coder_map(gateway, rev, ["sphinx/ext/napoleon/docstring.py", "sphinx/ext/napoleon/iterators.py"])

    # `from sphinx.util import inspect` is an import of the module; `from sphinx.util.inspect import x` too
    assert ("  imported by: sphinx/ext/autodoc/__init__.py, sphinx/ext/autodoc/importer.py, "
            "sphinx/ext/autodoc/preserve_defaults.py, sphinx/ext/autodoc/type_comment.py, "
            "sphinx/ext/autodoc/typehints.py\n") in inspect_map
    assert "  def safe_getattr" not in inspect_map  # the coder's own file is not a neighbour
    # `from .docstring import X` and `from . import iterators`
    assert ("sphinx/ext/napoleon/docstring.py\n  imports: sphinx/util/logging.py\n"  # a module: no names
            "  imported by: sphinx/ext/napoleon/__init__.py\n") in napoleon_map
    assert ("sphinx/ext/napoleon/iterators.py\n  imports: sphinx/errors.py (SphinxError), sphinx/util/logging.py\n"
            "  imported by: sphinx/ext/napoleon/__init__.py\n") in napoleon_map


def test_a_new_file_and_other_languages_get_their_directory(repo: Path) -> None:
    rev = commit_files(repo, {
        "cmd/server/main.go": "package main\n\nfunc main() {\n}\n",
        "cmd/server/routes.go": "package main\n\nfunc Register(mux *Mux, prefix string) error {\n}\n",
        "cmd/other/x.go": "package other\n\nfunc Other() {\n}\n",
    })
    gateway = find_repository(repo)

    text = coder_map(gateway, rev, ["cmd/server/main.go", "src/fresh.py"])

    assert "cmd/server/main.go\n  same directory: cmd/server/routes.go\n" in text
    assert "src/fresh.py (new: not in your start commit)\n  same directory: src/app.py\n" in text
    assert "\ncmd/server/routes.go\n  func Register(mux *Mux, prefix string)\n" in text
    assert "\nsrc/app.py\n  def main()\n" in text
    assert "cmd/other" not in text


def test_javascript_and_typescript_imports(repo: Path) -> None:
    rev = commit_files(repo, {
        "web/src/app.ts": "import React from 'react';\nimport { format, type Money as M } from '../lib/format.js';\n"
                          "import * as util from './util';\nconst legacy = require('./legacy');\n\n"
                          "export function App(props: Props) {\n}\n",
        "web/lib/format.ts": "export function format(value: number): string {\n}\nexport const CURRENCY = 'EUR';\n",
        "web/src/util/index.ts": "export class Clock {\n}\n",
        "web/src/legacy.js": "function legacy() {\n}\nmodule.exports = legacy;\n",
        "web/src/main.tsx": "import { App } from './app';\n\nexport default function main() {\n}\n",
        "web/src/unrelated.ts": "export const app = 1; // mentions app, imports nothing\n",
    })

    text = coder_map(find_repository(repo), rev, ["web/src/app.ts"])

    assert ("web/src/app.ts\n  imports: web/lib/format.ts (Money, format), web/src/legacy.js, web/src/util/index.ts\n"
            "  imported by: web/src/main.tsx\n") in text
    assert "\nweb/lib/format.ts\n  export function format(value: number)\n  export const CURRENCY\n" in text
    assert "\nweb/src/main.tsx\n  export default function main()\n" in text
    assert "unrelated" not in text


def test_the_map_reads_the_commit_not_the_working_tree(repo: Path) -> None:
    first = commit_files(repo, {"src/util.py": "def helper(x: int) -> int:\n    return x\n",
                                "src/app.py": "from src.util import helper\n\n\ndef main():\n    return helper(1)\n"})
    (repo / "src" / "util.py").write_text("def changed_on_disk():\n    pass\n")  # not committed
    gateway = find_repository(repo)

    before = coder_map(gateway, first, ["src/app.py"])
    second = commit_files(repo, {"src/util.py": "def helper(x: int, y: int = 0) -> int:\n    return x\n",
                                 "src/cli.py": "from src import util\n"})
    after = coder_map(gateway, second, ["src/util.py"])

    assert "src/app.py\n  imports: src/util.py (helper)\n" in before
    assert "def helper(x: int) -> int" in before and "changed_on_disk" not in before
    assert "  imported by: src/app.py, src/cli.py\n" in after  # a new commit is read anew
    assert coder_map(gateway, first, ["src/app.py"]) == before  # and the first one's answer kept


def test_the_budget_holds_and_secret_files_stay_unread(repo: Path) -> None:
    rev = sphinxlike.commit(repo)
    gateway = find_repository(repo)
    owned = ["sphinx/ext/autodoc/__init__.py", "sphinx/ext/autodoc/directive.py", "sphinx/util/inspect.py"]

    for budget in (60, 200, 600, MAP_TOKENS):
        text = coder_map(gateway, rev, owned, budget)
        assert estimate_tokens(text) <= budget, budget
    small = coder_map(gateway, rev, owned, 400)
    assert small.startswith("# Your files as your start commit has them: ")
    assert "# also near your files, not shown: " in small
    hidden = coder_map(gateway, rev, owned, hidden=lambda path: path == "sphinx/util/docutils.py")
    assert "class SphinxDirective" not in hidden and "class SphinxDirective" in coder_map(gateway, rev, owned)
    assert coder_map(gateway, rev, []) == "" and coder_map(gateway, rev, owned, 0) == ""


# -- in a run: what the planner and the coder are given ------------------------------------------------------


@pytest.mark.usefixtures("loopback_env")
def test_the_planner_sees_the_task_and_the_coder_its_map(repo: Path) -> None:
    commit_files(repo, {
        "src/util.py": "def helper(x: int, *, scale: float = 1.0) -> float:\n    return x * scale\n",
        "src/app.py": "from src.util import helper\n\n\ndef main():\n    return helper(1)\n",
        "docs/guide.md": "# Guide\n", "docs/api.md": "# API\n", "docs/faq.md": "# FAQ\n", "docs/more.md": "# More\n",
    })
    with team("anthropic") as crew:
        configure(crew)
        crew.planner(plan(subtask("work", ["src/util.py"])))
        crew.coder("work", turn(call("write_file", path="src/util.py", content="def helper(x):\n    return x\n"),
                                call("done", summary="simpler")))

        result = run(repo, "make the util module's helper in src/util.py simpler")

        assert (result.exit_code, result.state) == (0, "merged"), result.message
        bodies = {crew.identify(r.body): r.body for r in reversed(crew.api.requests)}
        overview = first_user_text(bodies[("planner", "planner")])
        assert "# ranked for the task: paths sharing its words (util) first" in overview
        assert "src/util.py\n  def helper(x, *, scale)\n" in overview
        brief = first_user_text(bodies[("coder", "work")])
        assert "<code_map " in brief
        assert "src/util.py\n  imported by: src/app.py\n" in brief
        assert "\nsrc/app.py\n  def main()\n" in brief

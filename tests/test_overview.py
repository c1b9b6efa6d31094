"""The planner's repository overview: definitions for small repositories, the budget held for big ones."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

import sphinxlike
from conftest import commit_files, git
from gitteam.focus import code_names, focus, resolve_named, words
from gitteam.git import find_repository
from gitteam.memory.recall import mentioned_paths
from gitteam.outline import definitions
from gitteam.overview import repository_overview
from gitteam.tokens import estimate_tokens


def _fast_import(repo: Path, files: dict[str, bytes]) -> str:
    """One commit on refs/heads/big with many files, written in a single `git fast-import`."""
    blobs: dict[bytes, int] = {}
    out = bytearray()
    for data in files.values():
        if data not in blobs:
            blobs[data] = len(blobs) + 1
            out += b"blob\nmark :%d\ndata %d\n%s\n" % (blobs[data], len(data), data)
    out += b"commit refs/heads/big\ncommitter T <t@example.com> 0 +0000\ndata 3\nbig\n"
    for path, data in files.items():
        out += b"M 100644 :%d %s\n" % (blobs[data], path.encode())
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(out), check=True)
    return git(repo, "rev-parse", "big")


@pytest.fixture
def big_repo(repo: Path) -> tuple[Path, str]:
    source = b"def handler(event, context):\n    return event\n\nclass Service:\n    def start(self):\n        pass\n"
    files = {f"top{i}.py": source for i in range(5)}
    for i in range(5000):
        files[f"services/s{i // 500}/pkg{i // 50 % 10}/mod{i % 50}.py" if i % 4 else f"docs/d{i // 100}/p{i}.md"] = (
            source if i % 4 else b"# doc\n")
    return repo, _fast_import(repo, files)


def test_budget_holds_on_a_large_repository(big_repo: tuple[Path, str]) -> None:
    path, rev = big_repo
    repo = find_repository(path)
    count = len(repo.tracked_files(rev))
    for budget in (6000, 1500, 300, 40, 5):
        started = time.monotonic()
        text = repository_overview(repo, rev, budget)
        assert time.monotonic() - started < 3
        assert estimate_tokens(text) <= budget, budget
        if budget >= 40:
            assert text.startswith(f"# {count:,} files; definitions shown for ")
    text = repository_overview(repo, rev, 1500)
    assert "top0.py\n  def handler(event, context)\n  class Service: start()\n" in text
    assert re.search(r"^services/s\d/pkg\d/ \(3\d files: 3\d \.py\)$", text, re.MULTILINE)
    assert "\ndocs/ (1,250 files: 1,250 .md)\n" in repository_overview(repo, rev, 300)
    assert "directories collapsed" in text.splitlines()[0]
    assert repository_overview(repo, rev, 1500) == text  # deterministic


def test_small_repository_is_shown_whole_with_definitions(repo: Path) -> None:
    rev = commit_files(repo, {
        "src/pkg/core.py": "import os\n\nasync def fetch(url, *, timeout=3, **kw):\n    pass\n\n"
                           "class Store(Base):\n    def get(self, key, default=None):\n        pass\n"
                           "    @classmethod\n    def create(cls, *args):\n        pass\n",
        "web/app.ts": "export function render(node: Node): string {\n}\nexport class View extends Base {\n}\n"
                      "export const routes = [];\ninterface Props {}\n",
        "cmd/main.go": "package main\n\nfunc main() {\n}\n\nfunc (s *Server) Serve(addr string) error {\n}\n"
                       "type Server struct {\n}\n",
        "lib/src/lib.rs": "pub struct Parser {}\n\nimpl Parser {\n    pub fn parse(&self, s: &str) -> Ast {\n"
                          "    }\n}\n\npub enum Ast {}\npub trait Visit {}\n",
        "scripts/deploy.sh": "#!/bin/sh\ndeploy() {\n  echo\n}\nfunction cleanup {\n}\n",
        "native/util.c": "#include <stdio.h>\n\nstatic int add(int a, int b)\n{\n  return a + b;\n}\n"
                         "struct point {\n};\n",
        "java/App.java": "package x;\n\npublic final class App extends Base {\n}\n",
        "broken.py": "def ok(a):\n    pass\nclass Half(\n",
    })
    text = repository_overview(find_repository(repo), rev, 6000)
    lines = text.splitlines()
    assert lines[0] == "# 10 files; definitions shown for 9"
    for expected in [
        "README.md",
        "src/pkg/core.py", "  async def fetch(url, *, timeout, **kw)", "  class Store(Base): get(key, default), "
        "create(*args)",
        "  export function render(node: Node)", "  export class View extends Base", "  export const routes",
        "  interface Props",
        "  func main()", "  func (s *Server) Serve(addr string)", "  type Server struct",
        "  pub struct Parser", "  impl Parser", "  pub fn parse(&self, s: &str)", "  pub enum Ast",
        "  pub trait Visit",
        "  deploy()", "  function cleanup",
        "  static int add(int a, int b)", "  struct point",
        "  public final class App extends Base",
        "broken.py", "  def ok(a)", "  class Half(",
        "src/app.py", "  def main()",
    ]:
        assert expected in lines, expected


def test_definitions_of_unknown_files_are_empty() -> None:
    assert list(definitions("notes.txt", "def x(): pass\n")) == []
    assert list(definitions("a.py", "x = 1\n")) == []


def test_empty_tree_and_tiny_budgets(repo: Path) -> None:
    git(repo, "rm", "-q", "-r", ".")
    git(repo, "commit", "-q", "-m", "empty")
    gateway = find_repository(repo)
    assert repository_overview(gateway, "HEAD", 100) == "# 0 files; definitions shown for 0\n"
    assert repository_overview(gateway, "HEAD", 0) == ""


# -- weighted to the task ------------------------------------------------------------------------------------

TASK = "fix autodoc's handling of X"


def overview_for(path: Path, rev: str, task: str, budget: int = 6000) -> str:
    return repository_overview(find_repository(path), rev, budget, task, mentioned_paths(task))


def shown_files(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(("#", " ")) and "/ (" not in line]


def test_the_task_expands_its_directory_with_definitions_and_collapses_the_docs(repo: Path) -> None:
    rev = sphinxlike.commit(repo)

    text = overview_for(repo, rev, TASK)

    assert estimate_tokens(text) <= 6000
    assert "sphinx/ext/autodoc/ (" not in text  # expanded, and every file in it shown with its definitions
    for name in ("__init__", "directive", "importer", "mock", "typehints", "preserve_defaults", "type_comment"):
        assert re.search(rf"^sphinx/ext/autodoc/{name}\.py\n  (def|class) ", text, re.MULTILINE), name
    assert ("sphinx/ext/autodoc/__init__.py\n  class Options(dict): copy()\n  class Documenter: __init__(directive, "
            "name, indent), format_args(**kwargs)") in text
    assert "tests/test_ext_autodoc.py\n  def do_autodoc(app, objtype, name, options)\n" in text
    # the documentation is one line with its counts, and only its page about autodoc is named
    assert "\ndoc/ (1,114 files: 1,083 .rst, 30 .png, 1 .py)\ndoc/usage/extensions/autodoc.rst\n" in text
    assert [line for line in shown_files(text) if line.startswith("doc/")] == ["doc/usage/extensions/autodoc.rst"]
    # a script far from autodoc is listed, without the definitions the task's files needed the room for
    assert "\nutils/bump_version.py\nutils/release-checklist\n" in text
    # ranked by the task, not by depth alone: without it autodoc's definitions do not make it
    plain = repository_overview(find_repository(repo), rev, 6000)
    assert "class ClassDocumenter" not in plain and "utils/bump_version.py\n  def stringify_version" in plain
    assert "\ndoc/ (1,114 files" in plain  # documentation waits for everything else with or without a task
    assert overview_for(repo, rev, TASK) == text  # deterministic


@pytest.mark.parametrize("budget", [300, 1500, 6000])
def test_a_path_named_in_the_task_is_always_shown(repo: Path, budget: int) -> None:
    rev = sphinxlike.commit(repo)
    deep = "tests/roots/test-ext-autodoc/target/mod33.py"

    text = overview_for(repo, rev, f"{TASK}, as {deep} shows; see also autodoc/mock.py", budget)

    assert estimate_tokens(text) <= budget
    assert f"\n{deep}\n" in text  # inside a collapsed directory, its file is shown
    assert "\nsphinx/ext/autodoc/mock.py\n" in text  # the end of a path is found where it is
    if budget >= 1500:
        assert "tests/roots/test-ext-autodoc/target/mod32.py" not in text  # the path's words picked nothing more


def test_a_named_directory_opens_even_in_the_docs_and_a_new_file_shows_its_directory(repo: Path) -> None:
    rev = sphinxlike.commit(repo)

    text = overview_for(repo, rev, "document sphinx/ext/autodoc/pep695.py in doc/usage/extensions")

    files = shown_files(text)
    assert {f"doc/usage/extensions/page{n:02d}.rst" for n in range(30)} <= set(files)
    assert "doc/usage/page00.rst" not in files  # the rest of the docs stays collapsed
    assert "sphinx/ext/autodoc/typehints.py" in files and "sphinx/ext/autodoc/pep695.py" not in files


def test_names_the_task_mentions_find_the_files_that_define_them(repo: Path) -> None:
    rev = sphinxlike.commit(repo)

    text = overview_for(repo, rev, "ClassDocumenter.format_args loses its annotations", 1500)

    assert "sphinx/ext/autodoc/__init__.py\n  class Options(dict): copy()\n" in text
    assert code_names("ClassDocumenter.format_args loses `setup` and run(x)") == [
        "ClassDocumenter", "format_args", "run", "setup"]


def test_task_words_and_named_paths() -> None:
    assert words("Fix the HTTPServer's retries in parse_config/autoDoc") >= {
        "httpserver", "http", "server", "retry", "parse", "config", "autodoc", "auto", "doc"}
    assert "fix" not in words("fix it") and "the" not in words("the")
    files = ["README.md", "docs/README.md", "src/pkg/__init__.py", "src/pkg/core.py", "tests/test_core.py"]
    assert resolve_named(files, ["src/pkg/core.py", "./src/pkg/", "pkg/core.py", "README.md",
                                 "src/pkg/sub/new.py", "nowhere/x.py", "../up.py"]) == [
        "README.md", "src/pkg/", "src/pkg/core.py"]
    weights = focus(files, "make core faster", [])
    assert weights.scores == {"src/pkg/core.py": pytest.approx(1.0986, abs=1e-3),  # log(6 / 2)
                              "tests/test_core.py": pytest.approx(0.5493, abs=1e-3)}  # tests weigh half
    assert not focus(files, "", [])

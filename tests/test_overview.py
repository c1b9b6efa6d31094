"""The planner's repository overview: definitions for small repositories, the budget held for big ones."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import commit_files, git
from gitteam.git import find_repository
from gitteam.overview import definitions, repository_overview
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

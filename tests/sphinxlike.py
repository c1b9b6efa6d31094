"""A generated repository shaped like Sphinx: hundreds of .rst documents, a package with an `ext/autodoc`
subpackage that imports and is imported the way Sphinx's does, test roots, themes, translations and a
`utils/bump_version.py`. Written in one `git fast-import`, so tests and benchmarks/maps.py can afford 2,000
files. Deterministic: the same arguments give the same commit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTODOC = {
    "sphinx/ext/autodoc/__init__.py": '''"""Automatically insert docstrings for functions, classes or whole modules."""
from __future__ import annotations

from typing import Any

from sphinx.config import Config
from sphinx.ext.autodoc.importer import get_class_members, import_object
from sphinx.ext.autodoc.mock import ismock, mock
from sphinx.util import inspect, logging
from sphinx.util.docstrings import prepare_docstring
from sphinx.util.typing import stringify_annotation

ALL = object()


class Options(dict):
    def copy(self) -> Options:
        return Options(super().copy())


class Documenter:
    objtype = "object"

    def __init__(self, directive: Any, name: str, indent: str = "") -> None:
        self.directive = directive

    def format_args(self, **kwargs: Any) -> str:
        return ""

    def add_content(self, more_content: Any) -> None:
        pass

    def generate(self, more_content: Any = None, real_modname: str | None = None, check_module: bool = False,
                 all_members: bool = False) -> None:
        pass


class ModuleDocumenter(Documenter):
    objtype = "module"

    def import_object(self, raiseerror: bool = False) -> bool:
        return import_object(self.name, [])


class ClassDocumenter(Documenter):
    objtype = "class"

    def format_args(self, **kwargs: Any) -> str:
        return stringify_annotation(inspect.signature(self.object))

    def format_signature(self, **kwargs: Any) -> str:
        return ""

    def get_doc(self) -> list[list[str]] | None:
        return [prepare_docstring(self.object.__doc__ or "")]


class FunctionDocumenter(Documenter):
    objtype = "function"


def autodoc_attrgetter(app: Any, obj: Any, name: str, *defargs: Any) -> Any:
    return getattr(obj, name, *defargs)


def setup(app: Any) -> dict[str, Any]:
    from sphinx.ext.autodoc.directive import AutodocDirective

    app.add_directive("automodule", AutodocDirective)
    return {"parallel_read_safe": True}
''',
    "sphinx/ext/autodoc/directive.py": '''from __future__ import annotations

from typing import Any

from sphinx.ext.autodoc import Documenter, Options
from sphinx.util.docutils import SphinxDirective, switch_source_input


class DocumenterBridge:
    def __init__(self, env: Any, reporter: Any, options: Options, lineno: int, state: Any) -> None:
        self.env = env


def process_documenter_options(documenter: type[Documenter], config: Any, options: dict) -> Options:
    return Options(options)


class AutodocDirective(SphinxDirective):
    has_content = True

    def run(self) -> list[Any]:
        with switch_source_input(self.state, self.content):
            return []
''',
    "sphinx/ext/autodoc/importer.py": '''from __future__ import annotations

from typing import Any

from sphinx.ext.autodoc.mock import ismock, undecorate
from sphinx.util.inspect import isclass, safe_getattr


def import_module(modname: str, warningiserror: bool = False) -> Any:
    return __import__(modname)


def import_object(modname: str, objpath: list[str], objtype: str = "", attrgetter: Any = safe_getattr) -> Any:
    return None


def get_class_members(subject: Any, objpath: list[str], attrgetter: Any) -> dict[str, Any]:
    return {}
''',
    "sphinx/ext/autodoc/mock.py": '''from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _MockModule:
    pass


@contextmanager
def mock(modnames: list[str]) -> Iterator[None]:
    yield


def ismock(subject: Any) -> bool:
    return False


def undecorate(subject: Any) -> Any:
    return subject
''',
    "sphinx/ext/autodoc/typehints.py": '''from __future__ import annotations

from typing import Any

from sphinx.util import inspect, typing


def record_typehints(app: Any, objtype: str, name: str, obj: Any, options: dict, args: str, retann: str) -> None:
    pass


def merge_typehints(app: Any, domain: str, objtype: str, contentnode: Any) -> None:
    pass


def setup(app: Any) -> dict[str, Any]:
    return {}
''',
    "sphinx/ext/autodoc/preserve_defaults.py": '''from typing import Any

from sphinx.util import inspect


def update_defvalue(app: Any, obj: Any, bound_method: bool) -> None:
    pass
''',
    "sphinx/ext/autodoc/type_comment.py": '''from typing import Any

from sphinx.util import inspect


def update_annotations_using_type_comments(app: Any, obj: Any, bound_method: bool) -> None:
    pass
''',
    "sphinx/ext/autosummary/__init__.py": '''from sphinx.ext.autodoc import Documenter
from sphinx.ext.autodoc.importer import import_module


def get_documenter(app, obj, parent) -> type[Documenter]:
    return Documenter
''',
    "sphinx/ext/napoleon/__init__.py": '''from . import iterators
from .docstring import GoogleDocstring, NumpyDocstring


class Config:
    def __init__(self, **settings):
        pass


def setup(app):
    return {}
''',
    "sphinx/ext/napoleon/docstring.py": '''from sphinx.util import logging


class GoogleDocstring:
    def __init__(self, docstring, config=None, app=None, what="", name="", obj=None, options=None):
        self.lines = docstring

    def lines(self) -> list[str]:
        return []


class NumpyDocstring(GoogleDocstring):
    pass
''',
    "sphinx/util/inspect.py": '''from __future__ import annotations

import inspect
from typing import Any


def safe_getattr(obj: Any, name: str, *defargs: Any) -> Any:
    return getattr(obj, name, *defargs)


def isclass(x: Any) -> bool:
    return inspect.isclass(x)


def signature(subject: Any, bound_method: bool = False, type_aliases: dict | None = None) -> inspect.Signature:
    return inspect.signature(subject)


def stringify_signature(sig: inspect.Signature, show_annotation: bool = True,
                        show_return_annotation: bool = True) -> str:
    return str(sig)


def _private_helper() -> None:
    pass
''',
    "sphinx/util/typing.py": '''from typing import Any


def stringify_annotation(annotation: Any, mode: str = "fully-qualified-except-typing") -> str:
    return repr(annotation)


def restify(cls: Any, mode: str = "fully-qualified-except-typing") -> str:
    return repr(cls)
''',
    "sphinx/util/docstrings.py": '''def prepare_docstring(s: str, tabsize: int = 8) -> list[str]:
    return s.splitlines()


def separate_metadata(s: str | None) -> tuple[str | None, dict[str, str]]:
    return s, {}
''',
    "sphinx/util/docutils.py": '''from contextlib import contextmanager


class SphinxDirective:
    def get_source_info(self) -> tuple[str, int]:
        return "", 0


@contextmanager
def switch_source_input(state, content):
    yield
''',
    "tests/test_ext_autodoc.py": '''from sphinx.ext.autodoc import ALL, ModuleDocumenter, Options
from sphinx.ext.autodoc.directive import DocumenterBridge, process_documenter_options


def do_autodoc(app, objtype, name, options=None):
    return []


def test_format_signature(app):
    assert do_autodoc(app, "function", "x") == []
''',
    "utils/bump_version.py": '''import re
import sys


def stringify_version(version_info, in_develop=True):
    return ".".join(map(str, version_info))


def bump_version(path, version_info, in_develop=True):
    pass


def parse_version(version):
    return version


class Changes:
    def __init__(self, path):
        self.path = path

    def finalize_release_date(self):
        pass
''',
}

TOP_MODULES = ["application", "config", "errors", "events", "registry", "roles", "addnodes", "highlighting", "io",
               "parsers", "project", "theming", "versioning", "extension", "deprecation", "jinja2glue"]
EXT_MODULES = ["intersphinx", "todo", "viewcode", "coverage", "doctest", "graphviz", "ifconfig", "imgmath",
               "mathjax", "githubpages", "duration", "linkcode", "extlinks", "inheritance_diagram",
               "autosectionlabel", "apidoc"]
UTIL_MODULES = ["logging", "nodes", "osutil", "fileutil", "i18n", "images", "matching", "math", "parallel", "png",
                "requests", "rst", "tags", "template", "texescape", "console", "display", "http_date",
                "index_entries", "build_phase", "cfamily", "docfields", "exceptions", "_pathlib", "_io"]
PACKAGES = {
    "builders": ["changes", "dirhtml", "dummy", "epub3", "gettext", "linkcheck", "manpage", "singlehtml", "texinfo",
                 "text", "xml", "_epub_base"],
    "writers": ["html", "html5", "latex", "manpage", "texinfo", "text", "xml"],
    "domains": ["c", "cpp", "javascript", "math", "python", "rst", "std", "changeset", "citation", "index"],
    "environment": ["adapters_asset", "adapters_indexentries", "adapters_toctree", "collectors_asset",
                    "collectors_dependencies", "collectors_metadata", "collectors_title", "collectors_toctree"],
    "transforms": ["compact_bullet_list", "i18n", "references", "post_transforms_code", "post_transforms_images"],
    "search": ["da", "de", "en", "es", "fi", "fr", "hu", "it", "ja", "nl", "no", "pt", "ro", "ru", "sv", "tr", "zh"],
    "testing": ["fixtures", "path", "restructuredtext", "util"],
    "cmd": ["build", "make_mode", "quickstart"],
    "pycode": ["ast", "parser"],
}
LANGUAGES = ["ar", "bg", "bn", "ca", "cak", "cs", "cy", "da", "de", "el", "en_FR", "en_GB", "eo", "es", "et", "eu",
             "fa", "fi", "fr", "he", "hi", "hr", "hu", "id", "is", "it", "ja", "ka", "ko", "lt", "lv", "mk", "nb_NO",
             "ne", "nl", "pl", "pt", "pt_BR", "pt_PT", "ro", "ru", "si", "sk", "sl", "sq", "sr", "sv", "ta", "te",
             "tr", "uk_UA", "ur", "vi", "yue", "zh_CN", "zh_HK", "zh_TW"]
THEMES = ["basic", "alabaster", "classic", "nature", "pyramid", "scrolls", "agogo", "bizstyle", "epub", "haiku",
          "nonav", "sphinxdoc", "traditional"]
DOC_SECTIONS = {
    "usage": 40, "usage/extensions": 30, "usage/restructuredtext": 12, "usage/advanced": 10, "development": 25,
    "development/tutorials": 15, "extdev": 20, "internals": 12, "man": 10, "tutorial": 12, "faq": 5,
}


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.strip("_").split("_"))


def module(package: str, name: str) -> str:
    base = f"{package}.{name}" if package else name
    return (f'"""The {base} module."""\nfrom sphinx.util import logging\nfrom sphinx.errors import SphinxError\n\n'
            "logger = logging.getLogger(__name__)\n\n\n"
            f"def {name.strip('_')}_setup(app, config=None):\n    return None\n\n\n"
            f"class {camel(name)}Helper:\n    def __init__(self, app):\n        self.app = app\n\n"
            "    def run(self, node, *args):\n        return node\n")


def files(total: int = 2000) -> dict[str, bytes]:
    """The repository's files (exactly `total` of them, total >= 1,500), path -> content."""
    out: dict[str, str] = {path: text for path, text in AUTODOC.items()}
    for name in ("README.rst", "CHANGES.rst", "AUTHORS.rst", "LICENSE.rst", "EXAMPLES.rst", "CONTRIBUTING.rst",
                 "CODE_OF_CONDUCT.rst"):
        out[name] = f"{name}\n{'=' * len(name)}\n\nAbout Sphinx.\n"
    out["pyproject.toml"] = '[project]\nname = "Sphinx"\n'
    out["tox.ini"] = "[tox]\nenvlist = py3\n"
    out["Makefile"] = "test:\n\tpytest\n"
    out["package.json"] = '{"name": "sphinx"}\n'
    out["karma.conf.js"] = "module.exports = function(config) {\n};\n"
    for name in ("main", "lint", "docs", "coverage", "nodejs", "builddoc"):
        out[f".github/workflows/{name}.yml"] = f"name: {name}\n"
    out["utils/babel_runner.py"] = "def run_extract():\n    pass\n\n\ndef run_update():\n    pass\n"
    out["utils/release-checklist"] = "for every release\n"
    out["utils/CHANGES_template.rst"] = "Release x.y\n"
    out["sphinx/__init__.py"] = '__version__ = "7.3.0"\n'
    for name in TOP_MODULES:
        out[f"sphinx/{name}.py"] = module("sphinx", name)
    out["sphinx/ext/__init__.py"] = '"""Contains Sphinx features not activated by default."""\n'
    for name in EXT_MODULES:
        out[f"sphinx/ext/{name}.py"] = module("sphinx.ext", name)
    out["sphinx/ext/napoleon/iterators.py"] = module("sphinx.ext.napoleon", "iterators")
    out["sphinx/ext/autosummary/generate.py"] = module("sphinx.ext.autosummary", "generate")
    for name in ("base", "class", "module"):
        out[f"sphinx/ext/autosummary/templates/autosummary/{name}.rst"] = "{{ fullname }}\n"
    out["sphinx/util/__init__.py"] = "from sphinx.util import logging\n\n\ndef md5(data=b''):\n    pass\n"
    for name in UTIL_MODULES:
        out[f"sphinx/util/{name}.py"] = module("sphinx.util", name)
    for package, names in PACKAGES.items():
        out[f"sphinx/{package}/__init__.py"] = module(f"sphinx.{package}", package)
        for name in names:
            out[f"sphinx/{package}/{name}.py"] = module(f"sphinx.{package}", name)
    out["sphinx/locale/__init__.py"] = "def get_translation(catalog, namespace='general'):\n    pass\n"
    for lang in LANGUAGES:
        for ext in ("po", "mo", "js"):
            out[f"sphinx/locale/{lang}/LC_MESSAGES/sphinx.{ext}"] = f"# {lang}\n"
    for theme in THEMES:
        out[f"sphinx/themes/{theme}/theme.toml"] = f"[theme]\ninherit = 'basic'\n# {theme}\n"
        for page in ("layout", "page", "search", "genindex", "domainindex", "localtoc", "relations", "sourcelink"):
            out[f"sphinx/themes/{theme}/{page}.html"] = f"{{# {theme} {page} #}}\n"
        for asset in ("theme.css_t", "doctools.js", "searchtools.js", "language_data.js_t", "file.png"):
            out[f"sphinx/themes/{theme}/static/{asset}"] = f"/* {theme} {asset} */\n"
    for kind, count in (("latex", 18), ("texinfo", 4), ("quickstart", 6), ("epub3", 6), ("gettext", 2)):
        for n in range(count):
            out[f"sphinx/templates/{kind}/template{n}.jinja"] = f"{{# {kind} {n} #}}\n"
    for name in ("autoclass", "autofunction", "configs", "events", "mock", "private_members", "automodule",
                 "autoattribute", "autodata", "autoproperty", "preserve_defaults"):
        out[f"tests/test_ext_autodoc_{name}.py"] = ("from sphinx.ext.autodoc import ALL\n\n\n"
                                                   f"def test_{name}(app):\n    pass\n")
    out["tests/conftest.py"] = "import pytest\n\n\n@pytest.fixture\ndef rootdir():\n    pass\n"
    out["tests/utils.py"] = "def http_server(handler):\n    pass\n"
    tested = [*TOP_MODULES, *EXT_MODULES, *UTIL_MODULES, *(n for names in PACKAGES.values() for n in names)]
    for name in tested:
        out.setdefault(f"tests/test_{name.strip('_')}.py", f"def test_{name.strip('_')}(app):\n    pass\n")
    for n in range(40):
        out[f"tests/roots/test-ext-autodoc/target/mod{n}.py"] = (
            f"class Class{n}:\n    def meth(self, x):\n        pass\n")
    out["tests/roots/test-ext-autodoc/target/__init__.py"] = "def func(a, b=1):\n    pass\n"
    out["tests/roots/test-ext-autodoc/conf.py"] = "extensions = ['sphinx.ext.autodoc']\n"
    out["tests/roots/test-ext-autodoc/index.rst"] = "test-ext-autodoc\n"
    roots = ["root", "basic", "toctree", "numfig", "images", "intl", "latex-table", "linkcheck", "search", "domain-py",
             "domain-c", "domain-cpp", "ext-todo", "ext-viewcode", "ext-graphviz", "ext-math", "ext-intersphinx",
             "ext-autosummary", "ext-napoleon", "ext-doctest", "theming", "templating", "html_assets", "gettext"]
    for root in roots:
        for name in ("conf.py", "index.rst", "foo.rst", "bar.rst", "baz.txt", "img.png"):
            out[f"tests/roots/test-{root}/{name}"] = f"{root} {name}\n"
    out["doc/conf.py"] = "project = 'Sphinx'\n\n\ndef setup(app):\n    pass\n"
    out["doc/index.rst"] = "Welcome\n=======\n"
    out["doc/usage/extensions/autodoc.rst"] = ":mod:`sphinx.ext.autodoc` -- Include documentation from docstrings\n"
    for n in range(30):
        out[f"doc/_static/image{n}.png"] = f"png {n}\n"
    for section, count in DOC_SECTIONS.items():
        for n in range(count):
            out.setdefault(f"doc/{section}/page{n:02d}.rst", f"{section} page {n}\n{'=' * 20}\n")
    if len(out) > total:
        raise ValueError(f"at least {len(out)} files")
    n = 0
    while len(out) < total:  # the rest: more documentation, as in the real thing
        out[f"doc/usage/more/topic{n:04d}.rst"] = f"Topic {n}\n========\n\nSee :doc:`/usage/index`.\n"
        n += 1
    return {path: text.encode() for path, text in out.items()}


def commit(repo: Path, total: int = 2000, ref: str = "refs/heads/sphinx") -> str:
    """One root commit with the files on `ref`, written by one `git fast-import`; returns its id."""
    blobs: dict[bytes, int] = {}
    stream = bytearray()
    content = files(total)
    for data in content.values():
        if data not in blobs:
            blobs[data] = len(blobs) + 1
            stream += b"blob\nmark :%d\ndata %d\n%s\n" % (blobs[data], len(data), data)
    stream += b"commit %s\ncommitter T <t@example.com> 0 +0000\ndata 7\nsphinx\n" % ref.encode()
    for path, data in sorted(content.items()):
        stream += b"M 100644 :%d %s\n" % (blobs[data], path.encode())
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(stream), check=True)
    out = subprocess.run(["git", "rev-parse", ref], cwd=repo, capture_output=True, check=True, text=True)
    return out.stdout.strip()

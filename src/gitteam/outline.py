"""What a source file defines, one short line a definition: the repository overview and the coder's map use it.

Python is read with `ast` (a file that does not parse falls back to a regular expression); the other languages
with one regular expression each, matched at the start of a line. Pure functions of a path and its text.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator

MAX_DEF_LINE = 160  # of a definition in the overview
MAX_SIGNATURE = 200  # of a signature in the coder's map
TEST_DIRS = frozenset({"test", "tests", "testing", "spec", "specs", "__tests__", "testdata", "fixtures"})

_JS = [
    r"^(?:export[ \t]+(?:default[ \t]+)?)?(?:async[ \t]+)?function[ \t]*\*?[ \t]*[A-Za-z_$][\w$]*[ \t]*(?:<[^>\n]*>)?"
    r"\([^)\n]*\)?",
    r"^(?:export[ \t]+(?:default[ \t]+)?)?(?:abstract[ \t]+)?class[ \t]+[A-Za-z_$][\w$]*[^{\n]*",
    r"^export[ \t]+(?:const|let|var)[ \t]+[A-Za-z_$][\w$]*",
    r"^(?:export[ \t]+)?(?:declare[ \t]+)?(?:interface|type|enum)[ \t]+[A-Za-z_$][\w$]*",
]
_RUST_VIS = r"(?:pub(?:\([^)\n]*\))?[ \t]+)?"
_LANGUAGES: dict[str, list[str]] = {
    "js": _JS,
    "go": [r"^func[ \t]+(?:\([^)\n]*\)[ \t]*)?[A-Za-z_]\w*[ \t]*(?:\[[^\]\n]*\])?\([^)\n]*\)?",
           r"^type[ \t]+[A-Za-z_]\w*[ \t]+\w+"],
    "rust": [rf"^(?: {{4}})?{_RUST_VIS}(?:(?:async|const|unsafe|extern(?:[ \t]+\"[^\"\n]*\")?)[ \t]+)*fn[ \t]+\w+"
             r"(?:<[^>\n]*>)?\([^)\n]*\)?",
             rf"^{_RUST_VIS}(?:struct|enum|trait|union|type|mod)[ \t]+\w+",
             r"^impl\b[^{\n]*"],
    "jvm": [r"^[ \t]*(?:(?:public|private|protected|internal|abstract|final|static|sealed|open|data|partial|inner"
            r"|annotation|override|readonly)[ \t]+)*(?:class|interface|enum|record|object|struct)[ \t]+\w+[^{\n]*",
            r"^(?:(?:private|internal|public|suspend|inline)[ \t]+)*fun[ \t]+[\w.<>]+\([^)\n]*\)?"],
    "c": [r"^(?!(?:if|for|while|switch|return|else|do|case|typedef|static_assert)\b)[A-Za-z_][\w \t*&:<>,~]*?"
          r"[ \t*&]+[A-Za-z_][\w:~]*[ \t]*\([^;{}\n]*\)[ \t]*(?:const[ \t]*)?\{?[ \t]*$",
          r"^(?:typedef[ \t]+)?(?:struct|class|enum|union|namespace)[ \t]+\w+[^;{\n]*\{?[ \t]*$"],
    "shell": [r"^(?:function[ \t]+)?[A-Za-z_][\w-]*[ \t]*\(\)", r"^function[ \t]+[A-Za-z_][\w-]*"],
    "ruby": [r"^(?: {2})?(?:class|module|def)[ \t]+[^\n#]+"],
    "php": [r"^(?:(?:abstract|final)[ \t]+)?(?:class|interface|trait)[ \t]+\w+",
            r"^function[ \t]+\w+[ \t]*\([^)\n]*\)?"],
}
_PATTERNS = {name: re.compile("|".join(f"(?:{p})" for p in pats), re.MULTILINE)
             for name, pats in _LANGUAGES.items()}
EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    **dict.fromkeys((".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"), "js"),
    ".go": "go", ".rs": "rust",
    **dict.fromkeys((".java", ".kt", ".kts", ".cs", ".scala"), "jvm"),
    **dict.fromkeys((".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), "c"),
    **dict.fromkeys((".sh", ".bash", ".zsh"), "shell"),
    ".rb": "ruby", ".php": "php",
}


def extension(path: str) -> str:
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def language(path: str) -> str | None:
    """"python", "js" (TypeScript too), "go", "rust", "jvm", "c", "shell", "ruby", "php", or None."""
    return EXTENSIONS.get(extension(path).lower())


def is_test(path: str) -> bool:
    name = path.rpartition("/")[2]
    return (name.startswith("test_") or name.rpartition(".")[0].endswith(("_test", ".test", ".spec"))
            or any(part in TEST_DIRS for part in path.split("/")[:-1]))


def definitions(path: str, source: str) -> Iterator[str]:
    """Top-level definitions of one source file, one short line each (Python: with argument names)."""
    kind = language(path)
    if kind == "python":
        found = _python_definitions(source)
        if found is not None:
            yield from found
            return
    yield from _matched(kind, source)


def signatures(path: str, source: str) -> list[str]:
    """The public interface of one source file, one line a definition: Python's top-level functions and classes
    with their annotated signatures, and each class's public methods indented under it; other languages (and
    Python that does not parse) as `definitions` gives them."""
    if language(path) == "python":
        module = _parse(source)
        if module is not None:
            return _python_signatures(module)
    return list(definitions(path, source))


def parse_python(source: str) -> ast.Module | None:
    """The module's syntax tree; None when it does not parse."""
    return _parse(source)


def _parse(source: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes and the like are not our business here
        try:
            return ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


_PYTHON_FALLBACK = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+\w+[^:\n]*", re.MULTILINE)


def _matched(kind: str | None, source: str) -> Iterator[str]:
    pattern = _PYTHON_FALLBACK if kind == "python" else _PATTERNS.get(kind or "")
    if pattern is None:
        return
    for match in pattern.finditer(source):
        line = " ".join(match.group().split()).rstrip("{ ").rstrip()
        if line:
            yield _shorten(line, MAX_DEF_LINE)


def _python_definitions(source: str) -> list[str] | None:
    module = _parse(source)
    if module is None:
        return None
    found = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(_shorten(_names_signature(node, method=False), MAX_DEF_LINE))
        elif isinstance(node, ast.ClassDef):
            found.append(_shorten(_class_line(node), MAX_DEF_LINE))
    return found


def _class_line(node: ast.ClassDef) -> str:
    bases = ", ".join(ast.unparse(base) for base in node.bases)
    head = f"class {node.name}({bases})" if bases else f"class {node.name}"
    members = [_names_signature(item, method=True).removeprefix("def ") for item in node.body
               if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)]
    members += [f"class {item.name}" for item in node.body if isinstance(item, ast.ClassDef)]
    return f"{head}: {', '.join(members)}" if members else head


def _names_signature(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> str:
    args = node.args
    positional = [arg.arg for arg in [*args.posonlyargs, *args.args]]
    if method and positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    names = positional
    if args.vararg:
        names.append(f"*{args.vararg.arg}")
    elif args.kwonlyargs:
        names.append("*")
    names += [arg.arg for arg in args.kwonlyargs]
    if args.kwarg:
        names.append(f"**{args.kwarg.arg}")
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({', '.join(names)})"


_KEPT_DECORATORS = frozenset({"property", "staticmethod", "classmethod", "abstractmethod", "cached_property"})


def _python_signatures(module: ast.Module) -> list[str]:
    found = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _public(node.name):
            found.append(_shorten(_full_signature(node), MAX_SIGNATURE))
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            bases = ", ".join(ast.unparse(base) for base in [*node.bases, *node.keywords])
            found.append(_shorten(f"class {node.name}({bases})" if bases else f"class {node.name}", MAX_SIGNATURE))
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                        _public(item.name) or item.name in ("__init__", "__call__")):
                    found.append(_shorten("    " + _full_signature(item), MAX_SIGNATURE))
    return found


def _public(name: str) -> bool:
    return not name.startswith("_")


def _full_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    marks = [ast.unparse(d) for d in node.decorator_list
             if ast.unparse(d).rpartition(".")[2] in _KEPT_DECORATORS]
    prefix = "".join(f"@{mark} " for mark in marks)
    prefix += "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _shorten(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[:limit - 3] + "..."

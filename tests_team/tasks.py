"""The synthetic tasks of the team suite: small Python packages, each built for 2-4 subtasks that share an
interface, generated from one compact table.

Every task has a *provider* module that defines a function, a *consumer* module that imports and calls it
(the shared interface), and optionally a `README.md` section (docs) and a command line (`cli`) on top of the
consumer. Each subtask owns its module and its own visible test; the *hidden* tests, which the agents never
see, decide whether the task landed: they run against the target branch after the run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

# the Python running the suite: contained commands see it (a `python3` on PATH may be a shim the sandbox hides)
TEST_COMMAND = f"{Path(sys.executable).as_posix()} -m unittest discover -q"


@dataclass(frozen=True)
class Function:
    module: str  # the module's name inside the task's package
    name: str
    params: str  # as written in the signature: "width: float, height: float"
    returns: str
    body: str  # one expression, the function's return value
    example: str  # a call with literal arguments ...
    expected: str  # ... and the literal it must equal

    @property
    def signature(self) -> str:
        return f"def {self.name}({self.params}) -> {self.returns}"


@dataclass(frozen=True)
class Cli:
    args: str  # the consumer's arguments from `argv`, as an expression
    argv: tuple[str, ...]  # a sample command line
    output: str  # what it prints


@dataclass(frozen=True)
class Task:
    package: str
    provider: Function
    consumer: Function
    docs: bool = False
    cli: Cli | None = None

    @property
    def id(self) -> str:
        return self.package

    @property
    def subtask_ids(self) -> tuple[str, ...]:
        return ("provider", "consumer") + (("docs",) if self.docs else ()) + (("cli",) if self.cli else ())

    @property
    def request(self) -> str:
        """What the person asks `gitteam run` for."""
        parts = [f"add {self.package}.{self.provider.module}.{self.provider.name}",
                 f"{self.package}.{self.consumer.module}.{self.consumer.name} on top of it"]
        if self.cli:
            parts.append(f"a command line {self.package}.cli")
        if self.docs:
            parts.append("a README section documenting them")
        return "In the " + self.package + " package: " + ", ".join(parts) + ", each with a unit test."

    def interface(self, function: Function) -> str:
        """The shared interface as the plan states it: `path: signature`."""
        return f"{self.path(function)}: {function.signature}"

    def path(self, function: Function) -> str:
        return f"{self.package}/{function.module}.py"

    def test_path(self, function: Function) -> str:
        return f"tests/test_{function.module}.py"


def _f(module: str, signature: str, body: str, example: str, expected: str) -> Function:
    """`signature` is "name(params) -> returns", as a person writes it."""
    name, rest = signature.split("(", 1)
    params, returns = rest.rsplit(") -> ", 1)
    return Function(module, name, params, returns, body, example, expected)


# package, provider, consumer (calls the provider), docs?, cli? ------------------------------------------------
TASKS: tuple[Task, ...] = (
    Task("geometry",
         _f("shapes", "rect_area(width: float, height: float) -> float", "width * height", "rect_area(2.5, 4)", "10.0"),
         _f("report", "describe(width: float, height: float) -> str",
            'f"{width:g} x {height:g} = {rect_area(width, height):g}"', "describe(2, 3)", "'2 x 3 = 6'"),
         docs=True, cli=Cli("float(argv[0]), float(argv[1])", ("2", "3"), "2 x 3 = 6")),
    Task("temperature",
         _f("convert", "c_to_f(celsius: float) -> float", "celsius * 9 / 5 + 32", "c_to_f(100)", "212.0"),
         _f("forecast", "label(celsius: float) -> str", '"hot" if c_to_f(celsius) >= 86 else "mild"', "label(35)",
            "'hot'")),
    Task("textstats",
         _f("words", "count_words(text: str) -> int", "len(text.split())", "count_words('a b  c')", "3"),
         _f("summary", "headline(text: str) -> str", 'f"{count_words(text)} words"', "headline('hello big world')",
            "'3 words'"),
         docs=True),
    Task("money",
         _f("rounding", "to_cents(amount: float) -> int", "round(amount * 100)", "to_cents(2.5)", "250"),
         _f("invoice", "total_cents(prices: list[float]) -> int", "sum(to_cents(p) for p in prices)",
            "total_cents([1.25, 2.5])", "375"),
         docs=True, cli=Cli("[float(a) for a in argv]", ("1.25", "2.5"), "375")),
    Task("slugs",
         _f("slug", "slugify(title: str) -> str", '"-".join(title.lower().split())', "slugify('Hello  World')",
            "'hello-world'"),
         _f("urls", "post_url(title: str, year: int) -> str", 'f"/{year}/{slugify(title)}/"',
            "post_url('A B', 2024)", "'/2024/a-b/'")),
    Task("grades",
         _f("scale", "letter(score: int) -> str",
            '"A" if score >= 90 else "B" if score >= 80 else "C" if score >= 70 else "F"', "letter(85)", "'B'"),
         _f("transcript", "letters(scores: list[int]) -> str", '"".join(letter(s) for s in scores)',
            "letters([95, 72, 10])", "'ACF'"),
         docs=True),
    Task("vectors",
         _f("vec", "dot(a: list[float], b: list[float]) -> float", "sum(x * y for x, y in zip(a, b, strict=True))",
            "dot([1, 2], [3, 4])", "11"),
         _f("norm", "length(a: list[float]) -> float", "dot(a, a) ** 0.5", "length([3, 4])", "5.0"),
         docs=True, cli=Cli("[float(a) for a in argv]", ("6", "8"), "10.0")),
    Task("inventory",
         _f("stock", "restock_needed(count: int, minimum: int) -> bool", "count < minimum", "restock_needed(2, 5)",
            "True"),
         _f("alerts", "alert(item: str, count: int, minimum: int) -> str",
            'f"restock {item}" if restock_needed(count, minimum) else f"{item} ok"', "alert('tea', 9, 5)",
            "'tea ok'")),
    Task("leapyears",
         _f("leap", "is_leap(year: int) -> bool", "year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
            "is_leap(1900)", "False"),
         _f("months", "days_in_february(year: int) -> int", "29 if is_leap(year) else 28",
            "days_in_february(2000)", "29"),
         docs=True),
    Task("passwords",
         _f("strength", "score(password: str) -> int",
            "sum([len(password) >= 8, any(c.isdigit() for c in password), any(c.isupper() for c in password)])",
            "score('Secret123')", "3"),
         _f("policy", "acceptable(password: str) -> bool", "score(password) >= 2", "acceptable('abc')", "False"),
         docs=True, cli=Cli("argv[0]", ("Passw0rd",), "True")),
    Task("shipping",
         _f("weight", "billable_kg(grams: int) -> int", "-(-grams // 1000)", "billable_kg(1001)", "2"),
         _f("rates", "price(grams: int, per_kg: float) -> float", "billable_kg(grams) * per_kg",
            "price(2500, 3.0)", "9.0")),
    Task("colors",
         _f("hexcode", "to_hex(r: int, g: int, b: int) -> str", 'f"#{r:02x}{g:02x}{b:02x}"', "to_hex(255, 0, 16)",
            "'#ff0010'"),
         _f("palette", "css_var(name: str, r: int, g: int, b: int) -> str", 'f"--{name}: {to_hex(r, g, b)};"',
            "css_var('bg', 0, 0, 0)", "'--bg: #000000;'"),
         docs=True),
    Task("stats",
         _f("mean", "average(values: list[float]) -> float", "sum(values) / len(values)", "average([1, 2, 6])",
            "3.0"),
         _f("spread", "deviations(values: list[float]) -> list[float]", "[v - average(values) for v in values]",
            "deviations([1, 3])", "[-1.0, 1.0]"),
         docs=True, cli=Cli("[float(a) for a in argv]", ("2", "4"), "[-1.0, 1.0]")),
    Task("badges",
         _f("parse", "initials(full_name: str) -> str", '"".join(part[0].upper() for part in full_name.split())',
            "initials('ada lovelace')", "'AL'"),
         _f("badge", "badge(full_name: str, role: str) -> str", 'f"[{initials(full_name)}] {role}"',
            "badge('Grace Hopper', 'admiral')", "'[GH] admiral'")),
    Task("timer",
         _f("clock", "to_seconds(minutes: int, seconds: int) -> int", "minutes * 60 + seconds", "to_seconds(2, 5)",
            "125"),
         _f("laps", "total(laps: list[tuple[int, int]]) -> int", "sum(to_seconds(m, s) for m, s in laps)",
            "total([(1, 0), (0, 30)])", "90"),
         docs=True),
    Task("savings",
         _f("interest", "compound(principal: float, rate: float, years: int) -> float",
            "round(principal * (1 + rate) ** years, 2)", "compound(100, 0.1, 2)", "121.0"),
         _f("goals", "goal_years(principal: float, rate: float, goal: float) -> int",
            "next(y for y in range(1, 500) if compound(principal, rate, y) >= goal)", "goal_years(100, 0.1, 121)",
            "2"),
         docs=True, cli=Cli("float(argv[0]), float(argv[1]), float(argv[2])", ("100", "0.5", "200"), "2")),
    Task("matrix",
         _f("grid", "transpose(rows: list[list[int]]) -> list[list[int]]", "[list(col) for col in zip(*rows)]",
            "transpose([[1, 2], [3, 4]])", "[[1, 3], [2, 4]]"),
         _f("render", "columns(rows: list[list[int]]) -> str",
            '"\\n".join(" ".join(map(str, col)) for col in transpose(rows))', "columns([[1, 2], [3, 4]])",
            "'1 3\\n2 4'")),
    Task("priorities",
         _f("priority", "rank(label: str) -> int", '{"high": 0, "normal": 1, "low": 2}.get(label, 3)',
            "rank('low')", "2"),
         _f("queue", "order(labels: list[str]) -> list[str]", "sorted(labels, key=rank)",
            "order(['low', 'high', 'x'])", "['high', 'low', 'x']"),
         docs=True),
    Task("units",
         _f("length", "inches_to_cm(inches: float) -> float", "round(inches * 2.54, 2)", "inches_to_cm(10)",
            "25.4"),
         _f("sizing", "screen_cm(diagonal_inches: float) -> str", 'f"{inches_to_cm(diagonal_inches):g} cm"',
            "screen_cm(15)", "'38.1 cm'"),
         docs=True, cli=Cli("float(argv[0])", ("20",), "50.8 cm")),
    Task("vowels",
         _f("count", "count_vowels(word: str) -> int", 'sum(ch in "aeiou" for ch in word.lower())',
            "count_vowels('Queue')", "4"),
         _f("compare", "heavier(a: str, b: str) -> str", "a if count_vowels(a) >= count_vowels(b) else b",
            "heavier('sky', 'tea')", "'tea'")),
)

FILES_AT_BASE = {
    "README.md": "# {package}\n\nA small library.\n",
    "{package}/__init__.py": '"""The {package} package."""\n',
    "tests/__init__.py": "",
    "AGENTS.md": "# Conventions\n\n- Small typed functions, each with a unittest test under tests/.\n",
    ".gitignore": "__pycache__/\n",
    ".gitteam.toml": f'[commands]\ntest = "{TEST_COMMAND}"\n',
}


def base_files(task: Task) -> dict[str, str]:
    """The repository before the run."""
    return {path.format(package=task.package): text.format(package=task.package)
            for path, text in FILES_AT_BASE.items()}


# --- what correct subtasks write -------------------------------------------------------------------------------

def module_source(task: Task, function: Function, name: str | None = None, body: str | None = None) -> str:
    """The module defining `function` (under `name`, with `body`: how a mistaken coder writes it)."""
    imports = ""
    if function is task.consumer:
        imports = f"from {task.package}.{task.provider.module} import {task.provider.name}\n\n\n"
    statement = body if body is not None else f"return {function.body}"
    header = f"def {name or function.name}({function.params}) -> {function.returns}:"
    return f'"""{function.name} for {task.package}."""\n\n{imports}{header}\n    {statement}\n'


def test_source(task: Task, function: Function, name: str | None = None) -> str:
    """A subtask's own, visible test: its function's example."""
    called = name or function.name
    example = function.example.replace(function.name + "(", called + "(", 1)
    return (f"import unittest\n\nfrom {task.package}.{function.module} import {called}\n\n\n"
            f"class {function.module.title()}Test(unittest.TestCase):\n"
            f"    def test_{called}(self) -> None:\n"
            f"        self.assertEqual({example}, {function.expected})\n")


def cli_source(task: Task) -> str:
    assert task.cli is not None
    consumer = task.consumer
    return (f'"""Command line: python -m {task.package}.cli ARGS."""\n\nimport sys\n\n'
            f"from {task.package}.{consumer.module} import {consumer.name}\n\n\n"
            "def main(argv: list[str]) -> int:\n"
            f"    print({consumer.name}({task.cli.args}))\n    return 0\n\n\n"
            'if __name__ == "__main__":\n    sys.exit(main(sys.argv[1:]))\n')


def cli_test_source(task: Task) -> str:
    assert task.cli is not None
    return ("import contextlib\nimport io\nimport unittest\n\n"
            f"from {task.package}.cli import main\n\n\n"
            "class CliTest(unittest.TestCase):\n"
            "    def test_main(self) -> None:\n"
            "        out = io.StringIO()\n"
            "        with contextlib.redirect_stdout(out):\n"
            f"            self.assertEqual(main({list(task.cli.argv)!r}), 0)\n"
            f"        self.assertEqual(out.getvalue().strip(), {task.cli.output!r})\n")


def readme_source(task: Task) -> str:
    lines = [f"# {task.package}", "", "A small library.", "", "## API", ""]
    lines += [f"- `{task.package}.{f.module}.{f.name}({f.params}) -> {f.returns}`" for f in (task.provider,
                                                                                         task.consumer)]
    if task.cli:
        lines += ["", "## Command line", "", f"`python -m {task.package}.cli {' '.join(task.cli.argv)}` prints "
                  f"`{task.cli.output}`."]
    return "\n".join(lines) + "\n"


# --- the hidden tests ------------------------------------------------------------------------------------------

def hidden_test_source(task: Task) -> str:
    """What decides whether the task landed: both functions' examples through their modules, the command line's
    output, the README's API section. The agents never see it."""
    pkg = task.package
    lines = ["import contextlib", "import io", "import pathlib", "import unittest", "",
             f"from {pkg} import {task.provider.module}, {task.consumer.module}", "", "",
             "class HiddenTest(unittest.TestCase):"]
    for function in (task.provider, task.consumer):
        lines += [f"    def test_{function.module}(self) -> None:",
                  f"        self.assertEqual({function.module}.{function.example}, {function.expected})", ""]
    lines += ["    def test_consumer_uses_the_provider(self) -> None:",
              f"        self.assertIs({task.consumer.module}.{task.provider.name}, "
              f"{task.provider.module}.{task.provider.name})", ""]
    if task.cli:
        lines += ["    def test_cli(self) -> None:",
                  f"        from {pkg}.cli import main",
                  "        out = io.StringIO()",
                  "        with contextlib.redirect_stdout(out):",
                  f"            self.assertEqual(main({list(task.cli.argv)!r}), 0)",
                  f"        self.assertEqual(out.getvalue().strip(), {task.cli.output!r})", ""]
    if task.docs:
        lines += ["    def test_readme(self) -> None:",
                  '        text = pathlib.Path("README.md").read_text()',
                  f"        self.assertIn({task.provider.name + '('!r}, text)",
                  f"        self.assertIn({task.consumer.name + '('!r}, text)", ""]
    return "\n".join(lines).rstrip() + "\n"

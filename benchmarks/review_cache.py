"""How much of parallel reviewers' first requests is a shared, cacheable prefix: the layout since calibrated
reviews (one system prompt for all, each chunk's brief rendered once, the focus after the diff) against the
earlier one (each reviewer's focus in its system prompt, so nothing past the tools was shared).

For diffs of `--lines` added lines (one Python file; up to the default chunk budget, so one chunk) and
`--reviewers` reviewers with a focus each, the reviewers' first requests are built as review_agents builds
them (`reviewer.system_prompt`, `reviewer.brief`, `reviewer.own_part`) and measured in estimated tokens
(gitteam.tokens, the estimate budgets use). Tools are left out: they are the same for every reviewer in
both layouts. `cached` is the share of all reviewers' prompt tokens that a prompt cache can serve: every
reviewer after the first reads the shared prefix. Pure computation: no model, no git.

    python benchmarks/review_cache.py [--lines 50 500 3000] [--reviewers 3]
"""

from __future__ import annotations

import argparse

from gitteam.review.verdict import Finding
from gitteam.roles import reviewer
from gitteam.tokens import estimate_tokens

FOCUS = ["correctness: bugs, edge cases and tests", "security: injection, secrets, unsafe input",
         "interfaces: signatures callers rely on", "performance: work repeated in loops"]


def diff_of(lines: int) -> str:
    body = "".join(f"+def f{n}(x: int) -> int:\n+    return x * {n}\n" for n in range(lines // 2))
    return (f"diff --git a/src/gen.py b/src/gen.py\nnew file mode 100644\n--- /dev/null\n+++ b/src/gen.py\n"
            f"@@ -0,0 +1,{lines} @@\n{body}")


def measure(lines: int, count: int) -> tuple[int, int, int, float, float]:
    shared = reviewer.brief("Add the generated functions.", {"subtask": "gen", "files": "src/gen.py"},
                            diff_of(lines), [Finding("", None, "info", "ok", None, "check:x")], "", 1,
                            claim="added f0..fN", checks_run="- ownership: passed")
    system = estimate_tokens(reviewer.system_prompt())
    prefix = estimate_tokens(shared)
    owns = [estimate_tokens(reviewer.own_part(f"r{n}", FOCUS[n % len(FOCUS)])) for n in range(count)]
    total = sum(system + prefix + own for own in owns)
    now = (count - 1) * (system + prefix) / total  # later reviewers read system + brief from the cache
    before = 0.0  # the focus sat in each system prompt: no shared prefix past the tools
    return system, prefix, max(owns), now, before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[50, 500, 3000])
    parser.add_argument("--reviewers", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.reviewers} reviewers; tokens estimated; tools left out (shared in both layouts)\n")
    print(f"{'diff lines':>10} {'system':>7} {'brief+diff':>10} {'focus part':>10} {'cached now':>10} "
          f"{'cached before':>13}")
    for lines in args.lines:
        system, prefix, own, now, before = measure(lines, args.reviewers)
        print(f"{lines:>10,} {system:>7,} {prefix:>10,} {own:>10,} {now:>10.0%} {before:>13.0%}")


if __name__ == "__main__":
    main()

"""The team suite's runner: every task through the real `gitteam run`, scripted, and the table it gives.

    python tests_team/run.py                  # run everything, print the table
    python tests_team/run.py --write-docs     # ... and put it in docs/agents.md ("Team suite")
    python tests_team/run.py --only geometry --scenario nitpick --keep   # one case; keep its directory

Each run's repository, script, output and journal stay under --workdir (a temporary directory by default,
removed unless --keep).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS  # noqa: E402 - after the path above
from suite import DOCS, Case, cases, run_suite, tables, with_tables  # noqa: E402
from tasks import TASKS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests_team/run.py", description="Run the synthetic team suite.")
    parser.add_argument("--only", action="append", metavar="TASK", help="run only this task (repeatable)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run the tasks under this scenario only")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--workdir", type=Path, help="where the runs go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the runs' directories")
    parser.add_argument("--no-sandbox", action="store_true", help='sandbox mode "none" (no bubblewrap here)')
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name}")
    args = parser.parse_args(argv)
    known = {task.id: task for task in TASKS}
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; the tasks are {', '.join(known)}")
    if args.write_docs and (args.only or args.scenario):
        parser.error("--write-docs needs the whole suite: drop --only and --scenario")
    chosen = [known[name] for name in args.only] if args.only else list(TASKS)
    selected = [Case(task, args.scenario) for task in chosen] if args.scenario else cases(chosen)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gitteam-team-suite-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = run_suite(selected, workdir, jobs=args.jobs, sandbox="none" if args.no_sandbox else None)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rendered = tables(rows)
    print(rendered)
    if args.keep or args.workdir is not None:
        print(f"\nruns in {workdir}")
    if args.write_docs:
        DOCS.write_text(with_tables(DOCS.read_text(encoding="utf-8"), rendered), encoding="utf-8")
        print(f"wrote the table into {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

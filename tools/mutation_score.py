"""Mutation score per module from mutmut's results (mutants/<path>.meta), after `make mutate`.

  python tools/mutation_score.py [MODULE] [--survivors] [--show N] [--estimate]

MODULE: a file or folder (trading/orders.py, broker) to report on alone; default every module in
pyproject's [tool.mutmut] only_mutate (the one list of what is mutated). Per module: mutants, killed
(timeouts count as killed: the mutant hung the tests), survived, no tests (no test reaches the function:
a survivor too), not checked (the run did not get to them), and the score killed / checked. Then a total
line. --survivors lists the surviving mutants by name (`mutmut show NAME` prints one's diff), --show N
prints the diffs of the first N, --estimate the worst-case test time of the whole set from mutmut's stats.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
KILLED = ("killed", "timeout", "caught by type check")
NOT_RUN = ("not checked", "skipped", "check was interrupted by user")


def patterns() -> list[str]:
    """The only_mutate globs from pyproject.toml: the single list of mutated modules."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def results(module: str | None, moved: bool = False) -> dict[str, dict[str, int | None]]:
    """{source path: {mutant name: exit code}} for the mutated files (or those under `module`), in the order
    of only_mutate; with `moved`, also the results of files that have since moved away (same code, for
    estimates)."""
    found = {str(p.relative_to(MUTANTS))[: -len(".meta")]: p for p in MUTANTS.rglob("*.py.meta")}
    if not moved:
        found = {path: meta for path, meta in found.items() if (ROOT / path).is_file()}
    wanted = patterns()
    if module:
        m = module.rstrip("/")
        wanted = [m if m.endswith(".py") else f"{m}/*"]
    out = {}
    for pattern in wanted:
        for path in sorted(p for p in found if fnmatch.fnmatch(p, pattern) and p not in out):
            out[path] = json.loads(found[path].read_text())["exit_code_by_key"]
    return out


def status_of(code: int | None) -> str:
    from mutmut.stats import status_by_exit_code  # the exit-code meanings of the installed mutmut

    return status_by_exit_code[code]


def tally(codes: dict[str, int | None]) -> Counter:
    c = Counter(status_of(code) for code in codes.values())
    c["total"] = len(codes)
    c["killed_all"] = sum(c[s] for s in KILLED)
    c["not_run"] = sum(c[s] for s in NOT_RUN)
    c["checked"] = c["total"] - c["not_run"]
    return c


def row(name: str, c: Counter) -> str:
    score = f"{c['killed_all'] / c['checked']:.1%}" if c["checked"] else "-"
    return (f"{name:<36} {c['total']:>7} {c['killed_all']:>6} {c['survived']:>8} {c['no tests']:>8} "
            f"{c['not_run']:>11} {c['killed_all']:>6}/{c['checked']:<6} {score:>6}")


def estimate(by_path: dict[str, dict[str, int | None]]) -> str:
    """The whole set's time on one worker: the worst case (every mutant survives, so all the tests that reach
    its function run) from mutmut's per-test durations, scaled by what the mutants tested so far really took
    against their own worst case (a killed mutant stops at its first failing test, fastest tests first)."""
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    tests, durations = stats["tests_by_mangled_function_name"], stats["duration_by_test"]

    def worst(name: str) -> float:
        covering = tests.get(mangled_name_from_mutant_name(name.replace("__init__.", "")), [])
        return sum(durations.get(t, 0.0) for t in covering)

    total = sum(worst(name) for codes in by_path.values() for name in codes)
    no_tests = sum(1 for codes in by_path.values() for name in codes if not worst(name))
    mutants = sum(len(codes) for codes in by_path.values())
    took = bound = 0.0
    for path in by_path:
        measured = json.loads((MUTANTS / f"{path}.meta").read_text()).get("durations_by_key", {})
        took += sum(measured.values())
        bound += sum(worst(name) for name in measured)
    line = (f"{mutants} mutants, {no_tests} reached by no test; worst case {total / 3600:.1f} h of tests on one "
            f"worker (every mutant surviving)")
    if bound:
        line += (f"; mutants tested so far took {took / bound:.0%} of their worst case, so about "
                 f"{took / bound * total / 3600:.1f} h on one worker (halve it with MUTATE_JOBS=2 on two free cores)")
    return line + f"; plus the stats run (whole suite under mutmut, {stats.get('stats_time') or 0:.0f} s CPU)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", nargs="?", default="", help="a file or folder, e.g. trading/orders.py")
    ap.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="print the diffs of the first N survivors")
    ap.add_argument("--estimate", action="store_true", help="worst-case time of a run over the whole set")
    args = ap.parse_args()
    if not MUTANTS.is_dir():
        print("no mutants/ folder: run `make mutate` first", file=sys.stderr)
        return 1
    by_path = results(args.module or None)
    if not by_path:
        print(f"no mutmut results for {args.module or patterns()}", file=sys.stderr)
        return 1
    print(f"{'module':<36} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'not checked':>11} "
          f"{'killed/checked':>13} {'score':>6}")
    total: Counter = Counter()
    survivors = []
    for path, codes in by_path.items():
        c = tally(codes)
        total.update(c)
        print(row(path, c))
        survivors += [name for name, code in codes.items() if status_of(code) in ("survived", "no tests")]
    print(row("TOTAL", total))
    if total["not_run"]:
        print(f"({total['not_run']} mutants not checked: run `make mutate` without MODULE for all of them)")
    if args.survivors or args.show:
        print(f"\n{len(survivors)} survivors (survived or reached by no test):")
        print("\n".join(f"  {name}" for name in survivors))
    if args.show:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        os.chdir(ROOT)  # mutmut reads mutants/ relative to the project
        for name in survivors[: args.show]:
            print(f"\n# {name}\n{get_diff_for_mutant(name)}")
    if args.estimate:
        print("\n" + estimate(results(None, moved=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

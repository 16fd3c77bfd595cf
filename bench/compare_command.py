"""The ``compare`` sub-command: two run folders (``compare NEW OLD``), or this checkout's
speed against a git ref (``compare --against REF``, bench/against.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.report.compare import REGRESSION


class CompareUsageError(ValueError):
    """Bad compare arguments: printed as one line, exit status 2."""


def add_compare_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (paired t-test)")
    p.add_argument(
        "--speed-tolerance",
        type=float,
        default=0.25,
        help="relative speed change that counts as slower/faster (default 0.25)",
    )
    p.add_argument(
        "--allow-unchecked",
        action="store_true",
        help="exit 0 even if cells of NEW have no comparable cell in OLD (not checked)",
    )
    p.add_argument(
        "--ignore",
        default="",
        help="compare cells even if these differ: data (e.g. after a change of how data is "
        "hashed), config; comma-separated (changed code is always compared)",
    )


AGAINST_ONLY = ("cases", "cells", "scale", "set", "rounds", "min_time", "threads", "device", "out")


def add_against_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "speed against a git ref (bench/against.py)",
        "time this checkout and REF interleaved in one window, judged from paired timings",
    )
    g.add_argument("--against", default=None, metavar="REF", help="any git ref: HEAD~1, main, v1")
    g.add_argument(
        "--cases",
        default=None,
        metavar="NAME,...",
        help="speed cases' own callables (substrings of names, as speed --cases)",
    )
    g.add_argument(
        "--cells",
        default=None,
        metavar="TASK,...",
        help="task cells, seed 0: TASK is its first trained row; TASK[family=name,...] "
        "names a row as a cell label does",
    )
    g.add_argument(
        "--scale",
        action="append",
        default=None,
        help="a case size (tiny, small, medium, large; default tiny) and/or a task scale "
        "(quick, default, full; default quick); repeatable",
    )
    g.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="override the cells' config, e.g. --set steps=40; repeatable",
    )
    g.add_argument("--rounds", type=int, default=None, help="A/B rounds per row (default 7)")
    g.add_argument(
        "--min-time",
        type=float,
        default=None,
        help="seconds per case measurement, which sets its calls (default 0.2)",
    )
    g.add_argument(
        "--threads", type=int, default=None, help="torch threads of both sides (default 1)"
    )
    g.add_argument("--device", default=None, help="cpu (default) or cuda")
    g.add_argument(
        "--out", type=Path, default=None, help="folder for the table (default reports/against-REF)"
    )


def dispatch(args) -> int:
    """``compare NEW OLD`` (two run folders) or ``compare --against REF`` (speed, A/B)."""
    if args.against is not None:
        if args.new is not None or args.old is not None:
            raise CompareUsageError(
                "give two run folders (compare NEW OLD) or --against REF, not both"
            )
        from bench import against

        return against.command(args)
    if args.new is None or args.old is None:
        raise CompareUsageError(
            "compare needs two run folders (compare NEW OLD) or a git ref "
            "(compare --against REF --cases NAME or --cells TASK)"
        )
    given = [f"--{k.replace('_', '-')}" for k in AGAINST_ONLY if getattr(args, k) is not None]
    if given:
        raise CompareUsageError(f"{', '.join(given)} only apply with --against REF")
    return cmd_compare(args.new, args.old, args, full=args.all)


def cmd_compare(new: Path, old: Path, args, full: bool = False) -> int:
    """Print the comparison of run ``new`` with ``old``; REGRESSION (3) on a regression or
    on a cell nothing checked, else 0."""
    from bench.report import compare

    for folder in (new, old):
        if not (Path(folder) / "records.jsonl").is_file():
            raise CompareUsageError(f"{folder} is not a run folder (no records.jsonl)")
    ignore = tuple(k.strip() for k in args.ignore.split(",") if k.strip())
    try:
        result = compare.compare_runs(new, old, args.alpha, args.speed_tolerance, ignore=ignore)
    except ValueError as exc:
        raise CompareUsageError(f"--ignore: {exc}") from None
    print(compare.render(result, new, old, full=full), end="")
    path = compare.write(result, new, old)
    print(f"comparison: {path}")
    unchecked = result.unchecked()
    if unchecked and not args.allow_unchecked:
        names = "; ".join(f"{r.task}[{r.method}] ({r.note or r.verdict})" for r in unchecked[:5])
        more = f" and {len(unchecked) - 5} more" if len(unchecked) > 5 else ""
        print(
            f"error: {len(unchecked)} cell(s) of {new} have no comparable cell in {old}, so "
            f"nothing checked them: {names}{more}. If the change is intended, refresh the "
            f"baseline in a commit of its own: rm -rf {old} && python run_all.py --suite "
            f"quick --quiet --out {old} (or pass --allow-unchecked to compare anyway)",
            file=sys.stderr,
        )
        return REGRESSION
    return REGRESSION if result.regressions() else 0

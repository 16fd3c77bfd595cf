"""Command line of speechbench (``python run_all.py ...`` or ``speechbench ...``).
``run`` is the default sub-command (``python run_all.py --suite quick`` is ``... run
--suite quick``). Errors in the user's input (an unknown method, a bad file, an unusable or
busy ``--out``) print one clear line and exit with status 2 (``--debug`` shows the
traceback instead); failed cells exit with status 1 after the whole sweep has run and the
report is written; a failed comparison exits with status 3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import (
    compare_command,
    data_command,
    executors,
    findings_command,
    harness,
    overrides,
    registry,
    run_lock,
    store,
    tensorboard_log,
)
from bench.data.espeak import EspeakError
from bench.plugins import PluginError
from bench.registry import ContextError
from bench.run_lock import RunFolderLocked
from bench.sweep import (
    SUITES,
    SweepSummary,
    default_run_dir,
    expand,
    parse_methods,
    run_staged,
    tuned_after,
)
from bench.sweep_file import expand_sweep, load_sweep
from bench.tasks.base import RunContext

SUBCOMMANDS = ("run", "report", "compare", "calibrate", "data", "speed", "findings")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


# errors that mean bad input or an unusable environment: one line and exit status 2
INPUT_ERRORS: tuple[type[Exception], ...] = (UsageError, ValueError, LookupError, OSError)
INPUT_ERRORS += (EspeakError, ContextError, RunFolderLocked)  # no espeak; a busy --out
INPUT_ERRORS += (tensorboard_log.MissingExtra, PluginError)  # a missing extra; a broken plugin


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    p.add_argument(
        "--amp",
        default="off",
        choices=["bf16", "fp16", "off"],
        help="mixed precision for forward passes (fp16 needs cuda)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the run folder (default reports/<run_id>); re-running resumes it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-figures", action="store_true", help="skip drawing figures")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_all.py",
        description="speechbench: run benchmark suites, write and compare reports.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (any position)"
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run a suite (the default sub-command)")
    run.add_argument(
        "--suite",
        default="default",
        choices=list(SUITES),
        help="quick (smoke test), default (real results), full (paper scale)",
    )
    run.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")
    run.add_argument(
        "--methods", default=None, help="restrict method choices: family=name[,family=name...]"
    )
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (default: suite's)")
    overrides.add_set_option(run)
    tensorboard_log.add_tensorboard_option(run)
    run.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a real corpus instead of the embedded one (librispeech, timit, "
        "voicebank, folder); repeatable",
    )
    run.add_argument("--list", action="store_true", help="list tasks and methods, then exit")
    run.add_argument(
        "--sweep",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help="run the ablation a sweep file describes (see sweeps/)",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="print the cells that would run, then exit"
    )
    run.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="OLD",
        help="after the run, compare it with run folder OLD (e.g. reports/baseline)",
    )
    run.add_argument(
        "--executor", default="local", choices=["local", "ray"], help="where cells run"
    )
    jobs_help = (
        "local executor: cells in parallel processes (default: $SPEECHBENCH_JOBS, else auto)"
    )
    run.add_argument("--jobs", type=executors.parse_jobs, default=None, help=jobs_help)
    run.add_argument(
        "--ray-address", default=None, help="Ray cluster address (default: start a local Ray)"
    )
    compare_command.add_compare_options(run)
    _add_common(run)

    cmp_ = sub.add_parser(
        "compare",
        help="compare run NEW with run OLD, or this checkout's speed with a git ref "
        "(--against REF); exit 1 on regression",
    )
    cmp_.add_argument("new", type=Path, nargs="?", help="run folder (not with --against)")
    cmp_.add_argument("old", type=Path, nargs="?", help="run folder to compare NEW with")
    cmp_.add_argument("--all", action="store_true", help="print every row, not only changes")
    compare_command.add_compare_options(cmp_)
    compare_command.add_against_options(cmp_)

    rep = sub.add_parser("report", help="re-write a run folder's report from its records")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--no-figures", action="store_true")
    rep.add_argument(
        "--figures-only", action="store_true", help="redraw the figures only (no tables)"
    )
    rep.add_argument(
        "--format", default="both", choices=["pdf", "png", "both"], help="figure file format"
    )
    tensorboard_log.add_tensorboard_option(rep)
    for fmt in ("csv", "parquet"):  # a bare file name goes into the run folder
        rep.add_argument(
            f"--{fmt}", type=Path, nargs="?", const=Path(f"records.{fmt}"), metavar="PATH",
            help=f"also write the records as a tidy table, one row per cell and metric "
            f"(default RUN_DIR/records.{fmt}; needs the [analysis] extra)",
        )  # fmt: skip

    data_command.add_parser(sub)
    findings_command.add_parser(sub)

    cal = sub.add_parser("calibrate", help="calibrate your own model's logits (.npz)")
    cal.add_argument(
        "--logits",
        type=Path,
        required=True,
        help=".npz with logits (N,K), labels (N,), optional split ('valid'/'test')",
    )
    cal.add_argument(
        "--valid-fraction",
        type=float,
        default=0.5,
        help="fraction of rows used to fit calibrators when the file has no split",
    )
    cal.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="random valid/test splits (ignored when the file has a split)",
    )
    cal.add_argument("--methods", default=None, help="e.g. calibrator=none,calibrator=temperature")
    _add_common(cal)

    from bench.speed import command as speed_command

    speed_command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run its sub-command; returns the exit status (module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere, so it is taken out before parsing
    argv = [a for a in argv if a != "--debug"]
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    args.command_line = " ".join(["run_all.py", *argv])
    try:
        registry.load_all()
        if args.command == "report":
            return cmd_report(args)
        if args.command == "compare":
            return compare_command.dispatch(args)
        if args.command == "calibrate":
            return cmd_calibrate(args)
        if args.command == "data":
            return data_command.run(args)
        if args.command == "findings":
            return findings_command.run(args)
        if args.command == "speed":
            from bench.speed import command as speed_command

            return speed_command.run(args)
        return cmd_run(args)
    except INPUT_ERRORS as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """The error as one line; an OSError from the system names its path and the fix."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}; check the path and its permissions"
    return " ".join(str(exc).split("\n")) or type(exc).__name__


def _context(args, run_dir: Path) -> RunContext:
    device = harness.pick_device(args.device)
    harness.check_amp(device, args.amp)
    tensorboard = getattr(args, "tensorboard", False)
    if tensorboard:
        tensorboard_log.check_available()
    return RunContext(
        device=device, amp=args.amp, run_dir=run_dir, quiet=args.quiet, tensorboard=tensorboard
    )


def cmd_run(args) -> int:
    if args.list:
        for family in registry.families():
            print(f"{family}: {', '.join(registry.names(family))}")
        return 0
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    data = parse_data_args(args.data)
    if args.sweep is not None:
        if tasks or args.methods or args.seeds:
            raise UsageError(
                "--sweep FILE sets tasks, methods and seeds; drop --tasks/--methods/--seeds"
            )
        sweep = load_sweep(args.sweep)
        cells = expand_sweep(sweep, data)
        suite = sweep.suite
        invocation: dict[str, object] = {
            "sweep": str(args.sweep),
            "suite": suite,
            "description": sweep.description,
        }
    else:
        cells = expand(args.suite, tasks, args.seeds, parse_methods(args.methods), data)
        suite = args.suite
        invocation = {
            "suite": args.suite,
            "tasks": tasks or "all",
            "methods": args.methods or "all",
            "seeds": args.seeds or SUITES[args.suite].seeds,
        }
    sets = args.set + overrides.upstream_sets(cells, args.upstream)
    cells, invocation["set"] = overrides.apply_sets(cells, sets), sets
    overrides.check_upstreams(cells)
    if args.dry_run:
        for cell in cells:
            print(f"{cell.label}  scale={cell.scale}")
        tuned = tuned_after(cells)  # bench.tuning: known only once the trials have run
        print(f"{len(cells)} cells" + f", then {tuned} tuned cells after the trials" * bool(tuned))
        return 0
    device = harness.pick_device(args.device)
    run_dir = args.out or default_run_dir(suite, cells, str(device), args.amp)
    return _execute(args, cells, run_dir, invocation)


def parse_data_args(items: list[str]) -> dict[str, Path]:
    """``--data NAME=PATH`` flags -> {name: path}; the path must exist."""
    from bench.data.real_corpora import parse_data_arg

    out: dict[str, Path] = {}
    for item in items:
        name, path = parse_data_arg(item)
        if not path.exists():
            raise FileNotFoundError(f"--data {item}: {path} does not exist")
        out[name] = path.resolve()
    return out


def cmd_calibrate(args) -> int:
    from bench.tasks.base import get_task

    if args.seeds < 1:  # checked even when the file fixes the split: it is a typo
        raise UsageError(f"--seeds must be at least 1 (got {args.seeds})")
    task = get_task("calibrate_logits")
    cells = task.cells_for_file(  # type: ignore[attr-defined]  # that task's own entry
        args.logits, args.seeds, args.valid_fraction, parse_methods(args.methods)
    )
    device = harness.pick_device(args.device)
    run_dir = args.out or default_run_dir("calibrate", cells, str(device), args.amp)
    invocation = {
        "command": "calibrate",
        "logits": str(args.logits.resolve()),
        "valid_fraction": args.valid_fraction,
        "seeds": args.seeds,
    }
    return _execute(args, cells, run_dir, invocation)


def _execute(args, cells, run_dir: Path, invocation: dict) -> int:
    """Check the device and ``--out`` (created now, so a bad one fails before any cell
    runs), then run the cells holding the folder's lock: one writer per run folder."""
    ctx = _context(args, run_dir)
    if not cells:
        raise UsageError("no cells to run: widen --tasks/--methods")
    with run_lock.hold(run_lock.prepare_run_dir(run_dir), args.command_line, args.quiet):
        return _execute_locked(args, cells, run_dir, invocation, ctx)


def _execute_locked(args, cells, run_dir: Path, invocation: dict, ctx: RunContext) -> int:
    """Run ``cells`` into ``run_dir`` (whose lock is held), write the report, compare."""
    from bench.report.dataset_cards import write_dataset_cards

    run_id = run_dir.name
    store.record_invocation(run_dir, invocation, cells, str(ctx.device), ctx.amp)
    write_dataset_cards(run_dir, cells)
    jobs = executors.resolve_jobs(getattr(args, "jobs", 1), ctx.device)
    if not args.quiet:
        print(f"run folder: {run_dir} ({len(cells)} cells, {jobs} at a time)", file=sys.stderr)
    executor = getattr(args, "executor", "local")
    ray_address = getattr(args, "ray_address", None)
    summary = run_staged(cells, ctx, run_id, executor=executor, jobs=jobs, ray_address=ray_address)
    from bench.report import write_report

    paths = write_report(run_dir, figures=not args.no_figures)
    status = _finish(summary, paths)
    if getattr(args, "compare", None) is not None:
        status = max(status, compare_command.cmd_compare(run_dir, args.compare, args))
    return status


def _finish(summary: SweepSummary, paths: dict[str, Path]) -> int:
    print(
        f"{len(summary.ran)} cells run, {len(summary.skipped)} already done (skipped), "
        f"{len(summary.failed)} failed"
    )
    print(f"report: {paths['markdown']}  {paths['html']}  {paths['latex']}")
    if summary.failed:
        print("failed cells:", file=sys.stderr)
        for cell, error in summary.failed:
            print(f"  {cell.label}: {error.splitlines()[0] if error else ''}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    """Rewrite a run folder's report (or figures) from its records, holding its lock."""
    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run folder; give one written by --out DIR")
    with run_lock.hold(args.run_dir, args.command_line):
        return _report_locked(args)


def _report_locked(args) -> int:
    """cmd_report's work, with the folder's lock held."""
    from bench.report import draw_figures, write_report

    formats = ("pdf", "png") if args.format == "both" else (args.format,)
    if args.figures_only:
        written = draw_figures(args.run_dir, formats)
        print(f"{len(written)} figures in {args.run_dir / 'figures'}: {', '.join(written)}")
        return 0
    paths = write_report(args.run_dir, figures=not args.no_figures, formats=formats)
    print(f"report: {paths['markdown']}  {paths['html']}  {paths['latex']}")
    for target in (t for t in (args.csv, args.parquet) if t is not None):
        from bench.export import export_records

        print(f"records table: {export_records(args.run_dir, target)}")
    if args.tensorboard:
        events = tensorboard_log.write_run(args.run_dir)
        print(f"TensorBoard events of {len(events)} cells in {args.run_dir / 'tensorboard'}")
    return 0

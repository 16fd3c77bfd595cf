"""``python run_all.py speed``: measure every case against its peer and print one table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import harness
from bench.speed import load_cases, runner, table
from bench.speed.case import SUITE_SIZES, SpeedCase


def add_parser(sub) -> None:
    p = sub.add_parser("speed", help="time our methods and metrics against their public peers")
    p.add_argument(
        "--size",
        default="quick",
        choices=list(SUITE_SIZES),
        help="quick: tiny/small/medium inputs (a few minutes on 2 cores); default adds large",
    )
    p.add_argument("--cases", default=None, help="comma-separated substrings of case or group")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if present)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    p.add_argument("--amp", default="off", choices=["bf16", "fp16", "off"])
    p.add_argument("--compile", action="store_true", help="torch.compile both sides' steps")
    p.add_argument(
        "--cuda-graphs", action="store_true", help="replay both steps as CUDA graphs (cuda only)"
    )
    p.add_argument(
        "--budget", type=float, default=3.0, help="timed seconds per side and row (sets repeats)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for speed.jsonl/speed.md (default reports/speed-<size>-<device>); "
        "re-running with the same options reuses the rows already measured",
    )
    p.add_argument("--force", action="store_true", help="measure again rows already in --out")
    p.add_argument("--list", action="store_true", help="list the cases and their sizes, then exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="skip speed.pdf/png (time by size)")


def select(cases: dict[str, SpeedCase], spec: str | None) -> list[SpeedCase]:
    if not spec:
        return list(cases.values())
    wanted = [w.strip().lower() for w in spec.split(",") if w.strip()]
    chosen = [
        c for c in cases.values() if any(w in (c.name + " " + c.group).lower() for w in wanted)
    ]
    if not chosen:
        raise ValueError(f"--cases {spec!r} matches no case; the cases are: {', '.join(cases)}")
    return chosen


def run(args: argparse.Namespace) -> int:
    cases = load_cases()
    if args.list:
        for case in cases.values():
            sizes = ", ".join(f"{k} {v}" for k, v in case.sizes.items())
            print(f"[{case.group}] {case.name} vs {case.peer}: {sizes}")
        return 0
    device = harness.pick_device(args.device)
    options = runner.SpeedOptions(
        device=device,
        threads=harness.set_threads(args.threads),
        amp=args.amp,
        compile=args.compile,
        cuda_graph=args.cuda_graphs,
        budget_s=args.budget,
        memory=not args.no_memory,
    )
    harness.check_amp(device, args.amp)
    if args.cuda_graphs and device.type != "cuda":
        raise ValueError("--cuda-graphs needs a cuda device; drop it on the CPU")
    out = args.out or Path("reports") / f"speed-{args.size}-{device.type}"
    chosen = select(cases, args.cases)
    progress = None if args.quiet else _progress
    t0 = time.perf_counter()
    rows = runner.run(chosen, args.size, options, out, progress=progress, force=args.force)
    elapsed = time.perf_counter() - t0
    text = (
        f"# Speed: ours vs public peers ({args.size})\n\n"
        f"{table.describe_env(rows)}; {elapsed:.0f} s.\n"
        "Median ± IQR of alternating repeats in one process; ratio = peer / ours "
        "(> 1: ours is faster); MB = peak memory one call allocates.\n\n" + table.markdown(rows)
    )
    (out / "speed.md").write_text(text)
    print(text)
    if not args.no_figures:
        from bench.speed import figure

        figure.draw(rows, out)
    slower = table.slower_rows(rows)
    if slower:
        names = ", ".join(f"{r['case']} [{r['size']}] {r['ratio']:.2f}" for r in slower)
        print(f"slower than the peer: {names}")
    bad = [r for r in rows if r.get("status") == "failed"]
    for r in bad:
        print(f"failed: {r['case']} [{r['size']}]: {r['error']}")
    print(f"rows: {out / runner.ROWS_FILE}; table: {out / 'speed.md'}; figure: {out / 'speed.png'}")
    return 1 if bad else 0


def _progress(items):
    from tqdm.auto import tqdm

    return tqdm(items, desc="speed", leave=False, dynamic_ncols=True)

"""``run_all.py findings RUN``: the published results the run can test, with the suite's
effect, interval, p and verdict, printed as Markdown and written to RUN/findings.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    findings = sub.add_parser(
        "findings", help="test published results (Guo, wav2vec 2.0, Bengio, ...) on a run folder"
    )
    findings.add_argument("run_dir", type=Path, help="a run folder (holds records.jsonl)")
    return findings


def run(args) -> int:
    from bench.report.findings import findings_markdown
    from bench.report.findings_eval import evaluate_run
    from bench.store import latest_records, write_atomic

    run_dir: Path = args.run_dir
    records = latest_records(run_dir) if run_dir.is_dir() else []
    if not records:
        print(
            f"{run_dir}: no records found (expected {run_dir / 'records.jsonl'}); give the run "
            "folder written by `python run_all.py --out DIR`",
            file=sys.stderr,
        )
        return 2
    text = "\n".join(findings_markdown(evaluate_run(run_dir, records))) + "\n"
    print(text, end="")
    write_atomic(run_dir / "findings.md", text)
    print(f"wrote {run_dir / 'findings.md'}", file=sys.stderr)
    return 0

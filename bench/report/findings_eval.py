"""Evaluating the findings (bench/report/findings.py) on a run folder: each finding's
check (bench/report/finding_checks.py, finding_curves.py) on the run's records and items."""

from __future__ import annotations

from pathlib import Path

from bench.report import finding_checks, finding_curves
from bench.report.finding_checks import RunData
from bench.report.findings import FINDINGS, INCONCLUSIVE, NOT_RUN, Finding, Result


def evaluate(finding: Finding, run) -> Result:
    """One finding on a ``finding_checks.RunData``."""
    if not any(r.task == finding.task for r in run.records):
        return Result(finding, NOT_RUN, notes=[f"task `{finding.task}` is not in this run"])
    return (finding_checks.CHECKS | finding_curves.CHECKS)[finding.kind](finding, run)


def evaluate_run(run_dir: str | Path, records=None, run: RunData | None = None) -> list[Result]:
    """Every finding on the run folder (``records``: its latest records, if already read;
    ``run``: the folder already loaded, sharing its cached items). A check that fails on
    unexpected data is reported as inconclusive with the error, so the rest of the report is
    still written."""
    run = run if run is not None else RunData(Path(run_dir), records)
    out = []
    for finding in FINDINGS:
        try:
            out.append(evaluate(finding, run))
        except Exception as exc:  # noqa: BLE001 - one finding must not stop the report
            out.append(Result(finding, INCONCLUSIVE, notes=[f"not evaluated: {exc!r}"]))
    return out

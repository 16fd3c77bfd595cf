"""The cross-task summary names the best method and its margin over its baseline."""

from bench import registry
from bench.report import write_report
from bench.report.model import build_report_data
from bench.report.summary import summary_rows
from bench.store import Record, RunStore, stable_hash


def test_summary_picks_the_best_on_the_headline_metric(tmp_path):
    registry.load_all()
    store = RunStore(tmp_path)
    eces = {"none": [0.10, 0.12, 0.11], "temperature": [0.02, 0.03, 0.025], "vector": [0.05] * 3}
    for calibrator, values in eces.items():
        for seed, ece in enumerate(values):
            method = {"classifier": "cnn", "calibrator": calibrator}
            store.append(
                Record(
                    run_id="r",
                    task="calibration",
                    method=method,
                    config={},
                    seed=seed,
                    scale="quick",
                    metrics={"ece": ece, "accuracy": 0.9},
                    cell_key=stable_hash([method, seed]),
                )
            )
    (row,) = summary_rows(build_report_data(tmp_path, figures=False))
    assert row.metric == "ece"  # the calibration task's headline, not its first column
    assert row.best == "classifier=cnn, calibrator=temperature"
    assert row.margin == "-8.5" and row.marks == "‡"  # percentage points, lower is better
    write_report(tmp_path, figures=False)
    report = (tmp_path / "report.md").read_text()
    assert "## Summary" in report and "calibrator=temperature | 2.50 |" in report

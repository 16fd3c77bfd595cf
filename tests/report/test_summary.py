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


def _section(task_name, records):
    from bench.report.model import TaskSection
    from bench.report.tables import build_table
    from bench.tasks.base import get_task

    table = build_table(get_task(task_name), records)
    return TaskSection(name=task_name, table=table, timing=[], seeds=[0, 1])


def _rec(task, method, seed, metrics):
    return Record(
        "r", task, method, {}, seed, "quick", metrics, cell_key=stable_hash([method, seed])
    )


def test_summary_says_better_or_worse_by_direction_and_flags_a_worse_best(tmp_path):
    """Lower is better (calibration ECE): the best calibrator at 0.30 against the baseline's
    0.10 is "+20 (worse) ⚠"; higher is better (augment acc_clean): 0.80 against 0.70 is
    "+10 (better)", 0.60 against 0.70 "-10 (worse) ⚠"."""
    from bench.report.model import ReportData
    from bench.report.render_html import render_html
    from bench.report.render_markdown import render_markdown
    from bench.report.summary import verdict

    registry.load_all()
    assert verdict(-1.0, False) == "better" and verdict(1.0, False) == "worse"
    assert verdict(1.0, True) == "better" and verdict(0.0, True) == "same"
    cal = [
        _rec("calibration", {"classifier": "cnn", "calibrator": k}, s, {"ece": v, "accuracy": 0.9})
        for k, v in (("none", 0.10), ("temperature", 0.30), ("vector", 0.40))
        for s in range(2)
    ]
    aug = [
        _rec("augment", {"augment": k}, s, {"acc_clean": v + 0.01 * s})
        for k, v in (("none", 0.70), ("noise", 0.80), ("speed", 0.60))
        for s in range(2)
    ]
    data = ReportData("r", {}, [_section("calibration", cal), _section("augment", aug)], 12, 0)
    cal_row, aug_row = summary_rows(data)
    assert cal_row.best == "classifier=cnn, calibrator=temperature"
    assert cal_row.margin == "+20" and cal_row.verdict == "worse" and cal_row.worse
    assert cal_row.margin_text.startswith("+20 (worse)") and cal_row.margin_text.endswith("⚠")
    assert cal_row.best_display == "classifier=cnn · Temperature scaling"
    assert aug_row.margin == "+10"
    assert aug_row.verdict == "better" and not aug_row.worse and "⚠" not in aug_row.margin_text
    md = render_markdown(data)
    assert "| +20 (worse) ⚠ |" in md  # deterministic: no test, no mark
    assert "| +10 (better) ‡ |" in md  # a constant shift over seeds: p = 0
    page = render_html(data, tmp_path)
    assert '<tr class="worse"><td>calibration</td>' in page and "(worse)" in page
    assert "<tr><td>augment</td>" in page
    aug_only = [r for r in aug if r.method["augment"] != "noise"]
    (row,) = summary_rows(ReportData("r", {}, [_section("augment", aug_only)], 4, 0))
    assert row.margin == "-10" and row.verdict == "worse" and row.worse

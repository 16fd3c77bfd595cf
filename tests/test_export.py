"""bench.load_records and `report --csv/--parquet`: a run folder as a tidy DataFrame."""

from __future__ import annotations

import sys

import pytest

pd = pytest.importorskip("pandas")  # the [analysis] extra; dev installs it

import bench  # noqa: E402
from bench.cli import main  # noqa: E402
from bench.export import export_records  # noqa: E402
from bench.store import Record, RunStore  # noqa: E402


def _record(task, method, seed, key, status="ok", **metrics) -> Record:
    return Record(
        run_id="r1",
        task=task,
        method=method,
        config={},
        seed=seed,
        scale="quick",
        metrics=metrics,
        status=status,
        cell_key=key,
    )


@pytest.fixture
def run_dir(tmp_path):
    store = RunStore(tmp_path)
    store.append(_record("calibration", {"classifier": "cnn", "calibrator": "none"}, 0, "a",
                         ece=0.05, accuracy=0.9))  # fmt: skip
    store.append(
        _record(
            "calibration",
            {"classifier": "cnn", "calibrator": "none"},
            0,
            "a",
            ece=0.04,
            accuracy=0.9,
        )
    )  # fmt: skip  (a re-run: the newest wins)
    store.append(_record("g2p", {"forcing": "teacher", "arch": "gru"}, 1, "b", test_per_greedy=0.2))
    store.append(_record("g2p", {"forcing": "professor", "arch": "gru"}, 1, "c", status="failed"))
    return tmp_path


def test_one_row_per_cell_and_metric_with_method_axes_as_columns(run_dir):
    df = bench.load_records(run_dir)
    assert list(df.columns) == [
        "run_id", "task", "scale", "seed", "status", "cell_key",
        "classifier", "calibrator", "forcing", "arch", "metric", "value",
    ]  # fmt: skip
    assert len(df) == 2 + 1 + 1  # two metrics, one metric, one failed cell without metrics
    ece = df[(df.task == "calibration") & (df.metric == "ece")]
    assert ece.value.tolist() == [0.04]  # the newest record of the cell
    g2p = df[df.task == "g2p"]
    assert g2p.classifier.isna().all() and set(g2p.forcing) == {"teacher", "professor"}
    failed = df[df.status == "failed"]
    assert failed.metric.isna().all() and failed.value.isna().all()
    wide = df.dropna(subset=["metric"]).pivot_table(
        index=["task", "cell_key"], columns="metric", values="value"
    )
    assert wide.loc[("calibration", "a"), "accuracy"] == 0.9


def test_csv_and_parquet_round_trip_and_bad_names(run_dir, tmp_path):
    pytest.importorskip("pyarrow")
    frame = bench.load_records(run_dir)
    csv = pd.read_csv(export_records(run_dir, "records.csv"))  # a bare name: in the run folder
    assert (run_dir / "records.csv").exists() and csv.shape == frame.shape
    parquet = pd.read_parquet(export_records(run_dir, tmp_path / "out.parquet"))
    pd.testing.assert_frame_equal(parquet, frame)
    with pytest.raises(ValueError, match="unknown export format"):
        export_records(run_dir, tmp_path / "out.xlsx")
    with pytest.raises(FileNotFoundError, match="no records found"):
        bench.load_records(tmp_path / "empty")


def test_report_writes_the_table_and_missing_pandas_is_an_input_error(
    run_dir, tmp_path, monkeypatch, capsys
):
    assert main(["report", str(run_dir), "--no-figures", "--csv"]) == 0
    assert pd.read_csv(run_dir / "records.csv").shape[0] == 4
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if the extra were not installed
    assert main(["report", str(run_dir), "--no-figures", "--csv", str(tmp_path / "x.csv")]) == 2
    assert "pip install" in capsys.readouterr().err

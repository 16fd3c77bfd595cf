"""--tensorboard: each cell's curves and final metrics as event files that TensorBoard's own
reader reads back, written as cells finish and again from the records by `report`."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.store import Record
from bench.tensorboard_log import EVENTS_DIR, cell_dir, write_record

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _read(folder):
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def test_curves_use_their_step_axis_and_skip_non_series(tmp_path):
    record = Record(
        run_id="r", task="t", method={"loss": "a_b"}, config={}, seed=3, scale="quick",
        metrics={"acc": 0.75, "nan_metric": float("nan")},
        curves={"train_loss": [3.0, 2.0, 1.0], "step": [10, 20, 30],
                "valid_nll": [1.5, 1.2], "valid_epoch": [1, 2],
                "examples": [["a", "b"]], "classes": ["x", "y"], "gap": [1.0, None, 0.5, 0.25]},
    )  # fmt: skip
    folder = write_record(tmp_path, record)
    assert folder == cell_dir(tmp_path, record) == tmp_path / EVENTS_DIR / "t" / "loss=a_b-seed3"
    acc = _read(folder)
    tags = set(acc.Tags()["scalars"])
    assert {"curves/train_loss", "curves/valid_nll", "curves/gap"} <= tags
    assert not {"curves/step", "curves/examples", "curves/classes"} & tags
    loss = acc.Scalars("curves/train_loss")
    assert [(e.step, e.value) for e in loss] == [(10, 3.0), (20, 2.0), (30, 1.0)]
    assert [e.step for e in acc.Scalars("curves/valid_nll")] == [1, 2]
    assert [e.step for e in acc.Scalars("curves/gap")] == [
        0,
        2,
        3,
    ]  # None skipped, index axis
    write_record(tmp_path, record)  # re-writing replaces, never duplicates
    assert len(_read(folder).Scalars("curves/train_loss")) == 3


def test_a_run_writes_events_that_tensorboard_reads_back(tmp_path):
    out = tmp_path / "run"
    argv = ["--suite", "quick", "--tasks", "calibration", "--seeds", "1", "--quiet"]
    argv += ["--methods", "classifier=mlp,calibrator=none", "--out", str(out)]
    argv += ["--set", "calibration.epochs=2", "--set", "calibration.eval_every=1"]
    assert main([*argv, "--tensorboard"]) == 0
    record = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    folders = sorted((out / EVENTS_DIR / "calibration").iterdir())
    assert len(folders) == 1
    acc = _read(folders[0])
    loss = [e.value for e in acc.Scalars("curves/train_loss")]
    assert loss == pytest.approx(record["curves"]["train_loss"])
    assert [e.step for e in acc.Scalars("curves/valid_nll")] == record["curves"]["valid_epoch"]
    # the final metrics are scalars too (the HPARAMS tab's results)
    final = acc.Scalars("metrics/accuracy")
    assert [e.value for e in final] == pytest.approx([record["metrics"]["accuracy"]])
    # `report --tensorboard` writes them again from the records
    for f in folders:
        for event_file in f.iterdir():
            event_file.unlink()
    assert main(["report", str(out), "--no-figures", "--tensorboard"]) == 0
    again = _read(folders[0])
    assert [e.value for e in again.Scalars("curves/train_loss")] == pytest.approx(loss)

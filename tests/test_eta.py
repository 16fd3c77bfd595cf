"""The progress bar counts expected seconds: each cell weighs its kind's measured time."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.eta import TIMES_FILE, CellTimes
from bench.store import Cell


def _cell(task="t", method=None, scale="quick"):
    return Cell(task=task, method=method or {"m": "a"}, seed=0, scale=scale, config={})


def test_expected_falls_back_from_the_cell_to_its_task_to_everything(tmp_path):
    times = CellTimes(tmp_path / TIMES_FILE)
    assert times.expected(_cell()) == 1.0  # nothing measured yet
    times.record(_cell(method={"m": "a"}), 10.0)
    times.record(_cell(method={"m": "b"}), 20.0)
    times.record(_cell(task="u", scale="default"), 100.0)
    again = CellTimes(tmp_path / TIMES_FILE)  # read back from the file
    assert again.expected(_cell(method={"m": "a"})) == 10.0  # the same kind of cell
    assert again.expected(_cell(method={"m": "c"})) == 15.0  # its task at its scale
    assert again.expected(_cell(task="u", scale="quick")) == 100.0  # its task, any scale
    assert again.expected(_cell(task="v")) == pytest.approx(130 / 3)  # every measured cell


def test_an_unreadable_file_starts_afresh(tmp_path):
    (tmp_path / TIMES_FILE).write_text("{not json")
    assert CellTimes(tmp_path / TIMES_FILE).expected(_cell()) == 1.0


def test_a_run_records_its_cells_times(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    argv = ["--suite", "quick", "--tasks", "calibration", "--seeds", "1", "--quiet"]
    argv += ["--methods", "classifier=mlp,calibrator=none", "--out", str(tmp_path / "run")]
    assert main([*argv, "--set", "calibration.epochs=2", "--set", "calibration.eval_every=1"]) == 0
    measured = json.loads((tmp_path / "cache" / TIMES_FILE).read_text())
    record = json.loads((tmp_path / "run" / "records.jsonl").read_text().splitlines()[0])
    assert list(measured.values()) == [pytest.approx(record["seconds"])]

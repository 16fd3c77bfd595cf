"""The distillation task: its grid and baselines, the cached teacher, bad configs, figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.config import build_config
from bench.context import RunContext
from bench.models import distill_teacher
from bench.registry import UnknownNameError
from bench.report import distill_figures
from bench.store import Cell, Record
from bench.tasks.base import NONE, get_task
from bench.tasks.distill import DistillConfig
from tests.tasks.conftest import run_tiny

TINY = {**get_task("distill").config("quick"), "epochs": 3, "teacher_epochs": 2, "eval_every": 1}
NONE_ROW = {"classifier": "mlp", "distill": "none", "temperature": NONE, "alpha": NONE}
KD_ROW = {"classifier": "mlp", "distill": "kd", "temperature": "4", "alpha": "0.9"}


@pytest.mark.parametrize("row", [NONE_ROW, KD_ROW], ids=["none", "kd"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(row, tmp_path, check_task_cell):
    check_task_cell("distill", row, TINY, tmp_path)


def test_grid_is_students_by_the_papers_kd_grid_and_pairs_with_no_teacher():
    task = get_task("distill")
    rows = task.grid(scale="default")
    assert len(rows) == 2 * (1 + 4 * 2)
    kd = [r for r in rows if r["distill"] == "kd"]
    assert {(r["temperature"], r["alpha"]) for r in kd} == {
        (t, a) for t in ("1", "2", "4", "8") for a in ("0.5", "0.9")
    }
    for row in kd:  # the none row of the same student, with '-' axes
        assert task.baseline_of(row) == {**row, "distill": "none", "temperature": "-", "alpha": "-"}
        assert task.baseline_of(row) in rows
    assert task.baseline_of({**KD_ROW, "classifier": "cnn"})["classifier"] == "cnn"
    assert task.baseline_of(NONE_ROW) is None
    assert len(task.cells("quick", [0, 1])) == 2 * 2 * 2  # quick: none and one kd row
    # a selected temperature replaces the kd rows' values only; no-teacher rows stay
    narrowed = task.grid({"temperature": ["8"], "alpha": ["0.9"]}, "default")
    assert sorted((r["classifier"], r["temperature"]) for r in narrowed) == [
        ("cnn", "-"), ("cnn", "8"), ("mlp", "-"), ("mlp", "8"),
    ]  # fmt: skip
    assert len(task.grid({"distill": ["kd"], "classifier": ["cnn"]}, "default")) == 9
    with pytest.raises(ValueError, match="unknown temperature"):
        task.grid({"temperature": ["3"]}, "default")


def test_teacher_is_trained_once_per_seed_and_reused(tmp_path, monkeypatch):
    calls = []
    train = distill_teacher.train_teacher

    def counting(*args, **kwargs):
        calls.append(args[0])
        return train(*args, **kwargs)

    monkeypatch.setattr(distill_teacher, "train_teacher", counting)
    first = run_tiny("distill", NONE_ROW, TINY, tmp_path / "run")
    (artifact,) = (tmp_path / "run" / "artifacts" / "distill").glob("teacher-*.npz")
    mtime = artifact.stat().st_mtime_ns
    kd = run_tiny("distill", KD_ROW, TINY, tmp_path / "run")
    run_tiny("distill", {**KD_ROW, "classifier": "cnn"}, TINY, tmp_path / "run")
    assert calls == ["cnn"] and artifact.stat().st_mtime_ns == mtime
    # a cell that loads the teacher gives what it gives when it trains the teacher itself
    fresh = run_tiny("distill", KD_ROW, TINY, tmp_path / "fresh")
    assert kd.record.metrics == fresh.record.metrics and len(calls) == 2
    assert first.record.metrics["teacher_accuracy"] == kd.record.metrics["teacher_accuracy"]
    assert kd.record.metrics["parameters"] < kd.record.metrics["teacher_parameters"]
    run_tiny("distill", KD_ROW, TINY, tmp_path / "run", seed=1)  # another seed: its own
    assert len(calls) == 3
    assert "teacher_valid_accuracy" in kd.record.curves and "valid_accuracy" in kd.record.curves


def _run(method: dict, config: dict, tmp_path: Path):
    task = get_task("distill")
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    return task.run(Cell("distill", method, 0, "quick", config), ctx)


@pytest.mark.parametrize(
    ("method", "config", "match"),
    [
        (
            NONE_ROW,
            {"students": {"mlp": {"hidden": 512}}},
            r"301066 parameters.*151498.*students\.mlp",
        ),
        ({**KD_ROW, "temperature": "0"}, {}, "temperature must be a positive number, got 0"),
        ({**KD_ROW, "temperature": "-4"}, {}, "temperature must be a positive number"),
        ({**KD_ROW, "alpha": "1.5"}, {}, r"alpha must be in \[0, 1\], got 1.5"),
        ({**KD_ROW, "alpha": "-0.1"}, {}, r"alpha must be in \[0, 1\]"),
        ({**KD_ROW, "alpha": NONE}, {}, "needs alpha"),
        ({**NONE_ROW, "temperature": "4"}, {}, "takes no temperature"),
        ({**KD_ROW, "temperature": "hot"}, {}, "'hot' is not a number"),
    ],
)
def test_bad_configuration_is_an_input_error_that_names_it(method, config, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        _run(method, {**TINY, **config}, tmp_path)


def test_unknown_teacher_or_key_is_named():
    with pytest.raises(UnknownNameError, match="lenet9"):
        build_config(DistillConfig, {**TINY, "teacher": "lenet9"})
    with pytest.raises(ValueError, match="unknown key"):
        build_config(DistillConfig, {**TINY, "temperature": 4})


def _record(method: dict, seed: int, accuracy: float) -> Record:
    rec = Record("r", "distill", method, {}, seed, "default")
    rec.metrics = {"accuracy": accuracy, "nll": 0.3, "ece": 0.02, "teacher_accuracy": 0.96}
    rec.metrics |= {"teacher_nll": 0.15, "teacher_ece": 0.02}
    rec.curves = {
        "train_loss": [1.0, 0.5, 0.2],
        "valid_epoch": [1, 2, 3],
        "valid_accuracy": [0.5, 0.8, accuracy],
        "teacher_valid_epoch": [1, 2, 3],
        "teacher_valid_accuracy": [0.6, 0.9, 0.96],
    }
    return rec


@pytest.mark.parametrize("seeds", [1, 2])
def test_figures_draw_from_records(seeds, tmp_path):
    rows = [NONE_ROW] + [{**KD_ROW, "temperature": t} for t in ("1", "4")]
    rows += [{**KD_ROW, "alpha": "0.5"}]
    records = [_record(m, s, 0.9 + 0.01 * s + 0.001 * k) for k, m in enumerate(rows)
               for s in range(seeds)]  # fmt: skip
    made = list(distill_figures.draw(records, tmp_path, formats=("png",)))
    assert [f.stem for f in made] == ["distill_temperature", "distill_curves"]
    assert all((tmp_path / f"{f.stem}.png").stat().st_size > 0 for f in made)

"""Planted regressions: each is planted through the method registry's classes or the task's
own code, run at a tiny scale, and ``compare`` must exit non-zero naming the right rows;
the unmodified code run again under a different load must pass with no false regression.
(The 4× slower training step is planted in ``tests/test_against.py``: only paired timings
can catch it.) One seed per run: the paired tests over items make one-seed runs gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import methods.calibration
import methods.enhancement
from bench.cli import main
from bench.context import RunContext
from bench.data import noisy_pairs, synthetic
from bench.report.compare import ITEMS_DIFFER, NOT_COMPARABLE, WORSE, compare_runs
from bench.store import Cell
from bench.sweep import run_cells
from bench.tasks import calibration, enhance
from bench.tasks.base import get_task

CALIBRATION = {**get_task("calibration").config("quick"), "epochs": 4, "eval_every": 4}
CALIBRATORS = ("none", "temperature")


def _run(folder: Path, task: str, methods: list[dict], config: dict) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    cells = [Cell(task, m, 0, "quick", config) for m in methods]
    ctx = RunContext(device=torch.device("cpu"), run_dir=folder, quiet=True)
    summary = run_cells(cells, ctx, folder.name)
    assert not summary.failed, summary.failed
    return folder


def _calibration_run(folder: Path, config: dict = CALIBRATION) -> Path:
    methods = [{"classifier": "mlp", "calibrator": c} for c in CALIBRATORS]
    return _run(folder, "calibration", methods, config)


def _flagged(new: Path, old: Path, capsys) -> dict[tuple[str, str], str]:
    """Run ``compare NEW OLD`` (must exit 1) -> {(method, metric): verdict} of the
    regressions, and check the printed report names them."""
    assert main(["compare", str(new), str(old)]) == 3
    out = capsys.readouterr().out
    result = compare_runs(new, old)
    flagged = {(r.method, r.metric): r.verdict for r in result.regressions()}
    for method, metric in flagged:
        assert f"| {method} | {metric} |" in out
    return flagged


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    return _calibration_run(tmp_path_factory.mktemp("planted") / "baseline")


def test_unmodified_code_under_another_load_passes(baseline, tmp_path, capsys):
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        again = _calibration_run(tmp_path / "again")
    finally:
        burner.kill()
        burner.wait()
    assert main(["compare", str(again), str(baseline)]) == 0
    assert "No regression" in capsys.readouterr().out


def test_temperature_scaling_that_returns_t_1(baseline, tmp_path, monkeypatch, capsys):
    fit = methods.calibration.TemperatureScaling._fit

    def planted(self, logits, labels):
        fit(self, logits, labels)
        self.temperature = 1.0

    monkeypatch.setattr(methods.calibration.TemperatureScaling, "_fit", planted)
    flagged = _flagged(_calibration_run(tmp_path / "t1"), baseline, capsys)
    rows = {method for method, _ in flagged}
    assert rows == {"classifier=mlp, calibrator=temperature"}  # the none row is untouched
    assert {"ece", "nll"} <= {metric for _, metric in flagged}


def test_a_halved_training_budget(baseline, tmp_path, monkeypatch, capsys):
    """Half the epochs are trained while the config (and so the record) still says all."""
    train = calibration.train_classifier

    def planted(model, config, ctx):
        return train(model, replace(config, epochs=config.epochs // 2), ctx)

    monkeypatch.setattr(calibration, "train_classifier", planted)
    flagged = _flagged(_calibration_run(tmp_path / "half"), baseline, capsys)
    assert {method for method, _ in flagged} == {
        f"classifier=mlp, calibrator={c}" for c in CALIBRATORS
    }
    assert set(flagged.values()) == {WORSE}


def test_a_halved_budget_in_the_config_is_not_comparable(baseline, tmp_path, capsys):
    config = {**CALIBRATION, "epochs": CALIBRATION["epochs"] // 2}
    new = _calibration_run(tmp_path / "half-config", config)
    assert main(["compare", str(new), str(baseline)]) == 3
    err = capsys.readouterr().err
    assert "2 cell(s)" in err and "(config)" in err
    assert {r.verdict for r in compare_runs(new, baseline).rows} == {NOT_COMPARABLE}


def test_an_evaluation_that_drops_a_tenth_of_the_test_items(
    baseline, tmp_path, monkeypatch, capsys
):
    run = calibration.CalibrationTask.run

    def planted(self, cell, ctx):
        result = run(self, cell, ctx)
        test = result.items["test"]
        kept = int(len(test["item_id"]) * 0.9)
        result.items["test"] = {k: np.asarray(v)[:kept] for k, v in test.items()}
        result.metrics.update(self.metrics_from_items(result.items, cell.config))
        return result

    monkeypatch.setattr(calibration.CalibrationTask, "run", planted)
    flagged = _flagged(_calibration_run(tmp_path / "dropped"), baseline, capsys)
    assert set(flagged.values()) == {ITEMS_DIFFER}
    assert {metric for _, metric in flagged} >= {"accuracy", "ece"}
    assert len({method for method, _ in flagged}) == 2


ENHANCE = {
    "corpus": "quick",
    "steps": 2,
    "batch_size": 2,
    "crop_seconds": 0.25,
    "test_utterances": 12,
    "pesq_workers": 2,
}


def test_a_wiener_filter_that_returns_its_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(
        synthetic.SCALES,
        "quick",
        synthetic.CorpusConfig(
            speakers_en=3, speakers_lv=0, utterances_per_speaker=8, sentences_per_language=12
        ),
    )
    monkeypatch.setattr(noisy_pairs, "_PAIRS", {})
    monkeypatch.setitem(enhance.SCALE_CONFIGS, "quick", ENHANCE)
    config = {**get_task("enhance").config("quick"), **ENHANCE}
    rows = [{"enhancer": e, "enh_loss": "-"} for e in ("identity", "wiener")]
    old = _run(tmp_path / "old", "enhance", rows, config)
    monkeypatch.setattr(methods.enhancement.WienerFilter, "_enhance", lambda self, noisy: noisy)
    new = _run(tmp_path / "new", "enhance", rows, config)
    flagged = _flagged(new, old, capsys)
    assert {method for method, _ in flagged} == {"enhancer=wiener, enh_loss=-"}
    assert {"si_sdr", "si_sdr_gain"} <= {metric for _, metric in flagged}

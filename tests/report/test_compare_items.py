"""compare over test items: a one-seed run gates, accuracies use McNemar, and an evaluation
whose test items changed fails instead of being compared."""

import numpy as np
import pytest

from bench.cli import main
from bench.metrics.calibration import metrics_from_items
from bench.report.compare import ITEMS_DIFFER, SAME, WORSE, compare_runs
from bench.store import Record, RunStore, stable_hash, write_items

N = 800


def _items(seed: int, overconfident: float = 0.0, flip: int = 0) -> dict:
    """Calibration items of one seed: calibrated confidences, or pushed towards 1 by
    ``overconfident``; ``flip`` correct predictions made wrong."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, N)
    correct = (rng.uniform(size=N) < conf).astype(np.float64)
    correct[np.flatnonzero(correct)[:flip]] = 0.0
    conf = conf + overconfident * (1 - conf)
    return {
        "test": {
            "item_id": np.array([f"digit-{i}" for i in range(N)]),
            "confidence": conf,
            "correct": correct,
            "nll": -np.log(np.where(correct == 1, conf, 1 - conf)),
            "brier": (1 - conf) ** 2,
        }
    }


def _run(folder, seeds=(0,), keep=1.0, **kwargs):
    store = RunStore(folder)
    for seed in seeds:
        items = _items(seed, **kwargs)
        if keep < 1:  # an evaluation that drops the last items of the test set
            n = int(N * keep)
            items = {"test": {k: v[:n] for k, v in items["test"].items()}}
        key = stable_hash(["cal", seed])
        write_items(folder, key, items)
        metrics = metrics_from_items(items["test"])
        store.append(
            Record(
                run_id="r",
                task="calibration",
                method={"classifier": "mlp", "calibrator": "temperature"},
                config={"n_bins": 15},
                seed=seed,
                scale="quick",
                metrics={k: metrics[k] for k in ("ece", "accuracy", "nll")},
                timing={},
                env={"probe_gflops": 50.0, "data_hash": "abc", "task_version": 1},
                cell_key=key,
            )
        )
    return folder


def _row(result, metric):
    return next(r for r in result.rows if r.metric == metric)


def test_identical_one_seed_runs_pass(tmp_path):
    result = compare_runs(_run(tmp_path / "new"), _run(tmp_path / "old"))
    assert not result.regressions() and _row(result, "ece").verdict == SAME


def test_one_seed_gates_on_a_paired_bootstrap_over_items(tmp_path):
    old = _run(tmp_path / "old")
    new = _run(tmp_path / "new", overconfident=0.5)  # temperature scaling undone
    result = compare_runs(new, old)
    row = _row(result, "ece")
    assert row.verdict == WORSE and row.p < 0.01 and row.seeds == 1
    assert "paired bootstrap over 1×800 items" in row.note
    assert main(["compare", str(new), str(old)]) == 3


def test_accuracy_is_tested_by_mcnemar_pooled_over_seeds(tmp_path):
    old = _run(tmp_path / "old", seeds=(0, 1))
    new = _run(tmp_path / "new", seeds=(0, 1), flip=40)  # 40 of ~600 right answers lost
    row = _row(compare_runs(new, old), "accuracy")
    assert row.verdict == WORSE and "McNemar over 2×800 items" in row.note
    # every discordant pair goes one way: exact binomial p = 2 · 0.5^80
    assert row.p == pytest.approx(2 * 0.5**80)


def test_an_evaluation_that_drops_items_fails_and_says_so(tmp_path, capsys):
    old = _run(tmp_path / "old")
    new = _run(tmp_path / "new", keep=0.9)
    result = compare_runs(new, old)
    rows = [r for r in result.regressions() if r.verdict == ITEMS_DIFFER]
    assert {r.metric for r in rows} >= {"ece", "accuracy"}
    assert "80 of the 800 old items are missing" in rows[0].note
    assert main(["compare", str(new), str(old)]) == 3
    assert "items differ" in capsys.readouterr().out

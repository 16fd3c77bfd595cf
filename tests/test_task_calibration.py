import numpy as np
import pytest
import torch

from bench import registry
from bench.config import build_config
from bench.data.digits import load_digits_split
from bench.metrics import METRICS
from bench.tasks.base import RunContext, get_task
from bench.tasks.calibration import CalibrationConfig, score_calibrator, train_classifier


def test_digits_split_is_stratified_disjoint_and_seeded():
    a, b = load_digits_split(0), load_digits_split(0)
    assert torch.equal(a.x_test, b.x_test)
    assert not torch.equal(load_digits_split(1).x_test, a.x_test)
    assert sum(a.sizes().values()) == 1797
    assert a.x_train.shape[1:] == (1, 8, 8) and float(a.x_train.max()) <= 1.0
    rows = lambda x: {tuple(r.flatten().tolist()) for r in x}  # noqa: E731
    # digits has a few duplicate images, so compare sizes rather than demand empty overlap
    assert len(rows(a.x_train) & rows(a.x_test)) < 10
    test_counts = np.bincount(a.y_test.numpy(), minlength=10)
    assert test_counts.min() >= 0.9 * test_counts.max() - 2  # stratified: classes balanced
    with pytest.raises(ValueError, match="sum to less than 1"):
        load_digits_split(0, 0.5, 0.5)


@pytest.mark.parametrize("task_name", [n for n in registry.names("task")])
def test_every_task_declares_known_metrics_and_methods(task_name):
    task = get_task(task_name)
    assert set(task.table_metrics) <= set(METRICS), "add new metrics to bench.metrics.METRICS"
    rows = task.grid()
    assert rows, "a task needs at least one method combination"
    for row in rows:
        assert tuple(row) == task.families
        for family, name in row.items():
            if family in task.axes:  # a grid dimension that is not a method (e.g. language)
                assert name in task.axes[family]
            elif name != "-":  # "-": the family does not apply to this row (e.g. a baseline)
                registry.get(family, name)
    assert any(task.baseline_of(row) is None for row in rows) or not task.baseline


def test_calibration_cells_share_trained_models_consecutively():
    task = get_task("calibration")
    cells = task.cells("quick", [0, 1])
    assert len(cells) == 2 * 5 * 2
    keys = [(c.method["classifier"], c.seed) for c in cells]
    assert keys == sorted(keys)
    assert len({c.key for c in cells}) == len(cells)
    with pytest.raises(ValueError, match="unknown scale"):
        task.config("huge")
    with pytest.raises(ValueError, match="unknown key"):
        build_config(CalibrationConfig, {"epoch": 3})


def test_training_overfits_into_overconfidence():
    """The premise of the task: the trained network is more confident than it is accurate."""
    ctx = RunContext(device=torch.device("cpu"), quiet=True)
    out = train_classifier("mlp", 0, build_config(CalibrationConfig, epochs=150), ctx)
    logits, labels = torch.from_numpy(out["test_logits"]), torch.from_numpy(out["test_labels"])
    probs = logits.softmax(1)
    confidence = probs.max(1).values.mean().item()
    accuracy = (probs.argmax(1) == labels).double().mean().item()
    assert 0.8 < accuracy < confidence
    assert out["curves"]["train_loss"][-1] < 0.01 < out["curves"]["valid_nll"][-1]
    assert out["timing"]["train_samples_per_s"] > 0 and out["timing"]["flops_per_sample"] > 0


def test_score_calibrator_on_known_overconfidence():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (4000, 6))
    labels = np.array([rng.choice(6, p=np.exp(r) / np.exp(r).sum()) for r in true])
    logits = 2.5 * true
    none = score_calibrator("none", logits[:2000], labels[:2000], logits[2000:], labels[2000:])
    ts = score_calibrator("temperature", logits[:2000], labels[:2000], logits[2000:], labels[2000:])
    assert ts.metrics["temperature"] == pytest.approx(2.5, rel=0.1)
    assert ts.metrics["ece"] < 0.5 * none.metrics["ece"]
    assert ts.metrics["accuracy"] == none.metrics["accuracy"]  # a temperature keeps the argmax
    assert sum(ts.curves["reliability_count"]) == 2000
    assert len(ts.curves["coverage"]) == len(ts.curves["risk"]) == 100

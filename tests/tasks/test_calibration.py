import numpy as np
import pytest
import torch

from bench.config import build_config
from bench.context import RunContext
from bench.data.digits import load_digits_split
from bench.scoring import score_calibrator
from bench.tasks.base import get_task
from bench.tasks.calibration import CalibrationConfig, train_classifier

TINY = {**get_task("calibration").config("quick"), "epochs": 4, "eval_every": 2}


def test_digits_split_is_stratified_disjoint_and_seeded():
    a, b = load_digits_split(0), load_digits_split(0)
    assert torch.equal(a.x_test, b.x_test)
    assert not torch.equal(load_digits_split(1).x_test, a.x_test)
    assert sum(a.sizes().values()) == 1797
    assert a.x_train.shape[1:] == (1, 8, 8) and float(a.x_train.max()) <= 1.0
    ids = np.concatenate([a.id_train, a.id_valid, a.id_test])
    assert sorted(ids.tolist()) == list(range(1797))  # every image once: ids are the images
    x = torch.from_numpy(np.stack([load_digits_split(0).x_test[0].numpy()]))
    assert torch.equal(x[0], a.x_test[0])
    test_counts = np.bincount(a.y_test.numpy(), minlength=10)
    assert test_counts.min() >= 0.9 * test_counts.max() - 2  # stratified: classes balanced
    with pytest.raises(ValueError, match="sum to less than 1"):
        load_digits_split(0, 0.5, 0.5)


def test_calibration_grid_is_classifiers_by_calibrators():
    task = get_task("calibration")
    cells = task.cells("quick", [0, 1])
    assert len(cells) == 2 * 5 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert task.baseline_of({"classifier": "cnn", "calibrator": "isotonic"}) == {
        "classifier": "cnn",
        "calibrator": "none",
    }
    narrowed = task.grid({"calibrator": ["temperature"]})
    assert {r["calibrator"] for r in narrowed} == {"none", "temperature"}  # baseline kept
    with pytest.raises(ValueError, match="unknown scale"):
        task.config("huge")
    with pytest.raises(ValueError, match="unknown key"):
        build_config(CalibrationConfig, {"epoch": 3})


@pytest.mark.parametrize("calibrator", ["none", "temperature"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    calibrator, tmp_path, check_task_cell
):
    check_task_cell("calibration", {"classifier": "mlp", "calibrator": calibrator}, TINY, tmp_path)


def test_training_overfits_into_overconfidence():
    """The premise of the task: the trained network is more confident than it is accurate."""
    ctx = RunContext(device=torch.device("cpu"), quiet=True).for_cell(0)
    out = train_classifier("mlp", build_config(CalibrationConfig, epochs=150), ctx)
    logits, labels = torch.from_numpy(out["test_logits"]), torch.from_numpy(out["test_labels"])
    probs = logits.softmax(1)
    confidence = probs.max(1).values.mean().item()
    accuracy = (probs.argmax(1) == labels).double().mean().item()
    assert 0.8 < accuracy < confidence
    assert out["curves"]["train_loss"][-1] < 0.01 < out["curves"]["valid_nll"][-1]
    assert len(out["curves"]["train_loss"]) == 150  # one mean per epoch
    assert out["curves"]["valid_epoch"][-1] == 150
    assert out["timing"]["train_samples_per_s"] > 0 and out["timing"]["flops_per_sample"] > 0


def test_score_calibrator_on_known_overconfidence():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (4000, 6))
    labels = np.array([rng.choice(6, p=np.exp(r) / np.exp(r).sum()) for r in true])
    logits = 2.5 * true
    valid, test, ids = (
        (logits[:2000], labels[:2000]),
        (logits[2000:], labels[2000:]),
        np.arange(2000),
    )
    none, _, _, _ = score_calibrator("none", valid, test, ids)
    ts, curves, _, items = score_calibrator("temperature", valid, test, ids)
    assert ts["temperature"] == pytest.approx(2.5, rel=0.1)
    assert ts["ece"] < 0.5 * none["ece"]
    assert ts["accuracy"] == none["accuracy"]  # a temperature keeps the argmax
    assert sum(curves["reliability_count"]) == 2000
    assert len(curves["coverage"]) == len(curves["risk"]) == 100
    assert items["correct"].mean() == ts["accuracy"] and len(items["item_id"]) == 2000

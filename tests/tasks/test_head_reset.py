"""The head-reset transfer task (bench/tasks/head_reset.py) and its helpers
(bench/models/head_reset.py)."""

import numpy as np
import pytest
import torch
from torch import nn

import bench.tasks.head_reset as head_reset_task
from bench import registry
from bench.config import build_config
from bench.context import RunContext
from bench.models.classifier_training import FitConfig, fit_classifier
from bench.models.head_reset import HeadOnly, class_subset, k_shot, last_linear, reset_head
from bench.store import Cell
from bench.tasks.base import get_task
from bench.tasks.head_reset import HeadResetConfig
from tests.tasks.conftest import run_tiny

TINY = {
    **get_task("head_reset").config("quick"),
    "pretrain_epochs": 1,
    "finetune_steps": 3,
}


def test_grid_is_modes_by_shots_against_scratch():
    task = get_task("head_reset")
    rows = task.grid(scale="default")
    assert len(rows) == 9
    assert {(r["mode"], r["shots"]) for r in rows} == {
        (m, k) for m in ("scratch", "head_only", "full") for k in ("5", "10", "50")
    }
    assert task.baseline_of({"mode": "full", "shots": "10"}) == {"mode": "scratch", "shots": "10"}
    rows = task.grid({"shots": ["2"]}, "default")
    assert {r["shots"] for r in rows} == {"2"} and len(rows) == 3
    with pytest.raises(ValueError, match="unknown shots"):
        task.grid({"shots": ["3"]}, "default")


@pytest.mark.parametrize("mode", ["scratch", "head_only", "full"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(mode, tmp_path, check_task_cell):
    check_task_cell("head_reset", {"mode": mode, "shots": "5"}, TINY, tmp_path)


def test_the_pretrained_network_is_reused_not_retrained(tmp_path, monkeypatch):
    calls = []
    real = head_reset_task.pretrain

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(head_reset_task, "pretrain", counting)
    first = run_tiny("head_reset", {"mode": "full", "shots": "5"}, TINY, tmp_path)
    assert len(calls) == 1
    run_tiny("head_reset", {"mode": "head_only", "shots": "10"}, TINY, tmp_path)
    again = run_tiny("head_reset", {"mode": "full", "shots": "5"}, TINY, tmp_path)
    assert len(calls) == 1  # loaded from the run folder twice
    assert again.record.metrics == first.record.metrics  # loading gives the same network
    assert len(list((tmp_path / "artifacts" / "head_reset").glob("*.pt"))) == 1
    run_tiny("head_reset", {"mode": "full", "shots": "5"}, TINY, tmp_path, seed=1)
    assert len(calls) == 2  # a new seed pre-trains its own


def test_head_only_training_changes_the_head_and_nothing_else():
    torch.manual_seed(0)
    model = registry.build("classifier", "cnn", num_classes=3)
    model.train()
    model(torch.rand(32, 1, 8, 8))  # batch-norm statistics away from their init
    head = reset_head(model, 2)
    assert last_linear(model) == "head.3" and head.out_features == 2
    wrapped = HeadOnly(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(40, 1, 8, 8), torch.arange(40) % 2
    params = [p for p in wrapped.parameters() if p.requires_grad]
    assert len(params) == 2 and params[0] is head.weight
    ctx = RunContext(device=torch.device("cpu"), quiet=True).for_cell(0)
    fit_classifier(wrapped, x, y, FitConfig(epochs=3, batch_size=16, lr=0.1), ctx, params=params)
    after = model.state_dict()
    for name, value in before.items():
        if name.startswith("head.3."):
            assert not torch.equal(after[name], value), name
        else:
            assert torch.equal(after[name], value), name  # weights and running stats alike


def test_k_shot_draws_k_per_class_nested_and_checks_its_input():
    y = torch.tensor([0] * 10 + [1] * 7 + [2] * 12)
    five = k_shot(y, 5, np.random.default_rng(3))
    assert np.bincount(y[five].numpy()).tolist() == [5, 5, 5]
    seven = k_shot(y, 7, np.random.default_rng(3))
    assert set(five) <= set(seven)  # same seed: the 5-shot set lies inside the 7-shot set
    assert not np.array_equal(five, k_shot(y, 5, np.random.default_rng(4)))
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        k_shot(y, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="7 training images of class 1"):
        k_shot(y, 8, np.random.default_rng(0))


def test_class_subset_relabels_in_the_given_order():
    x = torch.arange(6.0)[:, None]
    y = torch.tensor([5, 0, 7, 5, 9, 7])
    xs, ys, ids = class_subset(x, y, np.arange(6), (7, 5))
    assert ys.tolist() == [1, 0, 1, 0] and ids.tolist() == [0, 2, 3, 5]
    assert xs[:, 0].tolist() == [0.0, 2.0, 3.0, 5.0]


def test_too_many_shots_fail_the_cell_with_a_clear_message(tmp_path):
    task = get_task("head_reset")
    config = {**TINY, "valid_fraction": 0.45, "test_fraction": 0.45}  # ~18 train per digit
    bad = Cell("head_reset", {"mode": "scratch", "shots": "50"}, 0, "quick", config)
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    with pytest.raises(ValueError, match="shots=50 is more than the"):
        task.run(bad, ctx)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"finetune_steps": 0}, "finetune_steps"),
        ({"head_lr": 0.0}, "head_lr"),
        ({"new_classes": (4, 5)}, "disjoint"),
    ],
)
def test_bad_configs_are_input_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        build_config(HeadResetConfig, {**TINY, **bad})


def test_head_reset_keeps_the_layer_type_and_device():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    new = reset_head(model, 5)
    assert model[2] is new and new.in_features == 8 and new.out_features == 5
    with pytest.raises(ValueError, match="no nn.Linear"):
        last_linear(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("seeds", [1, 3])
def test_figure_draws_from_records(seeds, tmp_path):
    from bench.report.task_figures import draw_task_figures
    from bench.store import Record

    rng = np.random.default_rng(0)
    records = [
        Record(
            "r", "head_reset", {"mode": m, "shots": k}, {}, s, "quick",
            metrics={"accuracy": float(rng.uniform(0.5, 1))},
        )
        for m in ("scratch", "head_only", "full") for k in ("5", "10", "50") for s in range(seeds)
    ]  # fmt: skip
    figs = draw_task_figures("head_reset", records, tmp_path, formats=("png",))
    assert [f.stem for f in figs] == ["head_reset_accuracy"]
    assert (tmp_path / "head_reset_accuracy.png").stat().st_size > 0
    assert ("1 seed, no interval" in figs[0].caption) == (seeds == 1)

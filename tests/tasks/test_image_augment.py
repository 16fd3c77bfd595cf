"""The image augmentation ablation task (bench/tasks/image_augment.py)."""

import numpy as np
import pytest
import torch

from bench.config import build_config
from bench.tasks.base import get_task
from bench.tasks.image_augment import ImageAugmentConfig, augment_generator, shifted_test_sets

TINY = {**get_task("image_augment").config("quick"), "epochs": 2, "eval_every": 1}


def test_grid_is_the_four_augmentations_against_none():
    task = get_task("image_augment")
    rows = task.grid(scale="default")
    assert [r["image_augment"] for r in rows] == ["none", "rotation", "scale", "both"]
    assert task.baseline_of({"image_augment": "both"}) == {"image_augment": "none"}
    assert task.baseline_of({"image_augment": "none"}) is None
    assert {r["image_augment"] for r in task.grid({"image_augment": ["scale"]})} == {
        "none",
        "scale",
    }


@pytest.mark.parametrize("augment", ["none", "both"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    augment, tmp_path, check_task_cell
):
    check_task_cell("image_augment", {"image_augment": augment}, TINY, tmp_path)


def test_test_sets_pair_across_cells_and_hold_every_condition():
    config = build_config(ImageAugmentConfig, TINY)
    sets = shifted_test_sets(config, 0)
    x, y, ids = sets["clean"]
    n = len(ids)
    assert len(set(ids)) == n and all(i.startswith("digit") for i in ids)
    xr, yr, idr = sets["rotated"]
    assert len(idr) == 2 * n and len(set(idr)) == 2 * n
    assert idr[0] == f"{ids[0]}/rot-30" and idr[n] == f"{ids[0]}/rot+30"
    assert torch.equal(yr, torch.cat([y, y]))
    assert not torch.equal(xr[:n], x) and not torch.equal(xr[:n], xr[n:])
    xs, _, ids_s = sets["scaled"]
    assert ids_s[0] == f"{ids[0]}/scale0.7" and ids_s[n] == f"{ids[0]}/scale1.3"
    again = shifted_test_sets(config, 0)
    for condition in sets:
        assert torch.equal(sets[condition][0], again[condition][0])
        assert np.array_equal(sets[condition][2], again[condition][2])


def test_the_augmentation_stream_is_apart_from_the_order_stream():
    a, b = augment_generator(0), augment_generator(0)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    order = torch.Generator().manual_seed(0)
    assert not torch.equal(
        torch.rand(5, generator=augment_generator(0)), torch.rand(5, generator=order)
    )
    assert not torch.equal(
        torch.rand(5, generator=augment_generator(0)), torch.rand(5, generator=augment_generator(1))
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"test_degrees": -30.0}, "test_degrees"),
        ({"test_scales": (0.7, 1.0)}, "test_scales"),
        ({"test_scales": ()}, "test_scales"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_configs_are_input_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        build_config(ImageAugmentConfig, {**TINY, **bad})


@pytest.mark.parametrize("seeds", [1, 3])
def test_figure_draws_from_records(seeds, tmp_path):
    from bench.report.task_figures import draw_task_figures
    from bench.store import Record

    rng = np.random.default_rng(0)
    conditions = ("clean", "rotated", "scaled")
    records = [
        Record(
            "r", "image_augment", {"image_augment": a}, {}, s, "quick",
            metrics={f"accuracy_{c}": float(rng.uniform(0.5, 1)) for c in conditions},
        )
        for a in ("none", "rotation") for s in range(seeds)
    ]  # fmt: skip
    figs = draw_task_figures("image_augment", records, tmp_path, formats=("png",))
    assert [f.stem for f in figs] == ["image_augment_accuracy"]
    assert (tmp_path / "image_augment_accuracy.png").stat().st_size > 0
    assert "interval" in figs[0].caption
    assert ("1 seed, no interval" in figs[0].caption) == (seeds == 1)

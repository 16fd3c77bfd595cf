"""The grid as data: how --methods narrows a task's rows, and how baselines pair."""

import pytest

from bench import registry
from bench.registry import UnknownNameError
from bench.tasks.base import get_task, product
from methods.calibration import NoCalibration


def _pairs(rows, *families):
    return sorted(tuple(r[f] for f in families) for r in rows)


def test_product_rows_in_keyword_order():
    assert product(a=("x", "y"), b="z") == [{"a": "x", "b": "z"}, {"a": "y", "b": "z"}]


def test_method_selection_keeps_its_baselines_only():
    task = get_task("calibration")
    rows = task.grid({"classifier": ["mlp"]})
    assert {r["classifier"] for r in rows} == {"mlp"}  # no cnn baseline sneaks in
    rows = task.grid({"calibrator": ["isotonic"]})
    assert _pairs(rows, "classifier", "calibrator") == [
        ("cnn", "isotonic"),
        ("cnn", "none"),
        ("mlp", "isotonic"),
        ("mlp", "none"),
    ]
    assert task.baseline_of({"classifier": "mlp", "calibrator": "isotonic"}) == {
        "classifier": "mlp",
        "calibrator": "none",
    }
    assert task.baseline_of({"classifier": "mlp", "calibrator": "none"}) is None


def test_a_registered_name_outside_the_rows_enters_in_place_of_its_family():
    task = get_task("calibration")
    registry.register("calibrator", "grid_test_new")(type("GridTestNew", (NoCalibration,), {}))
    try:
        rows = task.grid({"calibrator": ["grid_test_new", "vector"]})
    finally:
        registry._REGISTRY["calibrator"].pop("grid_test_new")
    assert _pairs(rows, "classifier", "calibrator") == [
        (c, k) for c in ("cnn", "mlp") for k in ("grid_test_new", "none", "vector")
    ]
    speaker = get_task("speaker")
    rows = speaker.grid({"loss": ["triplet"], "miner": ["hardest"]})
    assert ("-", "-") in _pairs(rows, "loss", "miner")  # the untrained baseline stays
    assert ("triplet", "hardest") in _pairs(rows, "loss", "miner")
    assert all(r["loss"] in ("triplet", "-") for r in rows)
    with pytest.raises(UnknownNameError, match="known calibrator names"):
        task.grid({"calibrator": ["platt_topp"]})


def test_axis_selection_replaces_the_scales_values():
    asr = get_task("asr")
    rows = asr.grid({"labeled": ["60min"], "language": ["en"]}, "quick")
    assert {r["labeled"] for r in rows} == {"60min"} and {r["language"] for r in rows} == {"en"}
    assert len(rows) == len({tuple(r.items()) for r in rows})
    with pytest.raises(ValueError, match="unknown labeled"):
        asr.grid({"labeled": ["3min"]}, "quick")

"""digits_metric scores the layer before the CNN's head (issue 21) and reports the head's
output and raw pixels beside it, each recomputable from the items."""

import numpy as np
import pytest
import torch

from bench import registry
from bench.context import RunContext
from bench.metrics.retrieval import cosine_matrix, first_correct_ranks, recall_at_1
from bench.models.digits_metric_views import (
    compact_embedding,
    embed,
    nearest_recall_at_1,
    ranking_items,
)
from bench.store import Cell
from bench.tasks import digits_metric
from bench.tasks.base import get_task

TINY = {"steps": 3, "classes_per_batch": 2, "samples_per_class": 2, "channels": 4, "eval_every": 2}
UNTRAINED = {"loss": "-", "miner": "-"}


def small_cnn(channels: int = 4) -> torch.nn.Module:
    return registry.build("classifier", "cnn", params={"channels": channels}, num_classes=32)


def test_embed_reads_the_named_layer():
    torch.manual_seed(0)
    model, x = small_cnn(), torch.rand(6, 1, 8, 8)
    pooled = embed(model, x, torch.device("cpu"), "pooled")
    output = embed(model, x, torch.device("cpu"), "output")
    with torch.no_grad():
        assert np.allclose(pooled, model.features(x).flatten(1).numpy())
        assert np.allclose(output, model(x).numpy())
    assert pooled.shape == (6, 2 * 4 * 16) and output.shape == (6, 32)
    with pytest.raises(ValueError, match="unknown embedding layer 'last'"):
        embed(model, x, torch.device("cpu"), "last")


def test_compact_embedding_keeps_the_cosines():
    x = np.random.default_rng(0).normal(size=(20, 512)) * 7.0
    small = compact_embedding(x)
    assert small.dtype == np.int8 and (np.abs(small).max(axis=1) == 127).all()
    a, b = cosine_matrix(x).numpy(), cosine_matrix(small).numpy()
    off = ~np.eye(20, dtype=bool)
    assert np.abs(a[off] - b[off]).max() < 0.01


def test_nearest_recall_at_1_is_recall_at_1_ties_included():
    rng = np.random.default_rng(1)
    emb = rng.integers(0, 3, size=(60, 4)).astype(float) + 0.5  # many exact ties
    labels = rng.integers(0, 4, size=60)
    assert nearest_recall_at_1(emb, labels) == recall_at_1(emb, labels)


def test_ranking_items_by_hand():
    # by angle (degrees): a at 0 and 5.7; b at 90, 84.3 and 11.3 (nearest to it: the a's)
    emb = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [1.0, 0.2]])
    items = ranking_items(emb, ["a", "a", "b", "b", "b"], [10, 11, 12, 13, 14])
    assert items["item_id"].tolist() == ["10", "11", "12", "13", "14"]
    # query 1 (a at 5.7): 4 (b) is 5.6 away, 0 (a) 5.7; query 4: 1 (a), 0 (a), 3 (b), 2 (b)
    assert items["rank"].tolist() == [1, 2, 1, 1, 3]
    assert items["ap_at_r"][4] == pytest.approx(0.0)  # R = 2, both b's ranked 3rd and 4th


def untrained_cell(config: dict) -> tuple[dict, dict]:
    """Run the untrained cell with torch seeded at 0; the same network rebuilt after it."""
    task = get_task("digits_metric")
    torch.manual_seed(0)
    cell = Cell("digits_metric", UNTRAINED, 0, "quick", config)
    result = task.run(cell, RunContext(device=torch.device("cpu"), quiet=True).for_cell(0))
    torch.manual_seed(0)
    return result.items | {"metrics": result.metrics}, {"model": small_cnn(config["channels"])}


def test_the_scored_embedding_is_the_pooled_layer_and_output_is_beside_it():
    items, built = untrained_cell(TINY)
    x, y, _ = digits_metric.digits_by_class()["test"]
    with torch.no_grad():
        pooled = built["model"].eval().features(x).flatten(1).numpy()
        output = built["model"](x).numpy()
    assert items["test"]["embedding"].shape == (len(y), 2 * TINY["channels"] * 16)
    assert np.array_equal(items["test"]["embedding"], compact_embedding(pooled))
    assert np.array_equal(items["test"]["rank"], first_correct_ranks(pooled, y))
    assert np.array_equal(items["output"]["rank"], first_correct_ranks(output, y))
    m = items["metrics"]
    assert m["recall_at_1"] == pytest.approx(recall_at_1(pooled, y))
    assert m["output_recall_at_1"] == pytest.approx(recall_at_1(output, y))


def test_output_layer_can_be_scored_instead():
    items, built = untrained_cell(TINY | {"embedding_layer": "output"})
    assert items["test"]["embedding"].shape[1] == 32
    assert items["metrics"]["recall_at_1"] == items["metrics"]["output_recall_at_1"]


def test_raw_pixel_reference_comes_from_its_items():
    items, _ = untrained_cell(TINY)
    x, y, ids = digits_metric.digits_by_class()["test"]
    flat = x.reshape(len(x), -1).numpy()
    assert items["pixels"]["item_id"].tolist() == [str(i) for i in ids]
    assert np.array_equal(items["pixels"]["rank"], first_correct_ranks(flat, y))
    m = items["metrics"]
    assert m["pixels_recall_at_1"] == np.mean(items["pixels"]["rank"] == 1)
    assert m["pixels_map_at_r"] == pytest.approx(np.nanmean(items["pixels"]["ap_at_r"]))
    assert m["pixels_recall_at_1"] == pytest.approx(0.9911, abs=1e-4)  # measured: 888 / 896


def test_bad_layer_is_a_config_error_that_names_it():
    with pytest.raises(ValueError, match="embedding_layer='fc'.*pooled"):
        digits_metric.build_config(digits_metric.DigitsMetricConfig, {"embedding_layer": "fc"})


def test_headline_is_map_at_r_and_the_card_states_the_pixel_reference():
    task = get_task("digits_metric")
    assert task.headline == "map_at_r" and "output_map_at_r" in task.table_metrics
    card = task.dataset_card(task.config("quick"))
    assert "Scored layer: pooled" in card and "Recall@1 99.1%" in card

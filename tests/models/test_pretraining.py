"""Pre-training's pieces: crops without padding, τ annealed over a share of the updates,
the same initial weights for every row of a seed, chance accuracy, kept networks."""

import numpy as np
import pytest
import torch

from bench import registry
from bench.context import RunContext
from bench.models.pretraining import (
    TAU_RANGE,
    PretrainConfig,
    build_network,
    chance_accuracy,
    random_crops,
)

registry.load_all()


def _ctx(tmp_path) -> RunContext:
    return RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)


def test_crops_are_cut_to_the_shortest_utterance_and_never_padded():
    audio = [np.full(n, k + 1, dtype=np.float32) for k, n in enumerate((900, 5000, 7000))]
    rng = np.random.default_rng(0)
    for _ in range(20):
        crops = random_crops(audio, 4, 4000, rng)
        assert crops.shape[1] <= 4000
        assert bool((crops != 0).all())  # every sample is real audio, no zero padding
        rows_from_short = (crops[:, 0] == 1).any()
        assert crops.shape[1] == (900 if rows_from_short else 4000)


def test_gumbel_temperature_reaches_its_floor_at_the_configured_share(tmp_path):
    config = PretrainConfig(model_size="tiny", steps=200, tau_anneal_fraction=0.25)
    torch.manual_seed(0)
    model = build_network("gumbel", "contrastive", config, _ctx(tmp_path))
    model.anneal(49)
    assert model.quantizer.tau > TAU_RANGE[1] * 1.001
    model.anneal(50)
    assert model.quantizer.tau == pytest.approx(TAU_RANGE[1], rel=1e-6)
    assert (model.quantizer.tau_max, model.quantizer.tau_min) == TAU_RANGE  # one range


def test_every_row_of_a_seed_starts_from_the_same_network(tmp_path):
    """The random-init baseline and each pre-trained row of a seed share their initial
    input projection and context network, so their paired difference is pre-training."""
    config = PretrainConfig(model_size="tiny")
    nets = []
    for quantizer, objective in (("gumbel", "contrastive"), (None, "data2vec"), ("vq", "proxy")):
        torch.manual_seed(3)
        nets.append(build_network(quantizer, objective, config, _ctx(tmp_path)))
    for other in nets[1:]:
        for name in ("projection", "context"):
            a, b = getattr(nets[0], name).state_dict(), getattr(other, name).state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a), name


def test_chance_accuracy_per_objective(tmp_path):
    config = PretrainConfig(model_size="tiny")
    ctx = _ctx(tmp_path)
    k = build_network("gumbel", "contrastive", config, ctx).config.num_negatives
    assert chance_accuracy(build_network("gumbel", "contrastive", config, ctx)) == 1 / (k + 1)
    proxy = build_network("gumbel", "proxy", config, ctx)
    assert chance_accuracy(proxy) == 1 / proxy.quantizer.num_entries
    assert np.isnan(chance_accuracy(build_network(None, "data2vec", config, ctx)))

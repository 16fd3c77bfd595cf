import pytest
import torch

from bench.models.ctc_probe import (
    BLANK,
    ProbeConfig,
    decode,
    greedy_decode,
    normalize_utterance,
    train_probe,
)


def test_greedy_collapse_on_hand_made_posteriors():
    vocab = ["a", "b"]
    # frames: a a blank a b b blank -> "a a b" (a repeated across a blank stays twice)
    best = [1, 1, BLANK, 1, 2, 2, BLANK]
    log_probs = torch.full((len(best), 3), -10.0)
    log_probs[torch.arange(len(best)), torch.tensor(best)] = 0.0
    assert greedy_decode(log_probs, len(best), vocab) == ["a", "a", "b"]
    assert greedy_decode(log_probs, 2, vocab) == ["a"]  # length limits the frames read


def test_probe_learns_a_separable_toy_task():
    torch.manual_seed(0)
    vocab = ["x", "y", "z"]
    protos = torch.eye(4)[:3] * 3
    feats, targets = [], []
    for _ in range(60):
        seq = torch.randint(0, 3, (4,)).tolist()
        frames = [protos[t].repeat(3, 1) for t in seq]  # 3 frames per token
        frames = [torch.cat([f, torch.zeros(1, 4) + torch.tensor([0, 0, 0, 3.0])]) for f in frames]
        feats.append(torch.cat(frames) + 0.1 * torch.randn(16, 4))
        targets.append([vocab[t] for t in seq])
    probe = train_probe(
        feats, targets, vocab, ProbeConfig(epochs=60, lr=0.05), torch.Generator().manual_seed(0)
    )
    hyps = decode(probe, feats[:10])
    assert sum(h == t for h, t in zip(hyps, targets[:10], strict=True)) >= 8


def toy_task(n: int, seed: int) -> tuple[list[torch.Tensor], list[list[str]], list[str]]:
    """Utterances of 4 tokens, 3 frames each plus a separator frame: linearly decodable."""
    g = torch.Generator().manual_seed(seed)
    vocab = ["x", "y", "z"]
    protos = torch.eye(4) * 3  # rows 0-2 the tokens, row 3 the separator
    feats, targets = [], []
    for _ in range(n):
        seq = torch.randint(0, 3, (4,), generator=g).tolist()
        frames = torch.cat([torch.cat([protos[t].repeat(3, 1), protos[3:]]) for t in seq])
        feats.append(frames + 0.1 * torch.randn(16, 4, generator=g))
        targets.append([vocab[t] for t in seq])
    return feats, targets, vocab


def weights(probe) -> list[torch.Tensor]:
    return [p.detach().clone() for p in probe.parameters()]


@pytest.mark.parametrize("kind", ["conv", "gru"])
def test_start_comes_from_the_generator_not_the_global_rng(kind):
    feats, targets, vocab = toy_task(8, seed=1)
    config = ProbeConfig(kind=kind, hidden=8, epochs=0)  # the start itself

    def start(seed: int, global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)
        torch.rand(1000)  # randomness consumed before the probe, as by pre-training
        return weights(
            train_probe(feats, targets, vocab, config, torch.Generator().manual_seed(seed))
        )

    same = start(0, global_seed=1), start(0, global_seed=2)
    assert all(torch.equal(a, b) for a, b in zip(*same, strict=True))
    other = start(1, global_seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(same[0], other, strict=True))


def test_building_the_probe_leaves_the_global_rng_alone():
    feats, targets, vocab = toy_task(4, seed=1)
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    train_probe(feats, targets, vocab, ProbeConfig(epochs=1), torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(5), expected)


def test_trained_weights_repeat_under_a_different_global_rng():
    feats, targets, vocab = toy_task(8, seed=1)
    config = ProbeConfig(epochs=2, batch_size=4)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        runs.append(
            weights(train_probe(feats, targets, vocab, config, torch.Generator().manual_seed(0)))
        )
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def logits(probe, feats: list[torch.Tensor]) -> torch.Tensor:
    """The probe's outputs on equal-length (L, T, D) utterances, normalised as in training."""
    x = [f.transpose(0, 1) for f in feats]  # (T, L, D)
    x = [normalize_utterance(f) for f in x] if probe.config.utterance_norm else x
    with torch.no_grad():
        return probe(torch.stack(x))


@pytest.mark.parametrize("utterance_norm", [True, False])
def test_rescaled_copies_of_one_layer_give_the_single_layer_probe(utterance_norm):
    """softmax(w) sums to 1 and each layer is standardised on its own, so rescaled copies
    of one layer standardise to the same features and change nothing."""
    feats, targets, vocab = toy_task(12, seed=2)
    config = ProbeConfig(epochs=3, batch_size=4, lr=0.05, utterance_norm=utterance_norm)
    single = train_probe(feats, targets, vocab, config, torch.Generator().manual_seed(0))
    one = [f[None] for f in feats]
    same = train_probe(one, targets, vocab, config, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(weights(single), weights(same), strict=True))
    copies = [torch.stack([f, 10 * f + 3, 0.5 * f - 2]) for f in feats]
    three = train_probe(copies, targets, vocab, config, torch.Generator().manual_seed(0))
    torch.testing.assert_close(logits(three, copies), logits(single, one), atol=1e-3, rtol=1e-3)
    assert decode(three, copies) == decode(single, feats)


def test_weighted_sum_finds_the_informative_layer():
    feats, targets, vocab = toy_task(48, seed=3)
    g = torch.Generator().manual_seed(4)
    informative = 2
    layered = []
    for f in feats:
        noise = torch.randn(4, *f.shape, generator=g)
        noise[informative] = f
        layered.append(noise)
    config = ProbeConfig(epochs=20, batch_size=8, lr=0.05)
    probe = train_probe(layered, targets, vocab, config, torch.Generator().manual_seed(0))
    w = probe.layer_weights()
    assert w.shape == (4,)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0))
    assert w.argmax() == informative and w[informative] > 0.7, w
    hyps = decode(probe, layered[:10])
    assert sum(h == t for h, t in zip(hyps, targets[:10], strict=True)) >= 8


def test_layer_weights_start_uniform():
    feats, targets, vocab = toy_task(4, seed=1)
    probe = train_probe(
        [torch.stack([f, f.flip(0)]) for f in feats], targets, vocab, ProbeConfig(epochs=0)
    )
    assert torch.equal(probe.layer_weights(), torch.full((2,), 0.5))


def test_features_must_agree_in_form():
    feats, targets, vocab = toy_task(4, seed=1)
    mixed = [feats[0], feats[1][None].expand(2, -1, -1), *feats[2:]]
    with pytest.raises(ValueError, match="differ"):
        train_probe(mixed, targets, vocab, ProbeConfig(epochs=0))
    probe = train_probe(feats, targets, vocab, ProbeConfig(epochs=0))
    with pytest.raises(ValueError, match="fit on"):
        decode(probe, [f.expand(2, -1, -1) for f in feats])

"""Tests for methods.quantizers: the contract of every quantizer, then each one's maths."""

from __future__ import annotations

import math

import pytest
import torch

import methods.quantizers as mq
from bench import registry

NAMES = registry.names("quantizer")  # methods.quantizers is imported above, so it registered


def make(name: str, **kwargs) -> mq.Quantizer:
    torch.manual_seed(0)
    return registry.get("quantizer", name)(**kwargs)


def random_z(batch: int = 2, steps: int = 5, dim: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, dim, generator=g)


# ---- the contract, for every registered quantizer ---------------------------------------
def test_registry_holds_the_three_quantizers():
    assert {"gumbel", "vq", "none"} <= set(NAMES)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", NAMES)
def test_output_contract_and_straight_through_gradients(name, training):
    quantizer = make(name, in_dim=6, out_dim=8).train(training)
    z = random_z().requires_grad_()
    out = quantizer(z)
    assert isinstance(out, mq.QuantizerOutput)
    assert quantizer.out_dim == 8
    assert out.q.shape == (2, 5, 8) and out.q.dtype == z.dtype
    assert out.codes.shape == (2, 5, quantizer.num_groups) and out.codes.dtype == torch.long
    if quantizer.num_entries:
        assert 0 <= int(out.codes.min()) and int(out.codes.max()) < quantizer.num_entries
    for scalar in (out.loss, out.perplexity):
        assert scalar.dim() == 0 and torch.isfinite(scalar)
    # gradients of q alone reach the input (straight-through), and so do those of q + loss
    weights = torch.randn(out.q.shape, generator=torch.Generator().manual_seed(2))
    (grad_q,) = torch.autograd.grad((out.q * weights).sum(), z, retain_graph=True)
    assert grad_q.abs().sum() > 0
    (out.q.sum() + out.loss).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_mask_is_accepted_and_validated(name):
    quantizer = make(name, in_dim=6, out_dim=8)
    z = random_z()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1:3] = True
    out = quantizer(z, mask=mask)
    assert torch.isfinite(out.perplexity) and torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="mask must have shape"):
        quantizer(z, mask=mask[:, :4])
    with pytest.raises(ValueError, match="no position"):
        quantizer(z, mask=torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, T, 6\)"):
        quantizer(z[..., :5])


@pytest.mark.parametrize("name", NAMES)
def test_codebook_shape_or_clear_error(name):
    quantizer = make(name, in_dim=6, out_dim=8)
    if name == "none":
        with pytest.raises(ValueError, match="needs a quantizer with a codebook"):
            _ = quantizer.codebook
        return
    groups, entries = quantizer.num_groups, quantizer.num_entries
    assert quantizer.codebook.shape == (groups, entries, 8 // groups)


def test_none_is_a_linear_projection():
    quantizer = make("none", in_dim=6, out_dim=8)
    z = random_z()
    out = quantizer(z)
    torch.testing.assert_close(out.q, quantizer.proj(z))
    assert out.loss.item() == 0.0 and out.perplexity.item() == 0.0
    assert not out.codes.any()


# ---- pure statistics -------------------------------------------------------------------
def test_perplexity_of_uniform_and_one_hot_usage():
    groups, entries = 2, 5
    assert mq.perplexity(torch.full((groups, entries), 1 / entries)).item() == pytest.approx(10)
    one_hot = torch.zeros(groups, entries)
    one_hot[:, 3] = 1
    assert mq.perplexity(one_hot).item() == pytest.approx(groups)


def test_marginal_probs_with_mask_averages_only_masked_positions():
    probs = torch.softmax(random_z(1, 6, 4).reshape(6, 1, 4), dim=-1)
    mask = torch.tensor([True, False, True, False, False, True])
    torch.testing.assert_close(mq.marginal_probs(probs, mask), probs[mask].mean(0))
    torch.testing.assert_close(mq.marginal_probs(probs), probs.mean(0))


def test_diversity_loss_on_hand_made_probabilities():
    p_bar = torch.tensor([[0.5, 0.25, 0.25, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    h1 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # H(p̄_1); H(p̄_2) = 0
    gv = 8
    implemented = (gv - (math.exp(h1) + math.exp(0.0))) / gv
    paper = (-h1 - 0.0) / gv
    assert mq.diversity_loss(p_bar, "implemented").item() == pytest.approx(implemented)
    assert mq.diversity_loss(p_bar, "paper").item() == pytest.approx(paper)
    with pytest.raises(ValueError, match="implemented"):
        mq.diversity_loss(p_bar, "other")


def test_diversity_loss_is_minimal_for_uniform_and_maximal_for_collapsed_usage():
    groups, entries = 2, 4
    uniform = torch.full((groups, entries), 1 / entries, dtype=torch.float64)
    collapsed = torch.zeros(groups, entries, dtype=torch.float64)
    collapsed[:, 0] = 1
    middle = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]], dtype=torch.float64)
    gv = groups * entries
    expected = {
        "implemented": (0.0, (gv - groups) / gv),
        "paper": (-groups * math.log(entries) / gv, 0.0),
    }
    for form, (low, high) in expected.items():
        values = [mq.diversity_loss(p, form).item() for p in (uniform, middle, collapsed)]
        assert values[0] == pytest.approx(low, abs=1e-12)
        assert values[2] == pytest.approx(high, abs=1e-12)
        assert values[0] < values[1] < values[2]


# ---- Gumbel ------------------------------------------------------------------------------
def gumbel_with_logits(logits: torch.Tensor, **kwargs) -> mq.GumbelQuantizer:
    """A quantizer whose logits are ``logits`` (G·V,) at every position: weight 0, bias l."""
    groups, entries = kwargs.setdefault("groups", 2), kwargs.setdefault("entries", 4)
    quantizer = mq.GumbelQuantizer(in_dim=3, out_dim=4, **kwargs)
    assert logits.numel() == groups * entries
    with torch.no_grad():
        quantizer.weight_proj.weight.zero_()
        quantizer.weight_proj.bias.copy_(logits)
    return quantizer


@pytest.mark.parametrize("form", ["implemented", "paper"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gumbel_loss_is_the_diversity_loss_of_the_noise_free_softmax(form, training):
    logits = torch.tensor([2.0, 0.0, -1.0, 0.5, 0.0, 0.0, 3.0, 1.0])
    quantizer = gumbel_with_logits(logits, diversity=form).train(training)
    out = quantizer(random_z(dim=3))
    p_bar = torch.softmax(logits.reshape(2, 4), dim=-1)  # every position has the same p
    entropy = -(p_bar * p_bar.log()).sum(-1)
    expected = (8 - entropy.exp().sum()) / 8 if form == "implemented" else -entropy.sum() / 8
    torch.testing.assert_close(out.loss, expected)
    if training:  # perplexity from softmax(l) in training, as transformers
        torch.testing.assert_close(out.perplexity, entropy.exp().sum())
    else:  # from the hard codes in eval: one code per group everywhere -> G
        assert out.perplexity.item() == pytest.approx(2.0)


def test_gumbel_uniform_logits_give_zero_implemented_loss_and_full_perplexity():
    quantizer = gumbel_with_logits(torch.zeros(8)).train()
    out = quantizer(random_z(dim=3))
    assert out.loss.item() == pytest.approx(0.0, abs=1e-6)
    assert out.perplexity.item() == pytest.approx(8.0)


def test_gumbel_temperature_annealing():
    quantizer = mq.GumbelQuantizer(in_dim=3, out_dim=4, entries=4)
    assert quantizer.tau == 2.0
    quantizer.anneal(0)
    assert quantizer.tau == 2.0
    quantizer.anneal(100_000)
    assert quantizer.tau == pytest.approx(2.0 * 0.999995**100_000)  # ≈ 1.213
    quantizer.anneal(10_000_000)
    assert quantizer.tau == 0.5
    with pytest.raises(ValueError):
        quantizer.anneal(-1)


def test_gumbel_forward_is_hard_one_hot_per_group():
    quantizer = mq.GumbelQuantizer(in_dim=6, out_dim=8, groups=2, entries=5).train()
    out = quantizer(random_z())
    picked = quantizer.codebook[torch.arange(2), out.codes]  # (B, T, G, out_dim // G)
    assert torch.equal(out.q, picked.reshape(2, 5, 8))


def test_gumbel_training_is_stochastic_and_eval_deterministic_argmax():
    quantizer = mq.GumbelQuantizer(in_dim=6, out_dim=8, groups=2, entries=5)
    z = random_z(4, 50)
    quantizer.eval()
    first, second = quantizer(z), quantizer(z)
    assert torch.equal(first.q, second.q) and torch.equal(first.codes, second.codes)
    logits = quantizer.weight_proj(z).reshape(4, 50, 2, 5)
    assert torch.equal(first.codes, logits.argmax(-1))
    quantizer.train()
    assert not torch.equal(quantizer(z).codes, quantizer(z).codes)


# ---- agreement with transformers' wav2vec 2.0 ---------------------------------------------
@pytest.fixture(scope="module")
def transformers_pair():
    pytest.importorskip(
        "transformers", reason="transformers is the public reference for wav2vec 2.0"
    )
    from transformers import Wav2Vec2Config
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2GumbelVectorQuantizer

    in_dim, out_dim, groups, entries = 6, 8, 2, 5
    config = Wav2Vec2Config(
        conv_dim=(in_dim,),
        conv_stride=(5,),
        conv_kernel=(10,),
        num_codevector_groups=groups,
        num_codevectors_per_group=entries,
        codevector_dim=out_dim,
    )
    theirs = Wav2Vec2GumbelVectorQuantizer(config)
    ours = mq.GumbelQuantizer(in_dim, out_dim, groups=groups, entries=entries)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # transformers leaves codevectors uninitialised until post_init
        theirs.codevectors.copy_(torch.rand(theirs.codevectors.shape, generator=g))
        theirs.weight_proj.weight.copy_(torch.randn(theirs.weight_proj.weight.shape, generator=g))
        theirs.weight_proj.bias.copy_(torch.randn(theirs.weight_proj.bias.shape, generator=g))
        ours.weight_proj.load_state_dict(theirs.weight_proj.state_dict())
        ours.codevectors.copy_(theirs.codevectors.reshape(groups, entries, out_dim // groups))
    return theirs, ours, groups * entries


@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
def test_gumbel_agrees_with_transformers_in_eval(transformers_pair, masked):
    theirs, ours, _ = transformers_pair
    theirs.eval(), ours.eval()
    z = random_z(3, 7, 6, seed=4)
    mask = (torch.arange(7) % 3 == 0).expand(3, 7).clone() if masked else None
    with torch.no_grad():
        q_ref, ppl_ref = theirs(z, mask_time_indices=mask)
        out = ours(z, mask=mask)
        codes_ref = theirs.weight_proj(z).reshape(3, 7, 2, 5).argmax(-1)
    assert torch.equal(out.codes, codes_ref)
    torch.testing.assert_close(out.q, q_ref, rtol=0, atol=0)
    torch.testing.assert_close(out.perplexity, ppl_ref)


@pytest.mark.parametrize("masked", [False, True], ids=["all", "masked"])
def test_gumbel_agrees_with_transformers_in_training(transformers_pair, masked):
    """Same seed, same Gumbel noise: same codes, same soft-distribution perplexity, and our
    "implemented" loss is Wav2Vec2ForPreTraining's (GV - perplexity) / GV."""
    theirs, ours, num_codevectors = transformers_pair
    theirs.train(), ours.train()
    theirs.temperature = ours.tau = 1.5
    z = random_z(3, 7, 6, seed=5)
    mask = (torch.arange(7) % 2 == 0).expand(3, 7).clone() if masked else None
    torch.manual_seed(11)
    q_ref, ppl_ref = theirs(z, mask_time_indices=mask)
    torch.manual_seed(11)
    out = ours(z, mask=mask)
    torch.testing.assert_close(out.q, q_ref)  # theirs differs from one-hot by rounding
    torch.testing.assert_close(out.perplexity, ppl_ref)
    diversity_ref = (num_codevectors - ppl_ref) / num_codevectors  # Wav2Vec2ForPreTraining
    torch.testing.assert_close(out.loss, diversity_ref)


# ---- VQ ----------------------------------------------------------------------------------
CODEBOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])


def identity_vq(**kwargs) -> mq.VectorQuantizer:
    """A 2-d VQ whose projection is the identity and whose codebook is CODEBOOK."""
    kwargs.setdefault("dead_code_threshold", 0.0)
    quantizer = mq.VectorQuantizer(in_dim=2, out_dim=2, entries=4, **kwargs)
    with torch.no_grad():
        quantizer.proj.weight.copy_(torch.eye(2))
        quantizer.proj.bias.zero_()
        quantizer.embed.copy_(CODEBOOK)
        if quantizer.ema:
            quantizer.embed_sum.copy_(CODEBOOK)
    return quantizer


def test_vq_picks_the_nearest_entry():
    z = torch.tensor([[[0.1, -0.2], [0.8, 0.3], [0.2, 0.9], [-2.0, -0.5], [0.6, 0.1]]])
    out = identity_vq().eval()(z)
    naive = torch.stack([((CODEBOOK - row) ** 2).sum(1).argmin() for row in z[0]])
    assert out.codes[0, :, 0].tolist() == naive.tolist() == [0, 1, 2, 3, 1]
    assert torch.equal(out.q[0], CODEBOOK[naive])


@pytest.mark.parametrize("ema", [False, True], ids=["codebook-loss", "ema"])
def test_vq_loss_on_a_hand_made_case(ema):
    z = torch.tensor([[[0.8, 0.25], [0.0, 1.5]]])  # nearest entries 1 (1, 0) and 2 (0, 1)
    # squared errors: (0.2² + 0.25²) and (0 + 0.5²), mean over 2 positions x 2 dims
    mse = (0.04 + 0.0625 + 0.0 + 0.25) / 4
    out = identity_vq(beta=0.25, ema=ema).eval()(z)
    expected = 0.25 * mse if ema else mse + 0.25 * mse
    assert out.loss.item() == pytest.approx(expected)


def test_vq_codebook_loss_trains_the_codebook_and_commitment_the_encoder():
    quantizer = identity_vq(beta=0.25)
    z = torch.tensor([[[0.8, 0.25]]], requires_grad=True)  # nearest entry 1 = (1, 0)
    quantizer(z).loss.backward()
    # each term a mean over 2 dims: d/de ||sg[z] - e||² / 2 = e - z,
    # d/dz β ||z - sg[e]||² / 2 = β (z - e)
    torch.testing.assert_close(quantizer.embed.grad[1], torch.tensor([0.2, -0.25]))
    assert not quantizer.embed.grad[[0, 2, 3]].any()
    torch.testing.assert_close(z.grad[0, 0], 0.25 * torch.tensor([-0.2, 0.25]))


def test_vq_ema_update_follows_the_formula_in_training_only():
    gamma, eps = 0.9, 1e-5
    z = torch.tensor([[[0.9, 0.1], [1.3, -0.1], [0.1, 0.7]]])  # entries 1, 1, 2
    quantizer = identity_vq(ema=True, ema_decay=gamma, epsilon=eps)
    quantizer.eval()(z)
    assert torch.equal(quantizer.embed, CODEBOOK)  # eval leaves the codebook alone
    quantizer.train()(z)
    counts = torch.tensor([0.0, 2.0, 1.0, 0.0])
    sums = torch.stack([torch.zeros(2), z[0, 0] + z[0, 1], z[0, 2], torch.zeros(2)])
    n = gamma * torch.ones(4) + (1 - gamma) * counts  # N_j = γ N_j + (1-γ) n_j, N_j(0) = 1
    m = gamma * CODEBOOK + (1 - gamma) * sums  # m_j = γ m_j + (1-γ) Σ z, m_j(0) = e_j
    smoothed = (n + eps) / (n.sum() + 4 * eps) * n.sum()
    torch.testing.assert_close(quantizer.embed, m / smoothed[:, None])
    # the used entries moved towards the mean of their inputs
    for j, target in ((1, z[0, :2].mean(0)), (2, z[0, 2])):
        assert (quantizer.embed[j] - target).norm() < (CODEBOOK[j] - target).norm()


@pytest.mark.parametrize("ema", [False, True], ids=["codebook-loss", "ema"])
def test_vq_dead_codes_are_reinitialised_from_batch_outputs(ema):
    # entry 3 (-1, -1) is never the nearest; with ema_decay 0 its usage is 0 after one step
    z = torch.tensor([[[0.1, 0.0], [0.9, 0.2], [0.1, 1.1], [1.2, -0.1]]])
    quantizer = identity_vq(ema=ema, ema_decay=0.0, dead_code_threshold=1e-3)
    quantizer.eval()(z)
    assert torch.equal(quantizer.embed[3], CODEBOOK[3])  # no re-initialisation in eval
    torch.manual_seed(0)
    quantizer.train()(z)
    assert any(torch.equal(quantizer.embed[3], row) for row in z[0])
    assert quantizer.usage[3].item() == pytest.approx(0.25)  # reset to 1/V
    if ema:
        assert torch.equal(quantizer.embed_sum[3], quantizer.embed[3])
        assert quantizer.cluster_size[3].item() == 1.0
    # the used entries were not re-initialised
    if not ema:
        assert torch.equal(quantizer.embed[:3], CODEBOOK[:3])


def test_vq_perplexity_of_uniform_and_masked_usage():
    quantizer = identity_vq().eval()
    z = CODEBOOK.repeat(2, 1)[None]  # every entry used twice
    assert quantizer(z).perplexity.item() == pytest.approx(4.0)
    mask = torch.tensor([[True, True, False, False, True, True, False, False]])
    assert quantizer(z, mask=mask).perplexity.item() == pytest.approx(2.0)

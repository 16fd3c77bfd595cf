"""Tests for methods.ssl_objectives: the objective contract, each objective's maths, the data2vec
teacher helpers, distractor sampling, and agreement with transformers' wav2vec 2.0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare
from torch import nn

import methods.ssl_objectives as so
from bench import registry
from methods.loss_cores import info_nce, proxy_nca


def _objective_classes() -> dict[str, type]:
    """Objectives registered by methods.ssl_objectives, by registry name.

    Read from the attributes ``@register`` sets rather than ``registry.names("objective")``,
    whose ``load_all()`` imports every task and model (see test_calibration_methods.py);
    :func:`test_registry_lists_every_objective` checks that the two agree. A new objective in
    methods/ssl_objectives.py is covered by the contract tests on arrival.
    """
    return {
        cls.registry_name: cls
        for cls in vars(so).values()
        if isinstance(cls, type) and getattr(cls, "registry_family", None) == "objective"
    }


OBJECTIVES = _objective_classes()
NAMES = sorted(OBJECTIVES)
N, K, D, G, V = 12, 6, 8, 2, 5


def make_inputs(objective: so.SSLObjective, seed: int = 0) -> tuple[tuple, dict]:
    """Positional (context, targets, negatives) and the extras the objective ``needs``."""
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(N, D, generator=g, requires_grad=True)
    targets = torch.randn(N, D, generator=g)
    negatives = torch.randn(N, K, D, generator=g)
    if objective.needs == "negatives":
        mask = torch.rand(N, K, generator=g) > 0.2
        return (context, targets, negatives), {"negative_mask": mask}
    if objective.needs == "codebook":
        proxies = torch.randn(G, V, D // G, generator=g, requires_grad=True)
        codes = torch.randint(0, V, (N, G), generator=g)
        return (context, targets, None), {"target_codes": codes, "proxies": proxies}
    if objective.needs == "teacher":
        return (context, targets, None), {}
    raise AssertionError(f"{type(objective).__name__}.needs = {objective.needs!r} is unknown")


# ---- contract -----------------------------------------------------------------------------
def test_registry_lists_every_objective():
    assert set(NAMES) == {"contrastive", "triplet", "proxy", "data2vec"}
    assert set(NAMES) <= set(registry.names("objective"))
    for name in NAMES:
        assert registry.get("objective", name) is OBJECTIVES[name]


@pytest.mark.parametrize("name", NAMES)
def test_objective_contract(name):
    objective = OBJECTIVES[name]()
    assert isinstance(objective, nn.Module)
    assert objective.needs in ("negatives", "codebook", "teacher")
    args, extra = make_inputs(objective)
    out = objective(*args, **extra)
    assert isinstance(out, so.ObjectiveOutput)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert out.accuracy.shape == ()
    assert math.isnan(out.accuracy) or 0.0 <= out.accuracy.item() <= 1.0
    out.loss.backward()
    context = args[0]
    assert torch.isfinite(context.grad).all() and context.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_objective_handles_an_empty_batch(name):
    objective = OBJECTIVES[name]()
    args, extra = make_inputs(objective)
    args = tuple(None if x is None else x.detach()[:0] for x in args)
    extra = {k: v.detach()[:0] if k != "proxies" else v for k, v in extra.items()}
    out = objective(*args, **extra)
    assert out.loss.item() == 0.0
    assert math.isnan(out.accuracy)


@pytest.mark.parametrize("name", NAMES)
def test_objective_rejects_unknown_extras(name):
    objective = OBJECTIVES[name]()
    args, extra = make_inputs(objective)
    with pytest.raises(TypeError):
        objective(*args, **extra, negative_maks=None)


# ---- contrastive --------------------------------------------------------------------------
def test_contrastive_is_mean_info_nce_with_kappa():
    objective = so.Contrastive(kappa=0.3)
    (c, t, n), extra = make_inputs(objective)
    out = objective(c, t, n, **extra)
    expected = info_nce(c, t, n, 0.3, extra["negative_mask"]).mean()
    torch.testing.assert_close(out.loss, expected)


def test_contrastive_accuracy_counts_rows_whose_positive_is_most_similar():
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.1], [0.0, 1.0], [0.0, 1.0]])
    n = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]], [[1.0, 0.0]]])
    mask = torch.tensor([[True], [True], [False]])  # row 3's better negative is masked out
    out = so.Contrastive()(c, t, n, negative_mask=mask)
    torch.testing.assert_close(out.accuracy, torch.tensor(2 / 3))


def test_contrastive_rejects_bad_kappa():
    with pytest.raises(ValueError, match="kappa"):
        so.Contrastive(kappa=0)


# ---- triplet ------------------------------------------------------------------------------
def test_triplet_accuracy_and_options():
    c = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    n = torch.tensor([[[0.0, 1.0]], [[1.0, 0.1]]])
    out = so.Triplet(margin=0.2)(c, t, n)
    torch.testing.assert_close(out.accuracy, torch.tensor(0.5))
    # row 1: d(a,p) = 0, d(a,n) = 2 -> 0; row 2: d(a,p) = 2, d(a,n) ≈ 0.005 -> ≈ 2.195
    d_an = 2 - 2 * F.cosine_similarity(c[1], n[1, 0], dim=0)
    torch.testing.assert_close(out.loss, (2 - d_an + 0.2) / 2)
    with pytest.raises(ValueError, match="mining"):
        so.Triplet(mining="semihard")
    with pytest.raises(ValueError, match="margin"):
        so.Triplet(margin=-1.0)


def test_triplet_random_mining_uses_the_generator():
    objective = so.Triplet(margin=1.0, mining="random")
    (c, t, n), extra = make_inputs(objective)
    runs = [
        objective(c, t, n, **extra, generator=torch.Generator().manual_seed(s)).loss
        for s in (1, 1, 2)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


# ---- proxy --------------------------------------------------------------------------------
def test_proxy_is_mean_of_per_group_proxy_nca():
    objective = so.ProxyNCA()
    (c, t, _), extra = make_inputs(objective)
    out = objective(c, t, None, **extra)
    codes, proxies = extra["target_codes"], extra["proxies"]
    per_group = [proxy_nca(c[:, g * 4 : (g + 1) * 4], proxies[g], codes[:, g]) for g in range(G)]
    torch.testing.assert_close(out.loss, torch.stack(per_group).mean())


def test_proxy_accuracy_when_context_sits_on_its_codewords():
    g = torch.Generator().manual_seed(0)
    proxies = torch.randn(G, V, 3, generator=g)
    codes = torch.randint(0, V, (N, G), generator=g)
    context = torch.cat([proxies[0, codes[:, 0]], proxies[1, codes[:, 1]]], dim=1)
    out = so.ProxyNCA()(context, None, None, target_codes=codes, proxies=proxies)
    assert out.accuracy.item() == 1.0
    codes[:6, 1] = (codes[:6, 1] + 1) % V  # half the rows now point at a wrong codeword in g=1
    out = so.ProxyNCA()(context, None, None, target_codes=codes, proxies=proxies)
    torch.testing.assert_close(out.accuracy, torch.tensor(0.75))


def test_proxy_rejects_mismatched_dims():
    proxies = torch.randn(G, V, 3)
    codes = torch.zeros(N, G, dtype=torch.long)
    with pytest.raises(ValueError, match="must equal groups"):
        so.ProxyNCA()(torch.randn(N, 7), None, None, target_codes=codes, proxies=proxies)
    with pytest.raises(ValueError, match="target_codes"):
        so.ProxyNCA()(torch.randn(N, 6), None, None, target_codes=codes[:, :1], proxies=proxies)


# ---- data2vec -----------------------------------------------------------------------------
@pytest.mark.parametrize("loss,beta", [("l2", 0.25), ("smooth_l1", 0.25), ("smooth_l1", 2.0)])
def test_data2vec_regression_matches_hand_formula(loss, beta):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g, dtype=torch.float64)
    y = torch.randn(N, D, generator=g, dtype=torch.float64)
    out = so.Data2VecRegression(loss=loss, beta=beta)(x, y, None)
    diff = (x - y).abs()
    if loss == "l2":
        per_dim = diff**2
    else:
        per_dim = torch.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)
    expected = (per_dim.sum(1) / math.sqrt(D)).mean()
    torch.testing.assert_close(out.loss, expected.float())
    assert math.isnan(out.accuracy)


def test_data2vec_targets_are_constants():
    x = torch.randn(N, D, requires_grad=True)
    y = torch.randn(N, D, requires_grad=True)
    so.Data2VecRegression()(x, y).loss.backward()
    assert x.grad is not None and y.grad is None


def test_data2vec_rejects_bad_options():
    with pytest.raises(ValueError, match="unknown loss"):
        so.Data2VecRegression(loss="huber")
    with pytest.raises(ValueError, match="beta"):
        so.Data2VecRegression(loss="smooth_l1", beta=0.0)


def test_data2vec_targets_average_instance_normalised_top_k():
    g = torch.Generator().manual_seed(0)
    layers = [torch.randn(2, 9, 4, generator=g) * (i + 1) + i for i in range(5)]
    got = so.data2vec_targets(layers, top_k=3)
    manual = []
    for a in layers[-3:]:  # per utterance and channel, over time; biased variance, eps 1e-5
        mean = a.mean(dim=1, keepdim=True)
        var = a.var(dim=1, unbiased=False, keepdim=True)
        manual.append((a - mean) / torch.sqrt(var + 1e-5))
    torch.testing.assert_close(got, sum(manual) / 3)
    assert got.shape == (2, 9, 4)
    with pytest.raises(ValueError, match="top_k"):
        so.data2vec_targets(layers, top_k=6)


def test_ema_decay_schedule():
    assert so.ema_decay(0) == pytest.approx(0.999)
    assert so.ema_decay(15000) == pytest.approx(0.99945)
    assert so.ema_decay(30000) == pytest.approx(0.9999)
    assert so.ema_decay(10**6) == pytest.approx(0.9999)
    assert so.ema_decay(5, tau0=0.5, tau_end=1.0, tau_steps=10) == pytest.approx(0.75)


def test_ema_update_averages_parameters_and_copies_buffers():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    teacher = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    student(torch.randn(8, 3))  # moves the student's running statistics
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    so.ema_update(teacher, student, decay=0.9)
    for name, s in student.named_parameters():
        expected = 0.9 * before[name] + 0.1 * s.detach()  # Δ ← τΔ + (1 − τ)θ
        torch.testing.assert_close(dict(teacher.named_parameters())[name], expected)
    for name, s in student.named_buffers():
        assert torch.equal(dict(teacher.named_buffers())[name], s)
    with pytest.raises(ValueError, match="differ"):
        so.ema_update(nn.Linear(3, 2), student, 0.9)


# ---- sample_negatives ---------------------------------------------------------------------
def check_distractors(mask: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor) -> None:
    """Invariants of wav2vec 2.0 distractors: for the masked step (b, t) of each row, every
    valid index is another masked step of utterance b (flattened b*T + t'), never (b, t)."""
    b_t = mask.nonzero()
    seq_len = mask.shape[1]
    assert idx.shape == valid.shape == (len(b_t), idx.shape[1])
    own = (b_t[:, 0] * seq_len + b_t[:, 1]).unsqueeze(1)
    assert not (idx == own)[valid].any(), "a distractor is the positive itself"
    assert ((idx // seq_len) == b_t[:, :1])[valid].all(), "a distractor from another utterance"
    assert mask.reshape(-1)[idx[valid]].all(), "a distractor at an unmasked step"


def random_mask(b: int, t: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, t, generator=g) < 0.4
    mask[:, :2] = True  # at least two masked steps per utterance
    return mask


def test_sample_negatives_invariants():
    mask = random_mask(4, 30, seed=0)
    idx, valid = so.sample_negatives(mask, 100, torch.Generator().manual_seed(0))
    assert idx.dtype == torch.long and valid.dtype == torch.bool
    assert idx.shape == (int(mask.sum()), 100) and valid.all()
    check_distractors(mask, idx, valid)
    targets = torch.randn(4, 30, 3)
    assert targets.reshape(-1, 3)[idx].shape == (int(mask.sum()), 100, 3)


def test_sample_negatives_validity_mask_for_a_lonely_masked_step():
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, [1, 4]] = True
    mask[1, 3] = True  # the only masked step of utterance 1: no distractor exists
    mask[2, [0, 2, 5]] = True
    idx, valid = so.sample_negatives(mask, 7, torch.Generator().manual_seed(0))
    assert valid.tolist() == [[True] * 7] * 2 + [[False] * 7] + [[True] * 7] * 3
    assert (idx[2] == 1 * 6 + 3).all()  # the arbitrary index is the positive itself
    assert (idx[0] == 4).all() and (idx[1] == 1).all()  # two masked steps: the other one
    check_distractors(mask, idx, valid)


def test_sample_negatives_is_uniform_over_the_other_masked_steps():
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, [0, 2, 3, 7, 9]] = True
    mask[1, 1:9] = True
    draws = 3000
    idx, _ = so.sample_negatives(mask, draws, torch.Generator().manual_seed(1))
    for row, positions in enumerate(mask.reshape(-1).nonzero().squeeze(1).tolist()):
        b = positions // 10
        others = [b * 10 + t for t in range(10) if mask[b, t] and b * 10 + t != positions]
        counts = [(idx[row] == o).sum().item() for o in others]
        assert sum(counts) == draws
        assert chisquare(counts).pvalue > 1e-4, (row, counts)


def test_sample_negatives_is_deterministic_with_a_seeded_generator():
    mask = random_mask(3, 20, seed=2)
    first = so.sample_negatives(mask, 10, torch.Generator().manual_seed(7))
    again = so.sample_negatives(mask, 10, torch.Generator().manual_seed(7))
    other = so.sample_negatives(mask, 10, torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])


def test_sample_negatives_edge_cases():
    idx, valid = so.sample_negatives(torch.zeros(2, 5, dtype=torch.bool), 4)
    assert idx.shape == valid.shape == (0, 4)
    with pytest.raises(ValueError, match="bool"):
        so.sample_negatives(torch.ones(2, 5), 4)
    with pytest.raises(ValueError, match="num_negatives"):
        so.sample_negatives(torch.ones(2, 5, dtype=torch.bool), 0)


# ---- agreement with transformers' wav2vec 2.0 ---------------------------------------------
# transformers' Wav2Vec2ForPreTraining computes, over the masked steps,
#   logits = compute_contrastive_logits(q[None], q̃ (K,B,T,D), c, κ)  -> (1+K, B, T)
#   logits[1:][q̃ == q] = −inf;  L = cross_entropy(logits, target 0, reduction="sum").
# Our objective is the same loss per row with mean instead of sum, so Σ_rows info_nce = L.
# Their sampler _sample_negative_indices draws with numpy's global RNG, (B, T, K) indices into
# B*T with the same contract as ours, so we compare invariants, not values. Unlike ours it
# raises for an utterance with a single masked step (numpy randint(0, 0)).


def to_hf_indices(mask: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Our (N, K) rows scattered into transformers' (B, T, K) layout (zeros when unmasked)."""
    out = torch.zeros(*mask.shape, idx.shape[1], dtype=torch.long)
    out[mask] = idx
    return out


def test_info_nce_matches_transformers_contrastive_logits():
    pytest.importorskip("transformers", reason="cross-check with transformers' wav2vec2")
    from transformers import Wav2Vec2ForPreTraining

    g = torch.Generator().manual_seed(0)
    b, t, d, k, kappa = 2, 12, 8, 5, 0.1
    palette = torch.randn(4, d, generator=g)  # few codevectors: some distractors equal q
    quantized = palette[torch.randint(0, 4, (b, t), generator=g)]
    context = torch.randn(b, t, d, generator=g)
    mask = random_mask(b, t, seed=3)
    idx, valid = so.sample_negatives(mask, k, g)
    hf_idx = to_hf_indices(mask, idx)
    negatives = quantized.reshape(-1, d)[hf_idx.reshape(-1)].view(b, t, k, d).permute(2, 0, 1, 3)
    logits = Wav2Vec2ForPreTraining.compute_contrastive_logits(
        quantized[None], negatives, context, kappa
    )
    neg_is_pos = (quantized == negatives).all(-1)
    assert neg_is_pos[:, mask].any()  # the masking path is exercised
    logits[1:][neg_is_pos] = float("-inf")
    hf_rows = F.cross_entropy(
        logits.permute(1, 2, 0)[mask],
        torch.zeros(int(mask.sum()), dtype=torch.long),
        reduction="none",
    )
    ours = info_nce(
        context[mask],
        quantized[mask],
        quantized.reshape(-1, d)[idx],
        kappa,
        negative_mask=valid & ~neg_is_pos.permute(1, 2, 0)[mask],
    )
    torch.testing.assert_close(ours, hf_rows)
    out = so.Contrastive(kappa)(
        context[mask],
        quantized[mask],
        quantized.reshape(-1, d)[idx],
        negative_mask=valid & ~neg_is_pos.permute(1, 2, 0)[mask],
    )
    torch.testing.assert_close(out.loss * mask.sum(), hf_rows.sum())  # mean vs "sum"


def test_contrastive_matches_transformers_pretraining_loss_end_to_end():
    pytest.importorskip("transformers", reason="cross-check with transformers' wav2vec2")
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        num_codevector_groups=2,
        num_codevectors_per_group=4,
        codevector_dim=8,
        proj_codevector_dim=8,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        layerdrop=0.0,
        contrastive_logits_temperature=0.1,
    )
    torch.manual_seed(0)
    model = Wav2Vec2ForPreTraining(config).eval()  # eval: hard (argmax) quantiser
    t = int(model._get_feat_extract_output_lengths(torch.tensor(400)))
    mask = random_mask(2, t, seed=4)
    idx, valid = so.sample_negatives(mask, 10, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(
            torch.randn(2, 400),
            mask_time_indices=mask,
            sampled_negative_indices=to_hf_indices(mask, idx),
        )
    q = out.projected_quantized_states
    negatives = q.reshape(-1, q.shape[-1])[idx]
    same = (negatives == q[mask].unsqueeze(1)).all(-1)  # their neg_is_pos, in our rows
    assert same.any()  # 16 codevector pairs only: duplicates occur and are masked
    ours = so.Contrastive(kappa=0.1)(
        out.projected_states[mask], q[mask], negatives, negative_mask=valid & ~same
    )
    torch.testing.assert_close(ours.loss * mask.sum(), out.contrastive_loss)


def test_transformers_sampler_satisfies_the_same_invariants():
    pytest.importorskip("transformers", reason="cross-check with transformers' wav2vec2")
    from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

    mask = random_mask(3, 25, seed=5)
    np.random.seed(0)
    hf = torch.from_numpy(_sample_negative_indices(tuple(mask.shape), 50, mask.numpy())).long()
    hf_rows = hf[mask]  # (N, K) in our row order
    check_distractors(mask, hf_rows, torch.ones_like(hf_rows, dtype=torch.bool))
    idx, valid = so.sample_negatives(mask, 50, torch.Generator().manual_seed(0))
    check_distractors(mask, idx, valid)


def test_transformers_sampler_has_the_same_distribution():
    pytest.importorskip("transformers", reason="cross-check with transformers' wav2vec2")
    from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, [0, 3, 4, 6]] = True
    mask[1, 2:7] = True
    draws = 4000
    np.random.seed(1)
    hf = torch.from_numpy(_sample_negative_indices(tuple(mask.shape), draws, mask.numpy()))
    hf_rows = hf.long()[mask]
    idx, _ = so.sample_negatives(mask, draws, torch.Generator().manual_seed(1))
    for row in range(len(idx)):
        support = sorted(set(hf_rows[row].tolist()))
        assert support == sorted(set(idx[row].tolist()))  # all other masked steps, both
        ours = torch.tensor([(idx[row] == j).sum().item() for j in support]) / draws
        theirs = torch.tensor([(hf_rows[row] == j).sum().item() for j in support]) / draws
        assert (ours - theirs).abs().max() < 0.05  # both uniform: 1/3 or 1/4 each

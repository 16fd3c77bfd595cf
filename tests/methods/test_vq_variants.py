"""Tests for methods.vq_variants: each VQ-VAE codebook-learning variant on a hand-computed
case, and the EMA and restart updates against vector-quantize-pytorch step by step."""

from __future__ import annotations

import pytest
import torch

import methods.vq_variants as vv
from bench import registry
from methods.quantizers import VectorQuantizer

CODEBOOK = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])


def identity(name: str, **kwargs) -> VectorQuantizer:
    """A 2-d variant with an identity projection and the codebook above, so z_e = z."""
    torch.manual_seed(0)
    quantizer = registry.build("quantizer", name, {"entries": 4, **kwargs}, in_dim=2, out_dim=2)
    with torch.no_grad():
        quantizer.proj.weight.copy_(torch.eye(2))
        quantizer.proj.bias.zero_()
        quantizer.embed.copy_(CODEBOOK)
        if quantizer.ema:
            quantizer.embed_sum.copy_(CODEBOOK)
    return quantizer


def test_variants_are_registered_with_paper_defaults_and_vq_is_untouched():
    st, ema, restart = (identity(n) for n in ("vq_st", "vq_ema", "vq_restart"))
    assert isinstance(st.embed, torch.nn.Parameter) and not st.ema
    assert st.beta == 0.25 and st.dead_code_threshold == 0.0
    assert ema.ema and ema.ema_decay == 0.99 and ema.epsilon == 1e-5
    assert ema.dead_code_threshold == 0.0 and not isinstance(ema.embed, torch.nn.Parameter)
    assert isinstance(restart, vv.EMAVQ) and restart.dead_code_count == 2.0
    base = registry.get("quantizer", "vq")
    assert base is VectorQuantizer  # "vq" keeps its own configuration
    assert registry.build("quantizer", "vq", in_dim=2, out_dim=2).dead_code_threshold == 1e-3
    with pytest.raises(ValueError, match="entries must be >= 2"):
        registry.build("quantizer", "vq_st", {"entries": 1}, in_dim=2, out_dim=2)
    with pytest.raises(ValueError, match="dead_code_count must be > 0"):
        registry.build("quantizer", "vq_restart", {"dead_code_count": 0.0}, in_dim=2, out_dim=2)


@pytest.mark.parametrize("name", ["vq_st", "vq_ema", "vq_restart"])
def test_each_variant_picks_the_nearest_entry_and_passes_gradients_straight_through(name):
    z = torch.tensor([[[0.1, -0.2], [0.8, 0.3], [0.2, 0.9], [-2.0, -0.5]]], requires_grad=True)
    quantizer = identity(name).eval()
    out = quantizer(z)
    assert out.codes[0, :, 0].tolist() == [0, 1, 2, 3]  # nearest by hand
    assert torch.equal(out.q[0], CODEBOOK)
    weights = torch.tensor([[[1.0, 2.0], [3.0, -1.0], [0.5, 0.0], [-2.0, 4.0]]])
    (grad,) = torch.autograd.grad((out.q * weights).sum(), z)
    torch.testing.assert_close(grad, weights)  # dL/dq copied to z_e unchanged (proj = I)


def test_vq_st_loss_is_codebook_plus_commitment_and_trains_the_codebook():
    z = torch.tensor([[[0.8, 0.25], [0.0, 1.5]]])  # entries 1 and 2
    mse = (0.2**2 + 0.25**2 + 0.0 + 0.5**2) / 4
    quantizer = identity("vq_st")
    out = quantizer(z)
    assert out.loss.item() == pytest.approx(mse + 0.25 * mse)
    out.loss.backward()
    assert quantizer.embed.grad is not None
    torch.testing.assert_close(quantizer.embed.grad[1], torch.tensor([0.2, -0.25]) / 2)
    assert torch.equal(quantizer.embed.data, CODEBOOK)  # the optimizer moves it, not forward


def test_vq_ema_update_equals_the_formula_on_a_tiny_batch():
    gamma, eps = 0.99, 1e-5
    z = torch.tensor([[[0.9, 0.1], [1.3, -0.1], [0.1, 0.7]]])  # entries 1, 1, 2
    quantizer = identity("vq_ema").train()
    out = quantizer(z)
    commitment = ((0.1**2 + 0.1**2) + (0.3**2 + 0.1**2) + (0.1**2 + 0.3**2)) / 6
    assert out.loss.item() == pytest.approx(0.25 * commitment)  # commitment only
    counts = torch.tensor([0.0, 2.0, 1.0, 0.0])
    sums = torch.stack([torch.zeros(2), z[0, 0] + z[0, 1], z[0, 2], torch.zeros(2)])
    n = gamma * 1.0 + (1 - gamma) * counts  # N_j(0) = 1
    m = gamma * CODEBOOK + (1 - gamma) * sums  # m_j(0) = e_j
    smoothed = (n + eps) / (n.sum() + 4 * eps) * n.sum()
    torch.testing.assert_close(quantizer.cluster_size, n)
    torch.testing.assert_close(quantizer.embed, m / smoothed[:, None])


def test_vq_restart_reinitialises_a_dead_code_to_an_encoder_output():
    z = torch.tensor([[[0.1, 0.0], [0.9, 0.2], [0.1, 1.1], [1.2, -0.1]]])  # entries 0, 1, 2, 1
    quantizer = identity("vq_restart")
    quantizer.cluster_size.copy_(torch.tensor([10.0, 10.0, 10.0, 1.5]))
    quantizer.embed_sum.copy_(CODEBOOK * quantizer.cluster_size[:, None])
    quantizer.eval()(z)
    assert torch.equal(quantizer.embed, CODEBOOK) and quantizer.restarts == 0  # eval: no update
    quantizer.train()(z)
    # entry 3: N = 0.99 · 1.5 = 1.485 < 2 -> replaced by a batch output, N = 2, m = 2 e
    assert any(torch.equal(quantizer.embed[3], row) for row in z[0])
    assert quantizer.cluster_size[3].item() == 2.0
    torch.testing.assert_close(quantizer.embed_sum[3], 2 * quantizer.embed[3])
    assert quantizer.restarts == 1
    # the live entries follow the EMA formula (N ≥ 9.9, not restarted)
    n = 0.99 * torch.tensor([10.0, 10.0, 10.0]) + 0.01 * torch.tensor([1.0, 2.0, 1.0])
    assert (quantizer.cluster_size[:3] > 2).all()
    torch.testing.assert_close(quantizer.cluster_size[:3], n)


def test_vq_restart_replaces_at_most_one_entry_per_batch_output():
    quantizer = registry.build("quantizer", "vq_restart", {"entries": 8}, in_dim=2, out_dim=2)
    z = torch.randn(1, 3, 2)
    torch.manual_seed(0)
    quantizer.train()(z)  # every N_j = 0.99 + 0.01 n_j < 2: all 8 dead, 3 outputs
    z_e = quantizer.proj(z)[0].detach()
    replaced = [j for j in range(8) if any(torch.equal(quantizer.embed[j], r) for r in z_e)]
    assert len(replaced) == 3 and quantizer.restarts == 3
    assert len({tuple(quantizer.embed[j].tolist()) for j in replaced}) == 3  # distinct outputs
    assert (quantizer.cluster_size == 2.0).sum() == 3


# ---- cross-check with vector-quantize-pytorch ---------------------------------------------
@pytest.mark.parametrize("name", ["vq_ema", "vq_restart"])
def test_ema_and_restarts_match_vector_quantize_pytorch(name):
    """Same codebook, same batches: the same codes, commitment loss, N_j, m_j and e_j after
    every step. vector-quantize-pytorch's EuclideanCodebook starts from N_j = 1 and
    m_j = e_j as ours, updates N_j, m_j by lerp with weight 1 - decay, smooths N_j with
    Laplace ε before e_j = m_j / N_j, then replaces entries with N_j < threshold by batch
    vectors drawn with torch.randperm (N_j := threshold, m_j := threshold · e_j). Its input
    is our z_e, so our projection is set to the identity."""
    vqp = pytest.importorskip("vector_quantize_pytorch")
    dim, entries = 4, 16
    threshold = 2.0 if name == "vq_restart" else 0.0
    torch.manual_seed(0)
    peer = vqp.VectorQuantize(
        dim=dim,
        codebook_size=entries,
        decay=0.99,
        eps=1e-5,
        commitment_weight=0.25,
        threshold_ema_dead_code=threshold,
        rotation_trick=False,
    ).train()
    ours = registry.build("quantizer", name, {"entries": entries}, in_dim=dim, out_dim=dim)
    with torch.no_grad():
        ours.proj.weight.copy_(torch.eye(dim))
        ours.proj.bias.zero_()
        ours.embed.copy_(peer._codebook.embed[0])
        ours.embed_sum.copy_(peer._codebook.embed_avg[0])
    ours.train()
    data = torch.Generator().manual_seed(1)
    for step in range(6):
        # a batch that leaves some entries unused (restarts) and moves the used ones
        x = torch.randn(2, 12, dim, generator=data) + (step % 2)
        torch.manual_seed(100 + step)
        _, peer_codes, peer_loss = peer(x)
        torch.manual_seed(100 + step)
        out = ours(x)
        assert torch.equal(out.codes[..., 0], peer_codes), step
        torch.testing.assert_close(out.loss, peer_loss.reshape(()))
        book = peer._codebook
        torch.testing.assert_close(ours.cluster_size, book.cluster_size[0])
        torch.testing.assert_close(ours.embed_sum, book.embed_avg[0])
        torch.testing.assert_close(ours.embed, book.embed[0])
    if name == "vq_restart":
        assert ours.restarts > 0  # the comparison did exercise the restarts

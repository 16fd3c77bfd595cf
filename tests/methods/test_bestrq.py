"""Tests for methods.bestrq: the random-projection quantizer against eq. 1 of BEST-RQ and
against vector_quantize_pytorch, and the code-prediction objective against F.cross_entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench import registry
from methods.bestrq import CodePrediction, RandomProjectionQuantizer


def make_quantizer(seed: int = 0, **kwargs) -> RandomProjectionQuantizer:
    torch.manual_seed(seed)
    return RandomProjectionQuantizer(**{"in_dim": 6, "out_dim": 8, "groups": 2, **kwargs})


def random_z(batch: int = 2, steps: int = 7, dim: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, steps, dim, generator=torch.Generator().manual_seed(seed))


# ---- the quantizer ----------------------------------------------------------------------
def compass_quantizer() -> RandomProjectionQuantizer:
    """2-D, A = I, codebook = the four unit compass directions E, N, W, S."""
    quantizer = RandomProjectionQuantizer(in_dim=2, out_dim=2, groups=1, entries=4)
    compass = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    quantizer.load_state_dict({"projection": torch.eye(2), "codevectors": compass[None]})
    return quantizer


def test_codes_on_a_hand_made_case_and_perplexity():
    quantizer = compass_quantizer()
    z = torch.tensor([[[3.0, 1.0], [-1.0, 5.0], [-2.0, -0.5], [0.2, 0.1], [0.1, -4.0]]])
    out = quantizer(z)
    assert out.codes.tolist() == [[[0], [1], [2], [0], [3]]]
    torch.testing.assert_close(out.q, quantizer.codebook[0][out.codes[..., 0]])
    assert out.loss.item() == 0.0
    # usage (2, 1, 1, 1)/5: exp(H) = exp(-(0.4 ln 0.4 + 3 * 0.2 ln 0.2))
    expected = math.exp(-(0.4 * math.log(0.4) + 3 * 0.2 * math.log(0.2)))
    assert out.perplexity.item() == pytest.approx(expected)
    mask = torch.tensor([[True, False, False, True, False]])  # both code 0
    assert quantizer(z, mask=mask).perplexity.item() == pytest.approx(1.0)


def test_codes_are_the_argmin_of_eq_1_per_group():
    quantizer = make_quantizer(entries=16)
    z = random_z()
    codes = quantizer(z).codes.reshape(-1, 2)
    projected = z.reshape(-1, 6) @ quantizer.projection.t()  # A x, (N, G·d)
    for g in range(2):
        u = F.normalize(projected[:, 4 * g : 4 * (g + 1)], dim=-1)  # norm_l2(A_g x)
        c = F.normalize(quantizer.codebook[g], dim=-1)  # norm_l2(C_v)
        brute = torch.cdist(u, c).argmin(dim=1)  # argmin_v ||norm_l2(C_v) − norm_l2(A x)||
        assert torch.equal(codes[:, g], brute)


def test_construction_draws_a_unit_codebook_from_the_global_rng():
    quantizer = make_quantizer(seed=3, entries=16)
    assert quantizer.codebook.shape == (2, 16, 4)
    torch.testing.assert_close(quantizer.codebook.norm(dim=-1), torch.ones(2, 16))
    again = make_quantizer(seed=3, entries=16)
    assert torch.equal(again.projection, quantizer.projection)
    assert not torch.equal(make_quantizer(seed=4, entries=16).projection, quantizer.projection)


def test_quantizer_is_frozen_but_passes_gradient_to_its_input():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(6, 6)
    quantizer = make_quantizer().train()
    assert list(quantizer.parameters()) == []
    before = {name: b.clone() for name, b in quantizer.named_buffers()}
    assert set(before) == {"projection", "codevectors"}
    optimizer = torch.optim.SGD(list(encoder.parameters()) + list(quantizer.parameters()), lr=1.0)
    weights = torch.randn(2, 7, 8)
    for _ in range(2):
        optimizer.zero_grad()
        out = quantizer(encoder(random_z()))
        ((out.q * weights).sum() + out.loss).backward()
        optimizer.step()
    assert encoder.weight.grad is not None and encoder.weight.grad.abs().sum() > 0
    for name, buffer in quantizer.named_buffers():
        assert torch.equal(buffer, before[name]) and not buffer.requires_grad


def test_state_dict_round_trip_reproduces_the_codes():
    source, target = make_quantizer(seed=0), make_quantizer(seed=1)
    z = random_z()
    assert not torch.equal(source(z).codes, target(z).codes)
    target.load_state_dict(source.state_dict())
    assert torch.equal(source(z).codes, target(z).codes)


@pytest.mark.parametrize("groups", [1, 2])
def test_codes_agree_with_vector_quantize_pytorch(groups):
    """Their A (Xavier-normal) and codebook copied into ours, group by group.

    Their ``RandomProjectionQuantizer`` with ``num_codebooks > 1`` adds a learned projection
    inside its VectorQuantize, so each group is compared with its own single-codebook peer;
    ``norm=False`` leaves out their input LayerNorm (our input is already normalised)."""
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(0)
    peers = [
        vqp.RandomProjectionQuantizer(dim=6, codebook_size=32, codebook_dim=4, norm=False)
        for _ in range(groups)
    ]
    ours = RandomProjectionQuantizer(in_dim=6, out_dim=4 * groups, groups=groups, entries=32)
    ours.load_state_dict(
        {
            "projection": torch.cat([peer.rand_projs[0].t() for peer in peers]),  # (G·d, D)
            "codevectors": torch.cat([peer.vq._codebook.embed for peer in peers]),
        }
    )
    z = random_z(batch=3, steps=50)
    codes = ours(z).codes
    for g, peer in enumerate(peers):
        assert torch.equal(codes[..., g], peer(z))


def test_out_dim_must_split_into_groups():
    with pytest.raises(ValueError, match="divisible by groups"):
        RandomProjectionQuantizer(in_dim=6, out_dim=7, groups=2)


# ---- the objective ----------------------------------------------------------------------
def hand_objective() -> CodePrediction:
    """code_dim 6 = G·V with G=2, V=3; classifier 2·I + b, so logits = 2c + b by hand."""
    objective = CodePrediction(code_dim=6, code_groups=2, code_entries=3)
    with torch.no_grad():
        objective.classifier.weight.copy_(2 * torch.eye(6))
        objective.classifier.bias.copy_(0.1 * torch.arange(6.0))
    return objective


def proxies(groups: int = 2, entries: int = 3) -> torch.Tensor:
    return torch.randn(groups, entries, 4)


def test_loss_is_the_cross_entropy_of_the_classifier_logits():
    objective = hand_objective()
    context = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    codes = torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0], [1, 2]])
    out = objective(context, None, None, target_codes=codes, proxies=proxies())
    logits = (2 * context + 0.1 * torch.arange(6.0)).reshape(5, 2, 3)  # [group 0 | group 1]
    expected = F.cross_entropy(logits.reshape(10, 3), codes.reshape(10))
    torch.testing.assert_close(out.loss, expected)


def test_accuracy_on_a_hand_made_case():
    objective = hand_objective()
    objective.classifier.bias.data.zero_()
    context = torch.tensor([[5.0, 0, 0, 0, 0, 5], [0, 5, 0, 0, 0, 5]])  # argmax (0, 2), (1, 2)
    codes = torch.tensor([[0, 1], [1, 2]])  # right, wrong, right, right
    out = objective(context, None, None, target_codes=codes, proxies=proxies())
    assert out.accuracy.item() == pytest.approx(0.75)


def test_gradient_reaches_the_classifier_and_the_context():
    torch.manual_seed(0)
    objective = CodePrediction(code_dim=8, code_groups=2, code_entries=7)
    context = torch.randn(12, 8, requires_grad=True)
    codes = torch.randint(0, 7, (12, 2))
    objective(context, None, None, target_codes=codes, proxies=proxies(2, 7)).loss.backward()
    for grad in (objective.classifier.weight.grad, context.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_shapes_are_checked():
    objective = hand_objective()
    context, codes = torch.randn(4, 6), torch.zeros(4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="codebook is"):
        objective(context, None, None, target_codes=codes, proxies=proxies(2, 5))
    with pytest.raises(ValueError, match="target_codes must be"):
        objective(context, None, None, target_codes=codes[:, :1], proxies=proxies())
    with pytest.raises(ValueError, match="context must be"):
        objective(context[:, :4], None, None, target_codes=codes, proxies=proxies())


def test_classifier_learns_the_quantizer_codes():
    """argmax_v C_v·(A x)/||A x|| = argmax_v (Aᵀ C_v)·x: a linear classifier on x fits it."""
    quantizer = make_quantizer(in_dim=4, out_dim=4, entries=4)
    objective = CodePrediction(code_dim=4, code_groups=2, code_entries=4)
    x = random_z(batch=1, steps=256, dim=4)
    codes = quantizer(x).codes[0]
    optimizer = torch.optim.Adam(objective.parameters(), lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        out = objective(x[0], None, None, target_codes=codes, proxies=quantizer.codebook)
        out.loss.backward()
        optimizer.step()
    assert out.accuracy.item() > 0.9


# ---- registration -----------------------------------------------------------------------
def test_both_build_from_the_registry_with_their_context():
    quantizer = registry.build(
        "quantizer", "random_projection", {"groups": 2}, in_dim=6, out_dim=8, tau_decay=0.99
    )
    assert isinstance(quantizer, RandomProjectionQuantizer) and quantizer.num_groups == 2
    assert quantizer.codebook.shape == (2, 256, 4)  # default V = 256
    objective = registry.build(
        "objective", "code_prediction", code_dim=8, code_groups=2, code_entries=256
    )
    assert isinstance(objective, CodePrediction) and objective.needs == "codebook"
    with pytest.raises(registry.ContextError, match="needs code_groups, code_entries"):
        registry.build("objective", "code_prediction", code_dim=8)


def test_modules_are_found_by_load_all():
    assert "methods" in registry.REGISTERING_PACKAGES  # load_all imports every module of it
    assert registry.module_of("quantizer", "random_projection") == "methods.bestrq"
    assert registry.module_of("objective", "code_prediction") == "methods.bestrq"

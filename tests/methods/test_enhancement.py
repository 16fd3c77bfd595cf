"""Enhancers keep length and sample rate; the non-learned ones remove noise; losses match
their formulas. Parametrized over the registry, so a new enhancer or loss is covered."""

import math

import numpy as np
import pytest
import torch

from bench import registry
from bench.metrics.enhancement import si_sdr
from methods import enhancement as E

SR = 16000


def tone_speech(n=SR, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    gate = (np.sin(2 * np.pi * 2 * t) > 0).astype(float)
    x = gate * sum(np.sin(2 * np.pi * k * 150 * t) / k for k in range(1, 8))
    return torch.tensor(0.3 * x / np.abs(x).max() + 0 * rng.standard_normal(n), dtype=torch.float32)


@pytest.mark.parametrize("name", registry.names("enhancer"))
@pytest.mark.parametrize("length", [4000, 12345])
def test_enhancer_keeps_length_and_rate(name, length):
    torch.manual_seed(0)
    model = registry.build("enhancer", name, sample_rate=SR).eval()
    noisy = 0.1 * torch.randn(2, length)
    with torch.no_grad():
        out = model.enhance(noisy, SR)
        one = model.enhance(noisy[0], SR)
    assert out.wave.shape == noisy.shape and out.sample_rate == SR
    assert one.wave.shape == noisy[0].shape
    assert torch.isfinite(out.wave).all()
    with pytest.raises(ValueError, match="8000 Hz"):
        model.enhance(noisy, 8000)


@pytest.mark.parametrize("name", ["identity", "specsub", "wiener", "convtasnet"])
def test_enhancer_at_another_rate(name):
    model = registry.build("enhancer", name, sample_rate=8000).eval()
    x = 0.1 * torch.randn(1, 3001)
    with torch.no_grad():
        assert model.enhance(x, 8000).wave.shape == x.shape


def test_identity_is_identity():
    x = torch.randn(3, 1000)
    assert torch.equal(E.Identity()(x), x)


def test_untrained_convtasnet_starts_near_identity():
    x = tone_speech().unsqueeze(0)
    with torch.no_grad():
        y = E.ConvTasNetEnhancer()(x)
    assert si_sdr(x[0].numpy(), y[0].numpy()) > 30  # a near-perfect reconstruction


@pytest.mark.parametrize("name", ["specsub", "wiener"])
def test_spectral_methods_remove_white_noise(name):
    clean = tone_speech(2 * SR)
    noise = 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    noisy = clean + noise
    with torch.no_grad():
        out = registry.build("enhancer", name, sample_rate=SR).enhance(noisy, SR).wave
    before = si_sdr(clean.numpy(), noisy.numpy())
    after = si_sdr(clean.numpy(), out.numpy())
    assert after > before + 3
    # in the pauses (no speech) the residual noise is much weaker than the input noise
    pause = slice(SR // 4 + 800, SR // 2 - 800)
    assert out[pause].pow(2).mean() < 0.1 * noisy[pause].pow(2).mean()


def test_wiener_gain_matches_decision_directed_recursion():
    model = E.WienerFilter(noise_fraction=0.5)
    x = torch.randn(1, 4000)
    spec = model.stft(x)
    power = spec.abs() ** 2
    lam = E.noise_estimate(power, E.quietest_frames(power, 0.5))
    prev = torch.zeros_like(power[..., 0])
    gains = []
    for t in range(power.shape[-1]):  # Ephraim & Malah eq. 51 written out once more
        gamma = power[..., t] / lam[..., 0]
        xi = torch.maximum(
            0.98 * prev + 0.02 * torch.clamp(gamma - 1, min=0), torch.tensor(10 ** (-1.5))
        )
        g = xi / (1 + xi)
        gains.append(g)
        prev = g**2 * gamma
    expected = model.istft(torch.stack(gains, -1) * spec, 4000)
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_quietest_frames_selects_the_pauses():
    power = torch.tensor([[[5.0, 0.1, 4.0, 0.2, 6.0, 0.3]]])
    assert E.quietest_frames(power, 0.5).tolist() == [[[False, True, False, True, False, True]]]


def test_losses_match_formulas():
    g = torch.Generator().manual_seed(2)
    target, estimate = torch.randn(3, 8000, generator=g), torch.randn(3, 8000, generator=g)
    assert E.L1Waveform()(estimate, target) == pytest.approx(
        (estimate - target).abs().mean().item()
    )
    expected = -np.mean(
        [si_sdr(t.numpy(), e.numpy()) for t, e in zip(target, estimate, strict=True)]
    )
    assert E.NegativeSISDR()(estimate, target).item() == pytest.approx(expected, abs=1e-3)
    mr = E.MultiResolutionSTFT(resolutions=((512, 128, 512),))
    window = torch.hann_window(512)
    s_est = torch.stft(estimate, 512, 128, 512, window, return_complex=True).abs()
    s_ref = torch.stft(target, 512, 128, 512, window, return_complex=True).abs()
    sc = torch.linalg.norm(s_ref - s_est) / torch.linalg.norm(s_ref)
    mag = (torch.log(s_est) - torch.log(s_ref)).abs().mean()
    assert mr(estimate, target).item() == pytest.approx((sc + mag).item(), rel=1e-4)
    assert E.MultiResolutionSTFT()(target, target).item() == pytest.approx(0.0, abs=1e-5)


def test_si_sdr_batch_matches_numpy_and_is_scale_invariant():
    x = torch.randn(2, 1000)
    y = x + 0.3 * torch.randn(2, 1000)
    ours = E.si_sdr_batch(y, x)
    assert ours[0].item() == pytest.approx(si_sdr(x[0].numpy(), y[0].numpy()), abs=1e-3)
    assert torch.allclose(E.si_sdr_batch(5 * y, x), ours, atol=1e-3)
    assert math.isfinite(E.si_sdr_batch(x, x)[0].item())


def learned(name: str) -> bool:
    """An enhancer is learned when it has trainable parameters (what the task checks)."""
    model = registry.build("enhancer", name, sample_rate=SR)
    return any(p.requires_grad for p in model.parameters())


def test_learned_enhancers_are_the_networks():
    assert [n for n in registry.names("enhancer") if learned(n)] == ["convtasnet", "mask"]
    with pytest.raises(registry.ContextError, match="needs sample_rate"):
        registry.build("enhancer", "wiener")


@pytest.mark.parametrize("loss", registry.names("enh_loss"))
@pytest.mark.parametrize("name", [n for n in registry.names("enhancer") if learned(n)])
def test_learned_enhancers_train_with_every_loss(name, loss):
    torch.manual_seed(0)
    model = registry.build("enhancer", name, sample_rate=SR)
    loss_fn = registry.build("enh_loss", loss)
    clean = tone_speech(8000).repeat(2, 1)
    noisy = clean + 0.05 * torch.randn_like(clean)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = None
    for _ in range(8):
        value = loss_fn(model(noisy), clean)
        opt.zero_grad()
        value.backward()
        opt.step()
        first = value.item() if first is None else first
    assert loss_fn(model(noisy), clean).item() < first

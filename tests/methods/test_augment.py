"""The registered augmentations (methods/augment.py); the task: tests/tasks/test_augment.py."""

import math

import numpy as np
import pytest
import torch

from bench import registry
from bench.data.noise import measured_snr_db
from methods.augment import add_noise, change_speed

SR = 16000


def _speech(n: int = SR) -> torch.Tensor:
    """A voiced-like test signal: a 150 Hz harmonic tone with a 4 Hz syllable envelope."""
    t = torch.arange(n) / SR
    tone = sum(torch.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 6))
    return (0.3 * tone * (0.6 + 0.4 * torch.sin(2 * math.pi * 4 * t))).float()


def _input(name: str) -> torch.Tensor:
    aug = registry.get("augment", name)()
    return torch.randn(100, 40) if aug.domain == "spec" else _speech()


@pytest.mark.parametrize("name", registry.names("augment"))
def test_every_augmentation_is_seeded(name):
    aug, x = registry.get("augment", name)(), _input(name)
    a = aug(x.clone(), np.random.default_rng(3))
    b = aug(x.clone(), np.random.default_rng(3))
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("name", ["none", "noise", "specaugment"])
def test_augmentation_keeps_the_shape(name):
    aug, x = registry.get("augment", name)(), _input(name)
    for seed in range(5):
        assert aug(x, np.random.default_rng(seed)).shape == x.shape


def test_none_is_identity():
    x = _speech()
    assert torch.equal(registry.get("augment", "none")()(x, np.random.default_rng(0)), x)


def test_specaugment_masks_something_and_only_with_the_mean():
    x = torch.randn(100, 40)
    out = registry.get("augment", "specaugment")()(x, np.random.default_rng(0))
    changed = out != x
    assert changed.any()
    assert torch.allclose(out[changed], torch.full_like(out[changed], float(x.mean())))
    # masks are whole mel bands or whole frames
    bands = changed.all(0)
    frames = changed.all(1)
    assert (changed == (bands.unsqueeze(0) | frames.unsqueeze(1))).all()


@pytest.mark.parametrize("snr", [0.0, 5.0, 20.0])
def test_noise_hits_the_requested_snr(snr):
    x = _speech()
    noisy = add_noise(x, snr, "white", np.random.default_rng(0))
    # the peak limiter scales clean and noise together, so recover the gain first
    gain = float((noisy * x).sum() / (x * x).sum())  # noise ⟂ clean, approximately
    noise = noisy.numpy() - gain * x.numpy()
    assert measured_snr_db(gain * x.numpy(), noise, SR) == pytest.approx(snr, abs=0.3)


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.15])
def test_speed_changes_length_and_pitch(factor):
    x = _speech()
    y = change_speed(x, factor)
    assert len(y) == pytest.approx(len(x) / factor, abs=2)
    spectrum = torch.fft.rfft(y[:8000] * torch.hann_window(8000)).abs()
    peak_hz = float(spectrum.argmax()) * SR / 8000
    assert peak_hz == pytest.approx(150 * factor, abs=3)  # the fundamental moves with f
    assert torch.equal(change_speed(x, 1.0), x)


def test_speed_perturb_draws_from_its_factors():
    aug = registry.get("augment", "speed")()
    lengths = {len(aug(_speech(), np.random.default_rng(s))) for s in range(20)}
    assert lengths == {math.ceil(SR / f) for f in (0.9, 1.0, 1.1)}  # torchaudio rounds up

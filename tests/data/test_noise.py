import numpy as np
import pytest
from scipy.signal import welch

from bench.data.noise import (
    NOISE_TYPES,
    MixResult,
    active_level,
    babble,
    brown,
    bursts,
    mains_hum,
    make_noise,
    measured_snr_db,
    mix_at_snr,
    pink,
    white,
)

SR = 16000


def rng(seed=0):
    return np.random.default_rng(seed)


def tone(n, hz, amp=0.5, sr=SR):
    return (amp * np.sin(2 * np.pi * hz * np.arange(n) / sr)).astype(np.float32)


def gated_speech(n_periods=6, on_s=0.5, off_s=0.5, amp=0.5, silence=1e-6, seed=0):
    """Fake speech: tone bursts (harmonic-ish) alternating with near-silence."""
    r = rng(seed)
    parts = []
    for i in range(n_periods):
        on = round(on_s * SR)
        parts.append(tone(on, 150 + 20 * i, amp) + tone(on, 450 + 30 * i, amp / 3))
        parts.append((silence * r.standard_normal(round(off_s * SR))).astype(np.float32))
    return np.concatenate(parts)


def talker_set(k=6, n=SR):
    """Distinct 'talkers': each a tone at its own frequency, gated with its own pauses."""
    out = []
    for i in range(k):
        x = tone(n, 200 + 300 * i, 0.3)
        x[(i * 1000) % n : (i * 1000) % n + 2000] = 0.0
        out.append(x)
    return out


@pytest.mark.parametrize("kind", NOISE_TYPES)
def test_determinism_dtype_length(kind):
    talkers = talker_set()
    a = make_noise(kind, 8000, rng(1), talkers=talkers)
    b = make_noise(kind, 8000, rng(1), talkers=talkers)
    c = make_noise(kind, 8000, rng(2), talkers=talkers)
    assert a.dtype == np.float32 and a.shape == (8000,)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.isfinite(a))
    assert 0.8 < np.sqrt(np.mean(a.astype(np.float64) ** 2)) < 1.2


def test_make_noise_unknown_kind_lists_types():
    with pytest.raises(ValueError, match="white, pink, brown, babble, hum, bursts"):
        make_noise("purple", 100, rng())


def test_rng_must_be_generator():
    with pytest.raises(TypeError, match="Generator"):
        white(100, 0)


@pytest.mark.parametrize("gen,slope", [(white, 0.0), (pink, -1.0), (brown, -2.0)])
def test_spectral_slopes(gen, slope):
    x = gen(8 * SR, rng(3))
    f, pxx = welch(x, fs=SR, nperseg=4096)
    band = (f >= 50) & (f <= 4000)
    fitted = np.polyfit(np.log10(f[band]), np.log10(pxx[band]), 1)[0]
    assert abs(fitted - slope) < 0.25, fitted
    assert abs(float(np.mean(x))) < 1e-3


@pytest.mark.parametrize("base", [50.0, 60.0, None])
def test_mains_hum_peak_and_harmonics(base):
    x = mains_hum(4 * SR, rng(4), SR, base_hz=base)
    f, pxx = welch(x, fs=SR, nperseg=SR)  # 1 Hz bins
    peak = f[np.argmax(pxx)]
    bases = [base] if base is not None else [50.0, 60.0]
    f0 = min(bases, key=lambda b: abs(peak - b))
    assert abs(peak - f0) <= 1.0
    floor = np.median(pxx)
    for k in (2, 3):
        near = np.abs(f - k * f0) <= 1.0
        assert pxx[near].max() > 1e3 * floor
    assert pxx[f > 1100].max() < 1e-6 * pxx.max()  # harmonics stop near 1 kHz


def test_bursts_intermittent():
    for seed in range(5):
        x = bursts(5 * SR, rng(seed), SR)
        assert np.all(np.isfinite(x))
        frames = x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float64)
        frame_rms = np.sqrt(np.mean(frames**2, axis=1))
        assert np.mean(frame_rms < 1e-3) > 0.3
        assert np.min(np.abs(x)) >= 0 and np.count_nonzero(x) == x.size


def test_babble_needs_three_talkers():
    with pytest.raises(ValueError, match="at least 3 other utterances"):
        babble(1000, rng(), talker_set(2))
    with pytest.raises(ValueError, match="at least 3"):
        make_noise("babble", 1000, rng())


def test_babble_mixes_several_talkers():
    talkers = talker_set(6)
    freqs = [200 + 300 * i for i in range(6)]
    for seed in range(4):
        x = babble(3 * SR, rng(seed), talkers, SR)
        assert x.shape == (3 * SR,) and x.dtype == np.float32
        f, pxx = welch(x, fs=SR, nperseg=2048)
        strong = [fr for fr in freqs if pxx[np.argmin(np.abs(f - fr))] > 0.05 * pxx.max()]
        assert 3 <= len(strong) <= 6, strong


def test_babble_silent_talker_rejected():
    talkers = [np.zeros(100, np.float32)] * 3
    with pytest.raises(ValueError, match="silent"):
        babble(1000, rng(), talkers)


def test_active_level_stationary_noise_is_mean_square():
    for gen in (white, pink, brown):
        x = 0.1 * gen(3 * SR, rng(5))
        ms = float(np.mean(x.astype(np.float64) ** 2))
        assert active_level(x) == pytest.approx(ms, rel=0.1)


@pytest.mark.parametrize("off_s,silence", [(0.5, 0.0), (0.5, 1e-6), (0.43, 1e-4)])
def test_active_level_gated_speech(off_s, silence):
    x = gated_speech(off_s=off_s, on_s=0.5 if off_s == 0.5 else 0.43, silence=silence)
    ms = float(np.mean(x.astype(np.float64) ** 2))
    assert active_level(x) == pytest.approx(2 * ms, rel=0.1)


def test_active_level_of_silence_is_zero():
    assert active_level(np.zeros(1000)) == 0.0


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble", "hum", "bursts"])
@pytest.mark.parametrize("snr", [-5, 0, 5, 10, 20])
def test_mix_hits_target_snr(kind, snr):
    clean = gated_speech(n_periods=3, amp=0.1)
    noise = make_noise(kind, 2 * SR, rng(6), talkers=talker_set())
    res = mix_at_snr(clean, noise, snr, rng=rng(7))
    assert isinstance(res, MixResult) and res.snr_db == snr
    for a in (res.noisy, res.clean, res.noise):
        assert a.dtype == np.float32 and a.shape == clean.shape
    assert abs(measured_snr_db(res.clean, res.noise) - snr) < 0.5
    np.testing.assert_allclose(res.noisy, res.clean + res.noise, rtol=0, atol=1e-7)
    assert 0 < res.gain <= 1.0
    assert np.max(np.abs(res.noisy)) <= 0.99 + 1e-6


@pytest.mark.parametrize("kind", ["white", "bursts", "hum"])
@pytest.mark.parametrize("snr", [-5, 0, 20])
def test_mix_clipping_protection_keeps_snr(kind, snr):
    clean = gated_speech(n_periods=3, amp=0.9)  # peaks ~1.2: must be scaled down
    noise = make_noise(kind, 3 * SR, rng(8))
    res = mix_at_snr(clean, noise, snr, rng=rng(9), peak_limit=0.9)
    assert res.gain < 1.0
    assert np.max(np.abs(res.noisy)) <= 0.9 + 1e-6
    assert np.max(np.abs(res.noisy)) == pytest.approx(0.9, abs=1e-5)
    assert abs(measured_snr_db(res.clean, res.noise) - snr) < 0.5
    np.testing.assert_allclose(res.noisy, res.clean + res.noise, rtol=0, atol=1e-7)
    np.testing.assert_allclose(res.clean, res.gain * clean, rtol=1e-5, atol=1e-7)


def test_mix_loops_short_noise_and_is_deterministic():
    clean = gated_speech(n_periods=2, amp=0.1)
    noise = white(1234, rng(10))
    a = mix_at_snr(clean, noise, 5.0, rng=rng(11))
    b = mix_at_snr(clean, noise, 5.0, rng=rng(11))
    assert a.noisy.shape == clean.shape
    assert np.array_equal(a.noisy, b.noisy)
    # without rng the noise is read from sample 0 and looped
    c = mix_at_snr(clean, noise, 5.0)
    ratio = c.noise[:1234] / noise
    assert np.allclose(ratio, ratio[0]) and np.allclose(c.noise[1234:2468], c.noise[:1234])


def test_mix_rejects_silent_inputs():
    clean = gated_speech(n_periods=2, amp=0.1)
    with pytest.raises(ValueError, match="clean"):
        mix_at_snr(np.zeros(SR, np.float32), white(SR, rng()), 0.0)
    with pytest.raises(ValueError, match="noise"):
        mix_at_snr(clean, np.zeros(SR, np.float32), 0.0)
    with pytest.raises(ValueError, match="clean"):
        measured_snr_db(np.zeros(10), np.ones(10))
    with pytest.raises(ValueError, match="noise"):
        measured_snr_db(clean, np.zeros(10))

"""Noise generators and mixing at a target SNR, for the enhancement and robustness tasks.

Every function is pure: randomness comes only from the ``numpy.random.Generator`` passed in
(never from global state), so the same seed gives the same noise and the same mixture.
Signals are 1-D float32 arrays at ``sample_rate`` (16 kHz by default); generators return
noise at roughly unit RMS, and :func:`mix_at_snr` sets the level.

SNR convention (used by :func:`mix_at_snr` and :func:`measured_snr_db`): the clean speech's
*active* level (:func:`active_level`, a simplified ITU-T P.56-like measure that ignores
pauses) over the noise's *full* mean square, in dB, so the SNR of speech with long pauses
is not understated. With intermittent noise (bursts) it means the bursts themselves are
louder than the nominal SNR suggests.

Reference: ITU-T Rec. P.56 (12/2011), Objective measurement of active speech level.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

NOISE_TYPES = ("white", "pink", "brown", "babble", "hum", "bursts")

# P.56 puts the activity threshold this far below the active level (margin M, 15.9 dB).
P56_MARGIN_DB = 15.9


# ----------------------------------------------------------------------------- helpers


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_n(n) -> int:
    try:
        n = operator.index(n)
    except TypeError as exc:
        raise TypeError(f"n must be an integer number of samples, got {n!r}") from exc
    if n < 1:
        raise ValueError(f"n must be at least 1 sample, got {n}")
    return n


def _as_signal(x, name: str) -> np.ndarray:
    """``x`` as a float64 1-D array; ValueError (naming ``name``) if empty or not finite."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D signal, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return a


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = math.sqrt(float(np.mean(np.square(x))))
    return x / rms if rms > 0 else x


def _loop_to(x: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``n`` samples of ``x`` read circularly from ``offset`` (cuts or loops as needed)."""
    return x[(offset + np.arange(n)) % x.size]


def _spectral_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """White Gaussian noise shaped to power ∝ 1/f**exponent via the real FFT (DC zeroed).

    Shaping in the frequency domain gives the exact slope at every frequency (unlike IIR
    approximations such as Kellet's or Voss-McCartney's pink filters); the result is
    circular, so it loops without a seam.
    """
    spec = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(spec.size, dtype=np.float64)
    k[0] = 1.0  # avoid 0**-x; DC is zeroed below
    spec *= k ** (-exponent / 2.0)  # amplitude ∝ f**(-exponent/2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n=n)
    return _unit_rms(x - x.mean()).astype(np.float32)


# ----------------------------------------------------------------------------- generators


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise (flat spectrum): sensor/thermal noise, the textbook baseline."""
    n, rng = _check_n(n), _check_rng(rng)
    return _unit_rms(rng.standard_normal(n)).astype(np.float32)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power, −3 dB/octave) Gaussian noise: equal energy per octave, a common
    model of broadband ambient noise (fans, rain, distant traffic)."""
    n, rng = _check_n(n), _check_rng(rng)
    return _spectral_noise(n, rng, exponent=1.0)


def brown(n: int, rng: np.random.Generator) -> np.ndarray:
    """Brown/red (1/f² power, −6 dB/octave) Gaussian noise, zero mean: rumble-like
    low-frequency noise (wind, engines, HVAC)."""
    n, rng = _check_n(n), _check_rng(rng)
    return _spectral_noise(n, rng, exponent=2.0)


def mains_hum(
    n: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    base_hz: float | None = None,
) -> np.ndarray:
    """Mains hum: electrical interference from a 50 or 60 Hz supply (ground loops,
    unshielded cables). A fundamental (50 or 60 Hz, chosen by ``rng`` when ``base_hz`` is
    None) with a random ±0.2 % frequency deviation (grid frequency drifts), plus its
    harmonics up to ~1 kHz with decaying random amplitudes and random phases.
    """
    n, rng = _check_n(n), _check_rng(rng)
    if base_hz is None:
        base_hz = float(rng.choice([50.0, 60.0]))
    if not 0 < base_hz < sample_rate / 2:
        raise ValueError(f"base_hz must be in (0, {sample_rate / 2}) Hz, got {base_hz}")
    f0 = base_hz * (1.0 + rng.uniform(-0.002, 0.002))
    n_harm = max(1, int(1000.0 // base_hz))
    decay = rng.uniform(1.0, 2.0)  # amplitude ∝ k**-decay, times a random factor
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    for k in range(1, n_harm + 1):
        fk = k * f0
        if fk >= sample_rate / 2:
            break
        amp = 1.0 if k == 1 else rng.uniform(0.3, 1.0) * k ** (-decay)
        x += amp * np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi))
    return _unit_rms(x).astype(np.float32)


def bursts(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Intermittent (non-stationary) noise: door slams, clatter, keyboard, passing cars.

    Bursts arrive at random times at ~1–3 per second (Poisson count, at least one); each
    lasts 20–300 ms, is white or band-limited (a random 0.5–2 octave band) Gaussian noise at
    a random level (0 to −10 dB), with raised-cosine onsets/offsets (≤ 10 ms) so it does not
    click. Bursts cover at most about half of the signal. The whole is scaled to unit RMS
    and a 1e-4 RMS white floor is added so the signal is never exactly zero.
    """
    n, rng = _check_n(n), _check_rng(rng)
    x = np.zeros(n)
    rate = rng.uniform(1.0, 3.0)
    count = max(1, int(rng.poisson(rate * n / sample_rate)))
    covered = 0
    for i in range(count):
        length = min(n, max(1, round(rng.uniform(0.02, 0.3) * sample_rate)))
        if i > 0 and covered + length > n // 2:
            break
        start = int(rng.integers(0, n - length + 1))
        burst = rng.standard_normal(length)
        if rng.random() < 0.5:  # band-limited: keep a random band of the burst's spectrum
            nyq = sample_rate / 2
            centre = math.exp(rng.uniform(math.log(100.0), math.log(0.8 * nyq)))
            half_bw = 2.0 ** (rng.uniform(0.5, 2.0) / 2)
            freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
            band = (freqs >= centre / half_bw) & (freqs <= centre * half_bw)
            if band.any():
                spec = np.fft.rfft(burst)
                spec[~band] = 0.0
                burst = np.fft.irfft(spec, n=length)
        burst = _unit_rms(burst) * 10.0 ** (rng.uniform(-10.0, 0.0) / 20)
        ramp = min(round(0.01 * sample_rate), length // 4)
        if ramp > 0:
            rise = 0.5 * (1.0 - np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp))
            burst[:ramp] *= rise
            burst[length - ramp :] *= rise[::-1]
        x[start : start + length] += burst
        covered += length
    x = _unit_rms(x) + 1e-4 * rng.standard_normal(n)
    return x.astype(np.float32)


def babble(
    n: int,
    rng: np.random.Generator,
    talkers: list[np.ndarray],
    sample_rate: int = 16000,
) -> np.ndarray:
    """Babble (cocktail-party) noise: several other people talking at once.

    Sums 3–6 (chosen by ``rng``, at most ``len(talkers)``) distinct utterances from
    ``talkers``, each read circularly from a random offset to length ``n`` (cut or looped)
    and normalised to the same active level (:func:`active_level` of the whole utterance)
    before summing; the sum is scaled to unit RMS. ``talkers`` should be other speakers'
    utterances from the same split as the clean speech, so no test speech leaks into
    training mixtures.
    """
    n, rng = _check_n(n), _check_rng(rng)
    talkers = list(talkers) if talkers is not None else []
    if len(talkers) < 3:
        raise ValueError(
            f"babble needs at least 3 other utterances from the same split, got {len(talkers)}"
        )
    k = int(rng.integers(3, min(6, len(talkers)) + 1))
    chosen = rng.choice(len(talkers), size=k, replace=False)
    x = np.zeros(n)
    for idx in chosen:
        t = _as_signal(talkers[idx], f"talker {idx}")
        level = active_level(t, sample_rate)
        if level <= 0:
            raise ValueError(f"talker {idx} is silent; babble needs audible utterances")
        x += _loop_to(t, n, int(rng.integers(t.size))) / math.sqrt(level)
    return _unit_rms(x).astype(np.float32)


def make_noise(
    kind: str,
    n: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    talkers: list[np.ndarray] | None = None,
) -> np.ndarray:
    """``n`` samples of noise of type ``kind`` (one of :data:`NOISE_TYPES`); ``talkers`` is
    needed (and only used) for ``"babble"``."""
    if kind == "white":
        return white(n, rng)
    if kind == "pink":
        return pink(n, rng)
    if kind == "brown":
        return brown(n, rng)
    if kind == "babble":
        return babble(n, rng, talkers if talkers is not None else [], sample_rate)
    if kind == "hum":
        return mains_hum(n, rng, sample_rate)
    if kind == "bursts":
        return bursts(n, rng, sample_rate)
    raise ValueError(f"unknown noise type {kind!r}; expected one of {', '.join(NOISE_TYPES)}")


# ----------------------------------------------------------------------------- level, mixing


def active_level(
    x: np.ndarray,
    sample_rate: int = 16000,
    frame_ms: float = 20.0,
    margin_db: float = P56_MARGIN_DB,
    floor_db: float = -100.0,
) -> float:
    """Active speech level of ``x`` as a power (mean square over its active parts).

    A simplified, frame-based approximation in the spirit of ITU-T P.56 (method B), *not*
    the reference implementation (no envelope filter, no 200 ms hangover, no 2**(1/2) dB
    threshold grid), so values can differ from P.56 tools by a dB or so on real speech:

    1. cut ``x`` into non-overlapping ``frame_ms`` frames (the last may be shorter) and take
       each frame's mean square ``e``;
    2. frames with ``e`` below ``floor_db`` dB re 1.0 (−100 dBFS: below 16-bit quantisation
       noise) are never active;
    3. as in P.56, the threshold is placed ``margin_db`` (15.9 dB) below the resulting active
       level: sorting frames by ``e`` (loudest first), the active set is the largest top-k
       whose sample-weighted mean square ``A`` satisfies ``A <= e_k * 10**(margin_db/10)``;
    4. return ``A`` for that set (0.0 if no frame is above the floor).

    For stationary noise every frame is active and the result equals the mean square; for
    speech whose pauses are well below the speech (true silence or a low noise floor) the
    pauses are excluded, e.g. 50 % silence gives ≈ 2× the whole-file mean square. Unlike a
    "max frame − X dB" rule, one loud click does not move the threshold.
    """
    a = _as_signal(x, "signal")
    flen = max(1, round(frame_ms * sample_rate / 1000.0))
    n_full = a.size // flen
    sums = list(np.square(a[: n_full * flen]).reshape(n_full, flen).sum(axis=1))
    counts = [flen] * n_full
    if a.size > n_full * flen:
        sums.append(float(np.square(a[n_full * flen :]).sum()))
        counts.append(a.size - n_full * flen)
    frame_sums, frame_counts = np.asarray(sums), np.asarray(counts, dtype=np.float64)
    energy = frame_sums / frame_counts
    keep = energy > 10.0 ** (floor_db / 10.0)
    if not keep.any():
        return 0.0
    order = np.argsort(-energy[keep], kind="stable")
    e_sorted = energy[keep][order]
    level = np.cumsum(frame_sums[keep][order]) / np.cumsum(frame_counts[keep][order])
    ok = np.flatnonzero(level <= e_sorted * 10.0 ** (margin_db / 10.0))
    return float(level[ok[-1]])  # ok[0] == 0 always holds (A == e for the loudest frame)


def _mean_square(x: np.ndarray) -> float:
    return float(np.mean(np.square(np.asarray(x, dtype=np.float64))))


def measured_snr_db(clean: np.ndarray, noise: np.ndarray, sample_rate: int = 16000) -> float:
    """SNR in dB of ``clean`` over ``noise``: 10·log10(active_level(clean) / mean square of
    noise), the same convention :func:`mix_at_snr` targets. ValueError if either is silent."""
    s = active_level(clean, sample_rate)
    if s <= 0:
        raise ValueError("clean signal is silent (zero active level); SNR is undefined")
    p = _mean_square(_as_signal(noise, "noise"))
    if p <= 0:
        raise ValueError("noise is silent (all zeros); SNR is undefined")
    return 10.0 * math.log10(s / p)


@dataclass(frozen=True, eq=False)
class MixResult:
    """A mixture and its parts: ``noisy == clean + noise`` (all float32, same length).

    ``clean`` and ``noise`` are the signals actually summed (after clipping protection),
    ``snr_db`` the requested SNR and ``gain`` (≤ 1) the factor applied to both for it.
    """

    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    snr_db: float
    gain: float


def mix_at_snr(
    clean: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator | None = None,
    sample_rate: int = 16000,
    peak_limit: float = 0.99,
) -> MixResult:
    """Add ``noise`` to ``clean`` at ``snr_db``.

    SNR convention: 10·log10(active_level(clean) / mean_square(scaled noise)), i.e. the
    speech's *active* level (P.56-like, pauses excluded; see :func:`active_level`) against
    the noise's *full* power over the mixture. The noise is cut or looped to the length of
    ``clean``, read from a random offset drawn from ``rng`` if given (else from sample 0),
    and scaled to hit the SNR. If the mixture's peak exceeds ``peak_limit``, clean and noise
    are both scaled by the same ``gain`` (so the SNR is unchanged) to bring the peak to
    ``peak_limit``: clipping protection without clipping. ValueError if ``clean`` or the
    noise segment is silent.
    """
    c = _as_signal(clean, "clean")
    nz = _as_signal(noise, "noise")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    if not peak_limit > 0:
        raise ValueError(f"peak_limit must be positive, got {peak_limit}")
    offset = 0 if rng is None else int(_check_rng(rng).integers(nz.size))
    seg = _loop_to(nz, c.size, offset)
    s = active_level(c, sample_rate)
    if s <= 0:
        raise ValueError("clean signal is silent (zero active level); cannot mix at an SNR")
    p = _mean_square(seg)
    if p <= 0:
        raise ValueError("noise is silent (all zeros over the mixed span); cannot mix at an SNR")
    seg = seg * math.sqrt(s / (p * 10.0 ** (snr_db / 10.0)))
    peak = float(np.max(np.abs(c + seg)))
    gain = min(1.0, peak_limit / peak) if peak > 0 else 1.0
    clean32 = (c * gain).astype(np.float32)
    noise32 = (seg * gain).astype(np.float32)
    return MixResult(
        noisy=clean32 + noise32,
        clean=clean32,
        noise=noise32,
        snr_db=float(snr_db),
        gain=float(gain),
    )

"""Diagnostics of discrete speech codes: how many entries a quantizer uses, how stable its
codes are over time, and how much phone information they carry.

Used to compare quantizers (wav2vec 2.0's Gumbel and VQ, BEST-RQ's frozen random
projection) on the frames of the test utterances:

- code perplexity exp(H(p̄_g)) summed over the G groups, p̄_g the empirical (hard) code
  distribution of group g over all frames (Baevski et al. 2020, §3.2, where p̄ is the
  batch's mean softmax instead), and the usage: the share of the G·V entries ever used;
- adjacent agreement: the share of adjacent frame pairs (t, t+1) of an utterance whose
  code is the same, averaged over groups, and the share where every group agrees;
- phone mutual information I(code; phone) in bits, PNMI = I(code; phone) / H(phone) and
  phone purity, as in HuBERT's cluster-quality analysis (Hsu et al. 2021, §V).

With G > 1 groups the phone statistics treat the tuple of group codes as one joint code,
since that tuple is what selects the quantized target. The plug-in estimate of I is
biased upward by about (C−1)(P−1) / (2N ln 2) bits for C used codes, P phones and N frames
(Miller 1955), so compare quantizers on the same frames and with similar C. Frames without
a phone (None) are left out of the phone statistics only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.data.items import PhoneSegment

__all__ = ["adjacent_agreement", "code_diagnostics", "frame_labels", "phone_information"]


def frame_labels(
    alignment: Sequence[PhoneSegment],
    num_frames: int,
    hop_samples: int,
    offset_samples: float = 0.0,
) -> list[str | None]:
    """The phone of each frame: the segment [start, end) that covers the frame's centre,
    ``offset_samples + t * hop_samples``; None where no segment covers it (a later segment
    wins where segments overlap).

    ``offset_samples`` is the centre of frame 0: about 200 for wav2vec 2.0's conv encoder
    (25 ms receptive field, 20 ms hop at 16 kHz), 80 for two stacked 10 ms log-mel frames
    of a centred STFT (centres 0 and 160).
    """
    if hop_samples <= 0 or num_frames < 0:
        raise ValueError(
            f"need hop_samples > 0 and num_frames >= 0, got {hop_samples}, {num_frames}"
        )
    labels: list[str | None] = [None] * num_frames
    for seg in alignment:
        # frames t with start <= offset + t * hop < end
        first = max(0, math.ceil((seg.start - offset_samples) / hop_samples))
        stop = min(num_frames, math.ceil((seg.end - offset_samples) / hop_samples))
        if stop > first:
            labels[first:stop] = [seg.phone] * (stop - first)
    return labels


def _as_groups(codes: np.ndarray, num_entries: int, index: int) -> np.ndarray:
    """One utterance's codes as an int (T, G) array; 1-D codes are one group."""
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"codes[{index}] must be integer (T, G), got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_entries):
        raise ValueError(f"codes[{index}] has entries outside [0, {num_entries})")
    return arr


def _entropy(counts: np.ndarray) -> float:
    """Entropy in nats of the distribution proportional to ``counts``."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _perplexity_and_usage(frames: np.ndarray, num_entries: int) -> tuple[float, float]:
    """(Σ_g exp(H(p̄_g)), used entries / (G·V)) of (N, G) codes."""
    counts = [np.bincount(frames[:, g], minlength=num_entries) for g in range(frames.shape[1])]
    perplexity = sum(math.exp(_entropy(c)) for c in counts)
    usage = sum(int((c > 0).sum()) for c in counts) / (len(counts) * num_entries)
    return perplexity, usage


def adjacent_agreement(codes: Sequence[np.ndarray]) -> tuple[float, float]:
    """(per-group share of adjacent pairs with the same code, averaged over groups; share
    of pairs where all groups agree), pooled over the pairs of all utterances; pairs never
    cross an utterance boundary."""
    arrays = [np.asarray(c).reshape(len(c), -1) for c in codes if len(c) > 1]
    same = [a[1:] == a[:-1] for a in arrays]
    if not same:
        raise ValueError("adjacent agreement needs an utterance of at least 2 frames")
    pairs = np.concatenate(same)  # (pairs, G)
    return float(pairs.mean()), float(pairs.all(axis=1).mean())


def phone_information(codes: np.ndarray, phones: Sequence[str]) -> dict[str, float]:
    """Plug-in I(code; phone) in bits, PNMI = I / H(phone) (NaN if only one phone occurs)
    and phone purity Σ_c max_p n(c, p) / N, over N frames: ``codes`` is (N,) or (N, G),
    a row being one (joint) code."""
    if len(codes) != len(phones) or len(codes) == 0:
        raise ValueError(f"need as many codes as phones (> 0), got {len(codes)} and {len(phones)}")
    arr = np.asarray(codes).reshape(len(codes), -1)
    c = np.unique(arr, axis=0, return_inverse=True)[1].reshape(-1)
    p = np.unique(np.asarray(phones, dtype=str), return_inverse=True)[1]
    joint = np.zeros((c.max() + 1, p.max() + 1))
    np.add.at(joint, (c, p), 1.0)
    n = joint.sum()
    n_code, n_phone = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    # I = Σ_{c,p} P(c,p) log2(P(c,p) / (P(c) P(p)))
    mi = float((joint[nz] / n * np.log2(joint[nz] * n / (n_code @ n_phone)[nz])).sum())
    h_phone = _entropy(n_phone.ravel()) / math.log(2)
    return {
        "phone_mi_bits": max(mi, 0.0),
        "phone_pnmi": max(mi, 0.0) / h_phone if h_phone > 0 else float("nan"),
        "phone_purity": float(joint.max(axis=1).sum() / n),
    }


def code_diagnostics(
    codes: Sequence[np.ndarray],
    phones: Sequence[Sequence[str | None]] | None,
    num_entries: int,
    max_mismatch: int = 2,
) -> dict[str, float]:
    """Perplexity, usage and adjacent agreement of the codes of each utterance ((T_u, G)
    integers in [0, num_entries)), and with ``phones`` (one label or None per frame) the
    phone statistics of :func:`phone_information` on the joint code of the groups.

    Codes and phones of an utterance may differ by up to ``max_mismatch`` frames (the
    encoder's and the alignment's rounding of the last frame): both are cut to the shorter
    for the phone statistics; a larger difference is an error (a wrong hop or offset).
    Perplexity, usage and agreement use every code frame.
    """
    if num_entries <= 0:
        raise ValueError(f"num_entries must be positive, got {num_entries}")
    arrays = [_as_groups(c, num_entries, i) for i, c in enumerate(codes)]
    if len({a.shape[1] for a in arrays}) > 1:
        raise ValueError("every utterance's codes must have the same number of groups")
    frames = np.concatenate(arrays) if arrays else np.zeros((0, 1), dtype=int)
    if len(frames) == 0:
        raise ValueError("code diagnostics need at least one frame of codes")
    perplexity, usage = _perplexity_and_usage(frames, num_entries)
    per_group, all_groups = adjacent_agreement(arrays)
    out = {
        "code_perplexity": perplexity,
        "code_usage": usage,
        "adjacent_agreement": per_group,
        "adjacent_agreement_all": all_groups,
    }
    if phones is None:
        return out
    if len(phones) != len(arrays):
        raise ValueError(f"{len(arrays)} utterances of codes but {len(phones)} of phones")
    kept_codes: list[np.ndarray] = []
    kept_phones: list[str] = []
    for i, (a, ph) in enumerate(zip(arrays, phones, strict=True)):
        if abs(len(a) - len(ph)) > max_mismatch:
            raise ValueError(
                f"utterance {i}: {len(a)} code frames but {len(ph)} phone labels "
                f"(more than {max_mismatch} apart): check hop_samples and offset_samples"
            )
        n = min(len(a), len(ph))
        keep = np.array([label is not None for label in ph[:n]], dtype=bool)
        kept_codes.append(a[:n][keep])
        kept_phones.extend(label for label in ph[:n] if label is not None)
    if not kept_phones:
        raise ValueError("no frame has a phone label: check the alignments and the hop")
    return out | phone_information(np.concatenate(kept_codes), kept_phones)

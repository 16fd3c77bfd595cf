"""Grapheme-to-phoneme scoring against several reference pronunciations per word.

G2P practice: a word is right (WER) if the output matches any of its pronunciations, and
PER counts the edits against the closest one (ties go to the pronunciation listed
first). Per word this gives the edit count, the length of the chosen reference and
whether the word is right; PER and WER are sums over those (``error_rates``). The error
rate by reference position shows exposure bias (errors compounding along the output).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import weighted


def align_errors(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, list[bool]]:
    """Levenshtein distance of ``hyp`` to ``ref`` and, per reference position, whether that
    reference token was substituted or deleted on one optimal alignment."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(
                d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1
            )
    wrong, i, j = [False] * n, n, m
    while i > 0:
        if j > 0 and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            wrong[i - 1] = ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:  # deletion of ref[i-1]
            wrong[i - 1] = True
            i -= 1
        else:  # insertion of hyp[j-1]
            j -= 1
    return int(d[n, m]), wrong


@dataclass
class WordScores:
    """Per word: edits against the closest reference, its length, and 1 if right; and the
    error rate per reference position (None where no reference is that long)."""

    edits: np.ndarray
    ref_len: np.ndarray
    correct: np.ndarray
    position_error: list[float | None]
    position_count: list[int]

    def rates(self) -> tuple[float, float]:
        return error_rates(self.edits, self.ref_len, self.correct)

    def columns(self, decoder: str) -> dict[str, np.ndarray]:
        """Per-word item columns, named for the ``decoder`` (e.g. ``edits_greedy``)."""
        return {
            f"edits_{decoder}": self.edits,
            f"ref_len_{decoder}": self.ref_len,
            f"correct_{decoder}": self.correct,
        }


def score_words(
    references: Sequence[Sequence[Sequence[str]]],
    hypotheses: Sequence[Sequence[str]],
    max_position: int = 20,
) -> WordScores:
    """Score each word's output ``hypotheses[k]`` against its pronunciations ``references[k]``."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits, ref_len = np.zeros(len(references), np.int64), np.zeros(len(references), np.int64)
    pos_err, pos_n = np.zeros(max_position), np.zeros(max_position)
    for k, (prons, hyp) in enumerate(zip(references, hypotheses, strict=True)):
        aligned = [align_errors(list(p), list(hyp)) for p in prons]
        best = min(range(len(prons)), key=lambda b: aligned[b][0])
        edits[k], ref_len[k] = aligned[best][0], len(prons[best])
        for pos, bad in enumerate(aligned[best][1][:max_position]):
            pos_n[pos] += 1
            pos_err[pos] += bad
    return WordScores(
        edits=edits,
        ref_len=ref_len,
        correct=(edits == 0).astype(np.int8),
        position_error=[float(e / n) if n else None for e, n in zip(pos_err, pos_n, strict=True)],
        position_count=pos_n.astype(int).tolist(),
    )


def error_rates(edits: np.ndarray, ref_len: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """(PER, WER): edits over reference phonemes, and the share of words that are wrong."""
    total = int(np.sum(ref_len))
    if total == 0:
        raise ValueError("every reference is empty: nothing to score")
    return int(np.sum(edits)) / total, int(np.sum(np.asarray(correct) == 0)) / len(correct)


def rates_from_columns(columns: dict[str, np.ndarray], decoder: str) -> tuple[float, float]:
    """(PER, WER) of ``decoder`` from the item columns written by ``WordScores.columns``."""
    return error_rates(*(columns[f"{c}_{decoder}"] for c in ("edits", "ref_len", "correct")))


def g2p_forms() -> dict[str, weighted.ItemForm]:
    """PER (edits over reference phonemes) and WER (share of wrong words) of each decoder
    on test, and the greedy PER on dev, as item forms (resampling)."""
    forms: dict[str, weighted.ItemForm] = {
        "dev_per_greedy": weighted.Ratio("dev", "edits_greedy", "ref_len_greedy")
    }
    for d in ("greedy", "beam"):
        forms[f"test_per_{d}"] = weighted.Ratio("test", f"edits_{d}", f"ref_len_{d}")
        forms[f"test_wer_{d}"] = weighted.Mean("test", _wrong(d), binary=True)
    return forms


def _wrong(decoder: str):
    """1 where the decoded word is not exactly right (the word error rate's items)."""
    return lambda c: (np.asarray(c[f"correct_{decoder}"]) == 0).astype(np.float64)

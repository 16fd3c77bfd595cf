"""Token error rates (PER, WER, CER), aggregated over the corpus.

Corpus-level: total edits over total reference tokens, not a mean of per-utterance rates
(which would over-weight short utterances). Phonemes and words are tokens separated by
spaces; for CER every character is a token.

The alignment is rapidfuzz's Levenshtein edit script, the same one jiwer uses, run on the
token lists directly: jiwer first re-joins and re-splits every sentence through its
transform pipeline, which costs more than the alignment itself on a large test set
(measured by `python run_all.py speed`; the counts are checked equal to jiwer's in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from bench.metrics import weighted


@dataclass(frozen=True)
class ErrorRate:
    rate: float  # (S + D + I) / N, a fraction
    substitutions: int
    deletions: int
    insertions: int
    reference_tokens: int


def token_error_rate(references: list[list[str]], hypotheses: list[list[str]]) -> ErrorRate:
    """Edit-distance error rate of token sequences (PER for phones, WER for words)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    subs = dels = ins = n = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        if not ref:
            continue
        n += len(ref)
        s, d, i = edit_counts(ref, hyp)
        subs, dels, ins = subs + s, dels + d, ins + i
    if n == 0:
        raise ValueError("every reference is empty: nothing to score")
    return ErrorRate(
        rate=(subs + dels + ins) / n,
        substitutions=subs,
        deletions=dels,
        insertions=ins,
        reference_tokens=n,
    )


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of one utterance's alignment."""
    subs = dels = ins = 0
    for tag, _, _ in Levenshtein.editops(reference, hypothesis).as_list():
        if tag == "replace":
            subs += 1
        elif tag == "delete":
            dels += 1
        else:
            ins += 1
    return subs, dels, ins


def rate_from_counts(edits: np.ndarray, reference_tokens: np.ndarray) -> float:
    """The corpus-level rate from per-utterance counts, as ``token_error_rate`` gives it:
    Σ edits / Σ reference tokens over the utterances whose reference is not empty."""
    kept = np.asarray(reference_tokens) > 0
    n = int(np.asarray(reference_tokens)[kept].sum())
    if n == 0:
        raise ValueError("every reference is empty: nothing to score")
    return float(np.asarray(edits)[kept].sum()) / n  # float: edits averaged over probe starts


def word_char_edits(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, np.ndarray]:
    """Per utterance of normalised text: word substitutions, deletions, insertions and
    edits, character edits (word separators left out, as for CER), and reference lengths;
    ``rate_from_counts`` of a column and its length gives the corpus WER or CER."""
    pairs = list(zip(references, hypotheses, strict=True))
    words = np.array([edit_counts(r.split(), h.split()) for r, h in pairs], dtype=np.int64)
    words = words.reshape(-1, 3)
    chars = [edit_counts(list(r.replace(" ", "")), list(h.replace(" ", ""))) for r, h in pairs]
    return {
        "word_sub": words[:, 0],
        "word_del": words[:, 1],
        "word_ins": words[:, 2],
        "word_edits": words.sum(1),
        "word_len": np.array([len(r.split()) for r, _ in pairs], dtype=np.int64),
        "char_edits": np.array([sum(c) for c in chars], dtype=np.int64),
        "char_len": np.array([len(r.replace(" ", "")) for r, _ in pairs], dtype=np.int64),
    }


def rate_forms(splits: tuple[str, ...]) -> dict[str, weighted.ItemForm]:
    """WER and CER, greedy and with the LM, of each split as item forms (resampling)."""
    return {
        f"{split}_{kind[0]}er{lm}": weighted.Ratio(
            split, f"{kind}_edits{lm}", f"{kind}_len", drop_empty=True
        )
        for split in splits
        for kind in ("word", "char")
        for lm in ("", "_lm")
    }

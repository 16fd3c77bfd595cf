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

from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein


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
        for tag, _, _ in Levenshtein.editops(ref, hyp).as_list():
            if tag == "replace":
                subs += 1
            elif tag == "delete":
                dels += 1
            else:
                ins += 1
    if n == 0:
        raise ValueError("every reference is empty: nothing to score")
    return ErrorRate(
        rate=(subs + dels + ins) / n,
        substitutions=subs,
        deletions=dels,
        insertions=ins,
        reference_tokens=n,
    )

"""Token error rates (PER, WER, CER) with jiwer, aggregated over the corpus.

Corpus-level: total edits over total reference tokens, not a mean of per-utterance rates
(which would over-weight short utterances). Phonemes and words are tokens separated by
spaces; for CER every character is a token.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer


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
    pairs = [(" ".join(r), " ".join(h)) for r, h in zip(references, hypotheses, strict=True) if r]
    if not pairs:
        raise ValueError("every reference is empty: nothing to score")
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    n = out.hits + out.substitutions + out.deletions
    return ErrorRate(
        rate=(out.substitutions + out.deletions + out.insertions) / n,
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        reference_tokens=n,
    )

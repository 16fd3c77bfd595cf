"""CTC decoding of character recognisers: best path, and prefix beam search with a word LM.

Frame posteriors are (T, V+1) log probabilities with index 0 the blank and index i the token
tokens[i-1] (the `ctc_probe.BLANK = 0` convention); the token " " separates words. Best path
takes the argmax labelling of each frame; prefix beam search (Graves 2012 §7; Hannun et al.
2014, Algorithm 1) sums the probabilities of all frame paths that collapse to the same
prefix, and can add a word n-gram LM each time a word is completed.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import torch

from bench.data.text_norm import SEPARATOR
from bench.models.ctc_probe import BLANK, greedy_decode
from bench.models.ngram_lm import EOS, NgramLM

NEG_INF = float("-inf")


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


def _add_nonblank(beams: dict[tuple[int, ...], list[float]], prefix, p_nb: float) -> None:
    """Add ``p_nb`` to the non-blank mass of ``prefix`` among the next frame's beams."""
    entry = beams.get(prefix)
    if entry is None:
        beams[prefix] = [NEG_INF, p_nb]
    else:
        entry[1] = _logadd(entry[1], p_nb)


def _check(log_probs: torch.Tensor, tokens: Sequence[str]) -> None:
    if log_probs.dim() != 2 or log_probs.shape[1] != len(tokens) + 1:
        raise ValueError(
            f"log_probs must be (T, {len(tokens) + 1}) for {len(tokens)} tokens + blank, "
            f"got {tuple(log_probs.shape)}"
        )


def _text(prefix: Sequence[int], tokens: Sequence[str]) -> str:
    """Labelling -> text with single spaces, stripped (as `text_norm.normalize` leaves it)."""
    return " ".join("".join(tokens[i - 1] for i in prefix).split())


def greedy(log_probs: torch.Tensor, tokens: Sequence[str]) -> str:
    """Best-path decoding of one utterance (T, V+1) into text."""
    _check(log_probs, tokens)
    return " ".join("".join(greedy_decode(log_probs, len(log_probs), list(tokens))).split())


class _WordScorer:
    """lm_weight * ln P_LM(word | previous words) + word_bonus for each completed word."""

    def __init__(
        self, lm: NgramLM, tokens: Sequence[str], lm_weight: float, word_bonus: float
    ) -> None:
        self.lm, self.tokens, self.lm_weight, self.word_bonus = lm, tokens, lm_weight, word_bonus
        self._cache: dict[tuple[int, ...], float] = {}

    def last_word(self, prefix: tuple[int, ...]) -> float:
        """Score of the last word of `prefix` (0 if it ends with the separator or is empty)."""
        if prefix not in self._cache:
            words = "".join(self.tokens[i - 1] for i in prefix).split(SEPARATOR)
            if not words[-1]:
                score = 0.0
            else:
                history = [w for w in words[:-1] if w]
                lp = self.lm.log_prob(words[-1], self.lm.context(history))
                score = self.lm_weight * lp + self.word_bonus
            self._cache[prefix] = score
        return self._cache[prefix]

    def end(self, prefix: tuple[int, ...]) -> float:
        """Score added at the end of the utterance: the unfinished last word, then </s>."""
        words = [w for w in "".join(self.tokens[i - 1] for i in prefix).split(SEPARATOR) if w]
        return self.last_word(prefix) + self.lm_weight * self.lm.log_prob(
            EOS, self.lm.context(words)
        )


def beam_search(
    log_probs: torch.Tensor,
    tokens: Sequence[str],
    beam_width: int = 16,
    lm: NgramLM | None = None,
    lm_weight: float = 0.5,
    word_bonus: float = 0.0,
    prune_logprob: float = -12.0,
) -> list[tuple[str, float]]:
    """CTC prefix beam search over one utterance's (T, V+1) log posteriors.

    Returns (text, score) best first, where score = ln P_CTC(labelling) plus, with an LM,
    lm_weight * ln P_LM of each word and of </s>, and word_bonus per word. Labellings that
    differ only in spaces (e.g. a trailing separator) give the same text and are merged
    by summing. A prefix that falls out of the beam loses its mass (Hannun et al. keep it
    to resume; with a wide enough beam and no pruning the search is exact). Tokens with a
    frame log prob below `prune_logprob` are not tried at that frame (the blank and the
    frame's best token always are).
    """
    _check(log_probs, tokens)
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    scorer = None
    if lm is not None:
        if SEPARATOR not in tokens:
            raise ValueError(f"an LM needs the word separator {SEPARATOR!r} among the tokens")
        scorer = _WordScorer(lm, tokens, lm_weight, word_bonus)
    separator = tokens.index(SEPARATOR) + 1 if SEPARATOR in tokens else -1
    # prefix (token indices) -> [ln p_blank, ln p_nonblank]: the mass of the paths collapsing
    # to the prefix whose last frame is blank / is the prefix's last token (Hannun Alg. 1)
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, NEG_INF]}
    for frame in log_probs.detach().to(torch.float64).cpu().tolist():
        best = max(range(1, len(frame)), key=frame.__getitem__, default=BLANK)
        tried = [c for c in range(1, len(frame)) if frame[c] >= prune_logprob or c == best]
        blank = frame[BLANK]
        # each candidate adds to one of the two masses of a prefix only (adding -inf to the
        # other would leave it exactly as it was), and only the best beam_width are sorted
        new: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            entry = new.get(prefix)  # blank: prefix unchanged
            if entry is None:
                new[prefix] = [blank + total, NEG_INF]
            else:
                entry[0] = _logadd(entry[0], blank + total)
            last = prefix[-1] if prefix else None
            word = scorer.last_word(prefix) if scorer and separator in tried else 0.0
            for c in tried:
                lm_score = word if c == separator else 0.0
                if c == last:
                    _add_nonblank(new, prefix, frame[c] + p_nb)  # repeat merges: "aa" -> "a"
                    _add_nonblank(new, prefix + (c,), frame[c] + p_b + lm_score)  # "a_a"
                else:
                    _add_nonblank(new, prefix + (c,), frame[c] + total + lm_score)
        beams = dict(heapq.nlargest(beam_width, new.items(), key=lambda kv: _logadd(*kv[1])))
    merged: dict[str, float] = {}
    for prefix, (p_b, p_nb) in beams.items():
        score = _logadd(p_b, p_nb) + (scorer.end(prefix) if scorer else 0.0)
        text = _text(prefix, tokens)
        merged[text] = _logadd(merged.get(text, NEG_INF), score)
    return sorted(merged.items(), key=lambda kv: kv[1], reverse=True)


def decode_batch(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int],
    tokens: Sequence[str],
    beam_width: int = 16,
    lm: NgramLM | None = None,
    lm_weight: float = 0.5,
    word_bonus: float = 0.0,
    prune_logprob: float = -12.0,
) -> list[str]:
    """Best beam-search text of each utterance of a padded (B, T, V+1) batch."""
    lengths = lengths.tolist() if isinstance(lengths, torch.Tensor) else list(lengths)
    if log_probs.dim() != 3 or len(lengths) != log_probs.shape[0]:
        raise ValueError(
            f"log_probs must be (B, T, V+1) with B = {len(lengths)} lengths, "
            f"got {tuple(log_probs.shape)}"
        )
    out = []
    for lp, n in zip(log_probs, lengths, strict=True):
        beams = beam_search(lp[:n], tokens, beam_width, lm, lm_weight, word_bonus, prune_logprob)
        out.append(beams[0][0] if beams else "")
    return out

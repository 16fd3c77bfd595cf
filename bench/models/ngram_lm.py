"""Word n-gram language model with interpolated Kneser-Ney smoothing, for CTC beam search.

Interpolated Kneser-Ney with one absolute discount D per model (Kneser & Ney 1995; Chen &
Goodman 1998, §3.5, eq. 17 with a single D): the highest order discounts raw counts, lower
orders discount continuation counts (the number of distinct words seen before an n-gram),
and the unigram level interpolates with a uniform distribution, so every word has
non-zero probability.

Vocabulary and <unk>: the model predicts the training words, </s> and one <unk> class that
stands for every word not seen in training (all of them together, not each one). So
sum(P(w | h) for w in vocab) + P(</s> | h) + P(<unk> | h) == 1 for every context h, and
`log_prob` of any out-of-vocabulary word is log P(<unk> | h). <s> is context only, never
predicted. An out-of-vocabulary context word is read as <unk>.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class NgramLM:
    """Interpolated Kneser-Ney word n-gram model; log probabilities are natural logs."""

    def __init__(self, order: int = 3, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0.0 < discount <= 1.0:
            # D <= 1 <= every non-zero count keeps max(c - D, 0) = c - D, hence normalisation
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.order = order
        self.discount = discount
        self.vocab: frozenset[str] = frozenset()  # training words, without <s>, </s>, <unk>
        # per level k (1..order): context (k-1 words) -> {word: count}; raw counts at the
        # highest order, continuation counts N1+(. h w) below it
        self._counts: list[dict[tuple[str, ...], dict[str, int]]] = []
        self._totals: list[dict[tuple[str, ...], int]] = []  # sum over w of the counts
        self._types: list[dict[tuple[str, ...], int]] = []  # N1+(h .): words seen after h
        self._known: frozenset[str] = frozenset()

    def fit(self, sentences: Sequence[Sequence[str]]) -> NgramLM:
        """Count n-grams of sentences padded with order-1 <s> and one </s>."""
        n = self.order
        vocab: set[str] = set()
        grams: dict[tuple[str, ...], int] = defaultdict(int)  # highest-order n-gram counts
        for sentence in sentences:
            for word in sentence:
                if word in (BOS, EOS):
                    raise ValueError(f"training sentence contains the reserved token {word!r}")
            vocab.update(w for w in sentence if w != UNK)
            padded = [BOS] * (n - 1) + list(sentence) + [EOS]
            for i in range(n - 1, len(padded)):  # every predicted token, never <s>
                grams[tuple(padded[i - n + 1 : i + 1])] += 1
        self.vocab = frozenset(vocab)
        self._known = self.vocab | {BOS, EOS}
        # level k counts: raw at k = n; for k < n, N1+(. h w) = distinct left extensions of
        # the (k)-gram among the (k+1)-grams that have a count (Chen & Goodman eq. 17)
        levels: list[dict[tuple[str, ...], int]] = [dict() for _ in range(n + 1)]
        levels[n] = dict(grams)
        for k in range(n - 1, 0, -1):
            cont: dict[tuple[str, ...], int] = defaultdict(int)
            for gram in levels[k + 1]:
                cont[gram[1:]] += 1
            levels[k] = dict(cont)
        self._counts, self._totals, self._types = [{}], [{}], [{}]  # index 0 unused
        for k in range(1, n + 1):
            counts: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
            for gram, c in levels[k].items():
                counts[gram[:-1]][gram[-1]] = c
            self._counts.append(dict(counts))
            self._totals.append({h: sum(ws.values()) for h, ws in counts.items()})
            self._types.append({h: len(ws) for h, ws in counts.items()})
        return self

    @property
    def num_predicted(self) -> int:
        """Size of the predicted vocabulary: training words + </s> + <unk>."""
        return len(self.vocab) + 2

    def context(self, history: Sequence[str]) -> tuple[str, ...]:
        """The order-1 words a prediction conditions on, <s>-padded at the sentence start."""
        if self.order == 1:
            return ()
        return tuple([BOS] * (self.order - 1) + list(history))[-(self.order - 1) :]

    def _prob(self, word: str, context: tuple[str, ...]) -> float:
        d = self.discount
        p = 1.0 / self.num_predicted  # uniform base below the unigram level
        for k in range(1, self.order + 1):  # from unigrams up to the full context
            if k - 1 > len(context):
                break
            h = context[len(context) - (k - 1) :] if k > 1 else ()
            total = self._totals[k].get(h, 0)
            if total == 0:  # unseen context: this level passes the lower order through
                continue
            c = self._counts[k][h].get(word, 0)
            # P_k(w|h) = max(c(hw) - D, 0)/c(h) + D N1+(h.)/c(h) P_{k-1}(w|h')  (C&G eq. 17)
            p = max(c - d, 0.0) / total + d * self._types[k][h] / total * p
        return p

    def log_prob(self, word: str, context: tuple[str, ...] = ()) -> float:
        """ln P(word | context); OOV words get the <unk> class's probability."""
        if not self._counts:
            raise RuntimeError("NgramLM.log_prob called before fit()")
        if word == BOS:
            raise ValueError("<s> is never predicted; pass it in the context")
        known = self._known
        word = word if word in known else UNK
        context = context[max(0, len(context) - self.order + 1) :] if self.order > 1 else ()
        context = tuple(w if w in known else UNK for w in context)
        return math.log(self._prob(word, context))

    def score_sentence(self, words: Sequence[str]) -> float:
        """ln P(words, </s> | <s>...): the sum of each word's and </s>'s log probability."""
        history: list[str] = []
        total = 0.0
        for word in [*words, EOS]:
            total += self.log_prob(word, self.context(history))
            history.append(word)
        return total

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """exp(-mean log probability per predicted token), </s> counted as a token."""
        log_prob = sum(self.score_sentence(s) for s in sentences)
        tokens = sum(len(s) + 1 for s in sentences)
        return math.exp(-log_prob / tokens)

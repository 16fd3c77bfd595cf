import math
import random

import pytest

from bench.models.ngram_lm import EOS, UNK, NgramLM

CORPUS = [["a", "b"], ["a", "c"], ["b"]]


def _prob(lm, word, context=()):
    return math.exp(lm.log_prob(word, context))


def test_bigram_kneser_ney_by_hand():
    lm = NgramLM(order=2, discount=0.5).fit(CORPUS)
    # padded: "<s> a b </s>", "<s> a c </s>", "<s> b </s>"
    # bigram counts: (<s> a)=2 (<s> b)=1 (a b)=1 (a c)=1 (b </s>)=2 (c </s>)=1
    # continuation counts N1+(. w): a {<s>}=1, b {<s>, a}=2, c {a}=1, </s> {b, c}=2;
    # total 6 over 4 types. Predicted words: a b c </s> <unk> -> uniform 1/5.
    # P1(w) = max(N - 0.5, 0)/6 + (0.5 * 4/6) * 1/5 = (N - 0.5)/6 + 1/15
    assert _prob(lm, "a") == pytest.approx(0.5 / 6 + 1 / 15)  # 9/60
    assert _prob(lm, "b") == pytest.approx(19 / 60)  # 1.5/6 + 1/15
    assert _prob(lm, EOS) == pytest.approx(19 / 60)
    assert _prob(lm, UNK) == pytest.approx(4 / 60)  # only the uniform share
    # context "a": c(a .) = 2 over 2 types -> lambda = 0.5 * 2/2 = 0.5
    # P(b|a) = (1 - 0.5)/2 + 0.5 * 19/60 = 30/120 + 19/120
    assert _prob(lm, "b", ("a",)) == pytest.approx(49 / 120)
    assert _prob(lm, "c", ("a",)) == pytest.approx(39 / 120)  # 0.25 + 0.5 * 9/60
    assert _prob(lm, "a", ("a",)) == pytest.approx(9 / 120)  # unseen after "a": 0.5 * 9/60
    # context "<s>": c = 3 over 2 types: P(a|<s>) = 1.5/3 + (0.5 * 2/3) * 9/60 = 0.55
    assert _prob(lm, "a", ("<s>",)) == pytest.approx(0.55)
    # an unseen context (an OOV word, read as <unk>) leaves the unigram distribution
    assert _prob(lm, "b", ("zebra",)) == pytest.approx(19 / 60)


def test_trigram_uses_continuation_counts_below_the_top():
    lm = NgramLM(order=3, discount=0.5).fit(CORPUS)
    # trigram counts: (<s> <s> a)=2 (<s> <s> b)=1 (<s> a b)=1 (<s> a c)=1 (a b </s>)=1
    # (a c </s>)=1 (<s> b </s>)=1. Middle level, continuation counts N1+(. v w):
    # (<s> a)=1 [raw count 2], (<s> b)=1, (a b)=1, (a c)=1, (b </s>)=2 {a, <s>}, (c </s>)=1;
    # unigram continuation counts as in the bigram model: P1 = a 9/60, b 19/60, ...
    # P2(a|<s>) = (1 - 0.5)/2 + (0.5 * 2/2) * 9/60 = 0.25 + 0.075 = 0.325
    assert _prob(lm, "a", ("<s>",)) == pytest.approx(0.325)
    # P3(a|<s> <s>) = (2 - 0.5)/3 + (0.5 * 2/3) * 0.325 = 60/120 + 13/120
    assert _prob(lm, "a", ("<s>", "<s>")) == pytest.approx(73 / 120)
    # P2(b|a) = 49/120 as in the bigram model; P3(b|<s> a) = 0.5/2 + (0.5 * 2/2) * 49/120
    assert _prob(lm, "b", ("<s>", "a")) == pytest.approx(30 / 120 + 24.5 / 120)
    # only the last order-1 words of a longer context count
    assert _prob(lm, "b", ("c", "c", "<s>", "a")) == pytest.approx(54.5 / 120)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distribution_sums_to_one(order):
    rng = random.Random(0)
    words = "the cat dog sat ran on a mat log".split()
    corpus = [[rng.choice(words) for _ in range(rng.randint(1, 7))] for _ in range(40)]
    lm = NgramLM(order=order, discount=0.75).fit(corpus)
    contexts = [(), ("the",), ("<s>", "<s>"), ("<s>", "the"), ("the", "cat"), ("mat", "on")]
    contexts += [("unseen",), ("cat", "unseen"), ("<s>", "<s>", "<s>")]
    for context in contexts:
        # vocabulary + </s> + the single <unk> class that every OOV word shares
        total = sum(_prob(lm, w, context) for w in [*lm.vocab, EOS, UNK])
        assert total == pytest.approx(1.0, abs=1e-6), context
    assert lm.num_predicted == len(words) + 2


def test_unseen_word_gets_small_positive_probability():
    lm = NgramLM().fit([["the", "cat", "sat"], ["the", "dog", "sat"]] * 5)
    p_unseen = _prob(lm, "zebra", ("the", "cat"))
    assert 0 < p_unseen < 0.05
    assert p_unseen == _prob(lm, UNK, ("the", "cat"))  # every OOV word is the <unk> class
    assert p_unseen < _prob(lm, "sat", ("the", "cat"))
    assert math.isfinite(lm.score_sentence(["zebra", "quokka"]))


def test_training_sentence_beats_scrambled_and_perplexity():
    rng = random.Random(1)
    corpus = [
        "the cat sat on the mat".split(),
        "the dog sat on the log".split(),
        "a cat ran to the dog".split(),
        "a dog ran to the cat".split(),
    ] * 3
    lm = NgramLM(order=3).fit(corpus)
    seen = corpus[0]
    assert lm.score_sentence(seen) > lm.score_sentence(["mat", "the", "on", "sat", "cat", "the"])
    vocab = sorted(lm.vocab)
    noise = [[rng.choice(vocab) for _ in range(6)] for _ in range(20)]
    assert lm.perplexity(corpus) < lm.perplexity(noise) / 3
    # perplexity = exp(-(sum of log probs) / (words + one </s> per sentence))
    expected = math.exp(-sum(lm.score_sentence(s) for s in corpus) / (12 * 6 + 12))
    assert lm.perplexity(corpus) == pytest.approx(expected)


def test_errors():
    with pytest.raises(ValueError, match="discount"):
        NgramLM(discount=1.5)
    with pytest.raises(ValueError, match="reserved"):
        NgramLM().fit([["a", "</s>"]])
    with pytest.raises(RuntimeError, match="before fit"):
        NgramLM().log_prob("a")

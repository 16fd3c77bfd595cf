import math

import pytest
import torch
import torch.nn.functional as F

from bench.models.ctc_decoding import beam_search, decode_batch, greedy
from bench.models.ngram_lm import NgramLM

EXACT = {"beam_width": 10_000, "prune_logprob": float("-inf")}  # no pruning of any kind


def _frames(rows, tokens):
    """(T, V+1) log posteriors from per-frame {token or "-" (blank): probability} dicts."""
    index = {"-": 0} | {t: i + 1 for i, t in enumerate(tokens)}
    probs = torch.full((len(rows), len(tokens) + 1), 1e-6, dtype=torch.float64)
    for t, row in enumerate(rows):
        for token, p in row.items():
            probs[t, index[token]] = p
    return (probs / probs.sum(-1, keepdim=True)).log()


def _peaked(generator, frames, classes, top=0.9):
    """Random posteriors whose argmax has probability >= `top` at every frame."""
    rest = torch.rand(frames, classes, generator=generator, dtype=torch.float64)
    best = torch.randint(0, classes, (frames,), generator=generator)
    rest[torch.arange(frames), best] = 0
    rest = (
        rest / rest.sum(-1, keepdim=True) * (1 - top) * torch.rand(frames, 1, generator=generator)
    )
    rest[torch.arange(frames), best] = 1 - rest.sum(-1)
    return rest.log()


def test_greedy_collapses_repeats_blanks_and_spaces():
    tokens = ["h", "i", " "]
    rows = [{"h": 1}, {"h": 1}, {"-": 1}, {"i": 1}, {" ": 1}, {"-": 1}, {" ": 1}, {"h": 1}]
    rows += [{"-": 1}, {"h": 1}, {" ": 1}]
    # h h - i " " - " " h - h " " -> "hi" + two separators + "hh" + separator -> "hi hh"
    assert greedy(_frames(rows, tokens), tokens) == "hi hh"
    assert greedy(_frames([{"-": 1}] * 3, tokens), tokens) == ""
    with pytest.raises(ValueError, match="tokens \\+ blank"):
        greedy(torch.zeros(3, 3), tokens)


def test_width_one_equals_greedy_on_peaked_posteriors():
    # Width-1 prefix beam search ranks prefixes by merged mass (all paths collapsing to a
    # prefix), best path by single frames, so in general they differ (random softmax
    # posteriors disagree in ~6% of cases even at logits * 5). When every frame's argmax
    # holds >= 0.9 of the mass, the best path's state keeps >= ~88% of its prefix's mass
    # at each frame, so both pick the same prefix at every frame: the case checked here.
    g = torch.Generator().manual_seed(0)
    tokens = ["a", "b", " ", "c"]
    for _ in range(200):
        frames = int(torch.randint(1, 25, (), generator=g))
        log_probs = _peaked(g, frames, len(tokens) + 1)
        best = beam_search(log_probs, tokens, beam_width=1, prune_logprob=float("-inf"))
        assert best[0][0] == greedy(log_probs, tokens)


def test_beam_sums_paths_and_beats_best_path():
    tokens = ["a", "b"]
    log_probs = _frames(
        [{"-": 0.25, "a": 0.35, "b": 0.4}, {"-": 0.4, "a": 0.35, "b": 0.25}], tokens
    )
    # best path: "b" then blank, p = 0.4 * 0.4 = 0.16 -> "b"
    assert greedy(log_probs, tokens) == "b"
    # P("a") = a a + a - + - a = .35*.35 + .35*.4 + .25*.35 = 0.35
    # P("b") = b b + b - + - b = .4*.25 + .4*.4 + .25*.25 = 0.3225
    beams = dict(beam_search(log_probs, tokens, beam_width=16))
    assert max(beams, key=beams.get) == "a"
    assert math.exp(beams["a"]) == pytest.approx(0.35, rel=1e-4)
    assert math.exp(beams["b"]) == pytest.approx(0.3225, rel=1e-4)


def test_unpruned_beam_scores_equal_ctc_likelihood():
    # with nothing pruned, prefix beam search is exact: each score is ln P_CTC(labelling),
    # checked against torch's CTC loss, and the labellings' probabilities sum to 1
    g = torch.Generator().manual_seed(1)
    tokens = ["a", "b"]
    for _ in range(5):
        log_probs = torch.log_softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), -1)
        beams = beam_search(log_probs, tokens, **EXACT)
        assert sum(math.exp(s) for _, s in beams) == pytest.approx(1.0)
        for text, score in beams:
            target = torch.tensor([[tokens.index(c) + 1 for c in text]], dtype=torch.long)
            nll = F.ctc_loss(log_probs.unsqueeze(1), target, [4], [len(text)], reduction="sum")
            assert score == pytest.approx(-nll.item(), abs=1e-9)


def test_lm_picks_the_likely_word():
    tokens = ["a", "b", " "]
    lm = NgramLM(order=2).fit([["b", "a"]] * 3 + [["a", "b"]])  # P(a|b) >> P(b|b)

    def decode(p_a, p_b, weight):
        log_probs = _frames([{"b": 1}, {" ": 1}, {"a": p_a, "b": p_b}], tokens)
        return beam_search(log_probs, tokens, beam_width=8, lm=lm, lm_weight=weight)

    # equal acoustics: without LM weight "b a" and "b b" tie; with it "b a" wins
    tie = dict(decode(0.5, 0.5, 0.0))
    assert tie["b a"] == pytest.approx(tie["b b"])
    assert decode(0.5, 0.5, 0.5)[0][0] == "b a"
    # acoustics slightly favour "b": the LM overturns it only when weighted
    assert decode(0.45, 0.55, 0.0)[0][0] == "b b"
    assert decode(0.45, 0.55, 0.5)[0][0] == "b a"
    # scores add lm_weight * ln P_LM for each word and </s> (and word_bonus per word)
    (text, score), *_ = decode(0.45, 0.55, 0.5)
    acoustic = math.log(0.45 / (0.45 + 0.55 + 2e-6))
    lm_total = lm.score_sentence(["b", "a"])
    assert score == pytest.approx(acoustic + 0.5 * lm_total, abs=1e-4)
    bonus = beam_search(
        _frames([{"b": 1}, {" ": 1}, {"a": 0.45, "b": 0.55}], tokens), tokens, 8, lm, 0.5, 2.0
    )
    assert dict(bonus)["b a"] == pytest.approx(score + 2 * 2.0, abs=1e-9)
    with pytest.raises(ValueError, match="separator"):
        beam_search(_frames([{"a": 1}], ["a"]), ["a"], lm=lm)


def test_decode_batch_respects_lengths():
    tokens = ["a", "b", " "]
    first = _frames([{"a": 1}, {"-": 1}, {"b": 1}, {"b": 1}], tokens)
    second = _frames([{"b": 1}, {" ": 1}, {"a": 1}, {"b": 1}], tokens)  # last two are padding
    batch = torch.stack([first, second])
    assert decode_batch(batch, torch.tensor([4, 2]), tokens) == ["ab", "b"]
    assert decode_batch(batch, [4, 4], tokens, beam_width=4) == ["ab", "b ab"]
    assert decode_batch(batch, [0, 1], tokens) == ["", "b"]

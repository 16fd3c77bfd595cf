import pytest

from bench.metrics.asr import token_error_rate


def test_corpus_level_per_by_hand():
    refs = [["a", "b", "c", "d"], ["e", "f"]]
    hyps = [["a", "x", "c"], ["e", "f", "g"]]
    # utt 1: 1 substitution (b->x), 1 deletion (d); utt 2: 1 insertion (g); N = 6
    out = token_error_rate(refs, hyps)
    assert (out.substitutions, out.deletions, out.insertions) == (1, 1, 1)
    assert out.rate == pytest.approx(3 / 6)
    refs2 = [["a"] * 10, ["b"]]
    hyps2 = [["a"] * 10, ["c"]]
    # corpus-level 1/11, while the per-utterance mean would be (0 + 1) / 2
    assert token_error_rate(refs2, hyps2).rate == pytest.approx(1 / 11)


def test_empty_hypothesis_counts_deletions_and_errors_are_clear():
    assert token_error_rate([["a", "b"]], [[]]).rate == 1.0
    with pytest.raises(ValueError, match="references but"):
        token_error_rate([["a"]], [])
    with pytest.raises(ValueError, match="every reference is empty"):
        token_error_rate([[]], [["a"]])


def test_counts_equal_jiwer_on_random_corpora():
    """Same S/D/I split as jiwer (both use rapidfuzz's edit script), tokens with repeats."""
    import random

    import jiwer

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(12)]
    refs = [[rng.choice(vocab) for _ in range(rng.randint(1, 15))] for _ in range(300)]
    hyps = []
    for ref in refs:
        hyp = [t if rng.random() > 0.3 else rng.choice(vocab) for t in ref if rng.random() > 0.1]
        hyps.append(hyp + [rng.choice(vocab) for _ in range(rng.randint(0, 2))])
    ours = token_error_rate(refs, hyps)
    peer = jiwer.process_words([" ".join(r) for r in refs], [" ".join(h) for h in hyps])
    assert (ours.substitutions, ours.deletions, ours.insertions) == (
        peer.substitutions,
        peer.deletions,
        peer.insertions,
    )
    assert ours.rate == pytest.approx(peer.wer)

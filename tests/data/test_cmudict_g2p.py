"""CMUdict G2P corpus: stress handling, several pronunciations, a seeded split by word."""

import pytest

from bench.data import cmudict_g2p


def test_entries_strip_stress_and_keep_every_pronunciation():
    entries = dict(cmudict_g2p.load_entries())
    assert len(entries) > 120_000
    assert entries["cat"] == (("K", "AE", "T"),)
    assert len(entries["read"]) >= 2  # R IY D and R EH D
    assert not any(ch.isdigit() for prons in entries.values() for p in prons for s in p for ch in s)
    stressed = dict(cmudict_g2p.load_entries(keep_stress=True))
    assert stressed["cat"] == (("K", "AE1", "T"),)
    # pronunciations differing only in stress merge once stress is stripped
    assert all(len(set(p)) == len(p) for p in entries.values())


def test_split_is_disjoint_seeded_and_sized():
    data = cmudict_g2p.load(2000, split_seed=0, valid_fraction=0.05, test_fraction=0.1)
    assert data.sizes() == {"train": 1700, "valid": 100, "test": 200}
    words = [{w for w, _ in s} for s in (data.train, data.valid, data.test)]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])
    again = cmudict_g2p.load(2000, split_seed=0)
    assert again.test == data.test and again.train == data.train
    other = cmudict_g2p.load(2000, split_seed=1)
    assert {w for w, _ in other.test} != words[2]


def test_full_split_covers_every_word_once():
    entries = cmudict_g2p.load_entries()
    train, valid, test = cmudict_g2p.split_entries(entries, 0, 0.05, 0.1)
    assert len(train) + len(valid) + len(test) == len(entries)
    assert len({w for w, _ in train + valid + test}) == len(entries)


def test_bad_fractions_and_sizes_are_refused():
    with pytest.raises(ValueError, match="below 1"):
        cmudict_g2p.load(100, valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="words must be"):
        cmudict_g2p.load(10**7)


def test_card_names_source_and_licence():
    data = cmudict_g2p.load(500)
    text = cmudict_g2p.card(data, keep_stress=False, split_seed=0)
    assert "CMU Pronouncing Dictionary" in text and "BSD" in text and "stripped" in text

"""Code diagnostics: perplexity, usage and agreement on hand cases, mutual information
against scikit-learn, PNMI and purity on hand cases, frame labels from an alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from bench.data.items import PhoneSegment
from bench.metrics.codes import (
    adjacent_agreement,
    code_diagnostics,
    frame_labels,
    phone_information,
)


def test_uniform_codes_have_perplexity_v_per_group_and_full_usage():
    v = 8
    codes = [np.stack([np.arange(v), np.arange(v)[::-1]], axis=1)]  # (8, 2), both uniform
    out = code_diagnostics(codes, None, num_entries=v)
    assert out["code_perplexity"] == pytest.approx(2 * v)
    assert out["code_usage"] == 1.0
    assert "phone_pnmi" not in out


def test_collapsed_codes_have_perplexity_one_per_group():
    out = code_diagnostics([np.zeros((5, 2), dtype=int), np.zeros((3, 2), dtype=int)], None, 4)
    assert out["code_perplexity"] == pytest.approx(2.0)
    assert out["code_usage"] == pytest.approx(2 / 8)
    assert out["adjacent_agreement"] == 1.0


def test_perplexity_and_usage_of_a_skewed_hand_case():
    # p̄ = (3/4, 1/4, 0, 0): exp(H) = exp(-(3/4 ln 3/4 + 1/4 ln 1/4)); 2 of 4 entries used
    out = code_diagnostics([np.array([0, 0, 0, 1])], None, num_entries=4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert out["code_perplexity"] == pytest.approx(math.exp(h))
    assert out["code_usage"] == 0.5


def test_adjacent_agreement_counts_pairs_within_utterances_only():
    # utterance A: same, diff, same; utterance B: same -> 3 of 4 pairs. Concatenated, the
    # boundary pair (1 | 2) would add a disagreement.
    per_group, all_groups = adjacent_agreement([np.array([0, 0, 1, 1]), np.array([2, 2])])
    assert per_group == all_groups == pytest.approx(3 / 4)


def test_adjacent_agreement_per_group_and_all_groups():
    codes = [np.array([[0, 1], [0, 2], [0, 2]])]  # group 0: 2/2 agree, group 1: 1/2
    per_group, all_groups = adjacent_agreement(codes)
    assert per_group == pytest.approx(0.75)
    assert all_groups == pytest.approx(0.5)


def test_mutual_information_matches_sklearn():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, size=2000)
    phones = rng.choice(list("abcde"), size=2000)
    phones[codes < 3] = "a"  # some dependence, so the value is not ≈ 0
    expected = mutual_info_score(phones, codes) / math.log(2)  # nats -> bits
    assert phone_information(codes, list(phones))["phone_mi_bits"] == pytest.approx(expected)


def test_groups_are_joined_into_one_code():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 3, size=(500, 2))
    phones = list(rng.choice(list("xyz"), size=500))
    joint = [f"{a},{b}" for a, b in codes]
    out = code_diagnostics([codes], [phones], num_entries=3)
    assert out["phone_mi_bits"] == pytest.approx(mutual_info_score(phones, joint) / math.log(2))


def test_pnmi_is_one_when_codes_determine_phones():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 12, size=1000)
    phones = [["a", "b", "c", "d"][c % 4] for c in codes]  # three codes per phone
    out = phone_information(codes, phones)
    assert out["phone_pnmi"] == pytest.approx(1.0)
    assert out["phone_purity"] == pytest.approx(1.0)


def test_pnmi_is_near_zero_for_independent_codes():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 8, size=20000)
    phones = list(rng.choice(list("abcd"), size=20000))
    assert phone_information(codes, phones)["phone_pnmi"] < 0.01


def test_purity_hand_case():
    # code 0: a a b (2), code 1: b b (2), code 2: c a (1) -> 5 / 7
    codes = np.array([0, 0, 0, 1, 1, 2, 2])
    phones = ["a", "a", "b", "b", "b", "c", "a"]
    assert phone_information(codes, phones)["phone_purity"] == pytest.approx(5 / 7)


def test_frames_without_a_phone_are_left_out_of_phone_statistics_only():
    codes = np.array([0, 0, 1, 1, 2])
    with_gaps = code_diagnostics([codes], [["a", None, "b", "b", None]], num_entries=3)
    expected = phone_information(np.array([0, 1, 1]), ["a", "b", "b"])
    for key, value in expected.items():
        assert with_gaps[key] == pytest.approx(value)
    assert with_gaps["code_usage"] == 1.0  # code 2 still counts, though unlabelled


def test_frame_labels_use_the_frame_centre():
    alignment = [
        PhoneSegment("a", 0, 320),
        PhoneSegment("b", 320, 800),
        PhoneSegment("c", 1000, 1300),
    ]
    # centres 160, 480, 800 (end of b is exclusive), 1120, 1440 (past the end)
    assert frame_labels(alignment, 5, 320, offset_samples=160) == ["a", "b", None, "c", None]
    # centres 0, 320 (start of b is inclusive), 640, 960 (in the gap), 1280
    assert frame_labels(alignment, 5, 320) == ["a", "b", "b", None, "c"]


def test_lengths_differing_by_a_frame_or_two_are_truncated():
    codes = np.array([0, 1, 1, 0, 2])
    phones = ["a", "b", "b", "a"]  # one frame short
    out = code_diagnostics([codes], [phones], num_entries=3)
    expected = phone_information(codes[:4], phones)
    assert out["phone_mi_bits"] == pytest.approx(expected["phone_mi_bits"])
    assert out["code_usage"] == 1.0  # the unlabelled last frame's code 2 still counts
    longer = code_diagnostics([codes[:3]], [phones], num_entries=3)  # phones one longer
    assert longer["phone_purity"] == pytest.approx(1.0)


def test_a_large_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="hop_samples"):
        code_diagnostics([np.zeros(10, dtype=int)], [["a"] * 5], num_entries=2)


def test_codes_outside_the_codebook_are_an_error():
    with pytest.raises(ValueError, match="outside"):
        code_diagnostics([np.array([0, 4])], None, num_entries=4)

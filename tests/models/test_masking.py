import pytest
import torch

from bench.models.masking import compute_mask


def test_masked_fraction_matches_p_and_m():
    """Paper defaults p=0.065, M=10: a fraction 1-(1-p)^M ~ 49% of steps is masked."""
    g = torch.Generator().manual_seed(0)
    mask = compute_mask(400, 500, 0.065, 10, g)
    expected = 1 - (1 - 0.065) ** 10
    assert mask.float().mean().item() == pytest.approx(expected, abs=0.02)


def test_spans_have_length_at_least_m():
    g = torch.Generator().manual_seed(1)
    mask = compute_mask(50, 300, 0.02, 7, g)  # sparse starts: mostly isolated spans
    for row in mask:
        runs, n = [], 0
        for v in row.tolist() + [False]:
            if v:
                n += 1
            elif n:
                runs.append(n)
                n = 0
        assert runs and min(runs) >= 7


def test_number_of_starts_is_p_times_t_on_average():
    g = torch.Generator().manual_seed(2)
    mask = compute_mask(2000, 200, 0.05, 1, g)  # M=1: masked steps == starts
    assert mask.sum(1).float().mean().item() == pytest.approx(0.05 * 200, rel=0.03)


def test_seeded_and_min_masks():
    a = compute_mask(3, 40, 0.065, 10, torch.Generator().manual_seed(5))
    b = compute_mask(3, 40, 0.065, 10, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    few = compute_mask(8, 12, 0.0, 10, torch.Generator().manual_seed(0), min_masks=2)
    assert (few.sum(1) >= 2).all()
    with pytest.raises(ValueError, match="shorter than mask_length"):
        compute_mask(1, 5, 0.1, 10)

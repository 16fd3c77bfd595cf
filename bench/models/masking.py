"""Time masking of wav2vec 2.0 (Baevski et al. 2020, §3.1 and §4.2).

A proportion p of all time steps is sampled without replacement as span starts, and the
M consecutive steps from each start are masked; spans may overlap. With the paper's
p = 0.065 and M = 10, about 49% of steps are masked (1 - (1 - p)^M for long sequences).
fairseq draws int(p * T + u) starts with u ~ U[0, 1) (stochastic rounding); so do we.
"""

from __future__ import annotations

import torch


def compute_mask(
    batch: int,
    steps: int,
    mask_prob: float = 0.065,
    mask_length: int = 10,
    generator: torch.Generator | None = None,
    min_masks: int = 2,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(batch, steps) bool mask; each row has at least ``min_masks`` masked steps."""
    if not 0 <= mask_prob < 1 or mask_length < 1:
        raise ValueError(
            f"need 0 <= mask_prob < 1 and mask_length >= 1, got {mask_prob}, {mask_length}"
        )
    if steps < mask_length:
        raise ValueError(f"sequence of {steps} steps is shorter than mask_length={mask_length}")
    n_starts_max = steps - mask_length + 1
    mask = torch.zeros(batch, steps, dtype=torch.bool)
    u = torch.rand(batch, generator=generator)
    counts = (mask_prob * steps + u).long().clamp(1, n_starts_max)  # stochastic rounding
    # a random permutation per row; its first `count` entries are the span starts
    order = torch.rand(batch, n_starts_max, generator=generator).argsort(dim=1)
    keep = torch.arange(n_starts_max).unsqueeze(0) < counts.unsqueeze(1)
    starts = torch.zeros(batch, n_starts_max, dtype=torch.bool)
    starts.scatter_(1, order, keep)
    for offset in range(mask_length):  # mask M steps after every start
        mask[:, offset : offset + n_starts_max] |= starts
    short = mask.sum(1) < min_masks
    if short.any():  # guarantee at least min_masks steps so distractors exist
        mask[short, :min_masks] = True
    return mask.to(device)

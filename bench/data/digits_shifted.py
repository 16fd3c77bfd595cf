"""Rotated and rescaled digits: the affine warp shared by the image augmentations
(methods/image_augment.py) and the shifted test sets of ``bench.tasks.image_augment``.

``affine_each`` warps each image with its own angle and scale through
``torchvision.transforms.v2.functional.affine`` (bilinear, fill 0 as the v2 random
transforms fill; the digits' background is 0). Angles are counter-clockwise, as
``v2.RandomRotation`` and ``v2.functional.rotate`` take them (``affine`` itself turns
clockwise, hence the sign).
``shifted_copies`` makes the fixed test conditions: every test image rotated by each
angle, or rescaled by each factor, with item ids that pair across cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF


def affine_each(x: torch.Tensor, angles: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Image ``x[i]`` of (N, C, H, W) rotated by ``angles[i]`` degrees counter-clockwise and
    scaled by ``scales[i]`` about its centre; an angle 0 and a scale 1 leave it unchanged."""
    if x.ndim != 4:
        raise ValueError(f"affine_each takes images (N, C, H, W), got shape {tuple(x.shape)}")
    if len(angles) != len(x) or len(scales) != len(x):
        raise ValueError(
            f"one angle and one scale per image: {len(x)} images, {len(angles)} angles, "
            f"{len(scales)} scales"
        )
    if len(scales) and float(scales.min()) <= 0:
        raise ValueError(f"scales must be > 0, got min {float(scales.min())}")
    out = [
        TF.affine(
            img,
            angle=-float(a),
            translate=[0.0, 0.0],
            scale=float(s),
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
            fill=0.0,  # as v2.RandomRotation / v2.RandomAffine fill (a masked blend at edges)
        )
        for img, a, s in zip(x, angles.tolist(), scales.tolist(), strict=True)
    ]
    return torch.stack(out) if out else x.clone()


def _tag(value: float) -> str:
    return f"{value:g}"


def shifted_copies(
    x: torch.Tensor,
    y: torch.Tensor,
    ids: Sequence[str],
    *,
    angles: Sequence[float] = (),
    scales: Sequence[float] = (),
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Every image once per angle (id ``{id}/rot{+30}``) or once per scale (``{id}/scale0.7``).

    Give ``angles`` or ``scales``, not both: one condition per call. Deterministic: the
    same images give the same copies in every cell."""
    if bool(angles) == bool(scales):
        raise ValueError("shifted_copies takes angles or scales (one condition), not both")
    if any(s <= 0 for s in scales):
        raise ValueError(f"test scales must be > 0, got {list(scales)}")
    values = list(angles or scales)
    n = len(x)
    parts, labels, names = [], [], []
    for v in values:
        a = torch.full((n,), float(v) if angles else 0.0)
        s = torch.full((n,), 1.0 if angles else float(v))
        parts.append(affine_each(x, a, s))
        labels.append(y)
        tag = f"rot{float(v):+g}" if angles else f"scale{_tag(float(v))}"
        names += [f"{i}/{tag}" for i in ids]
    return torch.cat(parts), torch.cat(labels), np.array(names)

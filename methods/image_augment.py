"""Training-time image augmentations (registered under "image_augment"), for
``bench.tasks.image_augment`` on the 8x8 digits.

An augmentation is called as ``aug(x, generator) -> tensor`` on a batch (N, C, H, W), the
``augment`` hook of ``bench.models.classifier_training.fit_classifier``. It draws one set of
parameters per image (not one per batch) from the torch Generator passed in, never from
torch's global RNG, so a seed fixes every draw; the warp itself is
``torchvision.transforms.v2.functional.affine`` (through ``bench.data.digits_shifted``).
The draws are those of torchvision's ``v2.RandomRotation(degrees)`` (angle uniform in
[-degrees, degrees], counter-clockwise) and ``v2.RandomAffine(degrees=0, scale=(a, b))``
(factor uniform in [a, b]); torchvision draws them from the global RNG, once per call.

- ``none``: identity (the baseline).
- ``rotation``: random rotation, ±30° by default.
- ``scale``: random rescaling about the centre, factor in [0.7, 1.3] by default.
- ``both``: one warp with a random rotation and a random rescaling.

The defaults match the test conditions of the task (±30°, ×0.7 and ×1.3); torchvision has
no defaults for these ranges.
"""

from __future__ import annotations

import math

import torch

from bench.data.digits_shifted import affine_each
from bench.registry import register

DEGREES = 30.0
SCALE = (0.7, 1.3)


def _check(degrees: float, scale: tuple[float, float]) -> tuple[float, tuple[float, float]]:
    degrees = float(degrees)
    if not math.isfinite(degrees) or degrees < 0:
        raise ValueError(
            f"rotation degrees must be a finite number >= 0 (angles are drawn from "
            f"[-degrees, degrees]), got {degrees}"
        )
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a pair (low, high), got {scale!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ValueError(f"scale range must satisfy 0 < low <= high, got ({low}, {high})")
    return degrees, (low, high)


class RandomAffineImages:
    """Per image: angle ~ U[-degrees, degrees], scale ~ U[low, high], drawn from the
    generator; (0, (1, 1)) is the identity and draws nothing."""

    def __init__(self, degrees: float = 0.0, scale: tuple[float, float] = (1.0, 1.0)) -> None:
        self.degrees, self.scale = _check(degrees, scale)

    @property
    def is_identity(self) -> bool:
        return self.degrees == 0 and self.scale == (1.0, 1.0)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Angles and scales of ``n`` images (one uniform draw each, angles first)."""
        low, high = self.scale
        angles = torch.zeros(n, dtype=torch.float64)
        scales = torch.ones(n, dtype=torch.float64)
        if self.degrees > 0:
            u = torch.rand(n, generator=generator, dtype=torch.float64)
            angles = (2 * u - 1) * self.degrees
        if high > low:
            u = torch.rand(n, generator=generator, dtype=torch.float64)
            scales = low + u * (high - low)
        elif low != 1.0:
            scales = torch.full((n,), low, dtype=torch.float64)
        return angles, scales

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.is_identity:
            return x
        angles, scales = self.sample(len(x), generator)
        return affine_each(x, angles, scales)


@register("image_augment", "none")
class NoImageAugment(RandomAffineImages):
    """Identity: the un-augmented baseline."""

    def __init__(self) -> None:
        super().__init__()


@register("image_augment", "rotation")
class RandomRotation(RandomAffineImages):
    """``v2.RandomRotation(degrees)`` per image: angle ~ U[-degrees, degrees]."""

    def __init__(self, degrees: float = DEGREES) -> None:
        super().__init__(degrees=degrees)


@register("image_augment", "scale")
class RandomScale(RandomAffineImages):
    """``v2.RandomAffine(degrees=0, scale=scale)`` per image: factor ~ U[low, high]."""

    def __init__(self, scale: tuple[float, float] = SCALE) -> None:
        super().__init__(scale=scale)


@register("image_augment", "both")
class RandomRotationScale(RandomAffineImages):
    """``v2.RandomAffine(degrees, scale=scale)`` per image: a rotation and a rescaling."""

    def __init__(self, degrees: float = DEGREES, scale: tuple[float, float] = SCALE) -> None:
        super().__init__(degrees=degrees, scale=scale)

"""scikit-learn's digits: 1,797 real 8x8 handwritten images, split per seed.

Used for image classification and calibration; the split is stratified and fully
determined by the seed, so a cell's seed fixes its data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@dataclass(frozen=True)
class DigitsSplit:
    """Images scaled to [0, 1] as (N, 1, 8, 8) float32 tensors and int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    id_train: np.ndarray | None = None  # the images' indices in load_digits(): item ids
    id_valid: np.ndarray | None = None
    id_test: np.ndarray | None = None
    num_classes: int = 10

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def load_digits_split(
    seed: int, valid_fraction: float = 0.2, test_fraction: float = 0.2
) -> DigitsSplit:
    """Stratified train/valid/test split of the digits, fixed by ``seed``."""
    if (
        not 0 < valid_fraction < 1
        or not 0 < test_fraction < 1
        or valid_fraction + test_fraction >= 1
    ):
        raise ValueError(
            f"valid_fraction={valid_fraction} and test_fraction={test_fraction} must be in (0, 1) "
            "and sum to less than 1"
        )
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # pixel values are 0..16
    y = data.target.astype(np.int64)
    ids = np.arange(len(y))  # split with the images: the split depends on n, y and seed only
    x_rest, x_test, y_rest, y_test, id_rest, id_test = train_test_split(
        x, y, ids, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_train, x_valid, y_train, y_valid, id_train, id_valid = train_test_split(
        x_rest,
        y_rest,
        id_rest,
        test_size=valid_fraction / (1 - test_fraction),
        stratify=y_rest,
        random_state=seed,
    )
    t = torch.from_numpy
    return DigitsSplit(
        t(x_train), t(y_train), t(x_valid), t(y_valid), t(x_test), t(y_test),
        id_train, id_valid, id_test,
    )  # fmt: skip

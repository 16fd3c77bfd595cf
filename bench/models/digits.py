"""Small image classifiers for the 8x8 digits, registered under "classifier"."""

from __future__ import annotations

import torch
from torch import nn

from bench.registry import register


@register("classifier", "mlp")
class MLP(nn.Module):
    """Two hidden ReLU layers over the flattened image; no dropout, so it overfits."""

    requires = ("num_classes",)  # context from the task (the output width)

    def __init__(self, in_features: int = 64, hidden: int = 256, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register("classifier", "cnn")
class SmallCNN(nn.Module):
    """Two 3x3 conv blocks with batch norm, a max-pool and two linear layers (LeNet-like)."""

    requires = ("num_classes",)  # context from the task (classes, or the embedding width)

    def __init__(self, channels: int = 32, hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * channels * 16, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

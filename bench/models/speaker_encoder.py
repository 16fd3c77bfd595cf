"""The small log-mel encoder of the metric-learning and augmentation tasks.

Three dilated 1-D conv blocks over log-mel frames, mean+std pooling over the valid frames,
and a linear embedding (an x-vector in miniature). ``embed`` runs it over a list of
variable-length utterances (tasks run it on one CPU thread: ``Task.cpu_threads``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Encoder", "embed", "pad"]


class Encoder(nn.Module):
    """Three 1-D conv blocks over log-mel frames, mean+std pooling, a linear embedding."""

    mean: torch.Tensor  # (n_mels,) input normalisation (buffers)
    std: torch.Tensor

    def __init__(self, n_mels: int, channels: int, embedding_dim: int) -> None:
        super().__init__()
        blocks, c_in = [], n_mels
        for kernel, dilation in ((5, 1), (3, 2), (3, 3)):
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(c_in, channels, kernel, dilation=dilation, padding="same"),
                    nn.BatchNorm1d(channels),
                    nn.ReLU(),
                )
            )
            c_in = channels
        self.blocks = nn.ModuleList(blocks)
        self.embed = nn.Linear(2 * channels, embedding_dim)
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def normalise_with(self, feats: list[torch.Tensor]) -> Encoder:
        """Set the input normalisation to the mean and std of all frames of ``feats``: global,
        not per utterance, so loudness and pitch level stay in the features."""
        frames = torch.cat(feats)
        self.mean.copy_(frames.mean(0))
        self.std.copy_(frames.std(0) + 1e-5)
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) padded features and their lengths -> (B, embedding_dim)."""
        mask = (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)).unsqueeze(1)
        h = ((x - self.mean) / self.std).transpose(1, 2) * mask  # (B, n_mels, T)
        for block in self.blocks:  # zeroing the padding after each block makes a padded
            h = block(h) * mask  # batch give exactly the unpadded result (in eval mode)
        n = lengths.clamp(min=1).view(-1, 1).to(h.dtype)
        mean = (h * mask).sum(2) / n
        var = ((h - mean.unsqueeze(2)) ** 2 * mask).sum(2) / n
        return self.embed(torch.cat([mean, (var + 1e-5).sqrt()], dim=1))  # stats pooling


def pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad (T_i, n_mels) features into (B, max T, n_mels), with their lengths."""
    lengths = torch.tensor([len(f) for f in feats])
    out = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        out[i, : len(f)] = f
    return out, lengths


@torch.no_grad()
def embed(
    model: nn.Module, feats: list[torch.Tensor], device: torch.device, batch: int = 64
) -> np.ndarray:
    """``model``'s outputs (eval mode) for every utterance of ``feats``, in batches."""
    model.eval()
    out = []
    for s in range(0, len(feats), batch):
        x, lengths = pad(feats[s : s + batch])
        out.append(model(x.to(device), lengths.to(device)).cpu())
    return torch.cat(out).numpy()

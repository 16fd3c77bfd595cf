"""More digits classifiers for the zoo task, registered under "classifier" beside mlp and cnn.

- ``resnet``: a small residual network (He et al. 2016) for 8x8 inputs: a 3x3 stem, basic
  blocks at 8x8, one strided stage to 4x4 with twice the channels, global average pooling;
- ``vit``: a small vision Transformer (Dosovitskiy et al. 2021): non-overlapping
  ``patch_size`` x ``patch_size`` patches in row-major order, a linear patch embedding, a
  class token and learned position embeddings, pre-norm encoder blocks, the head on the
  class token;
- ``shift_rotate``: the zoo's augmentation, a small random shift and rotation of each
  image, drawn from the cell's generator (torch ops only, so it runs on the device).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import register

IMAGE_SIZE = 8


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 strided) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register("classifier", "resnet")
class SmallResNet(nn.Module):
    """Stem, ``blocks`` basic blocks at 8x8 (``channels``), ``blocks`` at 4x4 (2x), pool."""

    requires = ("num_classes",)

    def __init__(self, channels: int = 16, blocks: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        if channels < 1 or blocks < 1:
            raise ValueError(
                f"resnet needs channels >= 1 and blocks >= 1, got {channels}, {blocks}"
            )
        layers: list[nn.Module] = [
            nn.Conv2d(1, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        ]
        layers += [BasicBlock(channels, channels) for _ in range(blocks)]
        layers.append(BasicBlock(channels, 2 * channels, stride=2))
        layers += [BasicBlock(2 * channels, 2 * channels) for _ in range(blocks - 1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/p)·(W/p), C·p·p): patches in row-major order (left to right,
    then top to bottom), each flattened channel-first then row-major within the patch."""
    b, c, h, w = x.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"patch_size {p} does not divide the image size {h}x{w}")
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


@register("classifier", "vit")
class SmallViT(nn.Module):
    """Patch embedding + class token + position embeddings, ``depth`` pre-norm blocks."""

    requires = ("num_classes",)

    def __init__(
        self,
        patch_size: int = 2,
        dim: int = 32,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if patch_size < 1 or IMAGE_SIZE % patch_size:
            raise ValueError(
                f"vit patch_size {patch_size} does not divide the {IMAGE_SIZE}x{IMAGE_SIZE} "
                "digits; use 1, 2, 4 or 8"
            )
        if dim % heads:
            raise ValueError(f"vit dim {dim} is not a multiple of heads {heads}")
        self.patch_size = patch_size
        n_patches = (IMAGE_SIZE // patch_size) ** 2
        self.embed = nn.Linear(patch_size * patch_size, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        block = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=mlp_ratio * dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 8, 8) -> (B, 1 + patches, dim): class token first, positions added."""
        patches = self.embed(patchify(x, self.patch_size))
        cls = self.cls.expand(len(x), -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.encoder(self.tokens(x))[:, 0]))


def shift_rotate(
    x: torch.Tensor, generator: torch.Generator, max_shift: float = 1.0, max_degrees: float = 15.0
) -> torch.Tensor:
    """Each image of (B, C, H, W) shifted by up to ``max_shift`` pixels per axis and rotated
    by up to ``max_degrees``, uniformly at random (bilinear, zeros outside)."""
    b, _, h, w = x.shape
    u = torch.rand(b, 3, generator=generator).to(x.device) * 2 - 1  # in [-1, 1)
    angle = u[:, 0] * math.radians(max_degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid works in normalised coordinates: one pixel is 2 / size
    tx, ty = u[:, 1] * max_shift * 2 / w, u[:, 2] * max_shift * 2 / h
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

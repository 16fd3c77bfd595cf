"""The pieces of the wav2vec-style network: its two input stems and its context network.

- :class:`FeatureEncoder`: wav2vec 2.0's strided convolutions over the waveform (20 ms
  frames), for GPU and ``full`` runs, where it can learn.
- :class:`LogMelStem`: 80 log-mel energies every 10 ms, two frames stacked into 20 ms (160
  dims), with no parameters. On a CPU budget this is the stem that learns anything: the
  64-channel waveform encoder, even randomly initialised, is far worse than log-mel.
- :class:`ContextNetwork`: a pre-LayerNorm Transformer over the projected features with a
  convolutional relative positional embedding (wav2vec 2.0 §2), that honours a padding
  mask (padded frames are zeroed before the positional convolution, as fairseq does, and
  never attended to), and exposes two kinds of per-block output: the residual stream after
  each block (what a probe reads) and each block's feed-forward output before its last
  residual connection (what data2vec's teacher averages into targets, data2vec §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from bench.models.wav2vec_config import Wav2VecConfig

SAMPLE_RATE = 16000


class FeatureEncoder(nn.Module):
    """Strided convolutions over the raw waveform; group norm after the first layer, GELU."""

    def __init__(self, config: Wav2VecConfig) -> None:
        super().__init__()
        layers, in_ch = [], 1
        for i, (kernel, stride) in enumerate(config.conv_layers):
            conv = nn.Conv1d(in_ch, config.conv_channels, kernel, stride, bias=False)
            nn.init.kaiming_normal_(conv.weight)  # as fairseq: keeps activations at scale
            block: list[nn.Module] = [conv]
            if i == 0:
                block.append(nn.GroupNorm(config.conv_channels, config.conv_channels))
            block.append(nn.GELU())
            layers.append(nn.Sequential(*block))
            in_ch = config.conv_channels
        self.layers = nn.Sequential(*layers)
        self.dim = config.conv_channels
        self.trainable = True  # its output is learned: the feature penalty applies
        receptive, jump = 1, 1
        for kernel, stride in config.conv_layers:
            receptive, jump = receptive + (kernel - 1) * jump, jump * stride
        self.frame_centre = receptive / 2  # samples: centre of frame 0 (200 for the paper's)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, T, C)
        return self.layers(wav.unsqueeze(1)).transpose(1, 2)

    def frames(self, num_samples: int) -> int:
        for layer in self.layers:
            conv = cast(nn.Conv1d, cast(nn.Sequential, layer)[0])
            num_samples = (num_samples - conv.kernel_size[0]) // conv.stride[0] + 1
        return max(num_samples, 0)


class LogMel(nn.Module):
    """Log-mel energies, 25 ms windows every 10 ms: (S,) or (B, S) -> (..., T, n_mels)."""

    hop = 160

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.transform = torchaudio.transforms.MelSpectrogram(
            SAMPLE_RATE, n_fft=400, win_length=400, hop_length=self.hop, n_mels=n_mels
        )

    def frames(self, num_samples: int) -> int:
        return num_samples // self.hop + 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.log(self.transform(wav.float()) + 1e-6).transpose(-1, -2)


class LogMelStem(nn.Module):
    """80 log-mel energies, two 10 ms frames stacked into one 20 ms frame: (B, S) -> (B, T,
    160). No parameters; the network's LayerNorm and projection follow it."""

    def __init__(self, n_mels: int = 80, stack: int = 2) -> None:
        super().__init__()
        self.logmel, self.stack = LogMel(n_mels), stack
        self.dim = stack * n_mels
        self.trainable = False  # fixed features: no feature penalty
        # centre of frame 0 in samples: the centred STFT's frames 0 .. stack-1 average
        self.frame_centre = LogMel.hop * (stack - 1) / 2

    def frames(self, num_samples: int) -> int:
        return self.logmel.frames(num_samples) // self.stack

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        feats = self.logmel(wav)  # (B, T10, n_mels)
        t = feats.shape[1] // self.stack * self.stack
        return feats[:, :t].reshape(len(wav), t // self.stack, self.dim)


class SelfAttention(nn.Module):
    """Multi-head self-attention on ``F.scaled_dot_product_attention`` (its fused CPU and
    GPU kernels; without attention dropout it never materialises the (T, T) weights)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        keep = None if padding_mask is None else ~padding_mask[:, None, None, :]
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """Pre-LN Transformer block: h = x + MHA(LN(x)); f = FFN(LN(h)); out = h + f.

    Three dropouts as fairseq names them: ``dropout`` on each residual branch,
    ``attention_dropout`` on the attention weights, ``activation_dropout`` inside the FFN;
    fine-tuning sets its own (:meth:`set_dropouts`)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        ffn_dim: int,
        dropout: float,
        attention_dropout: float,
        activation_dropout: float,
    ) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, attention_dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)  # one module for both residual branches
        self.activation_dropout = nn.Dropout(activation_dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim),
            nn.GELU(),
            self.activation_dropout,
            nn.Linear(ffn_dim, dim),
            self.dropout,
        )

    def set_dropouts(self, dropout: float, attention: float, activation: float) -> None:
        self.dropout.p, self.attention.dropout, self.activation_dropout.p = (
            dropout,
            attention,
            activation,
        )

    def forward(
        self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(block output, the FFN output before the last residual connection)."""
        h = x + self.dropout(self.attention(self.attention_norm(x), padding_mask))
        f = self.ffn(self.ffn_norm(h))
        return h + f, f


@dataclass
class ContextOutput:
    output: torch.Tensor  # (B, T, dim) after the final LayerNorm
    hidden: list[torch.Tensor]  # residual stream after each block
    ffn: list[torch.Tensor]  # each block's FFN output before its last residual (data2vec)


class ContextNetwork(nn.Module):
    """Transformer over Z with a convolutional positional embedding (wav2vec 2.0 §2)."""

    def __init__(self, config: Wav2VecConfig) -> None:
        super().__init__()
        k = config.pos_conv_kernel
        self.pos_conv = nn.Conv1d(
            config.dim, config.dim, k, padding=k // 2, groups=config.pos_conv_groups
        )
        self.norm = nn.LayerNorm(config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(
                config.dim,
                config.heads,
                config.ffn_dim,
                config.dropout,
                config.attention_dropout,
                config.activation_dropout,
            )
            for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(config.dim)

    def set_dropouts(self, dropout: float, attention: float, activation: float) -> None:
        """Replace every block's dropouts and the one after the positional convolution."""
        self.dropout.p = dropout
        for block in self.layers:
            cast(TransformerBlock, block).set_dropouts(dropout, attention, activation)

    def run(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> ContextOutput:
        """All outputs; ``padding_mask`` (B, T) is True at padded frames."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        pos = self.pos_conv(x.transpose(1, 2))[:, :, : x.shape[1]]  # even kernels add a frame
        x = self.dropout(self.norm(x + F.gelu(pos).transpose(1, 2)))
        hidden, ffn = [], []
        for layer in self.layers:
            x, f = layer(x, padding_mask)
            hidden.append(x)
            ffn.append(f)
        return ContextOutput(self.final_norm(x), hidden, ffn)

    def forward(
        self,
        x: torch.Tensor,
        return_layers: bool = False,
        padding_mask: torch.Tensor | None = None,
    ):
        """The context (B, T, dim); with ``return_layers`` also the per-block targets of a
        data2vec teacher (:class:`methods.ema_teacher.EMATeacher` calls it so): each block's
        FFN output before the last residual connection."""
        out = self.run(x, padding_mask)
        return (out.output, out.ffn) if return_layers else out.output


def padding_mask(frame_counts: list[int], frames: int, device: torch.device) -> torch.Tensor:
    """(B, frames) bool, True past each row's count of real frames."""
    counts = torch.tensor(frame_counts, device=device).unsqueeze(1)
    return torch.arange(frames, device=device).unsqueeze(0) >= counts

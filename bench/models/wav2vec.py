"""A wav2vec 2.0-style network whose quantizer and objective are pluggable.

Feature encoder f: X -> Z (strided 1-D convolutions over the waveform, 20 ms frames),
masking of Z (p, M), Transformer context network g: Z -> C with a convolutional relative
positional embedding, and a quantization module Z -> Q (Baevski et al. 2020, §2).
The objective compares the context at masked steps with the quantized targets; the
data2vec variant (Baevski et al. 2022) regresses onto an EMA teacher's averaged top-K
layers instead. Quantizers live in methods/quantizers.py, objectives in
methods/ssl_objectives.py; this file only wires them together: both are built with
``registry.build`` from the context the network knows (dimensions, schedules, its context
network as the ``student`` a teacher copies). An objective that owns a teacher
(``objective.teacher``) makes its own targets, so the network then has no quantizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from bench import registry
from bench.models.masking import compute_mask
from methods.ema_teacher import EMATeacher
from methods.ssl_objectives import sample_negatives


@dataclass
class Wav2VecConfig:
    # feature encoder: (kernel, stride) per conv layer; the paper's 7 layers give 20 ms frames
    conv_layers: tuple[tuple[int, int], ...] = (
        (10, 5),
        (3, 2),
        (3, 2),
        (3, 2),
        (3, 2),
        (2, 2),
        (2, 2),
    )
    conv_channels: int = 512
    dim: int = 768  # Transformer width
    layers: int = 12
    heads: int = 12
    ffn_dim: int = 3072
    pos_conv_kernel: int = (
        128  # convolutional relative positional embedding (paper: 128, 16 groups)
    )
    pos_conv_groups: int = 16
    code_dim: int = 256  # dimension of quantized targets and of the projected context
    dropout: float = 0.1
    mask_prob: float = 0.065  # p: proportion of steps that start a masked span
    mask_length: int = 10  # M
    num_negatives: int = 100  # K distractors
    diversity_weight: float = 0.1  # alpha
    tau_decay: float = 0.999995  # Gumbel temperature decay per update (paper, for 400k updates)
    feature_grad_mult: float = 0.1  # scales the feature encoder's gradient (fairseq's default)
    data2vec_top_k: int = 8  # teacher layers averaged into data2vec targets
    # EMA decay of the data2vec teacher: linear from tau0 to tau_end over tau_steps updates
    # (paper: 0.999 -> 0.9999 over 30k updates; short CPU runs need a faster teacher)
    ema_tau0: float = 0.999
    ema_tau_end: float = 0.9999
    ema_tau_steps: int = 30000

    def validate(self) -> None:
        if self.dim % self.heads or self.dim % self.pos_conv_groups:
            raise ValueError("dim must be divisible by heads and by pos_conv_groups")


SIZES: dict[str, dict] = {
    # for unit tests: runs in milliseconds
    "tiny": dict(
        conv_channels=16,
        dim=32,
        layers=2,
        heads=2,
        ffn_dim=64,
        pos_conv_kernel=8,
        pos_conv_groups=4,
        code_dim=16,
        num_negatives=10,
        data2vec_top_k=2,
        ema_tau0=0.98,
        ema_tau_end=0.998,
        ema_tau_steps=200,
    ),
    # for the quick/default suites on CPU (about 0.7M parameters)
    "small": dict(
        conv_channels=64,
        dim=128,
        layers=3,
        heads=4,
        ffn_dim=256,
        pos_conv_kernel=32,
        pos_conv_groups=8,
        code_dim=64,
        num_negatives=30,
        data2vec_top_k=2,
        ema_tau0=0.98,
        ema_tau_end=0.998,
        ema_tau_steps=500,
    ),
    # wav2vec 2.0 BASE dimensions, for GPU users
    "base": dict(),
}


def config_for(size: str, **overrides) -> Wav2VecConfig:
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
    config = Wav2VecConfig(**{**SIZES[size], **overrides})
    config.validate()
    return config


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

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, T, C)
        return self.layers(wav.unsqueeze(1)).transpose(1, 2)

    def frames(self, num_samples: int) -> int:
        for layer in self.layers:
            conv = cast(nn.Conv1d, cast(nn.Sequential, layer)[0])
            num_samples = (num_samples - conv.kernel_size[0]) // conv.stride[0] + 1
        return num_samples


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
            nn.TransformerEncoderLayer(
                config.dim,
                config.heads,
                config.ffn_dim,
                config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(config.dim)

    def forward(self, x: torch.Tensor, return_layers: bool = False):
        pos = self.pos_conv(x.transpose(1, 2))[:, :, : x.shape[1]]  # even kernels add a frame
        x = self.dropout(self.norm(x + F.gelu(pos).transpose(1, 2)))
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        x = self.final_norm(x)
        return (x, outputs) if return_layers else x


def _scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Identity forward; the gradient flowing back is multiplied by ``factor``."""
    return x * factor + x.detach() * (1 - factor)


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    objective_loss: torch.Tensor
    aux_loss: torch.Tensor  # diversity / commitment loss, before weighting
    accuracy: torch.Tensor
    perplexity: torch.Tensor
    codes: torch.Tensor | None  # (N_masked, G) codes of the targets at masked steps
    stats: dict[str, float] = field(default_factory=dict)


class Wav2Vec(nn.Module):
    """Encoder + context network + pluggable quantizer and objective.

    ``quantizer`` None: no quantizer, for an objective that owns a teacher (data2vec)."""

    def __init__(
        self,
        config: Wav2VecConfig,
        quantizer: str | None = "gumbel",
        objective: str = "contrastive",
        quantizer_kwargs: dict | None = None,
        objective_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.encoder = FeatureEncoder(config)
        self.feature_norm = nn.LayerNorm(config.conv_channels)
        self.projection = nn.Linear(config.conv_channels, config.dim)
        self.mask_embedding = nn.Parameter(torch.empty(config.dim).uniform_())
        self.context = ContextNetwork(config)
        self.objective = registry.build(
            "objective",
            objective,
            objective_kwargs,
            student=self.context,
            top_k=config.data2vec_top_k,
            tau0=config.ema_tau0,
            tau_end=config.ema_tau_end,
            tau_steps=config.ema_tau_steps,
        )
        if quantizer is not None and self.teacher is not None:
            raise ValueError(f"objective {objective!r} has its own teacher: it takes no quantizer")
        if quantizer is None and self.teacher is None:
            raise ValueError(f"objective {objective!r} needs a quantizer to make its targets")
        self.quantizer = None
        if quantizer is not None:
            self.quantizer = registry.build(
                "quantizer",
                quantizer,
                quantizer_kwargs,
                in_dim=config.conv_channels,
                out_dim=config.code_dim,
                tau_decay=config.tau_decay,
            )
            self.project_q = nn.Linear(config.code_dim, config.code_dim)
        target_dim = config.dim if self.quantizer is None else config.code_dim
        self.head = nn.Linear(config.dim, target_dim)  # final_proj; data2vec's regression head
        self.method = {"quantizer": quantizer, "objective": objective}

    @property
    def teacher(self) -> EMATeacher | None:
        """The objective's own teacher, which makes the targets (None: the quantizer does)."""
        return self.objective.teacher

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Z after layer norm: (B, T, conv_channels)."""
        z = self.encoder(wav)
        if self.training and self.config.feature_grad_mult != 1.0:
            z = _scale_grad(z, self.config.feature_grad_mult)
        return self.feature_norm(z)

    @torch.no_grad()
    def representations(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frozen features for probing: encoder output and every context layer (no masking)."""
        z = self.features(wav)
        x = self.projection(z)
        c, layers = self.context(x, return_layers=True)
        out = {"encoder": z, "context": c}
        for i, h in enumerate(layers[:-1]):
            out[f"layer{i + 1}"] = h
        return out

    def forward(
        self, wav: torch.Tensor, generator: torch.Generator | None = None
    ) -> PretrainOutput:
        cfg = self.config
        z = self.features(wav)
        x = self.projection(z)
        b, t, _ = x.shape
        mask = compute_mask(b, t, cfg.mask_prob, cfg.mask_length, generator, device=x.device)
        x_masked = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        c = self.context(x_masked)
        prediction = self.head(c[mask])  # (N, D) context at masked steps
        if self.teacher is not None:
            out = self.objective(prediction, self.teacher(x)[mask], None)
            zero = torch.zeros((), device=x.device)
            return PretrainOutput(
                loss=out.loss,
                objective_loss=out.loss.detach(),
                aux_loss=zero,
                accuracy=out.accuracy.detach(),
                perplexity=zero,
                codes=None,
            )
        quantizer = self.quantizer
        assert quantizer is not None, "a network without a teacher has a quantizer"
        quantized = quantizer(z, mask=mask)
        targets_all = self.project_q(quantized.q).reshape(b * t, -1)
        flat_mask = mask.reshape(-1)
        targets = targets_all[flat_mask]
        codes = quantized.codes.reshape(b * t, -1)[flat_mask]
        inputs = OBJECTIVE_INPUTS[self.objective.needs]
        negatives, extra = inputs(self, mask, targets_all, codes, generator)
        out = self.objective(prediction, targets, negatives, **extra)
        aux = quantized.loss
        weight = cfg.diversity_weight if quantizer.loss_is_diversity else 1.0
        return PretrainOutput(
            loss=out.loss + weight * aux,
            objective_loss=out.loss.detach(),
            aux_loss=aux.detach(),
            accuracy=out.accuracy.detach(),
            perplexity=quantized.perplexity.detach(),
            codes=codes.detach(),
        )

    def anneal(self, step: int) -> None:
        """Advance what follows the update count: the Gumbel temperature, the EMA teacher."""
        if self.quantizer is not None:
            self.quantizer.anneal(step)
        if self.teacher is not None:
            self.teacher.update(self.context, step)

    def describe(self) -> dict:
        return {
            **self.method,
            **asdict(self.config),
            "parameters": sum(p.numel() for p in self.parameters() if p.requires_grad),
        }


Inputs = tuple[torch.Tensor | None, dict[str, torch.Tensor]]


def _negatives(
    model: Wav2Vec,
    mask: torch.Tensor,
    targets_all: torch.Tensor,
    codes: torch.Tensor,
    generator: torch.Generator | None,
) -> Inputs:
    """K distractors per masked step from the other masked steps of its utterance."""
    idx, valid = sample_negatives(mask, model.config.num_negatives, generator)
    idx = idx.to(targets_all.device)
    # index_select of rows: faster, forward and backward, than targets_all[idx]
    negatives = targets_all.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)
    return negatives, {"negative_mask": valid.to(targets_all.device)}


def _codebook(
    model: Wav2Vec,
    mask: torch.Tensor,
    targets_all: torch.Tensor,
    codes: torch.Tensor,
    generator: torch.Generator | None,
) -> Inputs:
    """The quantizer's codebook as proxies and the targets' codes as the positives."""
    assert model.quantizer is not None
    return None, {"target_codes": codes, "proxies": model.quantizer.codebook}


# What the model passes for each input contract of methods.ssl_objectives (``needs``). An
# objective that owns a teacher ("teacher") gets that teacher's targets instead.
OBJECTIVE_INPUTS: dict[str, Callable[..., Inputs]] = {
    "negatives": _negatives,
    "codebook": _codebook,
}

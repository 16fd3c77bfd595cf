"""A wav2vec 2.0-style network whose quantizer and objective are pluggable.

Stem f: X -> Z (wav2vec 2.0's strided convolutions over the waveform, or stacked log-mel
energies on a CPU budget; 20 ms frames; bench/models/wav2vec_blocks.py), masking of Z (p,
M), Transformer context network g: Z -> C with a convolutional relative positional
embedding, and a quantization module Z -> Q (Baevski et al. 2020, §2). As in fairseq:
dropout on the projected input and on the quantizer's input, an L2 penalty on a learned
encoder's output, and distractors equal to their positive masked out.
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

import torch
import torch.nn.functional as F
from torch import nn

from bench import registry
from bench.models.masking import compute_mask
from bench.models.wav2vec_blocks import ContextNetwork, FeatureEncoder, LogMelStem, padding_mask
from bench.models.wav2vec_config import Wav2VecConfig
from methods.ema_teacher import EMATeacher
from methods.ssl_objectives import sample_negatives


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
    """Stem + context network + pluggable quantizer and objective.

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
        self.encoder: FeatureEncoder | LogMelStem = (
            FeatureEncoder(config) if config.stem == "conv" else LogMelStem()
        )
        stem_dim = self.encoder.dim
        self.feature_norm = nn.LayerNorm(stem_dim)
        self.projection = nn.Linear(stem_dim, config.dim)
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.dropout_features = nn.Dropout(config.dropout_features)
        self.mask_embedding = nn.Parameter(torch.empty(config.dim).uniform_())
        self.context = ContextNetwork(config)
        self.quantizer = None
        if quantizer is not None:
            self.quantizer = registry.build(
                "quantizer",
                quantizer,
                quantizer_kwargs,
                in_dim=stem_dim,
                out_dim=config.code_dim,
                tau_decay=config.tau_decay,
            )
            self.project_q = nn.Linear(config.code_dim, config.code_dim)
        self.objective = registry.build(
            "objective",
            objective,
            objective_kwargs,
            student=self.context,
            top_k=config.data2vec_top_k,
            tau0=config.ema_tau0,
            tau_end=config.ema_tau_end,
            tau_steps=config.ema_tau_steps,
            **self._code_context(),
        )
        if self.quantizer is not None and self.teacher is not None:
            raise ValueError(f"objective {objective!r} has its own teacher: it takes no quantizer")
        if self.quantizer is None and self.teacher is None:
            raise ValueError(f"objective {objective!r} needs a quantizer to make its targets")
        target_dim = config.dim if self.quantizer is None else config.code_dim
        self.head = nn.Linear(config.dim, target_dim)  # final_proj; data2vec's regression head
        self.method = {"quantizer": quantizer, "objective": objective}

    def _code_context(self) -> dict[str, int]:
        """What an objective over codes needs to size its classifier (BEST-RQ)."""
        q = self.quantizer
        if q is None:
            return {}
        return {
            "code_dim": self.config.code_dim,
            "code_groups": q.num_groups,
            "code_entries": q.num_entries,
        }

    @property
    def teacher(self) -> EMATeacher | None:
        """The objective's own teacher, which makes the targets (None: the quantizer does)."""
        return self.objective.teacher

    def frames(self, num_samples: int) -> int:
        """20 ms frames the network makes of ``num_samples`` samples."""
        return self.encoder.frames(num_samples)

    def stem_features(self, wav: torch.Tensor) -> torch.Tensor:
        """The stem's output before layer norm: (B, T, stem dim)."""
        z = self.encoder(wav)
        if self.training and self.encoder.trainable and self.config.feature_grad_mult != 1.0:
            z = _scale_grad(z, self.config.feature_grad_mult)
        return z

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Z after layer norm: (B, T, stem dim), what the quantizer reads."""
        return self.feature_norm(self.stem_features(wav))

    def encode(
        self,
        wav: torch.Tensor,
        lengths: list[int] | None = None,
        time_mask: torch.Tensor | None = None,
        channel_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Context (B, T, dim) of zero-padded waveforms of ``lengths`` samples, and the
        padding mask (None: no padding), for fine-tuning; ``time_mask`` (B, T) replaces
        those frames by the mask embedding and ``channel_mask`` (B, dim) zeroes those input
        channels (wav2vec 2.0's fine-tuning masks both)."""
        x = self.dropout_input(self.projection(self.features(wav)))
        if channel_mask is not None:
            x = x.masked_fill(channel_mask.unsqueeze(1), 0.0)
        pad = None
        if lengths is not None and min(lengths) < wav.shape[1]:
            pad = padding_mask([self.frames(n) for n in lengths], x.shape[1], x.device)
        if time_mask is not None:
            x = torch.where(time_mask.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        return self.context(x, padding_mask=pad), pad

    @torch.no_grad()
    def representations(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frozen features for probing: the stem's normalised output, its projection (the
        Transformer's input) and every block's output, the last after the final LayerNorm
        (no masking; one utterance or equal lengths)."""
        z = self.features(wav)
        x = self.projection(z)
        out = self.context.run(x)
        reps = {"stem": z, "input": x}
        for i, h in enumerate(out.hidden[:-1]):
            reps[f"layer{i + 1}"] = h
        reps["context"] = out.output
        return reps

    def forward(
        self, wav: torch.Tensor, generator: torch.Generator | None = None
    ) -> PretrainOutput:
        """One pre-training step's losses on equal-length crops (no padding)."""
        cfg = self.config
        z_raw = self.stem_features(wav)
        penalty = z_raw.float().pow(2).mean() if self.encoder.trainable else None
        z = self.feature_norm(z_raw)
        x = self.dropout_input(self.projection(z))
        b, t, _ = x.shape
        mask = compute_mask(b, t, cfg.mask_prob, cfg.mask_length, generator, device=x.device)
        x_masked = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        c = self.context(x_masked)
        prediction = self.head(c[mask])  # (N, D) context at masked steps
        if self.teacher is not None:
            out = self.objective(prediction, self.teacher(x)[mask], None)
            zero = torch.zeros((), device=x.device)
            return PretrainOutput(
                loss=out.loss + _weighted(penalty, cfg.feature_penalty),
                objective_loss=out.loss.detach(),
                aux_loss=zero,
                accuracy=out.accuracy.detach(),
                perplexity=zero,
                codes=None,
            )
        quantizer = self.quantizer
        assert quantizer is not None, "a network without a teacher has a quantizer"
        quantized = quantizer(self.quantizer_input(z_raw, z), mask=mask)
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
            loss=out.loss + weight * aux + _weighted(penalty, cfg.feature_penalty),
            objective_loss=out.loss.detach(),
            aux_loss=aux.detach(),
            accuracy=out.accuracy.detach(),
            perplexity=quantized.perplexity.detach(),
            codes=codes.detach(),
        )

    @torch.no_grad()
    def codes(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T, G) codes the quantizer gives ``wav`` (eval mode: no noise, no dropout)."""
        assert self.quantizer is not None, "a network without a quantizer makes no codes"
        z_raw = self.stem_features(wav)
        return self.quantizer(self.quantizer_input(z_raw, self.feature_norm(z_raw))).codes

    def quantizer_input(self, z_raw: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """What the quantizer reads: the normalised features with dropout (wav2vec 2.0), or
        for a frozen quantizer (BEST-RQ) the stem's output standardised per frame with no
        learned scale and no dropout, so its codes stay fixed targets."""
        if self.quantizer is not None and self.quantizer.fixed_targets:
            return F.layer_norm(z_raw.detach(), z_raw.shape[-1:])
        return self.dropout_features(z)

    def set_dropouts(
        self, dropout: float, attention: float, activation: float, dropout_input: float
    ) -> None:
        """Replace the context network's dropouts and the input dropout (fine-tuning uses
        fairseq's fine-tuning values, not pre-training's)."""
        self.context.set_dropouts(dropout, attention, activation)
        self.dropout_input.p = dropout_input

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


def _weighted(penalty: torch.Tensor | None, weight: float) -> torch.Tensor | float:
    return 0.0 if penalty is None or weight == 0 else weight * penalty


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
    # a distractor equal to its positive (the same code) is no distractor: fairseq and
    # transformers set its logit to -inf; without this a collapsed codebook floors the loss
    targets = targets_all[mask.reshape(-1)]
    same = (negatives == targets.unsqueeze(1)).all(-1)
    return negatives, {"negative_mask": valid.to(targets_all.device) & ~same}


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

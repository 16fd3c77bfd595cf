"""The ASR task's recogniser for each front end: the wav2vec-style network fine-tuned whole
(bench.models.ctc_recognizer), or, for ``frontend=hf``, a downstream over a frozen upstream.

The hf downstream is SUPERB's recipe in small (Yang et al., Interspeech 2021): the upstream
stays frozen and its hidden states are computed once per utterance (cached); a learnable
softmax-weighted sum of its layers (each layer-normalised first, as s3prl's featurizer can)
feeds a linear projection, two residual 1-D conv blocks (kernel 5, layer norm, ReLU; about
0.2 s of context at 20 ms frames) and a linear CTC head over the characters. (A BiGRU, as
SUPERB's LSTMs, did not leave CTC's all-blank phase within the quick budget and ran ~1 s
per update on one CPU core.) It trains with the fine-tuning
recipe's updates, batch size, learning rate, warm-up and decay, and gradient clipping;
there is no masking and no frozen phase (there is nothing to unfreeze).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.context import RunContext
from bench.models.ctc_recognizer import (
    BLANK,
    CTCRecognizer,
    FinetuneConfig,
    fine_tune,
    length_batches,
)
from bench.models.frontends import Frontend
from bench.models.hf_upstream import HFUpstream, LayerWeightedSum
from bench.training import StepOutput, TrainResult, sgd_update, train, warmup_linear_decay

__all__ = ["NETWORKS", "HFRecognizer", "recogniser"]

# the front ends a recogniser can be trained from: a network to fine-tune, or an hf upstream
NETWORKS = ("logmel", "wav2vec_random", "wav2vec", "hf")


class HFRecognizer(nn.Module):
    """Frozen upstream's layers -> weighted sum -> projection -> residual conv blocks ->
    linear CTC head (zero padding: a padded batch gives the unpadded result)."""

    def __init__(
        self,
        upstream: HFUpstream,
        n_tokens: int,
        hidden: int = 256,
        layers: int = 2,
        kernel: int = 5,
    ) -> None:
        super().__init__()
        self.upstream = upstream  # not a module: frozen, and its states are cached
        self.featurize = LayerWeightedSum(upstream.layers, layer_norm=True)
        self.project = nn.Linear(upstream.dim, hidden)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = nn.Linear(hidden, n_tokens + 1)

    def from_states(self, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """(L, T_i, D) per utterance -> (B, T, V+1) log-probs and each T_i."""
        device = self.head.weight.device
        lengths = [s.shape[1] for s in states]
        x = nn.utils.rnn.pad_sequence([s.transpose(0, 1) for s in states], batch_first=True)
        mask = (torch.arange(x.shape[1]) < torch.tensor(lengths)[:, None]).to(device)[..., None]
        h = self.project(self.featurize(x.to(device))) * mask  # (B, T, hidden)
        for conv, norm in zip(self.convs, self.norms, strict=True):  # residual conv blocks
            h = h + torch.relu(norm(conv(h.transpose(1, 2)).transpose(1, 2))) * mask
        return F.log_softmax(self.head(h), -1), lengths

    def forward(self, wav: torch.Tensor, lengths: list[int] | None = None) -> torch.Tensor:
        """(B, S) 16 kHz waveforms -> (B, T, V+1) log-probs (as CTCRecognizer, for decoding)."""
        sizes = lengths or [wav.shape[1]] * len(wav)
        waves = [w[:n].cpu().numpy() for w, n in zip(wav, sizes, strict=True)]
        return self.from_states(self.upstream.hidden_states(waves))[0]


def train_hf(
    model: HFRecognizer,
    audio: Sequence[np.ndarray],
    targets: list[torch.Tensor],
    config: FinetuneConfig,
    ctx: RunContext,
    desc: str,
) -> TrainResult:
    """CTC training of the downstream on the upstream's cached states of ``audio``."""
    states = model.upstream.hidden_states(audio)
    frames = [s.shape[1] for s in states]
    rng = ctx.rng()
    batches = length_batches(frames, config.batch_size, config.length_pool, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, config.lr)

    def forward(step: int) -> StepOutput:
        idx = next(batches)
        log_probs, lengths = model.from_states([states[i] for i in idx])
        labels = [targets[i] for i in idx]
        loss = F.ctc_loss(
            log_probs.float().transpose(0, 1),
            torch.cat(labels).to(log_probs.device),
            torch.tensor(lengths),
            torch.tensor([len(y) for y in labels]),
            blank=BLANK,
            zero_infinity=True,
        )
        return StepOutput(loss, items=len(idx))

    model.train()
    result = train(
        forward,
        config.steps,
        ctx,
        optimizer=optimizer,
        update=sgd_update(optimizer, clip_grad_norm=5.0),
        schedule=warmup_linear_decay(config.steps, 0.1),
        loss_key="finetune_loss",
        desc=desc,
    )
    model.eval()
    return result


def recogniser(
    frontend: Frontend,
    name: str,
    n_tokens: int,
    audio: Sequence[np.ndarray],
    targets: list[torch.Tensor],
    config: FinetuneConfig,
    ctx: RunContext,
    lengths: Sequence[int],
) -> tuple[nn.Module, TrainResult]:
    """The row's recogniser, trained on (``audio``, ``targets``): the front end's network
    fine-tuned whole, or the downstream over a frozen hf upstream."""
    if isinstance(frontend, HFUpstream):
        hf = HFRecognizer(frontend, n_tokens).to(ctx.device)
        return hf, train_hf(hf, audio, targets, config, ctx, desc="hf downstream chars")
    if frontend.network is None:
        raise ValueError(f"front end {name!r} has no network to fine-tune")
    model = CTCRecognizer(frontend.network, n_tokens).to(ctx.device)
    tuned = fine_tune(model, audio, targets, config, ctx, desc="fine-tune chars", lengths=lengths)
    return model, tuned

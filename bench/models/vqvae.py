"""A small convolutional VQ-VAE over log-mel frames, and how the ``vqvae`` task trains and
scores it.

The network (not an object of study; the quantizer in its middle is): standardised
log-mel frames (B, T, 80) at 10 ms -> a 1-D conv encoder that halves the frame rate ->
(B, T/2, D) at 20 ms -> a registered quantizer (in_dim = out_dim = D) -> a conv decoder
with one transposed conv back to (B, T, 80). Code frame t sees input frames 2t-1 .. 2t+2,
so its centre is input frame 2t + 0.5, i.e. 320 t + 80 samples (the frame-label offset).
The loss is the MSE of the reconstruction plus the quantizer's auxiliary loss, weighted 1
for VQ (codebook + commitment, van den Oord et al. 2017) and ``diversity_weight`` (0.1,
wav2vec 2.0) for a diversity loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.context import RunContext
from bench.data import synthetic
from bench.data.items import Utterance
from bench.metrics.codes import code_diagnostics, frame_labels
from bench.models.frontends import LogMel
from bench.training import StepOutput, TrainResult, sgd_update, train
from methods.quantizers import Quantizer, QuantizerOutput

__all__ = [
    "CODE_HOP",
    "CODE_OFFSET",
    "LogMelVQVAE",
    "TrainSetup",
    "code_stats",
    "evaluate_frames",
    "standardised_logmel",
    "standardiser",
    "train_vqvae",
]

CODE_HOP = 320  # samples per code frame (two 10 ms log-mel frames)
CODE_OFFSET = 80  # centre of code frame 0 in samples (see the module docstring)


class LogMelVQVAE(nn.Module):
    """Conv encoder -> quantizer -> conv decoder over (B, T, n_mels) frames."""

    def __init__(
        self, quantizer: Quantizer, n_mels: int = 80, hidden: int = 128, code_dim: int = 64
    ):
        super().__init__()
        if min(n_mels, hidden, code_dim) < 1:
            raise ValueError(
                f"need n_mels, hidden, code_dim >= 1, got {n_mels}, {hidden}, {code_dim}"
            )
        if quantizer.in_dim != code_dim or quantizer.out_dim != code_dim:
            raise ValueError(
                f"quantizer {type(quantizer).__name__} maps {quantizer.in_dim} -> "
                f"{quantizer.out_dim} dims, but the encoder gives and the decoder takes "
                f"code_dim = {code_dim}: build it with in_dim = out_dim = code_dim"
            )
        self.n_mels, self.code_dim = n_mels, code_dim
        self.encoder = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 4, stride=2, padding=1),  # 10 ms -> 20 ms
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv1d(hidden, code_dim, 1),
        )
        self.quantizer = quantizer
        self.decoder = nn.Sequential(
            nn.Conv1d(code_dim, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 3, padding=1),
            nn.GELU(),
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1),  # 20 ms -> 10 ms
            nn.GELU(),
            nn.Conv1d(hidden, n_mels, 3, padding=1),
        )

    def encode(self, x: Tensor) -> Tensor:
        """(B, T, n_mels) -> (B, T // 2, code_dim), before the quantizer."""
        if x.dim() != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"expected log-mel frames (B, T, {self.n_mels}), got {tuple(x.shape)}")
        if x.shape[1] < 2:
            raise ValueError(f"need at least 2 frames, got {x.shape[1]}")
        return self.encoder(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """(reconstruction of the first 2 * (T // 2) frames, the quantizer's output)."""
        out = self.quantizer(self.encode(x))
        recon = self.decoder(out.q.transpose(1, 2)).transpose(1, 2)
        return recon, out


Features = dict[str, tuple[list, list[torch.Tensor]]]
_FEATURES: dict[tuple[str, int], Features] = {}


def standardised_logmel(corpus: str, n_mels: int) -> Features:
    """split -> (utterances, log-mel (T, n_mels)) of the corpus's English speakers, each mel
    bin standardised by the train split's mean and deviation; cached per process."""
    key = (corpus, n_mels)
    if key not in _FEATURES:
        logmel = LogMel(n_mels=n_mels)
        raw = {}
        for split in ("train", "valid", "test"):
            utts, audio = synthetic.load_split(corpus, split, "en")
            raw[split] = (list(utts), [logmel(torch.from_numpy(a)) for a in audio])
        mean, std = standardiser(raw["train"][1])
        _FEATURES[key] = {k: (u, [(f - mean) / std for f in fs]) for k, (u, fs) in raw.items()}
    return _FEATURES[key]


def standardiser(feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Per-mel-bin mean and standard deviation over every frame of ``feats`` (train split)."""
    stacked = torch.cat(list(feats)).double()
    return stacked.mean(0).float(), stacked.std(0).clamp_min(1e-3).float()


@dataclass
class TrainSetup:
    steps: int
    batch_size: int
    crop_frames: int  # 10 ms frames per training crop (even)
    lr: float
    aux_weight: float  # weight of the quantizer's loss
    eval_every: int


def _crops(feats: Sequence[Tensor], batch: int, crop: int, rng: np.random.Generator) -> Tensor:
    """A batch of random ``crop``-frame windows of random utterances (shorter ones padded
    by repetition, which the corpus's 1.5 s+ utterances rarely need)."""
    out = []
    for i in rng.integers(len(feats), size=batch):
        f = feats[int(i)]
        if len(f) < crop:
            f = f.repeat((crop + len(f) - 1) // len(f), 1)
        start = int(rng.integers(len(f) - crop + 1))
        out.append(f[start : start + crop])
    return torch.stack(out)


def train_vqvae(
    model: LogMelVQVAE,
    train_feats: Sequence[Tensor],
    valid_feats: Sequence[Tensor],
    setup: TrainSetup,
    ctx: RunContext,
) -> TrainResult:
    """Adam on recon MSE + weighted quantizer loss; curves of the training batch's code
    perplexity and, every ``eval_every`` steps, the valid split's code perplexity, usage and
    reconstruction MSE (eval mode): the record of a codebook collapsing or not."""
    model.to(ctx.device)
    rng = ctx.rng()
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr)
    quantizer = model.quantizer

    def forward(step: int) -> StepOutput:
        model.train()
        quantizer.anneal(step)
        x = _crops(train_feats, setup.batch_size, setup.crop_frames, rng).to(ctx.device)
        recon, out = model(x)
        mse = F.mse_loss(recon, x[:, : recon.shape[1]])
        logs = {"train_mse": float(mse.detach()), "train_perplexity": float(out.perplexity)}
        return StepOutput(mse + setup.aux_weight * out.loss, len(x), logs)

    def evaluate(done: int) -> dict[str, float]:
        sq, n, codes = evaluate_frames(model, valid_feats, ctx.device)
        stats = {"valid_mse": float(sq.sum() / n.sum())}
        if quantizer.num_entries > 0:
            diag = code_diagnostics(codes, None, quantizer.num_entries)
            stats["valid_code_perplexity"] = diag["code_perplexity"]
            stats["valid_code_usage"] = diag["code_usage"]
        return stats

    before = evaluate(0)  # the untrained codebook's use: where every curve starts
    result = train(
        forward,
        setup.steps,
        ctx,
        update=sgd_update(optimizer),
        evaluate=evaluate,
        eval_every=setup.eval_every,
        desc="train vq-vae",
    )
    for key, value in {"step": 0, **before}.items():
        result.curves[key] = [value, *result.curves[key]]
    return result


@torch.no_grad()
def evaluate_frames(
    model: LogMelVQVAE, feats: Sequence[Tensor], device: torch.device
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One eval-mode pass over ``feats``, per utterance: the summed squared error over its
    reconstructed frames and mel bins, how many values that is (so the corpus MSE is
    Σ sq / Σ n), and its codes as a (T // 2, G) int array."""
    model.eval()
    sq, n, codes = [], [], []
    for f in feats:
        x = f.unsqueeze(0).to(device)
        recon, out = model(x)
        target = x[:, : recon.shape[1]]
        sq.append(float(((recon.double() - target.double()) ** 2).sum()))
        n.append(recon.numel())
        codes.append(out.codes[0].cpu().numpy())
    return np.asarray(sq, dtype=np.float64), np.asarray(n, dtype=np.int64), codes


def code_stats(
    codes: Sequence[np.ndarray], utts: Sequence[Utterance], num_entries: int
) -> tuple[dict[str, float], list[float]]:
    """Corpus-level diagnostics of the codes of ``utts`` (perplexity, usage, adjacent
    agreement, phone MI, PNMI, purity against their alignments) and the code counts."""
    phones = [
        frame_labels(u.alignment or (), len(c), CODE_HOP, CODE_OFFSET)
        for u, c in zip(utts, codes, strict=True)
    ]
    stats = code_diagnostics(codes, phones, num_entries)
    counts = np.bincount(np.concatenate(codes)[:, 0], minlength=num_entries)
    return stats, [float(c) for c in counts]

"""A CTC probe over frozen frame features: how much phonetic information they hold.

The probe maps standardised features to tokens plus a blank, either linearly (as SUPERB's
phoneme-recognition probe) or through one bidirectional GRU layer, trained with CTC
(Graves et al. 2006) on cached features and decoded greedily (best path: argmax per frame,
merge repeats, drop blanks). With the few hundred labeled utterances of the embedded
corpus a linear probe on single frames barely learns (it over-inserts), so the suites use
the one-layer GRU; the same probe serves every front end, so the comparison stays fair.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BLANK = 0


@dataclass
class ProbeConfig:
    kind: str = "conv"  # "linear" (per frame), "conv" (linear over a window), "gru"
    window: int = 9  # frames seen by the "conv" probe (centred, odd)
    hidden: int = 128  # GRU units per direction
    epochs: int = 40
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.0
    utterance_norm: bool = True  # standardise each utterance's features (CMVN)


class CTCProbe(nn.Module):
    """Standardised features -> [one BiGRU layer] -> linear -> tokens + blank."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self, dim: int, vocab: list[str], mean: torch.Tensor, std: torch.Tensor, config: ProbeConfig
    ) -> None:
        super().__init__()
        if config.kind not in ("linear", "conv", "gru"):
            raise ValueError(f"probe kind {config.kind!r} is not 'linear', 'conv' or 'gru'")
        self.vocab = vocab  # index 0 is the blank
        self.config = config
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.rnn = (
            nn.GRU(dim, config.hidden, batch_first=True, bidirectional=True)
            if config.kind == "gru"
            else None
        )
        self.conv = (
            nn.Conv1d(dim, len(vocab) + 1, config.window, padding=config.window // 2)
            if config.kind == "conv"
            else None
        )
        self.linear = nn.Linear(2 * config.hidden if self.rnn else dim, len(vocab) + 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, V+1)
        x = (feats - self.mean) / self.std
        if self.conv is not None:  # still linear in the features, over a short window
            return self.conv(x.transpose(1, 2)).transpose(1, 2)[:, : x.shape[1]]
        if self.rnn is not None:
            x = self.rnn(x)[0]
        return self.linear(x)


def normalize_utterance(feats: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean and variance normalisation (CMVN) of (T, D) features."""
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


def greedy_decode(log_probs: torch.Tensor, length: int, vocab: list[str]) -> list[str]:
    """Best-path CTC decoding of one utterance: argmax, merge repeats, drop blanks."""
    best = log_probs[:length].argmax(-1).tolist()
    out, previous = [], None
    for index in best:
        if index != previous and index != BLANK:
            out.append(vocab[index - 1])
        previous = index
    return out


def _batches(n: int, size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size].tolist()


def _pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
    return padded, lengths


def train_probe(
    feats: list[torch.Tensor],
    targets: list[list[str]],
    vocab: list[str],
    config: ProbeConfig,
    generator: torch.Generator | None = None,
    progress=None,
) -> CTCProbe:
    """Fit a CTC probe on (features (T, D), token list) pairs."""
    if config.utterance_norm:
        feats = [normalize_utterance(f) for f in feats]
    index = {tok: i + 1 for i, tok in enumerate(vocab)}
    frames = torch.cat(feats)
    probe = CTCProbe(frames.shape[1], vocab, frames.mean(0), frames.std(0) + 1e-5, config)
    labels = [torch.tensor([index[t] for t in seq], dtype=torch.long) for seq in targets]
    optimizer = torch.optim.Adam(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    epochs = range(config.epochs)
    for _ in progress(epochs, desc="CTC probe", unit="epoch") if progress else epochs:
        for batch in _batches(len(feats), config.batch_size, generator):
            x, x_len = _pad([feats[i] for i in batch])
            y = [labels[i] for i in batch]
            log_probs = F.log_softmax(probe(x), -1).transpose(0, 1)  # (T, B, V+1)
            loss = F.ctc_loss(
                log_probs,
                torch.cat(y),
                x_len,
                torch.tensor([len(t) for t in y]),
                blank=BLANK,
                zero_infinity=True,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return probe


@torch.no_grad()
def decode(probe: CTCProbe, feats: list[torch.Tensor], batch_size: int = 32) -> list[list[str]]:
    probe.eval()
    if probe.config.utterance_norm:
        feats = [normalize_utterance(f) for f in feats]
    out: list[list[str]] = []
    for batch in _batches(len(feats), batch_size, None):
        x, x_len = _pad([feats[i] for i in batch])
        log_probs = F.log_softmax(probe(x), -1)
        out.extend(
            greedy_decode(lp, n, probe.vocab)
            for lp, n in zip(log_probs, x_len.tolist(), strict=True)
        )
    return out

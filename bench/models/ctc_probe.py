"""A CTC probe over frozen frame features: how much phonetic information they hold.

The probe maps standardised features to tokens plus a blank, either linearly (as SUPERB's
phoneme-recognition probe) or through one bidirectional GRU layer, trained with CTC
(Graves et al. 2006) on cached features and decoded greedily (best path: argmax per frame,
merge repeats, drop blanks). With the few hundred labeled utterances of the embedded
corpus a linear probe on single frames barely learns (it over-inserts), so the suites use
the one-layer GRU; the same probe serves every front end, so the comparison stays fair.

Several layers of one upstream are combined as in SUPERB (Yang et al., Interspeech 2021,
§3; s3prl's `Featurizer`): a weighted sum with softmax-normalised weights initialised to
zero, trained with the probe, instead of picking the best layer on a tiny dev set. Each
layer is standardised on its own first (per utterance, then globally), which puts the
layers on one scale as s3prl's optional per-layer layer norm would.

The probe's initial parameters come from the `generator` given to `train_probe` only (the
module is built under a forked, reseeded global RNG), so its start does not move with the
randomness consumed before it, e.g. by pre-training.
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
    utterance_norm: bool = True  # standardise each utterance's features (CMVN), per layer


class CTCProbe(nn.Module):
    """Standardised layers -> softmax-weighted sum -> [one BiGRU layer] -> linear -> tokens."""

    mean: torch.Tensor  # (L, D) buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self, vocab: list[str], mean: torch.Tensor, std: torch.Tensor, config: ProbeConfig
    ) -> None:
        super().__init__()
        if config.kind not in ("linear", "conv", "gru"):
            raise ValueError(f"probe kind {config.kind!r} is not 'linear', 'conv' or 'gru'")
        self.vocab = vocab  # index 0 is the blank
        self.config = config
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        layers, dim = mean.shape
        self.weights = nn.Parameter(torch.zeros(layers))  # SUPERB §3: softmax(w), w = 0 at start
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

    def layer_weights(self) -> torch.Tensor:
        """The learned weight of each layer in the sum, (L,), summing to 1."""
        return F.softmax(self.weights.detach(), -1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:  # (B, T, L, D) -> (B, T, V+1)
        x = (feats - self.mean) / self.std
        x = torch.einsum("btld,l->btd", x, F.softmax(self.weights, -1))
        if self.conv is not None:  # still linear in the features, over a short window
            return self.conv(x.transpose(1, 2)).transpose(1, 2)[:, : x.shape[1]]
        if self.rnn is not None:
            x = self.rnn(x)[0]
        return self.linear(x)


def normalize_utterance(feats: torch.Tensor) -> torch.Tensor:
    """Per-utterance mean and variance normalisation (CMVN) of (T, D) or (T, L, D) features."""
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


def _frames_first(feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each utterance's (T, D) or (L, T, D) features as (T, L, D); all with one L."""
    if any(f.dim() not in (2, 3) for f in feats):
        raise ValueError("probe features must be (T, D) or (L, T, D) tensors per utterance")
    out = [f.unsqueeze(1) if f.dim() == 2 else f.transpose(0, 1) for f in feats]
    if len({f.shape[1:] for f in out}) > 1:
        shapes = sorted({tuple(f.shape[1:]) for f in out})
        raise ValueError(f"utterances differ in (layers, dim): {shapes}")
    return out


def _batches(n: int, size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size].tolist()


def _pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
    return padded, lengths


def _seeded_probe(
    vocab: list[str], frames: torch.Tensor, config: ProbeConfig, generator: torch.Generator | None
) -> CTCProbe:
    """The probe with its start drawn from `generator` (seed 0 without one), not the global RNG.

    The module is built under a forked CPU RNG reseeded from one draw of the generator, so
    torch's default initialisations stay as they are and the caller's RNG state is untouched.
    """
    seed = 0 if generator is None else int(torch.randint(2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # CPU only: CUDA's state is not forked
        return CTCProbe(vocab, frames.mean(0), frames.std(0) + 1e-5, config)


def train_probe(
    feats: list[torch.Tensor],
    targets: list[list[str]],
    vocab: list[str],
    config: ProbeConfig,
    generator: torch.Generator | None = None,
    progress=None,
) -> CTCProbe:
    """Fit a CTC probe on (features, token list) pairs.

    Features per utterance are (T, D), or (L, T, D) for L layers combined by a learned
    weighted sum. The generator draws the probe's start and the batch order; without one
    the start is seed 0 and batches come in order.
    """
    feats = _frames_first(feats)
    if config.utterance_norm:
        feats = [normalize_utterance(f) for f in feats]
    index = {tok: i + 1 for i, tok in enumerate(vocab)}
    probe = _seeded_probe(vocab, torch.cat(feats), config, generator)
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
    """Greedy transcripts of (T, D) or (L, T, D) features, in the form the probe was fit on."""
    probe.eval()
    feats = _frames_first(feats)
    if feats and feats[0].shape[1:] != probe.mean.shape:
        raise ValueError(
            f"features are (layers, dim) {tuple(feats[0].shape[1:])}, "
            f"the probe was fit on {tuple(probe.mean.shape)}"
        )
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

"""CTC fine-tuning of the wav2vec-style network, and decoding (greedy and LM beam).

As wav2vec 2.0 fine-tunes (Baevski et al. 2020, §4.3 and Appendix B): a linear CTC head
over the tokens (+ blank) on the context network, the whole network trained, the head
alone for the first ``freeze_steps`` updates, and the input masked during training, in
time (spans of the mask embedding) and in channels (SpecAugment-like). Batches are
zero-padded and the network gets a padding mask, so padded frames are never attended to;
the CTC loss reads each utterance's own frame count. The same recipe fine-tunes a
pre-trained network and the randomly initialised one, so their difference is pre-training.
Phones (the SSL task) and characters (the ASR task) use it alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.context import RunContext
from bench.models.ctc_decoding import beam_search, greedy
from bench.models.masking import compute_mask
from bench.models.ngram_lm import NgramLM
from bench.models.wav2vec import Wav2Vec
from bench.training import StepOutput, TrainResult, sgd_update, train, warmup_linear_decay

BLANK = 0


@dataclass
class FinetuneConfig:
    steps: int = 400
    freeze_steps: int = 40  # updates with the network frozen (the head alone learns)
    batch_size: int = 8
    lr: float = 1e-3  # Adam, linear warm-up (10%) then linear decay
    mask_prob: float = 0.05  # time masking: share of frames that start a masked span
    mask_length: int = 5  # frames per span (20 ms each)
    channel_mask_prob: float = 0.5  # chance of one masked channel band per utterance
    channel_mask_width: int = 16  # at most this many input channels per band
    # fairseq's fine-tuning dropouts (wav2vec 2.0 base_10m: only activation dropout)
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.1
    dropout_input: float = 0.0
    length_pool: int = 4  # batches are cut from pools of this many batches sorted by length

    def validate(self) -> None:
        if self.steps < 1 or self.freeze_steps < 0 or self.batch_size < 1:
            raise ValueError(f"invalid fine-tuning config: {self}")


class CTCRecognizer(nn.Module):
    """The network's context -> linear head over tokens + blank (index 0)."""

    def __init__(self, network: Wav2Vec, n_tokens: int) -> None:
        super().__init__()
        self.network = network
        self.head = nn.Linear(network.config.dim, n_tokens + 1)

    def frames(self, num_samples: int) -> int:
        return self.network.frames(num_samples)

    def forward(
        self,
        wav: torch.Tensor,
        lengths: list[int] | None = None,
        time_mask: torch.Tensor | None = None,
        channel_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:  # (B, S) -> (B, T, V+1) log-probs
        context, _ = self.network.encode(wav, lengths, time_mask, channel_mask)
        return F.log_softmax(self.head(context), -1)


def batch_waves(audio: Sequence[np.ndarray], idx: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Zero-padded (B, S) waveforms of ``idx`` and their lengths in samples."""
    waves = [audio[i] for i in idx]
    out = np.zeros((len(waves), max(len(w) for w in waves)), dtype=np.float32)
    for row, w in enumerate(waves):
        out[row, : len(w)] = w
    return torch.from_numpy(out), [len(w) for w in waves]


def length_batches(
    lengths: Sequence[int], batch_size: int, pool: int, rng: np.random.Generator
) -> Iterator[list[int]]:
    """Endless batches of indices: each epoch a random order, cut into pools of ``pool``
    batches, each pool sorted by length and cut into batches, those batches in random
    order. Every utterance is seen once per epoch, and a batch holds utterances of similar
    length, so little of it is padding (fairseq batches by size for the same reason)."""
    size = min(batch_size, len(lengths))
    while True:
        order = rng.permutation(len(lengths))
        batches = []
        for start in range(0, len(order), size * pool):
            chunk = sorted(order[start : start + size * pool].tolist(), key=lengths.__getitem__)
            batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        for b in rng.permutation(len(batches)):
            if len(batches[b]) == size:  # an epoch's short remainder is dropped
                yield batches[b]


def channel_mask(
    batch: int, dim: int, config: FinetuneConfig, generator: torch.Generator
) -> torch.Tensor:
    """(B, dim) bool: with probability ``channel_mask_prob`` one band of 1 ..
    ``channel_mask_width`` consecutive input channels per utterance."""
    mask = torch.zeros(batch, dim, dtype=torch.bool)
    for row in range(batch):
        if float(torch.rand((), generator=generator)) < config.channel_mask_prob:
            width = int(torch.randint(1, config.channel_mask_width + 1, (), generator=generator))
            start = int(torch.randint(0, dim - width + 1, (), generator=generator))
            mask[row, start : start + width] = True
    return mask


def fine_tune(
    model: CTCRecognizer,
    audio: Sequence[np.ndarray],
    targets: list[torch.Tensor],
    config: FinetuneConfig,
    ctx: RunContext,
    desc: str = "fine-tune",
    lengths: Sequence[int] | None = None,
) -> TrainResult:
    """CTC fine-tuning on (waveform, token ids) pairs; returns curves and timing.
    ``lengths`` (samples per utterance) spares reading audio that is loaded lazily from
    disk just to batch it by length; without it they are read from ``audio``."""
    rng, generator = ctx.rng(), ctx.generator()
    network_params = list(model.network.parameters())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], config.lr)
    dim = model.network.config.dim
    model.network.set_dropouts(
        config.dropout, config.attention_dropout, config.activation_dropout, config.dropout_input
    )
    if lengths is None:
        lengths = [len(a) for a in audio]
    batches = length_batches(lengths, config.batch_size, config.length_pool, rng)

    def forward(step: int) -> StepOutput:
        for p in network_params:
            p.requires_grad_(step >= config.freeze_steps)
        idx = next(batches)
        wav, lengths = batch_waves(audio, idx)
        frames = [model.frames(n) for n in lengths]
        t = model.frames(wav.shape[1])
        time_mask = None
        if config.mask_prob > 0 and t >= config.mask_length:
            time_mask = compute_mask(
                len(idx), t, config.mask_prob, config.mask_length, generator, min_masks=0
            ).to(ctx.device)
        channels = channel_mask(len(idx), dim, config, generator).to(ctx.device)
        labels = [targets[i] for i in idx]
        with ctx.autocast():
            log_probs = model(wav.to(ctx.device), lengths, time_mask, channels).float()
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(labels).to(ctx.device),
            torch.tensor(frames),
            torch.tensor([len(y) for y in labels]),
            blank=BLANK,
            zero_infinity=True,
        )
        return StepOutput(loss, items=len(idx))

    model.train()
    # dropout draws from torch's global RNG: seed it from the cell, so a fine-tuning is the
    # same whether this process pre-trained the network first or loaded it
    with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
        torch.manual_seed(ctx.seed)
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


@torch.no_grad()
def log_probs_of(model: nn.Module, wav: np.ndarray, device: torch.device) -> torch.Tensor:
    """(T, V+1) float CPU log-probabilities of one utterance (eval mode, no masking)."""
    model.eval()
    return model(torch.from_numpy(wav).unsqueeze(0).to(device))[0].float().cpu()


def greedy_tokens(log_probs: torch.Tensor, vocab: Sequence[str]) -> list[str]:
    """Best-path CTC decoding to tokens: argmax per frame, merge repeats, drop blanks."""
    out, previous = [], None
    for index in log_probs.argmax(-1).tolist():
        if index != previous and index != BLANK:
            out.append(vocab[index - 1])
        previous = index
    return out


@torch.no_grad()
def transcribe(
    model: nn.Module,
    audio: Sequence[np.ndarray],
    tokens: list[str],
    lm: NgramLM,
    ctx: RunContext,
    beam_width: int,
    lm_weight: float,
    word_bonus: float,
    beam: bool = True,
) -> tuple[list[str], list[str], dict[str, float]]:
    """Greedy and (if ``beam``) LM beam-search hypotheses, with decoding seconds of each."""
    greedy_out: list[str] = []
    beam_out: list[str] = []
    t_net = t_greedy = t_beam = 0.0
    for wav in audio:
        t0 = time.perf_counter()
        log_probs = log_probs_of(model, wav, ctx.device)
        t1 = time.perf_counter()
        greedy_out.append(greedy(log_probs, tokens))
        t2 = time.perf_counter()
        if beam:
            beams = beam_search(log_probs, tokens, beam_width, lm, lm_weight, word_bonus)
            beam_out.append(beams[0][0] if beams else "")
        t3 = time.perf_counter()
        t_net, t_greedy, t_beam = t_net + t1 - t0, t_greedy + t2 - t1, t_beam + t3 - t2
    return greedy_out, beam_out, {"net": t_net, "greedy": t_greedy, "beam": t_beam}

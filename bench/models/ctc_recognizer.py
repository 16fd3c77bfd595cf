"""A CTC character recogniser on any front end, and its decoding (greedy and LM beam).

Front end trunk -> Transformer context network -> linear CTC head over the characters
(+ blank). The trunk comes from the front end (``Frontend.trunk``): the wav2vec-style
network brings its frozen feature encoder and its context network (fine-tuned), a fixed
front end (log-mel) gets a projection and a Transformer trained from scratch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.context import RunContext
from bench.models.ctc_decoding import beam_search, greedy
from bench.models.frontends import Frontend
from bench.models.ngram_lm import NgramLM
from bench.models.wav2vec import config_for


class CTCRecognizer(nn.Module):
    """Front end trunk -> context network -> linear CTC head over characters (+ blank)."""

    def __init__(self, frontend: Frontend, n_tokens: int, size: str) -> None:
        super().__init__()
        cfg = config_for(size)
        self.input, self.context = frontend.trunk(cfg)
        self.head = nn.Linear(cfg.dim, n_tokens + 1)

    def frames(self, num_samples: int) -> int:
        return self.input.frames(num_samples)  # type: ignore[operator]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:  # (B, S) -> (B, T, V+1) log-probs
        return F.log_softmax(self.head(self.context(self.input(wav))), -1)


def batch_waves(audio: Sequence[np.ndarray], idx: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Zero-padded (B, S) waveforms of ``idx`` and their lengths in samples."""
    waves = [audio[i] for i in idx]
    out = np.zeros((len(waves), max(len(w) for w in waves)), dtype=np.float32)
    for row, w in enumerate(waves):
        out[row, : len(w)] = w
    return torch.from_numpy(out), [len(w) for w in waves]


@torch.no_grad()
def transcribe(
    model: CTCRecognizer,
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
    model.eval()
    greedy_out: list[str] = []
    beam_out: list[str] = []
    t_net = t_greedy = t_beam = 0.0
    for wav in audio:
        t0 = time.perf_counter()
        log_probs = model(torch.from_numpy(wav).unsqueeze(0).to(ctx.device))[0].float().cpu()
        t1 = time.perf_counter()
        greedy_out.append(greedy(log_probs, tokens))
        t2 = time.perf_counter()
        if beam:
            beams = beam_search(log_probs, tokens, beam_width, lm, lm_weight, word_bonus)
            beam_out.append(beams[0][0] if beams else "")
        t3 = time.perf_counter()
        t_net, t_greedy, t_beam = t_net + t1 - t0, t_greedy + t2 - t1, t_beam + t3 - t2
    return greedy_out, beam_out, {"net": t_net, "greedy": t_greedy, "beam": t_beam}

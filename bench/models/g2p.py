"""Grapheme-to-phoneme sequence-to-sequence models with a one-step decoder interface.

A character encoder (embedding + bidirectional GRU) feeds one of two attention decoders:

- ``GRUDecoder``: a GRU with Luong "general" attention (Luong et al. 2015) and no input
  feeding, so the gold-input (teacher-forced) pass runs the GRU over the whole sequence
  at once; one step is the same GRU over a length-1 sequence.
- ``TransformerDecoder``: a small causal pre-norm Transformer decoder with cross-attention
  to the encoder states; one step computes only the new position over a cache of each
  layer's inputs at the earlier positions.

Both expose the same two calls, so every forcing strategy is written once against them:
``teacher(inputs, memory, mask) -> (logits, hidden)`` for a whole gold input sequence, and
``step(token, state, memory, mask) -> (logits, hidden, state)`` for one step. ``hidden``
is the decoder's pre-output state per step (professor forcing's "behaviour").
Token ids: 0 pad, 1 begin-of-sequence, 2 end-of-sequence, then the symbols.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<s>", "</s>")


class Vocab:
    """Symbols <-> ids with the three special tokens first."""

    def __init__(self, symbols: list[str]) -> None:
        self.itos = list(SPECIALS) + list(symbols)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, symbols, eos: bool = False) -> list[int]:
        return [self.stoi[s] for s in symbols] + ([EOS] if eos else [])

    def decode(self, ids) -> list[str]:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i > EOS:
                out.append(self.itos[i])
        return out


@dataclass
class ModelConfig:
    arch: str = "gru"  # "gru" or "transformer" decoder
    emb_dim: int = 64
    hidden: int = 128  # encoder per direction, and decoder width
    layers: int = 2  # Transformer decoder layers
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1

    def validate(self) -> None:
        if self.arch not in ("gru", "transformer"):
            raise ValueError(f"unknown arch {self.arch!r}; known: gru, transformer")
        if self.hidden % self.heads:
            raise ValueError("hidden must be divisible by heads")


class Encoder(nn.Module):
    """Character embedding -> bidirectional GRU -> states projected to the decoder width."""

    def __init__(self, n_in: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.emb = nn.Embedding(n_in, cfg.emb_dim, padding_idx=PAD)
        self.rnn = nn.GRU(cfg.emb_dim, cfg.hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * cfg.hidden, cfg.hidden)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) ids -> memory (B, S, H) and its padding mask (B, S), True at padding."""
        mask = src.eq(PAD)
        lengths = (~mask).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.drop(self.emb(src)), lengths, batch_first=True, enforce_sorted=False
        )
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return torch.tanh(self.proj(out)), mask


class GRUDecoder(nn.Module):
    """GRU over previous tokens + Luong general attention: h~_t = tanh(W_c [c_t; h_t])."""

    recurrent = True  # a step is cheap (carries a state)

    def __init__(self, n_out: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.emb = nn.Embedding(n_out, cfg.emb_dim, padding_idx=PAD)
        self.rnn = nn.GRU(cfg.emb_dim, cfg.hidden, batch_first=True)
        self.init = nn.Linear(cfg.hidden, cfg.hidden)
        self.score = nn.Linear(cfg.hidden, cfg.hidden, bias=False)  # score = h_t^T W_a h_s
        self.combine = nn.Linear(2 * cfg.hidden, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, n_out)
        self.drop = nn.Dropout(cfg.dropout)

    def _initial(self, memory, mask) -> torch.Tensor:
        keep = (~mask).unsqueeze(-1).float()
        mean = (memory * keep).sum(1) / keep.sum(1).clamp(min=1)
        return torch.tanh(self.init(mean)).unsqueeze(0)  # (1, B, H)

    def _attend(self, h, memory, mask):  # h: (B, T, H)
        scores = h @ self.score(memory).transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(mask.unsqueeze(1), float("-inf"))
        context = scores.softmax(-1) @ memory
        hidden = torch.tanh(self.combine(torch.cat([context, h], -1)))
        return self.out(self.drop(hidden)), hidden

    def teacher(self, inputs, memory, mask):
        h, _ = self.rnn(self.drop(self.emb(inputs)), self._initial(memory, mask))
        return self._attend(h, memory, mask)

    def start(self, memory, mask):
        return self._initial(memory, mask)

    def step(self, token, state, memory, mask):
        h, state = self.rnn(self.drop(self.emb(token.unsqueeze(1))), state)
        logits, hidden = self._attend(h, memory, mask)
        return logits[:, 0], hidden[:, 0], state

    @staticmethod
    def reorder(state, index):
        return state[:, index]


class TransformerDecoder(nn.Module):
    """Causal Transformer decoder (pre-norm) with cross-attention to the encoder memory."""

    recurrent = False  # parallel over positions when the inputs are known

    def __init__(self, n_out: int, cfg: ModelConfig, max_len: int = 64) -> None:
        super().__init__()
        self.emb = nn.Embedding(n_out, cfg.hidden, padding_idx=PAD)
        # N(0, 1/d) init so that sqrt(d)-scaled embeddings do not drown the positions
        nn.init.normal_(self.emb.weight, std=cfg.hidden**-0.5)
        with torch.no_grad():
            self.emb.weight[PAD].zero_()
        self.scale = math.sqrt(cfg.hidden)
        self.register_buffer("pos", _sinusoids(max_len, cfg.hidden), persistent=False)
        layer = nn.TransformerDecoderLayer(
            cfg.hidden, cfg.heads, cfg.ff_dim, cfg.dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, cfg.layers)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.out = nn.Linear(cfg.hidden, n_out)

    def teacher(self, inputs, memory, mask):
        t = inputs.size(1)
        if t > self.pos.size(0):
            raise ValueError(f"output length {t} exceeds the decoder's {self.pos.size(0)}")
        x = self.emb(inputs) * self.scale + self.pos[:t]
        causal = torch.triu(torch.full((t, t), float("-inf"), device=inputs.device), 1)
        h = self.norm(
            self.layers(
                x, memory, tgt_mask=causal, memory_key_padding_mask=mask, tgt_is_causal=True
            )
        )
        return self.out(h), h

    def start(self, memory, mask):
        # per layer, the layer inputs at every position so far (a cache of the prefix)
        return [memory.new_zeros((memory.size(0), 0, memory.size(2))) for _ in self.layers.layers]

    def step(self, token, state, memory, mask):
        """One position, attending over the cached prefix: the same computation as the
        pre-norm layers of ``teacher`` restricted to the last position."""
        t = state[0].size(1)
        h = self.emb(token.unsqueeze(1)) * self.scale + self.pos[t : t + 1]
        new_state = []
        for layer, cache in zip(self.layers.layers, state, strict=True):
            cache = torch.cat([cache, h], 1)
            new_state.append(cache)
            prefix = layer.norm1(cache)
            attn = layer.self_attn(prefix[:, -1:], prefix, prefix, need_weights=False)[0]
            h = h + layer.dropout1(attn)
            h = h + layer._mha_block(layer.norm2(h), memory, None, mask)
            h = h + layer._ff_block(layer.norm3(h))
        h = self.norm(h)
        return self.out(h)[:, 0], h[:, 0], new_state

    @staticmethod
    def reorder(state, index):
        return [cache[index] for cache in state]


def _sinusoids(n: int, dim: int) -> torch.Tensor:
    pos = torch.arange(n).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    out = torch.zeros(n, dim)
    out[:, 0::2], out[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return out


class Seq2Seq(nn.Module):
    """Encoder + decoder; ``arch`` picks the decoder."""

    def __init__(self, n_in: int, n_out: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(n_in, cfg)
        self.decoder = (
            GRUDecoder(n_out, cfg) if cfg.arch == "gru" else TransformerDecoder(n_out, cfg)
        )

    def encode(self, src):
        return self.encoder(src)


def outputs_only(logits: torch.Tensor) -> torch.Tensor:
    """``logits`` with pad and begin-of-sequence ruled out (never valid outputs)."""
    return logits.index_fill(-1, torch.tensor([PAD, BOS], device=logits.device), float("-inf"))


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: torch.Tensor, max_len: int) -> list[list[int]]:
    """Batched greedy decoding; each output stops at its first end-of-sequence token."""
    memory, mask = model.encode(src)
    dec = model.decoder
    state = dec.start(memory, mask)
    token = torch.full((src.size(0),), BOS, dtype=torch.long, device=src.device)
    out, done = [], torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, _, state = dec.step(token, state, memory, mask)
        token = outputs_only(logits).argmax(-1)
        out.append(token)
        done |= token.eq(EOS)
        if bool(done.all()):
            break
    ids = torch.stack(out, 1).tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in ids]


@torch.no_grad()
def beam_decode(model: Seq2Seq, src: torch.Tensor, width: int, max_len: int) -> list[int]:
    """Beam search for one word ``src`` (1, S): the highest log-probability hypothesis.

    At each step the ``width`` best extensions of the live hypotheses are kept; those
    ending in EOS are finished. Search stops when no live hypothesis can beat the best
    finished one (log-probabilities only fall), so width 1 is exactly greedy decoding.
    """
    memory, mask = model.encode(src)
    dec = model.decoder
    state = dec.start(memory, mask)
    tokens = torch.full((1,), BOS, dtype=torch.long, device=src.device)
    seqs: list[list[int]] = [[]]
    scores = torch.zeros(1, device=src.device)
    best: tuple[float, list[int]] | None = None
    for _ in range(max_len):
        n = len(seqs)
        logits, _, state = dec.step(tokens, state, memory.expand(n, -1, -1), mask.expand(n, -1))
        total = (scores.unsqueeze(1) + outputs_only(logits).log_softmax(-1)).flatten()
        top, flat = total.topk(min(width, total.numel()))
        vocab = logits.size(1)
        keep, new_seqs, new_scores, new_tokens = [], [], [], []
        for score, f in zip(top.tolist(), flat.tolist(), strict=True):
            beam, tok = divmod(f, vocab)
            if tok == EOS:
                if best is None or score > best[0]:
                    best = (score, seqs[beam])
            elif tok > EOS:
                keep.append(beam)
                new_seqs.append(seqs[beam] + [tok])
                new_scores.append(score)
                new_tokens.append(tok)
        if not keep or (best is not None and best[0] >= max(new_scores)):
            break
        index = torch.tensor(keep, device=src.device)
        state = dec.reorder(state, index)
        seqs, tokens = new_seqs, torch.tensor(new_tokens, device=src.device)
        scores = torch.tensor(new_scores, device=src.device)
    if best is None:  # ran out of length: the best live hypothesis
        return seqs[int(scores.argmax())]
    return best[1]


def pad_batch(rows: list[list[int]]) -> torch.Tensor:
    """Id sequences right-padded with PAD into one (B, max length) tensor."""
    out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for k, r in enumerate(rows):
        out[k, : len(r)] = torch.tensor(r)
    return out


class PairBatches:
    """Training batches of (word, pronunciation) pairs, every pronunciation of a word a
    pair: shuffled by ``rng``, with a new permutation whenever the rest of the current
    one is shorter than a batch."""

    def __init__(
        self,
        words: Sequence[tuple[str, Sequence[Sequence[str]]]],
        graphemes: Vocab,
        phonemes: Vocab,
        batch_size: int,
        rng: np.random.Generator,
    ) -> None:
        self.pairs = [
            (graphemes.encode(w), phonemes.encode(p, eos=True)) for w, prons in words for p in prons
        ]
        self.batch_size, self.rng = batch_size, rng
        self.order, self.cursor = rng.permutation(len(self.pairs)), 0

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(graphemes, decoder inputs ``<s>`` + phonemes, targets phonemes + ``</s>``)."""
        if self.cursor + self.batch_size > len(self.order):
            self.order, self.cursor = self.rng.permutation(len(self.pairs)), 0
        batch = [self.pairs[i] for i in self.order[self.cursor : self.cursor + self.batch_size]]
        self.cursor += self.batch_size
        src = pad_batch([s for s, _ in batch]).to(device)
        tgt = pad_batch([t for _, t in batch]).to(device)
        inputs = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)
        inputs = inputs.masked_fill(inputs.eq(EOS) & tgt.eq(PAD), PAD)  # no </s> after the end
        return src, inputs, tgt


def max_output_len(word: str) -> int:
    """The decoding length limit for ``word``: twice its letters plus 5, at most 60."""
    return min(2 * len(word) + 5, 60)


def decode_words(
    model: Seq2Seq,
    words: list[str],
    graphemes: Vocab,
    phonemes: Vocab,
    device: torch.device,
    beam: int = 0,
) -> list[list[str]]:
    """Phoneme outputs of ``words``: greedy (``beam`` 0, 256 words a batch) or beam search."""
    model.eval()
    out: list[list[str]] = []
    if beam:
        for w in words:
            src = torch.tensor([graphemes.encode(w)], device=device)
            out.append(phonemes.decode(beam_decode(model, src, beam, max_output_len(w))))
        return out
    for start in range(0, len(words), 256):
        chunk = words[start : start + 256]
        src = pad_batch([graphemes.encode(w) for w in chunk]).to(device)
        ids = greedy_decode(model, src, max(max_output_len(w) for w in chunk))
        out += [phonemes.decode(row) for row in ids]
    return out

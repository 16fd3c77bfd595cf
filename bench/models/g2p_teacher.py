"""The distillation teacher of the G2P task: trained once, cached, and its beam outputs.

Kim & Rush (2016) distil a larger teacher into a smaller student. Here the teacher is the
student's architecture made wider (``ModelConfig.hidden``), trained with teacher forcing by
the same loop (``bench.models.g2p_training``). It is trained once per (arch, seed, config)
and saved in the run folder with its beam-search output for every training word (the
targets of sequence-level distillation) and its greedy and beam outputs on the test words
(so each student's record can show the teacher's PER and WER, the ceiling). Later cells,
and resumed runs, load the file instead of training again.

``beam_decode_batch`` is the beam search of ``bench.models.g2p.beam_decode`` run over many
words at once (the same hypotheses, a test checks it), since the teacher decodes every
training word.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from bench.context import RunContext
from bench.models.g2p import (
    BOS,
    EOS,
    ModelConfig,
    Seq2Seq,
    Vocab,
    decode_words,
    max_output_len,
    outputs_only,
    pad_batch,
)
from bench.models.g2p_training import Pairs, TrainSettings, train_g2p
from bench.store import replacing, stable_hash

VERSION = 1  # bump when what the teacher file holds, or how it is made, changes


@torch.no_grad()
def beam_decode_batch(
    model: Seq2Seq, src: torch.Tensor, width: int, max_lens: Sequence[int]
) -> list[list[int]]:
    """``beam_decode`` of every row of ``src`` (B, S), each with its own length limit.

    Each word keeps ``width`` hypothesis slots (dead slots score -inf, so they are never
    extended); per word the kept extensions, the finished hypotheses and the stopping rule
    are those of ``beam_decode``."""
    model.eval()
    n, k = src.size(0), width
    memory, mask = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    dec = model.decoder
    state = dec.start(memory, mask)
    tokens = torch.full((n * k,), BOS, dtype=torch.long, device=src.device)
    scores = torch.full((n, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0
    seqs: list[list[list[int]]] = [[[]] for _ in range(n)]  # live hypotheses per word
    best: list[tuple[float, list[int]] | None] = [None] * n
    result: list[list[int] | None] = [None] * n
    for t in range(max(max_lens)):
        logits, _, state = dec.step(tokens, state, memory, mask)
        vocab = logits.size(1)
        total = (scores.view(-1, 1) + outputs_only(logits).log_softmax(-1)).view(n, k * vocab)
        top, flat = (x.tolist() for x in total.topk(k, dim=1))
        index = torch.arange(n * k, device=src.device)  # dead slots: any state will do
        new_tokens, new_scores = tokens.clone(), torch.full_like(scores, float("-inf"))
        for b in range(n):
            if result[b] is not None:
                continue
            kept: list[list[int]] = []
            for score, f in zip(top[b], flat[b], strict=True):
                beam, tok = divmod(f, vocab)
                if score == float("-inf"):
                    break
                if tok == EOS:
                    if best[b] is None or score > best[b][0]:  # type: ignore[index]
                        best[b] = (score, seqs[b][beam])
                elif tok > EOS:
                    slot = b * k + len(kept)
                    index[slot], new_tokens[slot] = b * k + beam, tok
                    new_scores[b, len(kept)] = score
                    kept.append(seqs[b][beam] + [tok])
            seqs[b] = kept
            hit = best[b]
            if not kept or (hit is not None and hit[0] >= float(new_scores[b, : len(kept)].max())):
                result[b] = hit[1] if hit is not None else []
            elif t + 1 >= max_lens[b]:  # out of length: the best finished, else best live
                result[b] = hit[1] if hit is not None else kept[int(new_scores[b].argmax())]
        if all(r is not None for r in result):
            break
        state = dec.reorder(state, index)
        tokens, scores = new_tokens, new_scores
    return [r if r is not None else [] for r in result]


def beam_words(
    model: Seq2Seq,
    words: Sequence[str],
    graphemes: Vocab,
    phonemes: Vocab,
    width: int,
    device: torch.device,
    chunk: int = 128,
) -> list[list[str]]:
    """Beam-search phoneme outputs of ``words``, ``chunk`` words a batch."""
    out: list[list[str]] = []
    for start in range(0, len(words), chunk):
        part = list(words[start : start + chunk])
        src = pad_batch([graphemes.encode(w) for w in part]).to(device)
        ids = beam_decode_batch(model, src, width, [max_output_len(w) for w in part])
        out += [phonemes.decode(row) for row in ids]
    return out


@dataclass
class Teacher:
    """A trained teacher, its beam output per training word, and its test outputs."""

    model: Seq2Seq  # in eval mode, no gradients
    outputs: dict[str, tuple[str, ...]]  # training word -> the teacher's beam output
    test_greedy: list[list[str]]  # outputs on the test words, in the split's order
    test_beam: list[list[str]]
    curves: dict[str, list] = field(default_factory=dict)
    train_seconds: float = 0.0
    trained_here: bool = False  # False: loaded from the run folder

    def train_pairs(self, train: Pairs) -> list[tuple[str, list[tuple[str, ...]]]]:
        """The training words, each with the teacher's output as its one pronunciation."""
        missing = [w for w, _ in train if w not in self.outputs]
        if missing:
            raise ValueError(f"the teacher has no output for {len(missing)} training words")
        return [(w, [self.outputs[w]]) for w, _ in train]


def teacher_model_config(student: ModelConfig, hidden: int) -> ModelConfig:
    """The student's network at width ``hidden`` (the Transformer's FF width scaled alike).

    A teacher narrower than its student is an input error."""
    if hidden < student.hidden:
        raise ValueError(
            f"teacher_hidden={hidden} is smaller than the student's hidden={student.hidden}: "
            "a distillation teacher must be at least as large as its student; "
            "raise teacher_hidden (or lower hidden)"
        )
    ff = student.ff_dim * hidden // student.hidden
    return ModelConfig(**{**asdict(student), "hidden": hidden, "ff_dim": ff})


def load_or_train(
    model_cfg: ModelConfig,
    strategy: torch.nn.Module,
    settings: TrainSettings,
    beam_width: int,
    data,
    vocabs: tuple[Vocab, Vocab],
    ctx: RunContext,
    key: dict,
) -> Teacher:
    """The teacher of (``model_cfg``, seed, ``key``): loaded from the run folder, or trained
    with ``strategy`` (teacher forcing) on ``data.train`` and saved there.

    It is built and trained under its own torch seed (the cell's) in a forked RNG, so a
    student cell draws the same random numbers whether its teacher was trained or loaded."""
    ident = {"version": VERSION, "model": asdict(model_cfg), "seed": ctx.seed, "key": key}
    ident |= {"beam": beam_width, "device": str(ctx.device), "amp": ctx.amp}
    name = f"teacher-{model_cfg.arch}-seed{ctx.seed}-{stable_hash(ident)}.pt"
    path = ctx.artifact_dir("g2p") / name
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(ctx.seed)
        model = Seq2Seq(len(vocabs[0]), len(vocabs[1]), model_cfg).to(ctx.device)
        if path.exists():
            teacher = _load(path, model, ctx.device)
        else:
            teacher = _train(model, strategy, settings, beam_width, data, vocabs, ctx)
            _save(teacher, path)
    teacher.model.eval().requires_grad_(False)
    return teacher


def _train(model, strategy, settings, beam_width, data, vocabs, ctx) -> Teacher:
    graphemes, phonemes = vocabs
    t0 = time.perf_counter()
    desc = f"g2p teacher {model.cfg.arch}"
    curves, _, _ = train_g2p(model, strategy, data.train, data.valid, vocabs, settings, ctx, desc)
    seconds = time.perf_counter() - t0
    words, test = [w for w, _ in data.train], [w for w, _ in data.test]
    outputs = beam_words(model, words, graphemes, phonemes, beam_width, ctx.device)
    return Teacher(
        model,
        {w: tuple(p) for w, p in zip(words, outputs, strict=True)},
        decode_words(model, test, graphemes, phonemes, ctx.device),
        beam_words(model, test, graphemes, phonemes, beam_width, ctx.device),
        {f"teacher_{k}": v for k, v in curves.items() if k in ("valid_per", "valid_step")},
        seconds,
        trained_here=True,
    )


def _save(teacher: Teacher, path) -> None:
    with replacing(path) as fh:  # a unique temporary name, renamed over path
        torch.save(
            {
                "state_dict": teacher.model.state_dict(),
                "outputs": [[w, list(p)] for w, p in teacher.outputs.items()],
                "test_greedy": teacher.test_greedy,
                "test_beam": teacher.test_beam,
                "curves": teacher.curves,
                "train_seconds": teacher.train_seconds,
            },
            fh,
        )


def _load(path, model: Seq2Seq, device: torch.device) -> Teacher:
    saved = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(saved["state_dict"])
    return Teacher(
        model,
        {w: tuple(p) for w, p in saved["outputs"]},
        saved["test_greedy"],
        saved["test_beam"],
        saved["curves"],
        saved["train_seconds"],
    )

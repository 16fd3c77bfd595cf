"""Speech enhancement -> PESQ (wide- and narrow-band), STOI, ESTOI, SI-SDR and their gains.

Enhancers (methods/enhancement.py) are scored on the noisy mixtures of the test speakers;
the learned ones are first trained on the train speakers' mixtures (random crops) with one
of the training losses. Every metric also appears as an improvement over the noisy input
(``<metric>_gain``), per utterance, so the identity enhancer is the baseline. PESQ runs in
a process pool; utterances on which PESQ fails are counted (``pesq_failures``) and named
in the record, never turned into numbers.

The data are the embedded corpus's mixtures (six noise types, SNRs -5..15 dB), or
VoiceBank-DEMAND with ``--data voicebank=PATH`` (its train set for training, its test set
for scoring).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.data import synthetic
from bench.data.items import Utterance
from bench.data.voicebank import load_voicebank
from bench.metrics.enhancement import (
    UtteranceScore,
    default_workers,
    score_utterances,
    summarize,
)
from bench.registry import register
from bench.store import Cell, Record, stable_hash
from bench.tasks.base import CellResult, Figure, RunContext, Task
from bench.tasks.ssl_phoneme import lr_at

SAMPLE_RATE = 16000
NO_LOSS = "-"


@dataclass
class EnhanceConfig:
    corpus: str = "quick"  # embedded corpus scale (ignored with --data voicebank=PATH)
    steps: int = 300  # training updates of the learned enhancers
    batch_size: int = 8
    crop_seconds: float = 1.0  # random (noisy, clean) crops for training
    lr: float = 3e-4  # Adam peak, linear warm-up then linear decay (1e-3 hurt PESQ)
    warmup_fraction: float = 0.05
    grad_clip: float = 5.0
    test_utterances: int = 30  # scored test mixtures, balanced over noise types (0: all)
    pesq_workers: int = 0  # processes of the PESQ pool (0: all cores)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.crop_seconds <= 0 or self.lr <= 0:
            raise ValueError(f"invalid enhancement config: {self}")
        if self.test_utterances < 0 or self.pesq_workers < 0:
            raise ValueError(f"test_utterances and pesq_workers must be >= 0: {self}")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 120, "batch_size": 4, "test_utterances": 24},
    "default": {"corpus": "default", "steps": 400, "batch_size": 8, "test_utterances": 60},
    "full": {"corpus": "full", "steps": 20000, "batch_size": 16, "test_utterances": 0},
}
LEARNED_LOSSES = ("l1", "neg_sisdr", "mrstft")
ENHANCERS = ("identity", "specsub", "wiener", "mask", "convtasnet")


@dataclass
class PairSet:
    """(noisy, clean) audio pairs of one split, with what is known of each mixture."""

    utts: list[Utterance]
    noisy: list[np.ndarray]
    clean: list[np.ndarray]

    def subset(self, indices: list[int]) -> PairSet:
        return PairSet(
            [self.utts[i] for i in indices],
            [self.noisy[i] for i in indices],
            [self.clean[i] for i in indices],
        )


_PAIRS: dict[tuple, PairSet] = {}


def load_pairs(source: str, split: str) -> PairSet:
    """Pairs of ``split`` (train / test) from the embedded corpus scale ``source`` or from
    ``voicebank=PATH``; cached per process."""
    if source.startswith("voicebank="):
        key = (source, split)
        if key not in _PAIRS:
            utts = load_voicebank(source.removeprefix("voicebank="), splits=split)
            _PAIRS[key] = PairSet(utts, [u.load() for u in utts], [u.load_clean() for u in utts])
        return _PAIRS[key]
    root = synthetic.ensure_corpus(source)
    key = (root, split)
    if key not in _PAIRS:
        utts = [u for u in synthetic.load_manifest(root, "mixtures.jsonl") if u.split == split]
        _PAIRS[key] = PairSet(utts, [u.load() for u in utts], [u.load_clean() for u in utts])
    return _PAIRS[key]


def test_indices(utts: list[Utterance], n: int) -> list[int]:
    """``n`` test utterances (0: all), round-robin over noise types after a fixed shuffle:
    the same set for every cell and seed, so paired comparisons see the same utterances."""
    if n == 0 or n >= len(utts):
        return list(range(len(utts)))
    order = np.random.default_rng(0).permutation(len(utts))
    groups: dict[str, list[int]] = {}
    for i in order:
        groups.setdefault(str(utts[i].noise_type), []).append(int(i))
    queues = [groups[k] for k in sorted(groups)]
    chosen: list[int] = []
    while len(chosen) < n:
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return sorted(chosen)


def _crop_batch(pairs: PairSet, rng: np.random.Generator, batch: int, crop: int):
    noisy = np.zeros((batch, crop), np.float32)
    clean = np.zeros((batch, crop), np.float32)
    for row, i in enumerate(rng.integers(len(pairs.noisy), size=batch)):
        n, c = pairs.noisy[i], pairs.clean[i]
        start = int(rng.integers(max(1, len(n) - crop + 1)))
        seg = slice(start, start + crop)
        noisy[row, : len(n[seg])] = n[seg]
        clean[row, : len(c[seg])] = c[seg]
    return torch.from_numpy(noisy), torch.from_numpy(clean)


def train(model, loss_name: str, pairs: PairSet, config: EnhanceConfig, seed: int, ctx) -> dict:
    """Train ``model`` on random crops of ``pairs`` with the loss ``loss_name``."""
    device = ctx.device
    loss_fn = registry.get("enh_loss", loss_name)().to(device)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    timer = harness.StepTimer(device, skip=min(3, config.steps // 4))
    crop = round(config.crop_seconds * SAMPLE_RATE)
    losses = []
    model.train()
    bar = ctx.progress(range(config.steps), desc=f"train {model.registry_name}", unit="step")
    for step in bar:
        noisy, clean = _crop_batch(pairs, rng, config.batch_size, crop)
        noisy, clean = noisy.to(device), clean.to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, config.lr, config.warmup_fraction)
        with timer.step(items=config.batch_size):
            with ctx.autocast():
                estimate = model(noisy).float()
            loss = loss_fn(estimate, clean)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{model.registry_name}/{loss_name}: loss became {loss.item()} at step "
                    f"{step}; lower lr (now {config.lr}) or turn --amp off"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    rate = timer.items_per_s()
    step = timer.summary()
    return {
        "losses": losses,
        "train_samples_per_s": rate,
        "train_audio_s_per_s": rate * config.crop_seconds if rate else None,
        "step_ms_median": step.median_ms if step else None,
    }


@torch.no_grad()
def enhance_all(model, noisy: list[np.ndarray], ctx: RunContext) -> tuple[list[np.ndarray], float]:
    """Enhanced audio of every utterance (one at a time, as a user would run it) and the
    seconds spent enhancing (after one untimed warm-up call)."""
    model.eval()
    model.enhance(torch.from_numpy(noisy[0]).to(ctx.device), SAMPLE_RATE)  # warm-up
    out, seconds = [], 0.0
    for wave in noisy:
        x = torch.from_numpy(wave).to(ctx.device)
        harness.synchronize(ctx.device)
        t0 = time.perf_counter()
        with ctx.autocast():
            y = model.enhance(x, SAMPLE_RATE).wave.float()
        harness.synchronize(ctx.device)
        seconds += time.perf_counter() - t0
        y = y.cpu().numpy()
        if not np.all(np.isfinite(y)):
            raise FloatingPointError(f"{model.registry_name} produced NaN or infinite samples")
        out.append(y)
    return out, seconds


def _score_dicts(scores: list[UtteranceScore]) -> list[dict]:
    return [asdict(s) for s in scores]


@register("task", "enhance")
class EnhanceTask(Task):
    """Enhancers x training losses -> PESQ-WB/NB, STOI, ESTOI, SI-SDR and their gains."""

    title = "Speech enhancement: PESQ, STOI, SI-SDR on the test speakers' noisy mixtures"
    families = ("enhancer", "enh_loss")
    baseline = {"enhancer": "identity", "enh_loss": NO_LOSS}
    suite_seeds = {"quick": 1, "default": 3}
    accepts_data = ("voicebank",)
    table_metrics = (
        "pesq_wb",
        "pesq_nb",
        "stoi",
        "estoi",
        "si_sdr",
        "pesq_wb_gain",
        "pesq_nb_gain",
        "stoi_gain",
        "si_sdr_gain",
        "pesq_failures",
    )

    def config(self, scale: str) -> dict:
        return scale_config(EnhanceConfig, SCALE_CONFIGS, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """Non-learned enhancers once (loss "-"), learned ones x every training loss.

        Non-learned enhancers do not depend on the seed, but each seed is still a cell, so
        every row of the table has the same number of seeds for the paired tests."""
        selected = selected or {}
        for family, names in selected.items():
            for name in names:
                if name != NO_LOSS:
                    registry.get(family, name)  # fail early on an unknown name
        rows = []
        for name in selected.get("enhancer") or ENHANCERS:
            if registry.get("enhancer", name).trainable:
                losses = [x for x in selected.get("enh_loss") or LEARNED_LOSSES if x != NO_LOSS]
                rows += [{"enhancer": name, "enh_loss": loss} for loss in losses]
            else:
                rows.append({"enhancer": name, "enh_loss": NO_LOSS})
        return rows

    def dataset_card(self, config: dict) -> str:
        if "voicebank" in config.get("data", {}):
            path = config["data"]["voicebank"]
            train, test = (
                load_pairs(f"voicebank={path}", "train"),
                load_pairs(f"voicebank={path}", "test"),
            )
            hours = sum(len(a) for a in train.noisy + test.noisy) / SAMPLE_RATE / 3600
            return (
                f"**VoiceBank-DEMAND** (Valentini-Botinhao et al. 2016) from `{path}`: "
                f"{len(train.utts)} train pairs, {len(test.utts)} test pairs, "
                f"{hours:.2f} h of noisy audio at 16 kHz; scored on "
                f"{len(test_indices(test.utts, config['test_utterances']))} test pairs."
            )
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raw = dict(cell.config)
        data = raw.pop("data", {})
        config = build_config(EnhanceConfig, raw)
        source = f"voicebank={data['voicebank']}" if "voicebank" in data else config.corpus
        test_all = load_pairs(source, "test")
        test = test_all.subset(test_indices(test_all.utts, config.test_utterances))
        workers = config.pesq_workers or default_workers()
        noisy_scores = self._noisy_scores(source, test, workers, ctx)

        name, loss_name = cell.method["enhancer"], cell.method["enh_loss"]
        harness.seed_everything(cell.seed)
        model = registry.get("enhancer", name)(sample_rate=SAMPLE_RATE).to(ctx.device)
        curves: dict[str, list] = {}
        timing: dict[str, float | None] = {}
        metrics: dict[str, float] = {}
        if model.trainable:
            if loss_name == NO_LOSS:
                raise ValueError(f"enhancer {name} is trained: give it an enh_loss, not '-'")
            trained = train(model, loss_name, load_pairs(source, "train"), config, cell.seed, ctx)
            curves["train_loss"] = trained.pop("losses")
            timing.update(trained)
            metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
            one_second = torch.zeros(1, SAMPLE_RATE, device=ctx.device)
            model.eval()
            with torch.no_grad():
                timing["flops_per_audio_second"] = harness.count_flops(lambda: model(one_second))
        elif loss_name != NO_LOSS:
            raise ValueError(f"enhancer {name} is not trained: its enh_loss must be '-'")

        enhanced, seconds = enhance_all(model, test.noisy, ctx)
        audio_s = sum(len(a) for a in test.noisy) / SAMPLE_RATE
        timing["rtf"] = seconds / audio_s
        timing["eval_samples_per_s"] = len(test.noisy) / seconds
        if name == "identity":  # its output is the noisy input: reuse the noisy scores
            scores = list(noisy_scores)
        else:
            scores = score_utterances(test.clean, enhanced, SAMPLE_RATE, workers)
        summary = summarize(scores, noisy_scores)
        metrics.update(summary.metrics)
        curves.update(
            {
                "utt_id": [u.id for u in test.utts],
                "utt_noise_type": [u.noise_type for u in test.utts],
                "utt_snr_db": [u.snr_db for u in test.utts],
                "utt_pesq_wb": [s.pesq_wb for s in scores],
                "utt_pesq_nb": [s.pesq_nb for s in scores],
                "utt_stoi": [s.stoi for s in scores],
                "utt_si_sdr": [s.si_sdr for s in scores],
                "pesq_failed": [[test.utts[i].id, why] for i, why in summary.failed],
                "example": [self._save_example(cell, test, enhanced, ctx)],
            }
        )
        return CellResult(metrics=metrics, curves=curves, timing=timing)

    def _noisy_scores(self, source: str, test: PairSet, workers: int, ctx) -> list[UtteranceScore]:
        """Scores of the noisy input itself, computed once per test set and run folder."""
        key = stable_hash({"source": str(source), "ids": [u.id for u in test.utts]})
        path = ctx.artifact_dir(self.name) / f"noisy-scores-{key}.json"
        if path.exists():
            return [
                UtteranceScore(**{**d, "errors": tuple(d["errors"])})
                for d in json.loads(path.read_text())
            ]
        scores = score_utterances(test.clean, test.noisy, SAMPLE_RATE, workers)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(_score_dicts(scores)))
        tmp.replace(path)
        return scores

    def _save_example(self, cell: Cell, test: PairSet, enhanced: list[np.ndarray], ctx) -> str:
        """Clean / noisy / enhanced audio of one test utterance for the spectrogram panels
        (saved in the run folder; the record holds its path relative to the run)."""
        k = example_index(test.utts)
        label = "-".join(f"{v}" for v in cell.method.values())
        path = ctx.artifact_dir(self.name) / f"example-{label}-seed{cell.seed}.npz"
        np.savez_compressed(
            path, clean=test.clean[k], noisy=test.noisy[k], enhanced=enhanced[k], id=test.utts[k].id
        )
        return str(path.relative_to(ctx.run_dir))

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import enhance_figures

        yield from enhance_figures.draw(records, fig_dir)


def example_index(utts: list[Utterance]) -> int:
    """The utterance shown in the spectrogram panels: a 5 dB babble or pink mixture when
    there is one (speech-like and broadband noise show most), else the first."""
    for kind in ("babble", "pink", "white"):
        for i, u in enumerate(utts):
            if u.noise_type == kind and u.snr_db == 5.0:
                return i
    return 0

"""Self-supervised speech representations (wav2vec 2.0 / data2vec family) -> phoneme error rate.

Each pre-trained cell trains the wav2vec-style network with one quantizer and one
objective on the unlabeled English train split of the embedded corpus, freezes it, and
fits the same linear CTC probe on a labeled subset; the probe reads the encoder output,
an intermediate context layer or the last one, whichever gives the lowest dev PER, and
the test PER of that layer is reported (as the wav2vec paper's TIMIT table reports dev
and test PER). Baselines go through the same probe: log-mel, MFCC and the randomly
initialised network.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.data import synthetic
from bench.metrics.asr import token_error_rate
from bench.models.ctc_probe import ProbeConfig, decode, train_probe
from bench.models.wav2vec import Wav2Vec, config_for
from bench.registry import register
from bench.store import Cell, Record, stable_hash
from bench.tasks.base import CellResult, Figure, RunContext, Task

SAMPLE_RATE = 16000

# (quantizer, objective) cells that make sense; gumbel + contrastive is wav2vec 2.0
PRETRAINED = (
    ("gumbel", "contrastive"),
    ("vq", "contrastive"),
    ("none", "contrastive"),
    ("gumbel", "triplet"),
    ("gumbel", "proxy"),
    ("none", "data2vec"),
)
BASELINES = ("logmel", "mfcc", "random")


@dataclass
class SSLConfig:
    corpus: str = "quick"  # embedded corpus scale
    model_size: str = "small"  # tiny / small / base (bench.models.wav2vec.SIZES)
    steps: int = 300  # pre-training updates
    batch_size: int = 8
    crop_seconds: float = 1.5  # random crops of the unlabeled utterances
    lr: float = 5e-4  # Adam, linear warm-up then linear decay
    warmup_fraction: float = 0.08
    tau_decay: float = 0.995  # Gumbel temperature decay per update (paper 0.999995 for 400k)
    probe_epochs: int = 40
    probe_lr: float = 3e-3
    probe_window_ms: float = 100.0  # the conv probe sees this much context at any frame rate
    labeled_fraction: float = 1.0  # of the train split, with phoneme labels, for the probe
    eval_points: int = 1  # probe PER measured at this many points of pre-training

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not 0 < self.labeled_fraction <= 1:
            raise ValueError(f"invalid SSL config: {self}")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 40, "probe_epochs": 20},
    # sized so the default suite fits its hour on 2 CPU cores
    "default": {
        "corpus": "default",
        "steps": 400,
        "probe_epochs": 20,
        "labeled_fraction": 0.5,
        "eval_points": 2,
    },
    "full": {
        "corpus": "full",
        "model_size": "base",
        "steps": 20000,
        "batch_size": 16,
        "tau_decay": 0.9999,
        "eval_points": 5,
    },
}


def random_crops(
    audio: list[np.ndarray], batch: int, length: int, rng: np.random.Generator
) -> torch.Tensor:
    out = np.zeros((batch, length), dtype=np.float32)
    for row, i in enumerate(rng.integers(len(audio), size=batch)):
        wav = audio[i]
        if len(wav) > length:
            start = int(rng.integers(len(wav) - length + 1))
            out[row] = wav[start : start + length]
        else:
            out[row, : len(wav)] = wav
    return torch.from_numpy(out)


def lr_at(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    warm = max(1, int(total * warmup_fraction))
    if step < warm:
        return peak * (step + 1) / warm
    return peak * max(0.0, (total - step) / max(1, total - warm))


def pretrain(
    model: Wav2Vec, config: SSLConfig, seed: int, ctx: RunContext, on_checkpoint=None
) -> dict:
    """Self-supervised training; returns loss curves and timing."""
    device = ctx.device
    _, audio = synthetic.load_split(config.corpus, "train")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    crop = int(config.crop_seconds * SAMPLE_RATE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    timer = harness.StepTimer(device, skip=min(3, config.steps // 4))  # warm-up steps
    curves = {"pretrain_loss": [], "pretrain_accuracy": [], "codebook_perplexity_train": []}
    checkpoints = {
        round(config.steps * (k + 1) / config.eval_points) for k in range(config.eval_points)
    }
    model.train()
    bar = ctx.progress(range(config.steps), desc=f"pretrain {model.method}", unit="step")
    for step in bar:
        wav = random_crops(audio, config.batch_size, crop, rng).to(device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, config.lr, config.warmup_fraction)
        with timer.step(items=config.batch_size):
            with ctx.autocast():
                out = model(wav, generator)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"pre-training loss became {out.loss.item()} at step {step} "
                    f"({model.method}); lower --lr or turn --amp off"
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            model.anneal(step + 1)
            model.update_teacher(step + 1)
        curves["pretrain_loss"].append(out.objective_loss.item())
        curves["pretrain_accuracy"].append(float(out.accuracy))
        curves["codebook_perplexity_train"].append(float(out.perplexity))
        bar.set_postfix(loss=f"{out.objective_loss.item():.3f}")
        if on_checkpoint and step + 1 in checkpoints:
            on_checkpoint(step + 1)
    crop_flops = harness.count_flops(lambda: model(wav[:1], generator))
    rate = timer.items_per_s()
    seconds_per_s = rate * config.crop_seconds if rate else None
    return {
        "curves": curves,
        "timing": {
            "train_samples_per_s": rate,
            "train_audio_s_per_s": seconds_per_s,
            "rtf": 1 / seconds_per_s if seconds_per_s else None,  # wall s per audio s
            "step_ms_median": timer.summary().median_ms if timer.summary() else None,
            "flops_per_sample": 3 * crop_flops,  # forward + backward
            "flops_per_audio_second": 3 * crop_flops / config.crop_seconds,
            "mfu": 3 * crop_flops * rate / ctx.peak_flops if rate else None,
        },
    }


PRETRAIN_KEYS = (
    "corpus",
    "model_size",
    "steps",
    "batch_size",
    "crop_seconds",
    "lr",
    "warmup_fraction",
    "tau_decay",
)


def pretrained_path(
    quantizer: str, objective: str, config: SSLConfig, seed: int, ctx: RunContext
) -> Path:
    """Where the pre-trained network of (quantizer, objective, seed, config) is kept."""
    key = stable_hash(
        {
            "q": quantizer,
            "o": objective,
            "seed": seed,
            "device": str(ctx.device),
            "amp": ctx.amp,
            **{k: getattr(config, k) for k in PRETRAIN_KEYS},
        }
    )
    return ctx.run_dir / "artifacts" / "ssl_encoders" / f"{quantizer}-{objective}-s{seed}-{key}.pt"


def save_pretrained(model: Wav2Vec, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)


def build_model(
    quantizer: str, objective: str, config: SSLConfig, seed: int, ctx: RunContext
) -> Wav2Vec:
    """A freshly initialised network, its initialisation fixed by ``seed``."""
    harness.seed_everything(seed)
    qkw = {"tau_decay": config.tau_decay} if quantizer == "gumbel" else {}
    model = Wav2Vec(config_for(config.model_size), quantizer, objective, quantizer_kwargs=qkw)
    return model.to(ctx.device)


def load_or_pretrain(
    quantizer: str, objective: str, config: SSLConfig, seed: int, ctx: RunContext
) -> tuple[Wav2Vec, dict | None]:
    """The pre-trained network, from this run's artifacts when an earlier cell made it."""
    model = build_model(quantizer, objective, config, seed, ctx)
    path = pretrained_path(quantizer, objective, config, seed, ctx)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location=ctx.device, weights_only=True))
        return model, None
    trained = pretrain(model, config, seed, ctx)
    save_pretrained(model, path)
    return model, trained


def model_features(model: Wav2Vec, audio: list[np.ndarray], device) -> dict[str, list]:
    """Frozen representations of every utterance, one list per candidate layer."""
    model.eval()
    out: dict[str, list] = {}
    for wav in audio:
        reps = model.representations(torch.from_numpy(wav).unsqueeze(0).to(device))
        for name, value in reps.items():
            out.setdefault(name, []).append(value[0].float().cpu())
    return out


def probe_per(
    train_f, dev_f, test_f, splits, config: SSLConfig, seed: int, ctx, frame_ms: float = 20.0
) -> dict:
    """Fit the CTC probe on train features, score dev and test PER."""
    (train_u, dev_u, test_u) = splits
    window = 2 * int(round(config.probe_window_ms / frame_ms / 2)) + 1  # odd, ~window_ms
    vocab = sorted({p for u in train_u for p in u.phonemes})
    n = max(1, int(round(config.labeled_fraction * len(train_u))))
    probe = train_probe(
        train_f[:n],
        [list(u.phonemes) for u in train_u[:n]],
        vocab,
        ProbeConfig(kind="conv", window=window, epochs=config.probe_epochs, lr=config.probe_lr),
        torch.Generator().manual_seed(seed),
    )
    dev = token_error_rate([list(u.phonemes) for u in dev_u], decode(probe, dev_f))
    test = token_error_rate([list(u.phonemes) for u in test_u], decode(probe, test_f))
    return {"dev_per": dev.rate, "test_per": test.rate, "test_errors": test}


def candidate_layers(feats: dict[str, list]) -> list[str]:
    """Probe the encoder output, the middle context layer and the last one."""
    inner = sorted(k for k in feats if k.startswith("layer"))
    middle = [inner[len(inner) // 2]] if inner else []
    return ["encoder", *middle, "context"]


def best_layer(per_layer: dict[str, dict]) -> str:
    return min(per_layer, key=lambda name: per_layer[name]["dev_per"])


@register("task", "ssl_phoneme")
class SSLPhonemeTask(Task):
    """Quantizer x objective ablation of wav2vec-style pre-training, scored by probe PER."""

    title = "Self-supervised pre-training -> phoneme recognition (linear CTC probe, PER)"
    families = ("frontend", "quantizer", "objective")
    baseline = {"frontend": "logmel", "quantizer": "-", "objective": "-"}
    suite_seeds = {"quick": 1}  # the quick suite is a smoke test of every cell
    headline = "test_per"
    table_metrics = ("dev_per", "test_per", "codebook_perplexity", "code_usage", "pretrain_loss")

    def config(self, scale: str) -> dict:
        return scale_config(SSLConfig, SCALE_CONFIGS, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        rows = [{"frontend": b, "quantizer": "-", "objective": "-"} for b in BASELINES]
        rows += [{"frontend": "pretrained", "quantizer": q, "objective": o} for q, o in PRETRAINED]
        # a baseline row has no quantizer or objective ("-"): such a family filter keeps it
        for family, names in (selected or {}).items():
            rows = [r for r in rows if r[family] in names or r[family] == "-"]
        return rows

    def baseline_of(self, method):
        return None if method["frontend"] == "logmel" else dict(self.baseline)

    def dataset_card(self, config: dict) -> str:
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(SSLConfig, cell.config)
        method = cell.method
        splits = [synthetic.load_split(config.corpus, s) for s in ("train", "valid", "test")]
        utts = tuple(u for u, _ in splits)
        audio = [a for _, a in splits]
        result = CellResult()
        if method["frontend"] in ("logmel", "mfcc"):
            frontend = registry.get("frontend", method["frontend"])()
            feats = [[frontend(torch.from_numpy(w)) for w in split] for split in audio]
            scores = probe_per(*feats, utts, config, cell.seed, ctx, frame_ms=10.0)
            result.metrics = {"dev_per": scores["dev_per"], "test_per": scores["test_per"]}
            return result
        q, o = (
            ("gumbel", "contrastive")
            if method["frontend"] == "random"
            else (method["quantizer"], method["objective"])
        )
        model = build_model(q, o, config, cell.seed, ctx)
        per_curve: list[tuple[int, float]] = []

        def checkpoint(step: int) -> None:
            if step < config.steps:  # the final point is measured below with all layers
                feats = model_features(model, audio[0], ctx.device)
                layer = "context"
                dev_f = model_features(model, audio[1], ctx.device)[layer]
                test_f = model_features(model, audio[2], ctx.device)[layer]
                scores = probe_per(feats[layer], dev_f, test_f, utts, config, cell.seed, ctx)
                per_curve.append((step, scores["test_per"]))
                model.train()

        if method["frontend"] == "pretrained":
            trained = pretrain(model, config, cell.seed, ctx, checkpoint)
            save_pretrained(model, pretrained_path(q, o, config, cell.seed, ctx))  # for ASR
            result.curves.update(trained["curves"])
            result.timing = trained["timing"]
        feats = [model_features(model, split, ctx.device) for split in audio]
        per_layer = {
            layer: probe_per(
                feats[0][layer], feats[1][layer], feats[2][layer], utts, config, cell.seed, ctx
            )
            for layer in candidate_layers(feats[0])
        }
        layer = best_layer(per_layer)
        scores = per_layer[layer]
        result.metrics = {"dev_per": scores["dev_per"], "test_per": scores["test_per"]}
        result.metrics.update({f"test_per_{name}": s["test_per"] for name, s in per_layer.items()})
        result.curves["probe_layer"] = [layer]
        if method["frontend"] == "pretrained":
            per_curve.append((config.steps, scores["test_per"]))
            result.curves["per_steps"] = [s for s, _ in per_curve]
            result.curves["per_vs_steps"] = [p for _, p in per_curve]
            result.metrics["pretrain_loss"] = float(np.mean(result.curves["pretrain_loss"][-10:]))
            usage = code_usage(model, audio[2], ctx.device)
            if usage is not None:
                result.metrics.update(usage["metrics"])
                result.curves["code_counts"] = usage["counts"]
        result.metrics["parameters"] = float(
            sum(p.numel() for p in model.parameters() if p.requires_grad)
        )
        return result

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import ssl_figures

        yield from ssl_figures.draw(records, fig_dir)


@torch.no_grad()
def code_usage(model: Wav2Vec, audio: list[np.ndarray], device) -> dict | None:
    """Codebook use on the test split: perplexity and fraction of entries ever chosen."""
    if model.quantizer is None or model.method["quantizer"] == "none":
        return None
    model.eval()
    counts = None
    for wav in audio:
        z = model.features(torch.from_numpy(wav).unsqueeze(0).to(device))
        codes = model.quantizer(z).codes.reshape(-1, model.quantizer.num_groups)
        v = model.quantizer.num_entries
        c = torch.stack(
            [torch.bincount(codes[:, g], minlength=v) for g in range(codes.shape[1])]
        ).double()
        counts = c if counts is None else counts + c
    p = counts / counts.sum(1, keepdim=True)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1)
    return {
        "metrics": {
            "codebook_perplexity": float(torch.exp(entropy).sum()),  # summed over groups
            "code_usage": float((counts > 0).double().mean()),
        },
        "counts": counts.flatten().tolist(),
        "entropy_bits": float(entropy.sum() / math.log(2)),
    }

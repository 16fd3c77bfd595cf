"""Speaker embeddings by metric learning -> Recall@1, MAP@R, NMI and EER on unseen speakers.

In the spirit of Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020): every
loss (and, for the triplet loss, every miner) trains the same small encoder over log-mel
features with the same budget, batches and seeds. The encoder is trained on the train
speakers of the embedded corpus (English and Latvian) and evaluated on the speaker-disjoint
test speakers: retrieval (Recall@1, MAP@R), clustering (NMI of k-means) and verification
(EER over all pairs of test utterances as trials). The untrained network (same
architecture, random initialisation) is the baseline row. The curve is Recall@1 on the
valid speakers during training.

The encoder, batch sampler and training loop here are shared with bench.tasks.prosody.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.data import synthetic
from bench.metrics.retrieval import recall_at_1, retrieval_metrics
from bench.models.frontends import LogMel
from bench.registry import register
from bench.store import Cell, Record
from bench.tasks.base import CellResult, Figure, RunContext, Task
from methods.losses import MetricLoss

UNTRAINED = "untrained"  # the baseline row (registered loss "untrained"): random init, no training
LOSS_KWARGS = {"proxy_nca": {"scale": 8.0}}  # Proxy-NCA++'s softmax scale (1/τ, τ ≈ 1/9)
ROWS = {  # per suite scale: (loss, miner) rows besides the untrained baseline
    "quick": (
        ("contrastive", "-"),
        ("ntxent", "-"),
        ("triplet", "all"),
        ("triplet", "random"),
        ("triplet", "semihard"),
        ("triplet", "hardest"),
        ("proxy_nca", "-"),
        ("proxy_anchor", "-"),
    ),
}
ROWS["default"] = ROWS["full"] = ROWS["quick"]


@dataclass
class MetricConfig:
    corpus: str = "quick"  # the embedded corpus scale
    steps: int = 100  # training updates
    classes_per_batch: int = 8  # P of a P×K batch
    samples_per_class: int = 4  # K of a P×K batch
    crop_frames: int = 120  # training crops, 10 ms frames
    n_mels: int = 40
    channels: int = 64  # conv channels of the encoder
    embedding_dim: int = 64
    lr: float = 1e-3  # Adam
    proxy_lr_mult: float = 10.0  # proxies learn faster (Proxy-Anchor uses 100x)
    eval_every: int = 25  # steps between points of the valid Recall@1 curve

    def validate(self) -> None:
        if min(self.steps, self.classes_per_batch, self.crop_frames, self.eval_every) < 1:
            raise ValueError(f"invalid metric-learning config: {self}")
        if self.samples_per_class < 2:
            raise ValueError("samples_per_class must be ≥ 2 (a batch needs positive pairs)")


SCALE_CONFIGS = {
    "quick": {"corpus": "quick", "steps": 100, "crop_frames": 100},
    # 200 updates: ~20 s per cell on one core (measured: 61 ms per step, default corpus)
    "default": {"corpus": "default", "steps": 200, "eval_every": 50},
    "full": {"corpus": "full", "steps": 3000, "eval_every": 200},
}


# ---- features, encoder, sampler: shared with bench.tasks.prosody -------------------------
@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run on ``n`` intra-op threads, then restore. This encoder's small convolutions gain
    nothing from a second thread, and on a shared 2-core CPU two threads ran 10x slower
    (75 vs 740 ms per step, measured under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_FEATURES: dict[tuple, tuple[list, list[torch.Tensor]]] = {}


def features(corpus: str, split: str, n_mels: int) -> tuple[list, list[torch.Tensor]]:
    """(utterances, log-mel (T, n_mels) tensors) of one split, English and Latvian, cached."""
    key = (synthetic.ensure_corpus(corpus), split, n_mels)
    if key not in _FEATURES:
        logmel = LogMel(n_mels=n_mels)
        utts, feats = [], []
        for language in ("en", "lv"):
            us, audio = synthetic.load_split(corpus, split, language)
            utts += us
            feats += [logmel(torch.from_numpy(a)) for a in audio]
        _FEATURES[key] = (utts, feats)
    return _FEATURES[key]


class Encoder(nn.Module):
    """Three 1-D conv blocks over log-mel frames, mean+std pooling, a linear embedding."""

    def __init__(self, n_mels: int, channels: int, embedding_dim: int) -> None:
        super().__init__()
        blocks, c_in = [], n_mels
        for kernel, dilation in ((5, 1), (3, 2), (3, 3)):
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(c_in, channels, kernel, dilation=dilation, padding="same"),
                    nn.BatchNorm1d(channels),
                    nn.ReLU(),
                )
            )
            c_in = channels
        self.blocks = nn.ModuleList(blocks)
        self.embed = nn.Linear(2 * channels, embedding_dim)
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) padded features and their lengths -> (B, embedding_dim)."""
        mask = (torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)).unsqueeze(1)
        h = ((x - self.mean) / self.std).transpose(1, 2) * mask  # (B, n_mels, T)
        for block in self.blocks:  # zeroing the padding after each block makes a padded
            h = block(h) * mask  # batch give exactly the unpadded result (in eval mode)
        n = lengths.clamp(min=1).view(-1, 1).to(h.dtype)
        mean = (h * mask).sum(2) / n
        var = ((h - mean.unsqueeze(2)) ** 2 * mask).sum(2) / n
        return self.embed(torch.cat([mean, (var + 1e-5).sqrt()], dim=1))  # stats pooling


def pad(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats])
    out = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        out[i, : len(f)] = f
    return out, lengths


def sample_batch(labels: np.ndarray, p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a P×K batch: P classes at random, K items of each (with replacement only
    when a class has fewer than K)."""
    classes = np.unique(labels)
    chosen = rng.choice(classes, size=min(p, len(classes)), replace=False)
    out = []
    for c in chosen:
        members = np.flatnonzero(labels == c)
        out.append(rng.choice(members, size=k, replace=len(members) < k))
    return np.concatenate(out)


def crops(feats: list[torch.Tensor], idx, frames: int, rng: np.random.Generator) -> torch.Tensor:
    """(B, frames, n_mels) random crops (short utterances are tiled to length)."""
    out = []
    for i in idx:
        f = feats[i]
        if len(f) < frames:
            f = f.repeat(frames // len(f) + 1, 1)
        start = rng.integers(0, len(f) - frames + 1)
        out.append(f[start : start + frames])
    return torch.stack(out)


@torch.no_grad()
def embed(model: Encoder, feats: list[torch.Tensor], device, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    for s in range(0, len(feats), batch):
        x, lengths = pad(feats[s : s + batch])
        out.append(model(x.to(device), lengths.to(device)).cpu())
    return torch.cat(out).numpy()


def build_loss(name: str, num_classes: int, dim: int) -> MetricLoss:
    cls = registry.get("loss", name)
    kwargs = dict(LOSS_KWARGS.get(name, {}))
    if cls.needs_proxies:
        kwargs.update(num_classes=num_classes, embedding_dim=dim)
    return cls(**kwargs)


def train_encoder(
    method: dict[str, str],
    feats: list[torch.Tensor],
    labels: np.ndarray,
    config: MetricConfig,
    seed: int,
    ctx: RunContext,
    on_eval=None,
) -> tuple[Encoder, dict]:
    """Train (or, for the untrained row, only build) the encoder with the row's loss/miner.

    ``labels`` are class indices 0..C−1; ``on_eval(model)`` returns the curve value logged
    every ``eval_every`` steps. Returns the model and {curves, timing}.
    """
    generator = harness.seed_everything(seed)
    rng = np.random.default_rng(seed)
    device = ctx.device
    model = Encoder(config.n_mels, config.channels, config.embedding_dim)
    frames = torch.cat(feats)
    model.mean.copy_(frames.mean(0))  # global (not per-utterance) normalisation: loudness
    model.std.copy_(frames.std(0) + 1e-5)  # and pitch level stay in the features
    model = model.to(device)
    curves: dict[str, list] = {"step": [], "valid_curve": [], "train_loss": [], "active": []}
    timing: dict[str, float | None] = {}
    if method["loss"] == UNTRAINED:
        if on_eval is not None:
            curves["step"], curves["valid_curve"] = [0], [on_eval(model)]
        return model, {"curves": curves, "timing": timing}
    loss_fn = build_loss(method["loss"], int(labels.max()) + 1, config.embedding_dim).to(device)
    miner = None
    if method["miner"] != "-":
        miner_cls = registry.get("miner", method["miner"])
        miner = miner_cls(generator) if method["miner"] == "random" else miner_cls()
    groups = [{"params": model.parameters(), "lr": config.lr}]
    if list(loss_fn.parameters()):
        groups.append({"params": loss_fn.parameters(), "lr": config.lr * config.proxy_lr_mult})
    optimizer = torch.optim.Adam(groups)
    timer = harness.StepTimer(device, skip=min(3, config.steps // 4))
    bar = ctx.progress(range(config.steps), desc=f"{method['loss']}/{method['miner']}", unit="step")
    y_all = torch.as_tensor(labels)
    for step in bar:
        model.train()
        idx = sample_batch(labels, config.classes_per_batch, config.samples_per_class, rng)
        x = crops(feats, idx, config.crop_frames, rng).to(device)
        y = y_all[idx].to(device)
        with timer.step(items=len(idx)):
            with ctx.autocast():
                z = model(x, torch.full((len(idx),), x.shape[1], device=device)).float()
            tuples = miner(z, y) if miner is not None else None
            out = loss_fn(z, y, tuples)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"{method['loss']} loss became {out.loss.item()} at step {step}; lower lr "
                    f"(now {config.lr})"
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
        curves["train_loss"].append(out.loss.item())
        if out.active is not None:
            curves["active"].append(out.active)
        bar.set_postfix(loss=f"{out.loss.item():.3f}")
        last = step + 1 == config.steps
        if on_eval is not None and ((step + 1) % config.eval_every == 0 or step == 0 or last):
            curves["step"].append(step + 1)
            curves["valid_curve"].append(on_eval(model))
    rate = timer.items_per_s()
    step_t = timer.summary()
    timing = {
        "train_samples_per_s": rate,
        "step_ms_median": step_t.median_ms if step_t else None,
        "peak_mem_mb": harness.peak_memory_mb(device),
    }
    return model, {"curves": curves, "timing": timing}


def class_indices(names: list[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] for n in names]), classes


class MetricTask(Task):
    """Shared grid of the metric-learning tasks: (loss, miner) rows plus the untrained row."""

    families = ("loss", "miner")
    baseline = {"loss": UNTRAINED, "miner": "-"}
    suite_seeds = {"quick": 1}
    rows: dict[str, tuple[tuple[str, str], ...]] = ROWS
    config_class: type = MetricConfig
    scale_configs: dict[str, dict] = SCALE_CONFIGS

    def config(self, scale: str) -> dict:
        return scale_config(self.config_class, self.scale_configs, scale)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        with torch_threads(1 if ctx.device.type == "cpu" else torch.get_num_threads()):
            return self._run(cell, ctx)

    def _run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raise NotImplementedError

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """The untrained row and the (loss, miner) rows of ``scale``, narrowed by --methods
        (the untrained baseline row is always kept, for the paired tests)."""
        rows = [{"loss": UNTRAINED, "miner": "-"}] + [
            {"loss": loss, "miner": miner} for loss, miner in self.rows[scale]
        ]
        for family, names in (selected or {}).items():
            if family in self.families:
                rows = [r for r in rows if r[family] in names or r["loss"] == UNTRAINED]
        return rows

    def baseline_of(self, method):
        return None if method["loss"] == UNTRAINED else {**method, **self.baseline}

    def dataset_card(self, config: dict) -> str:
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))


@register("task", "speaker")
class SpeakerTask(MetricTask):
    """Speaker embeddings (losses x miners) -> Recall@1, MAP@R, NMI, EER on unseen speakers."""

    title = "Speaker embeddings by metric learning: retrieval and verification, unseen speakers"
    table_metrics = ("recall_at_1", "map_at_r", "nmi", "eer")

    def _run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(MetricConfig, cell.config)
        utts, feats = features(config.corpus, "train", config.n_mels)
        labels, _ = class_indices([u.speaker for u in utts])
        v_utts, v_feats = features(config.corpus, "valid", config.n_mels)
        v_labels = [u.speaker for u in v_utts]
        model, trained = train_encoder(
            cell.method,
            feats,
            labels,
            config,
            cell.seed,
            ctx,
            on_eval=lambda m: recall_at_1(embed(m, v_feats, ctx.device), v_labels),
        )
        t_utts, t_feats = features(config.corpus, "test", config.n_mels)
        t_labels = [u.speaker for u in t_utts]
        emb = embed(model, t_feats, ctx.device)
        eval_t = harness.time_fn(
            lambda: embed(model, t_feats, ctx.device), ctx.device, warmup=0, repeats=1
        )
        metrics = retrieval_metrics(emb, t_labels, seed=cell.seed)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        curves = trained["curves"]
        curves["valid_recall_at_1"] = curves.pop("valid_curve")
        # a 2-D PCA of the test embeddings, for the figure
        x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        x = x - x.mean(0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        curves["test_pca"] = np.round(x @ vt[:2].T, 4).tolist()
        curves["test_speakers"] = t_labels
        timing = {
            **trained["timing"],
            "eval_samples_per_s": len(t_feats) / (eval_t.median_ms / 1e3),
        }
        return CellResult(metrics=metrics, curves=curves, timing=timing)

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import metric_learning_figures

        yield from metric_learning_figures.draw_speaker(records, fig_dir)

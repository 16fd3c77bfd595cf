"""Tone of voice and speaker identity on seen speakers -> accuracy, macro-F1, calibration.

The same encoder, losses and miners as bench.tasks.speaker, trained with the target's labels
(the embedded corpus's four prosody classes, "tone of voice", or the speaker), on seen
speakers: every speaker's utterances (all corpus splits, English and Latvian) are divided
60/20/20 into train/valid/test by a fixed seeded permutation. On the frozen, L2-normalised
embeddings a linear softmax classifier is fitted to the train part; the registered
calibrators "none" and "temperature" (Guo et al. 2017) are fitted on the valid logits and
scored on the test logits: accuracy, macro-F1, ECE before and after temperature scaling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score

from bench import registry
from bench.config import build_config
from bench.metrics.calibration import ece
from bench.metrics.retrieval import recall_at_1
from bench.registry import register
from bench.store import Cell, Record
from bench.tasks.base import CellResult, Figure, RunContext
from bench.tasks.speaker import (
    ROWS,
    MetricConfig,
    MetricTask,
    class_indices,
    embed,
    features,
    train_encoder,
)

TARGETS = ("tone", "speaker")
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # of each speaker's utterances: train / valid / test
PROSODY_ROWS = {  # quick/default: one triplet miner (the speaker task compares the miners)
    "quick": tuple(r for r in ROWS["quick"] if r[1] in ("-", "semihard")),
    "full": ROWS["full"],
}
PROSODY_ROWS["default"] = PROSODY_ROWS["quick"]


def seen_speaker_splits(utts: list, seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train/valid/test: each speaker's utterances permuted (seeded) and cut
    60/20/20, so every speaker is in every part."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    speakers = np.array([u.speaker for u in utts])
    for spk in sorted(set(speakers)):
        idx = rng.permutation(np.flatnonzero(speakers == spk))
        n_valid = max(1, round(len(idx) * SPLIT_FRACTIONS[1]))
        n_test = max(1, round(len(idx) * SPLIT_FRACTIONS[2]))
        cut = len(idx) - n_valid - n_test
        parts["train"] += idx[:cut].tolist()
        parts["valid"] += idx[cut : cut + n_valid].tolist()
        parts["test"] += idx[cut + n_valid :].tolist()
    return {k: np.array(v) for k, v in parts.items()}


def fit_linear(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int, steps: int = 300):
    """A linear softmax classifier on unit-normalised embeddings (full-batch Adam)."""
    torch.manual_seed(seed)
    xt = F.normalize(torch.from_numpy(x), dim=1)
    yt = torch.from_numpy(y).long()
    head = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(head(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda z: head(F.normalize(torch.from_numpy(z), dim=1)).detach()


@register("task", "prosody")
class ProsodyTask(MetricTask):
    """Tone-of-voice and speaker-ID classification on seen speakers with each loss."""

    title = "Tone of voice and speaker ID on seen speakers: accuracy, macro-F1, calibration"
    families = ("loss", "miner", "target")
    axes = {"target": TARGETS}
    rows = PROSODY_ROWS
    table_metrics = ("accuracy", "macro_f1", "ece_before", "ece_after", "nll")

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        selected = selected or {}
        rows = MetricTask.grid(self, {k: v for k, v in selected.items() if k != "target"}, scale)
        return [{**r, "target": t} for t in selected.get("target", TARGETS) for r in rows]

    def _run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(MetricConfig, cell.config)
        utts, feats = [], []
        for split in ("train", "valid", "test"):
            u, f = features(config.corpus, split, config.n_mels)
            utts, feats = utts + u, feats + f
        target = cell.method["target"]
        names = [u.prosody if target == "tone" else u.speaker for u in utts]
        labels, classes = class_indices(names)
        parts = seen_speaker_splits(utts)
        sub = {k: [feats[i] for i in v] for k, v in parts.items()}
        y = {k: labels[v] for k, v in parts.items()}
        model, trained = train_encoder(
            cell.method,
            sub["train"],
            y["train"],
            config,
            cell.seed,
            ctx,
            on_eval=lambda m: recall_at_1(embed(m, sub["valid"], ctx.device), y["valid"]),
        )
        emb = {k: embed(model, v, ctx.device) for k, v in sub.items()}
        head = fit_linear(emb["train"], y["train"], len(classes), cell.seed)
        logits = {k: head(emb[k]) for k in ("valid", "test")}
        y_valid, y_test = torch.from_numpy(y["valid"]), torch.from_numpy(y["test"])
        probs = {}
        for name in ("none", "temperature"):
            calibrator = registry.get("calibrator", name)().fit(logits["valid"], y_valid)
            probs[name] = calibrator(logits["test"])
            if name == "temperature":
                fitted_t = float(calibrator.params()["temperature"])
        pred = probs["none"].argmax(1).numpy()
        metrics = {
            "accuracy": float((pred == y["test"]).mean()),
            "macro_f1": float(f1_score(y["test"], pred, average="macro")),
            "ece_before": ece(probs["none"], y_test),
            "ece_after": ece(probs["temperature"], y_test),
            "nll": float(F.nll_loss(probs["temperature"].clamp(min=1e-12).log(), y_test)),
            "temperature": fitted_t,
        }
        curves = trained["curves"]
        curves["valid_recall_at_1"] = curves.pop("valid_curve")
        curves["confusion"] = confusion_matrix(
            y["test"], pred, labels=list(range(len(classes)))
        ).tolist()
        curves["classes"] = classes
        return CellResult(metrics=metrics, curves=curves, timing=trained["timing"])

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import metric_learning_figures

        yield from metric_learning_figures.draw_prosody(records, fig_dir)

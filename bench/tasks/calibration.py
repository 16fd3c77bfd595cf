"""Calibration benchmark on scikit-learn's digits: post-hoc calibrators compared.

The worked example of a task: copy it to add one. A task is a config dataclass with its
values per scale, its grid as data (``rows``, ``baseline``), and ``run``: build the
methods with ``registry.build``, train through ``bench.training.train``, and return the
aggregate metrics with the per-item scores they are computed from.

Each seed trains each classifier once (long enough to overfit and become overconfident,
as modern networks are; Guo et al. 2017), keeps its validation and test logits, and each
calibrator is fitted on the validation logits and scored on the test logits. A cell is
(classifier, calibrator, seed); the trained logits are shared between the cells of one
(classifier, seed) through an artifact file in the run folder, so resuming is cheap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data.digits import load_digits_split
from bench.metrics import weighted
from bench.metrics.calibration import metrics_from_items
from bench.registry import register
from bench.scoring import score_calibrator
from bench.store import Cell, replacing, stable_hash
from bench.tasks.base import CellResult, Task, product
from bench.training import StepOutput, flops_timing, train


@dataclass
class CalibrationConfig:
    epochs: int = 150  # passes over the train split; long enough to overfit
    batch_size: int = 64
    lr: float = 3e-3  # Adam
    weight_decay: float = 0.0  # none: regularisation would hide the overconfidence
    # Low-data regime: train on the remaining 10% (~180 images), so the networks overfit
    # and become overconfident, and the test split is large enough for a stable ECE.
    valid_fraction: float = 0.3  # calibrators are fitted on this split
    test_fraction: float = 0.6  # and scored on this one
    n_bins: int = 15  # ECE bins (Guo et al. 2017)
    eval_every: int = 10  # epochs between validation points of the learning curves

    def validate(self) -> None:
        if min(self.epochs, self.batch_size, self.n_bins, self.eval_every) < 1 or self.lr <= 0:
            raise ValueError(f"invalid calibration config: {self}")


SCALE_CONFIGS = {
    "quick": {"epochs": 150},
    "default": {"epochs": 300},
    "full": {"epochs": 300},
}
CALIBRATORS = ("none", "temperature", "vector", "histogram", "isotonic")
ROWS = product(classifier=("cnn", "mlp"), calibrator=CALIBRATORS)


def train_classifier(
    model_name: str, config: CalibrationConfig, ctx: RunContext
) -> dict[str, object]:
    """Train one classifier; return its valid/test logits and ids, curves and timing."""
    split = load_digits_split(ctx.seed, config.valid_fraction, config.test_fraction)
    device = ctx.device
    model = registry.build("classifier", model_name, num_classes=split.num_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = split.x_train.to(device), split.y_train.to(device)
    x_valid, y_valid = split.x_valid.to(device), split.y_valid.to(device)
    n = len(y_train)
    per_epoch = -(-n // config.batch_size)  # minibatches per pass over the train split
    generator = ctx.generator()
    order = torch.empty(0, dtype=torch.long)

    def forward(step: int) -> StepOutput:
        nonlocal order
        if step % per_epoch == 0:  # a new epoch: a new order
            order = torch.randperm(n, generator=generator).to(device)
        start = (step % per_epoch) * config.batch_size
        idx = order[start : start + config.batch_size]
        model.train()
        with ctx.autocast():
            loss = F.cross_entropy(model(x_train[idx]).float(), y_train[idx])
        return StepOutput(loss, items=len(idx))

    def evaluate(step: int) -> dict[str, float]:
        logits = predict(model, x_valid, ctx)
        return {
            "valid_nll": F.cross_entropy(logits, y_valid.cpu()).item(),
            "valid_accuracy": (logits.argmax(1) == y_valid.cpu()).double().mean().item(),
        }

    result = train(
        forward,
        config.epochs * per_epoch,
        ctx,
        optimizer=optimizer,
        evaluate=evaluate,
        eval_every=config.eval_every * per_epoch,
        eval_key="valid_step",
        desc=f"train {model_name} seed={ctx.seed}",
        warmup=3,
    )
    curves = result.curves
    losses = curves.pop("train_loss")
    sizes = [min(config.batch_size, n - k * config.batch_size) for k in range(per_epoch)]
    curves["train_loss"] = []  # the mean loss of each epoch
    for e in range(config.epochs):
        total = 0.0
        for k, size in enumerate(sizes):
            total += losses[e * per_epoch + k] * size
        curves["train_loss"].append(total / n)
    curves["valid_epoch"] = [s // per_epoch for s in curves.pop("valid_step")]
    model.eval()
    x_test = split.x_test.to(device)
    timing = result.timing
    timing["eval_samples_per_s"] = len(x_test) / (
        harness.time_fn(lambda: predict(model, x_test, ctx), device, warmup=1, repeats=5).median_ms
        / 1e3
    )
    sample = split.x_test[:16].to(device)
    timing |= flops_timing(lambda: model(sample), len(sample), ctx, timing["train_samples_per_s"])
    return {
        "valid_logits": predict(model, x_valid, ctx).numpy(),
        "valid_labels": split.y_valid.numpy(),
        "test_logits": predict(model, x_test, ctx).numpy(),
        "test_labels": split.y_test.numpy(),
        "test_ids": np.array([f"digit{i}" for i in np.asarray(split.id_test)]),
        "curves": curves,
        "timing": timing,
        "split_sizes": split.sizes(),
    }


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    model.eval()
    with ctx.autocast():
        return model(x).float().cpu()


@register("task", "calibration")
class CalibrationTask(Task):
    """Digits classifiers x post-hoc calibrators -> accuracy, NLL, Brier, ECE, AUROC, AURC."""

    title = "Calibration on digits (post-hoc calibrators, fitted on valid, scored on test)"
    families = ("classifier", "calibrator")
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"calibrator": "none"}
    headline = "ece"
    table_metrics = ("accuracy", "nll", "brier", "ece", "mce", "adaptive_ece", "auroc", "aurc")

    def config(self, scale: str) -> dict[str, object]:
        return scale_config(CalibrationConfig, SCALE_CONFIGS, scale)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(CalibrationConfig, cell.config)
        trained = self._trained(cell.method["classifier"], config, ctx)
        metrics, curves, timing, items = score_calibrator(
            cell.method["calibrator"],
            (trained["valid_logits"], trained["valid_labels"]),
            (trained["test_logits"], trained["test_labels"]),
            trained["test_ids"],
            n_bins=config.n_bins,
        )
        curves.update(trained["curves"])
        return CellResult(metrics, curves, {**trained["timing"], **timing}, {"test": items})

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.classifier_forms("test", build_config(CalibrationConfig, config).n_bins)

    def metrics_from_items(self, items, config) -> dict[str, float]:
        return metrics_from_items(
            items["test"], n_bins=build_config(CalibrationConfig, config).n_bins
        )

    def _trained(self, model: str, config: CalibrationConfig, ctx: RunContext) -> dict:
        """Train once per (classifier, seed, config); later cells load the saved logits."""
        key = stable_hash(
            {"model": model, "seed": ctx.seed, "config": asdict(config), "device": str(ctx.device)}
            | {"amp": ctx.amp}
        )
        path = ctx.artifact_dir(self.name) / f"{model}-seed{ctx.seed}-{key}.npz"
        if path.exists():
            with np.load(path) as data:
                out = {k: data[k] for k in data.files if k != "meta"}
                meta = json.loads(str(data["meta"]))
            return {**out, **meta}
        trained = train_classifier(model, config, ctx)
        meta = {k: trained[k] for k in ("curves", "timing", "split_sizes")}
        arrays: dict[str, Any] = {k: v for k, v in trained.items() if isinstance(v, np.ndarray)}
        with replacing(path) as fh:  # a unique temporary name, renamed over path
            np.savez(fh, **arrays, meta=np.array(json.dumps(meta)))
        return trained

    def dataset_card(self, config: dict[str, object]) -> str:
        cfg = build_config(CalibrationConfig, config)
        split = load_digits_split(0, cfg.valid_fraction, cfg.test_fraction)
        sizes = split.sizes()
        counts = np.bincount(np.concatenate([split.y_train, split.y_valid, split.y_test]))
        return "\n".join(
            [
                "**digits** (scikit-learn `load_digits`, UCI optical recognition of handwritten "
                "digits): 1,797 real 8x8 grey-level images of the digits 0-9, pixel values 0-16 "
                "scaled to [0, 1]. Shipped with scikit-learn; nothing is downloaded.",
                "",
                f"- split per seed (stratified, `random_state=seed`): train {sizes['train']}, "
                f"valid {sizes['valid']} (calibrators are fitted here), test {sizes['test']} "
                "(scored here)",
                f"- images per class: {', '.join(f'{k}: {c}' for k, c in enumerate(counts))}",
            ]
        )

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

from bench import registry
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data.digits import load_digits_split
from bench.metrics import weighted
from bench.metrics.calibration import metrics_from_items
from bench.models.classifier_training import (
    FitConfig,
    classifier_timing,
    fit_classifier,
    predict,
)
from bench.registry import register
from bench.scoring import score_calibrator
from bench.store import Cell, replacing, stable_hash
from bench.tasks.base import CellResult, Task, product


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
    fit = FitConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        eval_every=config.eval_every,
    )
    result = fit_classifier(
        model,
        split.x_train,
        split.y_train,
        fit,
        ctx,
        valid=(split.x_valid, split.y_valid),
        desc=f"train {model_name} seed={ctx.seed}",
    )
    x_test = split.x_test.to(device)
    timing = classifier_timing(model, x_test, ctx, result.timing)
    return {
        "valid_logits": predict(model, split.x_valid, ctx).numpy(),
        "valid_labels": split.y_valid.numpy(),
        "test_logits": predict(model, x_test, ctx).numpy(),
        "test_labels": split.y_test.numpy(),
        "test_ids": np.array([f"digit{i}" for i in np.asarray(split.id_test)]),
        "curves": result.curves,
        "timing": timing,
        "split_sizes": split.sizes(),
    }


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

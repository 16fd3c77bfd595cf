"""Image augmentation ablation on scikit-learn's digits: accuracy on clean, rotated and
rescaled test images.

The claim under test: a classifier does not infer a rotation or a change of scale it never
saw in training. The small CNN of bench.models.digits is trained on the train split with
one registered image augmentation (methods/image_augment.py: none, rotation, scale, both;
per image, drawn from a seeded generator) and scored on three versions of the same test
images: clean, rotated (each image at -test_degrees and +test_degrees) and rescaled (each
image at every factor of test_scales). The shifted copies are deterministic, so their item
ids (``digit{i}/rot+30``, ``digit{i}/scale0.7``) pair across cells. Baseline: none.

Within a seed, every augmentation starts from the same initial weights and sees the same
minibatch order (the augmentation draws from its own generator), so the cells differ by
the augmentation alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench import registry
from bench.config import build_config, scale_config
from bench.data.digits import load_digits_split
from bench.data.digits_shifted import shifted_copies
from bench.metrics import weighted
from bench.metrics.calibration import calibration_items
from bench.models.classifier_training import FitConfig, classifier_timing, fit_classifier, predict
from bench.registry import register
from bench.store import Cell, stable_hash
from bench.tasks.base import CellResult, RunContext, Task, product

CONDITIONS = ("clean", "rotated", "scaled")


@dataclass
class ImageAugmentConfig:
    classifier: str = "cnn"  # a registered "classifier"
    epochs: int = 30  # passes over the train split
    batch_size: int = 64
    lr: float = 3e-3  # Adam
    valid_fraction: float = 0.1  # learning curves only (clean images)
    test_fraction: float = 0.3  # scored here, clean and shifted
    test_degrees: float = 30.0  # rotated test set: every image at -30° and +30°
    test_scales: tuple[float, ...] = (0.7, 1.3)  # rescaled test set: every image at each
    eval_every: int = 5  # epochs between validation points

    def validate(self) -> None:
        if min(self.epochs, self.batch_size, self.eval_every) < 1 or self.lr <= 0:
            raise ValueError(
                f"epochs, batch_size and eval_every must be >= 1 and lr > 0, got {self}"
            )
        if not self.test_degrees > 0:
            raise ValueError(
                f"test_degrees must be > 0 (the rotated test set is at ±test_degrees), "
                f"got {self.test_degrees}"
            )
        if not self.test_scales or any(not s > 0 or s == 1 for s in self.test_scales):
            raise ValueError(
                f"test_scales must be factors > 0 other than 1, e.g. (0.7, 1.3), "
                f"got {self.test_scales}"
            )


SCALE_CONFIGS = {
    "quick": {"epochs": 8, "eval_every": 4},
    "default": {"epochs": 30},
    "full": {"epochs": 60, "eval_every": 10},
}
ROWS = product(image_augment=("none", "rotation", "scale", "both"))


def augment_generator(seed: int) -> torch.Generator:
    """The augmentation's own stream: seeded by the cell's seed, apart from the epoch order."""
    return torch.Generator().manual_seed(int(stable_hash(["image_augment", seed]), 16))


def shifted_test_sets(config: ImageAugmentConfig, seed: int) -> dict[str, tuple]:
    """{condition: (images, labels, item ids)} of the seed's test split."""
    split = load_digits_split(seed, config.valid_fraction, config.test_fraction)
    x, y = split.x_test, split.y_test
    ids = [f"digit{i}" for i in np.asarray(split.id_test)]
    d = float(config.test_degrees)
    return {
        "clean": (x, y, np.array(ids)),
        "rotated": shifted_copies(x, y, ids, angles=(-d, d)),
        "scaled": shifted_copies(x, y, ids, scales=tuple(config.test_scales)),
    }


@register("task", "image_augment")
class ImageAugmentTask(Task):
    """Augmentation ablation (none/rotation/scale/both) -> clean, rotated, rescaled accuracy."""

    title = "Image augmentation ablation on digits: accuracy on clean, rotated, rescaled tests"
    families = ("image_augment",)
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"image_augment": "none"}
    headline = "accuracy_rotated"
    table_metrics = (
        "accuracy_clean",
        "accuracy_rotated",
        "accuracy_scaled",
        "nll_clean",
        "nll_rotated",
        "nll_scaled",
    )
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)

    def config(self, scale: str) -> dict:
        return scale_config(ImageAugmentConfig, SCALE_CONFIGS, scale)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(ImageAugmentConfig, cell.config)
        split = load_digits_split(ctx.seed, config.valid_fraction, config.test_fraction)
        augmentation = registry.build("image_augment", cell.method["image_augment"])
        model = registry.build("classifier", config.classifier, num_classes=split.num_classes)
        model = model.to(ctx.device)
        aug_gen = augment_generator(ctx.seed)
        fit = FitConfig(
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            eval_every=config.eval_every,
        )
        result = fit_classifier(
            model,
            split.x_train,
            split.y_train,
            fit,
            ctx,
            valid=(split.x_valid, split.y_valid),
            augment=lambda x, _order_generator: augmentation(x.cpu(), aug_gen).to(x.device),
            desc=f"image_augment {cell.method['image_augment']} seed={ctx.seed}",
        )
        items = {}
        for condition, (x, y, ids) in shifted_test_sets(config, ctx.seed).items():
            probs = predict(model, x, ctx).double().softmax(1)
            items[condition] = {"item_id": ids, **calibration_items(probs, y)}
        timing = classifier_timing(model, split.x_test, ctx, result.timing)
        metrics = self.metrics_from_items(items, cell.config)
        return CellResult(metrics, dict(result.curves), timing, items)

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        forms: dict[str, weighted.ItemForm] = {}
        for c in CONDITIONS:
            forms[f"accuracy_{c}"] = weighted.Mean(c, weighted.column("correct"), binary=True)
            forms[f"nll_{c}"] = weighted.Mean(c, weighted.column("nll"))
        return forms

    def metrics_from_items(self, items, config) -> dict[str, float]:
        metrics = {}
        for c in CONDITIONS:
            if c in items:
                metrics[f"accuracy_{c}"] = float(np.mean(items[c]["correct"]))
                metrics[f"nll_{c}"] = float(np.mean(items[c]["nll"]))
        return metrics

    def dataset_card(self, config: dict) -> str:
        cfg = build_config(ImageAugmentConfig, config)
        sizes = load_digits_split(0, cfg.valid_fraction, cfg.test_fraction).sizes()
        scales = ", ".join(f"×{s:g}" for s in cfg.test_scales)
        return "\n".join(
            [
                "**digits** (scikit-learn `load_digits`): 1,797 real 8x8 grey-level handwritten "
                "digits 0-9, pixels scaled to [0, 1]. Shipped with scikit-learn; nothing is "
                "downloaded.",
                "",
                f"- split per seed (stratified, `random_state=seed`): train {sizes['train']}, "
                f"valid {sizes['valid']} (learning curves), test {sizes['test']}",
                f"- test conditions: clean ({sizes['test']} images); rotated: each test image "
                f"at ±{cfg.test_degrees:g}° ({2 * sizes['test']}); rescaled about the centre: "
                f"each at {scales} ({len(cfg.test_scales) * sizes['test']}); bilinear, "
                "zero fill (torchvision v2 `affine`)",
            ]
        )

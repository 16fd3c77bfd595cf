"""Head reset on scikit-learn's digits: transfer from digits 0-4 to 5-9 with few labels.

The small CNN of bench.models.digits is pre-trained on every training image of the digits
0-4 (once per seed, cached in the run folder). Its last linear layer is then replaced by a
new one for the digits 5-9, and the network is re-trained on ``shots`` labelled training
images per new digit in one of three modes: ``head_only`` (the new layer alone; the body's
weights and batch-norm statistics frozen), ``full`` (every layer fine-tuned) or
``scratch`` (the same architecture from a random init, the baseline at the same shots).
Every run makes the same number of updates (``finetune_steps``), whatever the shots.

The k-shot subset is drawn per seed (the same images for every mode; the 5-shot images lie
inside the 10-shot ones); the test set is every 5-9 image of the seed's test split, with
ids ``digit{i}``, so the cells of one seed pair item by item.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from bench import registry
from bench.config import build_config, scale_config
from bench.data.digits import DigitsSplit, load_digits_split
from bench.metrics import weighted
from bench.metrics.calibration import calibration_items, metrics_from_items
from bench.models.classifier_training import FitConfig, fit_classifier, predict
from bench.models.head_reset import HeadOnly, class_subset, k_shot, reset_head
from bench.registry import register
from bench.store import Cell, replacing, stable_hash
from bench.tasks.base import CellResult, RunContext, Task

MODES = ("scratch", "head_only", "full")
SHOTS = ("1", "2", "5", "10", "20", "50")  # labelled training images per new digit


@dataclass
class HeadResetConfig:
    classifier: str = "cnn"  # a registered "classifier"
    old_classes: tuple[int, ...] = (0, 1, 2, 3, 4)  # pre-training
    new_classes: tuple[int, ...] = (5, 6, 7, 8, 9)  # k-shot re-training and test
    pretrain_epochs: int = 30  # passes over every training image of the old classes
    finetune_steps: int = 300  # updates of each re-training run, whatever the shots
    batch_size: int = 64
    lr: float = 3e-3  # Adam, pre-training
    finetune_lr: float = 1e-3  # Adam, re-training every layer (modes full and scratch)
    # Adam, re-training the new last layer alone (head_only): a linear model on fixed
    # features needs larger steps to converge within finetune_steps
    head_lr: float = 1e-2
    valid_fraction: float = 0.1  # learning curves only
    test_fraction: float = 0.3
    n_bins: int = 15  # ECE bins

    def validate(self) -> None:
        if min(self.pretrain_epochs, self.finetune_steps, self.batch_size, self.n_bins) < 1:
            raise ValueError(
                f"pretrain_epochs, finetune_steps, batch_size and n_bins must be >= 1, got {self}"
            )
        if min(self.lr, self.finetune_lr, self.head_lr) <= 0:
            raise ValueError(
                f"lr, finetune_lr and head_lr must be > 0, got {self.lr}, {self.finetune_lr}, "
                f"{self.head_lr}"
            )
        old, new = set(self.old_classes), set(self.new_classes)
        if not old or not new or old & new or not old | new <= set(range(10)):
            raise ValueError(
                f"old_classes {self.old_classes} and new_classes {self.new_classes} must be "
                "non-empty, disjoint sets of digits 0-9"
            )


SCALE_CONFIGS = {
    "quick": {"pretrain_epochs": 8, "finetune_steps": 30},
    "default": {},
    "full": {"pretrain_epochs": 60, "finetune_steps": 300},
}
ROWS = [{"mode": m, "shots": k} for k in ("5", "10", "50") for m in MODES]


@contextmanager
def seeded(tag: str, seed: int):
    """Torch's global RNG seeded from (tag, seed) inside the block, restored after: a
    network's init does not depend on what ran before it in the cell."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(stable_hash([tag, seed]), 16))
        yield


def _fit(config: HeadResetConfig, epochs: int, lr: float, eval_every: int) -> FitConfig:
    return FitConfig(epochs=epochs, batch_size=config.batch_size, lr=lr, eval_every=eval_every)


def pretrain(config: HeadResetConfig, split: DigitsSplit, ctx: RunContext) -> tuple[dict, dict]:
    """Train the classifier on every training image of the old classes; (state, meta)."""
    x, y, _ = class_subset(split.x_train, split.y_train, split.id_train, config.old_classes)
    xv, yv, _ = class_subset(split.x_valid, split.y_valid, split.id_valid, config.old_classes)
    with seeded("head_reset/pretrain", ctx.seed):
        model = registry.build("classifier", config.classifier, num_classes=len(config.old_classes))
    model = model.to(ctx.device)
    fit = _fit(config, config.pretrain_epochs, config.lr, max(1, config.pretrain_epochs // 5))
    result = fit_classifier(
        model, x, y, fit, ctx, valid=(xv, yv), desc=f"head_reset pretrain seed={ctx.seed}"
    )
    meta = {"curves": result.curves, "timing": result.timing, "images": len(y)}
    return {k: v.cpu() for k, v in model.state_dict().items()}, meta


@register("task", "head_reset")
class HeadResetTask(Task):
    """Pre-train on digits 0-4, reset the head, re-train on k shots of 5-9 -> accuracy."""

    title = "Head reset on digits: k-shot transfer from 0-4 to 5-9 (head only, full, scratch)"
    families = ("mode", "shots")
    axes = {"mode": MODES, "shots": SHOTS}
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"mode": "scratch"}
    headline = "accuracy"
    table_metrics = ("accuracy", "nll", "ece")
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)

    def config(self, scale: str) -> dict:
        return scale_config(HeadResetConfig, SCALE_CONFIGS, scale)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(HeadResetConfig, cell.config)
        mode, shots = cell.method["mode"], int(cell.method["shots"])
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)}")
        split = load_digits_split(ctx.seed, config.valid_fraction, config.test_fraction)
        new = config.new_classes
        x, y, _ = class_subset(split.x_train, split.y_train, split.id_train, new)
        chosen = torch.from_numpy(k_shot(y, shots, ctx.rng()))
        x, y = x[chosen], y[chosen]
        x_valid, y_valid, _ = class_subset(split.x_valid, split.y_valid, split.id_valid, new)
        x_test, y_test, id_test = class_subset(split.x_test, split.y_test, split.id_test, new)
        curves: dict[str, list] = {}
        if mode == "scratch":
            with seeded("head_reset/scratch", ctx.seed):
                model = registry.build("classifier", config.classifier, num_classes=len(new))
        else:
            state, meta = self._pretrained(config, split, ctx)
            model = registry.build(
                "classifier", config.classifier, num_classes=len(config.old_classes)
            )
            model.load_state_dict(state)
            with seeded("head_reset/head", ctx.seed):
                reset_head(model, len(new))
            curves |= {f"pretrain_{k}": v for k, v in meta["curves"].items()}
        model = model.to(ctx.device)
        trained: nn.Module = HeadOnly(model) if mode == "head_only" else model
        params = [p for p in trained.parameters() if p.requires_grad]
        lr = config.head_lr if mode == "head_only" else config.finetune_lr
        per_epoch = -(-len(y) // config.batch_size)
        epochs = -(-config.finetune_steps // per_epoch)
        result = fit_classifier(
            trained,
            x,
            y,
            _fit(config, epochs, lr, max(1, epochs // 5)),
            ctx,
            valid=(x_valid, y_valid),
            params=params,
            desc=f"head_reset {mode} shots={shots} seed={ctx.seed}",
        )
        curves |= result.curves
        probs = predict(model, x_test, ctx).double().softmax(1)
        ids = np.array([f"digit{i}" for i in id_test])
        items = {"test": {"item_id": ids, **calibration_items(probs, y_test)}}
        metrics = self.metrics_from_items(items, cell.config)
        metrics["parameters"] = sum(p.numel() for p in params)
        return CellResult(metrics, curves, dict(result.timing), items)

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.classifier_forms("test", build_config(HeadResetConfig, config).n_bins)

    def metrics_from_items(self, items, config) -> dict[str, float]:
        n_bins = build_config(HeadResetConfig, config).n_bins
        return metrics_from_items(items["test"], n_bins=n_bins)

    def _pretrained(
        self, config: HeadResetConfig, split: DigitsSplit, ctx: RunContext
    ) -> tuple[dict, dict]:
        """Pre-train once per (seed, pre-training config); later cells load the weights."""
        keys = ("classifier", "old_classes", "pretrain_epochs", "batch_size", "lr")
        used = {k: v for k, v in asdict(config).items() if k in keys}
        fractions = (config.valid_fraction, config.test_fraction)
        key = stable_hash(
            {"seed": ctx.seed, "config": used, "split": fractions}
            | {"device": str(ctx.device), "amp": ctx.amp}
        )
        path = ctx.artifact_dir(self.name) / f"pretrained-seed{ctx.seed}-{key}.pt"
        if path.exists():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            return saved["state"], json.loads(saved["meta"])
        state, meta = pretrain(config, split, ctx)
        with replacing(path) as fh:  # a unique temporary name, renamed over path
            torch.save({"state": state, "meta": json.dumps(meta)}, fh)
        return state, meta

    def dataset_card(self, config: dict) -> str:
        cfg = build_config(HeadResetConfig, config)
        split = load_digits_split(0, cfg.valid_fraction, cfg.test_fraction)
        old = class_subset(split.x_train, split.y_train, split.id_train, cfg.old_classes)[1]
        new = class_subset(split.x_test, split.y_test, split.id_test, cfg.new_classes)[1]
        digits = ", ".join(map(str, cfg.new_classes))
        return "\n".join(
            [
                "**digits** (scikit-learn `load_digits`): 1,797 real 8x8 grey-level handwritten "
                "digits 0-9, pixels scaled to [0, 1]. Shipped with scikit-learn; nothing is "
                "downloaded.",
                "",
                f"- split per seed (stratified, `random_state=seed`; sizes of seed 0): "
                f"pre-training on every training image of the digits "
                f"{', '.join(map(str, cfg.old_classes))} ({len(old)} images)",
                f"- re-training: `shots` training images per digit {digits}, drawn per seed; "
                f"test: every test image of those digits ({len(new)} images)",
            ]
        )

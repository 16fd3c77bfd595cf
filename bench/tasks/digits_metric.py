"""The metric-learning losses on a non-speech dataset: digits, held-out classes -> Recall@1.

scikit-learn's 1,797 handwritten 8x8 digits: the small CNN of bench.models.digits (its
last layer emitting the embedding) is trained with each loss of bench.tasks.speaker (and the
triplet loss with the semi-hard miner) on every image of classes 0–4, and evaluated on the
images of the unseen classes 5–9: Recall@1, MAP@R, NMI and EER (all pairs), as for the
unseen speakers. Baseline: the untrained network. The curve is Recall@1 on the held-out
classes during training, from step 0 (the test set: this task has no model selection).
Measured (quick, seed 0): the random CNN already reaches ~96% Recall@1 on these easy
images, and training on only five classes lowers it on the unseen five (a transfer result,
reported as measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from bench import harness, registry
from bench.config import build_config
from bench.metrics.retrieval import recall_at_1, retrieval_metrics
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import CellResult, RunContext
from bench.tasks.speaker import ROWS, UNTRAINED, MetricTask, build_loss, sample_batch

TRAIN_CLASSES = (0, 1, 2, 3, 4)  # the rest (5–9) are the unseen test classes
DIGITS_ROWS = {  # each loss once; the triplet loss with the semi-hard miner
    "quick": tuple(r for r in ROWS["quick"] if r[1] in ("-", "semihard")),
}
DIGITS_ROWS["default"] = DIGITS_ROWS["full"] = DIGITS_ROWS["quick"]


@dataclass
class DigitsMetricConfig:
    steps: int = 150  # training updates
    classes_per_batch: int = 5  # P of a P×K batch (there are 5 train classes)
    samples_per_class: int = 8  # K
    channels: int = 16  # conv channels of the CNN
    embedding_dim: int = 32
    lr: float = 1e-3  # Adam
    proxy_lr_mult: float = 10.0
    eval_every: int = 50

    def validate(self) -> None:
        if min(self.steps, self.classes_per_batch, self.channels, self.eval_every) < 1:
            raise ValueError(f"invalid digits_metric config: {self}")
        if self.samples_per_class < 2:
            raise ValueError("samples_per_class must be ≥ 2 (a batch needs positive pairs)")


SCALE_CONFIGS = {
    "quick": {"steps": 150},
    "default": {"steps": 500, "eval_every": 100},
    "full": {"steps": 3000, "eval_every": 250},
}


def digits_by_class() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """(images (N, 1, 8, 8) in [0, 1], labels) of the train classes and the unseen ones."""
    data = load_digits()
    x = torch.from_numpy((data.images / 16.0).astype(np.float32)[:, None])
    y = data.target.astype(np.int64)
    seen = np.isin(y, TRAIN_CLASSES)
    return {"train": (x[seen], y[seen]), "test": (x[~seen], y[~seen])}


@torch.no_grad()
def embed(model: torch.nn.Module, x: torch.Tensor, device) -> np.ndarray:
    model.eval()
    return model(x.to(device)).cpu().numpy()


@register("task", "digits_metric")
class DigitsMetricTask(MetricTask):
    """The metric-learning losses on digits: train classes 0–4, Recall@1 on classes 5–9."""

    title = "Metric learning on digits (non-speech): retrieval on unseen classes 5–9"
    table_metrics = ("recall_at_1", "map_at_r", "nmi", "eer")
    rows = DIGITS_ROWS
    config_class = DigitsMetricConfig
    scale_configs = SCALE_CONFIGS

    def dataset_card(self, config: dict) -> str:
        return (
            "scikit-learn digits (1,797 real 8x8 handwritten images): classes 0–4 train, "
            "classes 5–9 test (unseen)."
        )

    def _run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(DigitsMetricConfig, cell.config)
        device = ctx.device
        data = digits_by_class()
        (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
        generator = harness.seed_everything(cell.seed)
        rng = np.random.default_rng(cell.seed)
        model = registry.get("classifier", "cnn")(
            channels=config.channels, num_classes=config.embedding_dim
        ).to(device)
        curves: dict[str, list] = {"step": [], "test_recall_at_1": [], "train_loss": []}
        timing: dict[str, float | None] = {}
        method = cell.method

        def evaluate(step: int) -> None:
            curves["step"].append(step)
            curves["test_recall_at_1"].append(recall_at_1(embed(model, x_test, device), y_test))

        evaluate(0)  # the random initialisation (all that the untrained row has)
        if method["loss"] != UNTRAINED:
            loss_fn = build_loss(method["loss"], len(TRAIN_CLASSES), config.embedding_dim)
            loss_fn = loss_fn.to(device)
            miner = None
            if method["miner"] != "-":
                miner_cls = registry.get("miner", method["miner"])
                miner = miner_cls(generator) if method["miner"] == "random" else miner_cls()
            groups = [{"params": model.parameters(), "lr": config.lr}]
            if list(loss_fn.parameters()):
                groups.append(
                    {"params": loss_fn.parameters(), "lr": config.lr * config.proxy_lr_mult}
                )
            optimizer = torch.optim.Adam(groups)
            timer = harness.StepTimer(device, skip=min(3, config.steps // 4))
            y_all = torch.from_numpy(y_train)
            bar = ctx.progress(range(config.steps), desc=method["loss"], unit="step")
            for step in bar:
                model.train()
                idx = sample_batch(y_train, config.classes_per_batch, config.samples_per_class, rng)
                x, y = x_train[idx].to(device), y_all[idx].to(device)
                with timer.step(items=len(idx)):
                    with ctx.autocast():
                        z = model(x).float()
                    out = loss_fn(z, y, miner(z, y) if miner is not None else None)
                    if not torch.isfinite(out.loss):
                        raise FloatingPointError(f"{method['loss']} loss became {out.loss.item()}")
                    optimizer.zero_grad(set_to_none=True)
                    out.loss.backward()
                    optimizer.step()
                curves["train_loss"].append(out.loss.item())
                if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
                    evaluate(step + 1)
            step_t = timer.summary()
            timing = {
                "train_samples_per_s": timer.items_per_s(),
                "step_ms_median": step_t.median_ms if step_t else None,
                "peak_mem_mb": harness.peak_memory_mb(device),
            }
        metrics = retrieval_metrics(embed(model, x_test, device), y_test, seed=cell.seed)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        return CellResult(metrics=metrics, curves=curves, timing=timing)

"""The metric-learning losses on a non-speech dataset: digits, held-out classes -> Recall@1.

scikit-learn's 1,797 handwritten 8x8 digits: the small CNN of bench.models.digits (its
last layer emitting the embedding) is trained with each loss of the speaker task (and the
triplet loss with the semi-hard miner) on every image of classes 0–4, and evaluated on the
images of the unseen classes 5–9: Recall@1, MAP@R, NMI and EER (all pairs), as for the
unseen speakers. Baseline: the untrained network (loss and miner "-"). The curve is
Recall@1 on the held-out classes during training, from step 0 (the test set: this task
has no model selection). Measured (quick, seed 0): the random CNN already reaches ~96%
Recall@1 on these easy images, and training on only five classes lowers it on the unseen
five (a transfer result, reported as measured).

Per item: each test image (by its dataset index: its digit, the rank of its nearest
same-digit neighbour, its AP@R, its k-means cluster) and each verification trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from bench import registry
from bench.config import build_config, scale_config
from bench.metrics import weighted
from bench.metrics.retrieval import recall_at_1, retrieval_items, retrieval_metrics_from_items
from bench.models.batching import sample_batch
from bench.models.metric_training import Batch, build_loss_and_miner, train_metric
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, RunContext, Task

TRAIN_CLASSES = (0, 1, 2, 3, 4)  # the rest (5–9) are the unseen test classes
LOSS_PARAMS = {"proxy_nca": {"scale": 8.0}}  # Proxy-NCA++'s softmax scale (1/τ, τ ≈ 1/9)
UNTRAINED = {"loss": NONE, "miner": NONE}  # random init, no training
ROWS = [  # each loss once; the triplet loss with the semi-hard miner
    UNTRAINED,
    {"loss": "contrastive", "miner": NONE},
    {"loss": "ntxent", "miner": NONE},
    {"loss": "triplet", "miner": "semihard"},
    {"loss": "proxy_nca", "miner": NONE},
    {"loss": "proxy_anchor", "miner": NONE},
]


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


def digits_by_class() -> dict[str, tuple[torch.Tensor, np.ndarray, np.ndarray]]:
    """(images (N, 1, 8, 8) in [0, 1], labels, dataset indices) of the train classes and
    of the unseen ones."""
    data = load_digits()
    x = torch.from_numpy((data.images / 16.0).astype(np.float32)[:, None])
    y = data.target.astype(np.int64)
    seen = np.isin(y, TRAIN_CLASSES)
    index = np.arange(len(y))
    return {"train": (x[seen], y[seen], index[seen]), "test": (x[~seen], y[~seen], index[~seen])}


@torch.no_grad()
def embed(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> np.ndarray:
    model.eval()
    return model(x.to(device)).cpu().numpy()


@register("task", "digits_metric")
class DigitsMetricTask(Task):
    """The metric-learning losses on digits: train classes 0–4, Recall@1 on classes 5–9."""

    title = "Metric learning on digits (non-speech): retrieval on unseen classes 5–9"
    families = ("loss", "miner")
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = UNTRAINED
    table_metrics = ("recall_at_1", "map_at_r", "nmi", "eer")
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)

    def config(self, scale: str) -> dict:
        return scale_config(DigitsMetricConfig, SCALE_CONFIGS, scale)

    def dataset_card(self, config: dict) -> str:
        return (
            "scikit-learn digits (1,797 real 8x8 handwritten images): classes 0–4 train, "
            "classes 5–9 test (unseen)."
        )

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(DigitsMetricConfig, cell.config)
        device = ctx.device
        data = digits_by_class()
        (x_train, y_train, _), (x_test, y_test, id_test) = data["train"], data["test"]
        model = registry.build(
            "classifier",
            "cnn",
            params={"channels": config.channels},
            num_classes=config.embedding_dim,
        ).to(device)

        def test_recall(done: int = 0) -> dict[str, float]:
            return {"test_recall_at_1": recall_at_1(embed(model, x_test, device), y_test)}

        # step 0: the random initialisation (all that the untrained row has)
        curves: dict[str, list] = {
            "step": [0],
            "test_recall_at_1": [test_recall()["test_recall_at_1"]],
        }
        timing: dict[str, float | None] = {}
        if cell.method["loss"] != NONE:
            rng = ctx.rng()
            loss_fn, miner = build_loss_and_miner(
                cell.method["loss"],
                None if cell.method["miner"] == NONE else cell.method["miner"],
                params=LOSS_PARAMS.get(cell.method["loss"]),
                num_classes=len(TRAIN_CLASSES),
                embedding_dim=config.embedding_dim,
                generator=ctx.generator(),
            )
            y_all = torch.from_numpy(y_train)

            def batch() -> Batch:
                idx = sample_batch(y_train, config.classes_per_batch, config.samples_per_class, rng)
                return (x_train[idx].to(device),), y_all[idx].to(device)

            result = train_metric(
                model,
                batch,
                loss_fn,
                miner,
                ctx,
                steps=config.steps,
                lr=config.lr,
                proxy_lr_mult=config.proxy_lr_mult,
                evaluate=test_recall,
                eval_every=config.eval_every,
                desc=cell.method["loss"],
            )
            for name in ("step", "test_recall_at_1"):
                curves[name] += result.curves.pop(name)
            curves |= result.curves  # train_loss (and active)
            timing = result.timing
        items = retrieval_items(embed(model, x_test, device), y_test, id_test, seed=ctx.seed)
        metrics = self.metrics_from_items(items, cell.config)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.retrieval_forms()

    def metrics_from_items(self, items, config) -> dict[str, float]:
        return retrieval_metrics_from_items(items)

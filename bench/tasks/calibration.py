"""Calibration benchmark on scikit-learn's digits: post-hoc calibrators compared.

Each seed trains each classifier once (long enough to overfit and become overconfident,
as modern networks are; Guo et al. 2017), keeps its validation and test logits, and each
calibrator is fitted on the validation logits and scored on the test logits. A cell is
(classifier, calibrator, seed); the trained logits are shared between the cells of one
(classifier, seed) through an artifact file in the run folder, so resuming is cheap.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import harness, registry
from bench.config import build_config, scale_config
from bench.data.digits import load_digits_split
from bench.metrics.calibration import calibration_metrics, reliability_bins, risk_at_coverage_grid
from bench.registry import register
from bench.store import Cell, Record, stable_hash
from bench.tasks.base import CellResult, Figure, RunContext, Task


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


def train_classifier(
    model_name: str, seed: int, config: CalibrationConfig, ctx: RunContext
) -> dict[str, object]:
    """Train one classifier; return its valid/test logits, curves and timing."""
    generator = harness.seed_everything(seed)
    split = load_digits_split(seed, config.valid_fraction, config.test_fraction)
    device = ctx.device
    model = registry.get("classifier", model_name)().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = split.x_train.to(device), split.y_train.to(device)
    x_valid, y_valid = split.x_valid.to(device), split.y_valid.to(device)
    timer = harness.StepTimer(device)
    harness.reset_peak_memory(device)
    train_loss, valid_nll, valid_acc, curve_epochs = [], [], [], []
    n = len(y_train)
    bar = ctx.progress(range(config.epochs), desc=f"train {model_name} seed={seed}", unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        epoch_loss = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            with timer.step(items=len(idx)):
                with ctx.autocast():
                    loss = F.cross_entropy(model(x_train[idx]).float(), y_train[idx])
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{model_name}: loss became {loss.item()} at seed {seed}; lower lr "
                        f"(now {config.lr}) or turn --amp off"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            epoch_loss += loss.item() * len(idx)
        train_loss.append(epoch_loss / n)
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            logits = predict(model, x_valid, ctx)
            curve_epochs.append(epoch + 1)
            valid_nll.append(F.cross_entropy(logits, y_valid.cpu()).item())
            valid_acc.append((logits.argmax(1) == y_valid.cpu()).double().mean().item())
            bar.set_postfix(loss=f"{train_loss[-1]:.3f}", valid_nll=f"{valid_nll[-1]:.3f}")

    model.eval()
    sample = split.x_test[:16].to(device)
    flops_per_sample = harness.count_flops(lambda: model(sample)) / len(sample)
    x_test = split.x_test.to(device)
    eval_timing = harness.time_fn(lambda: predict(model, x_test, ctx), device, warmup=1, repeats=5)
    step = timer.summary()
    train_rate = timer.items_per_s()
    return {
        "valid_logits": predict(model, x_valid, ctx).numpy(),
        "valid_labels": split.y_valid.numpy(),
        "test_logits": predict(model, x_test, ctx).numpy(),
        "test_labels": split.y_test.numpy(),
        "curves": {
            "train_loss": train_loss,
            "valid_epoch": curve_epochs,
            "valid_nll": valid_nll,
            "valid_accuracy": valid_acc,
        },
        "timing": {
            "train_samples_per_s": train_rate,
            "eval_samples_per_s": len(x_test) / (eval_timing.median_ms / 1e3),
            "step_ms_median": step.median_ms if step else None,
            "step_ms_iqr": step.iqr_ms if step else None,
            "peak_mem_mb": harness.peak_memory_mb(device),
            "flops_per_sample": flops_per_sample,
            # forward + backward is about 3x the forward FLOPs
            "mfu": (3 * flops_per_sample * train_rate / ctx.peak_flops) if train_rate else None,
        },
        "split_sizes": split.sizes(),
    }


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    model.eval()
    with ctx.autocast():
        return model(x).float().cpu()


def score_calibrator(
    name: str,
    valid_logits: np.ndarray,
    valid_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    n_bins: int = 15,
) -> CellResult:
    """Fit calibrator ``name`` on the valid split, score it on the test split."""
    calibrator = registry.get("calibrator", name)()
    t0 = time.perf_counter()
    calibrator.fit(torch.from_numpy(valid_logits), torch.from_numpy(valid_labels))
    fit_ms = (time.perf_counter() - t0) * 1e3
    test = torch.from_numpy(test_logits)
    apply = harness.time_fn(lambda: calibrator(test), "cpu", warmup=1, repeats=5)
    probs = calibrator(test)
    labels = torch.from_numpy(test_labels)
    metrics = calibration_metrics(probs, labels, n_bins=n_bins)
    metrics.update({k: float(v) for k, v in calibrator.params().items()})
    bins = reliability_bins(probs, labels, n_bins=n_bins)
    coverage, risk = risk_at_coverage_grid(probs, labels)
    curves = {
        "reliability_count": bins.count,
        "reliability_conf_sum": bins.conf_sum,
        "reliability_correct_sum": bins.correct_sum,
        "coverage": coverage,
        "risk": risk,
    }
    timing = {
        "calibrator_fit_ms": fit_ms,
        "calibrator_samples_per_s": len(test) / (apply.median_ms / 1e3),
    }
    return CellResult(metrics=metrics, curves=curves, timing=timing)


@register("task", "calibration")
class CalibrationTask(Task):
    """Digits classifiers x post-hoc calibrators -> accuracy, NLL, Brier, ECE, AUROC, AURC."""

    title = "Calibration on digits (post-hoc calibrators, fitted on valid, scored on test)"
    families = ("classifier", "calibrator")
    defaults = {
        "classifier": ("cnn", "mlp"),
        "calibrator": ("none", "temperature", "vector", "histogram", "isotonic"),
    }
    baseline = {"calibrator": "none"}
    headline = "ece"
    table_metrics = ("accuracy", "nll", "brier", "ece", "mce", "adaptive_ece", "auroc", "aurc")

    def config(self, scale: str) -> dict[str, object]:
        return scale_config(CalibrationConfig, SCALE_CONFIGS, scale)

    def cells(self, scale, seeds, selected=None) -> list[Cell]:
        # classifier-major, seed next: each trained model is reused by consecutive cells
        cells = super().cells(scale, seeds, selected)
        return sorted(cells, key=lambda c: (c.method["classifier"], c.seed))

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(CalibrationConfig, cell.config)
        trained = self._trained(cell.method["classifier"], cell.seed, config, ctx)
        result = score_calibrator(
            cell.method["calibrator"],
            trained["valid_logits"],
            trained["valid_labels"],
            trained["test_logits"],
            trained["test_labels"],
            n_bins=config.n_bins,
        )
        result.curves.update(trained["curves"])
        result.timing = {**trained["timing"], **result.timing}
        return result

    def _trained(self, model: str, seed: int, config: CalibrationConfig, ctx: RunContext) -> dict:
        """Train once per (classifier, seed, config); later cells load the saved logits."""
        key = stable_hash(
            {
                "model": model,
                "seed": seed,
                "config": asdict(config),
                "device": str(ctx.device),
                "amp": ctx.amp,
            }
        )
        path = ctx.artifact_dir(self.name) / f"{model}-seed{seed}-{key}.npz"
        if path.exists():
            with np.load(path) as data:
                out = {k: data[k] for k in data.files if k != "meta"}
                meta = json.loads(str(data["meta"]))
            return {**out, **meta}
        trained = train_classifier(model, seed, config, ctx)
        meta = {k: trained[k] for k in ("curves", "timing", "split_sizes")}
        arrays = {k: v for k, v in trained.items() if isinstance(v, np.ndarray)}
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)  # atomic: a crash never leaves a half-written artifact
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

    def figures(self, records: list[Record], fig_dir: Path) -> Iterator[Figure]:
        from bench.report import calibration_figures

        yield from calibration_figures.draw(records, fig_dir)

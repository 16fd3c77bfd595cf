"""Knowledge distillation on scikit-learn's digits (Hinton, Vinyals & Dean 2015).

A teacher (the registered "cnn" at its default width, ~150k parameters) is trained once per
seed on a small train split (10% of the images, ~180, so that students are not already at
ceiling) and its logits on that split are cached in the run folder
(``bench.models.distill_teacher``). Each cell trains one small student, the "mlp" with a
narrow hidden layer or a narrow "cnn" (``students`` in the config, ~30x fewer parameters),
on the same split with a registered distillation loss (``methods.distillation``): "none"
(cross-entropy, the baseline) or "kd" at temperature T and soft-target weight α, the
paper's grid T ∈ {1, 2, 4, 8} × α ∈ {0.5, 0.9}. T and α are axes of the grid ("-" in the
rows without a teacher); a kd row pairs with the none row of the same student.

Scored on the 80% test split per item (``bench.scoring`` with calibrator "none"): accuracy
(the headline, as in the paper's test errors, with McNemar's test over items), NLL, ECE,
AUROC. Every record also carries the teacher's test accuracy, NLL and ECE (``teacher_*``),
both parameter counts and the student's agreement with the teacher's test predictions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from bench import registry
from bench.config import build_config, scale_config
from bench.data.digits import DigitsSplit, load_digits_split
from bench.metrics import weighted
from bench.metrics.calibration import metrics_from_items
from bench.models.classifier_training import FitConfig, classifier_timing, fit_classifier, predict
from bench.models.distill_teacher import (
    build_teacher,
    load_or_train_teacher,
    parameter_count,
    teacher_key,
)
from bench.registry import register
from bench.scoring import score_calibrator
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, RunContext, Task

TEMPERATURES = ("1", "2", "4", "8")  # the paper's grid
ALPHAS = ("0.5", "0.9")
KD_AXES = ("temperature", "alpha")


def _students() -> dict[str, dict[str, int]]:
    return {"mlp": {"hidden": 32}, "cnn": {"channels": 4, "hidden": 32}}


@dataclass
class DistillConfig:
    epochs: int = 200  # student passes over the train split
    teacher_epochs: int = 150
    batch_size: int = 64
    lr: float = 3e-3  # Adam, teacher and students
    # low-data regime: train on the remaining 10% (~180 images); the test split is large
    # so that a one-point accuracy difference can be detected over items
    valid_fraction: float = 0.1  # validation curves only
    test_fraction: float = 0.8
    teacher: str = "cnn"  # a registered classifier
    teacher_params: dict[str, int] = field(default_factory=dict)  # {}: its default width
    students: dict[str, dict[str, int]] = field(default_factory=_students)  # name -> params
    n_bins: int = 15  # ECE bins
    eval_every: int = 10  # epochs between validation points of the curves

    def validate(self) -> None:
        if min(self.epochs, self.teacher_epochs, self.batch_size, self.n_bins) < 1:
            raise ValueError(f"distill: epochs, batch_size and n_bins must be >= 1: {self}")
        if self.eval_every < 1 or not self.lr > 0:
            raise ValueError(f"distill: eval_every must be >= 1 and lr > 0: {self}")
        registry.check("classifier", self.teacher)

    def fit(self, epochs: int) -> FitConfig:
        return FitConfig(epochs, self.batch_size, self.lr, eval_every=self.eval_every)


SCALE_CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 120, "teacher_epochs": 100},
    "default": {},
    "full": {"epochs": 300, "teacher_epochs": 300},
}


def grid_rows(students, temperatures, alphas) -> list[dict[str, str]]:
    """Per student: the none row, then kd at every (alpha, temperature)."""
    kd = [("none", NONE, NONE)] + [("kd", t, a) for a in alphas for t in temperatures]
    keys = ("classifier", "distill", "temperature", "alpha")
    return [dict(zip(keys, (s, *row), strict=True)) for s in students for row in kd]


STUDENTS = tuple(_students())
ROWS = {
    "quick": grid_rows(STUDENTS, ("4",), ("0.9",)),  # the quick budget holds one kd row
    "default": grid_rows(STUDENTS, TEMPERATURES, ALPHAS),
    "full": grid_rows(STUDENTS, TEMPERATURES, ALPHAS),
}


def distill_method(row: dict[str, str]) -> torch.nn.Module:
    """The row's distillation loss, its axes (T, α) as params; '-' where it takes none."""
    name, given = row["distill"], {a: row[a] for a in KD_AXES if row.get(a, NONE) != NONE}
    params = {}
    for axis, value in given.items():
        try:
            params[axis] = float(value)
        except ValueError:
            raise ValueError(f"{axis} {value!r} is not a number; use e.g. 4 or 0.9") from None
    try:
        method = registry.build("distill", name, params=params)
    except (registry.ContextError, TypeError):  # a loss without these params
        raise ValueError(
            f"distill={name} takes no {' or '.join(given)} (got {given}); set it to '-'"
        ) from None
    missing = [a for a in KD_AXES if a not in given]
    if getattr(method, "needs_teacher", False) and missing:
        raise ValueError(
            f"distill={name} needs {' and '.join(missing)} in the row (e.g. temperature=4, "
            "alpha=0.9); '-' is only for rows without a teacher"
        )
    return method


@register("task", "distill")
class DistillTask(Task):
    """Students with/without a teacher's soft targets -> test accuracy, NLL, ECE, AUROC."""

    title = "Knowledge distillation on digits: small students, with and without a CNN teacher"
    families = ("classifier", "distill", "temperature", "alpha")
    axes = {"temperature": (NONE, *TEMPERATURES, "16", "20"), "alpha": (NONE, *ALPHAS, "0.99")}
    rows = ROWS
    baseline = {"distill": "none", "temperature": NONE, "alpha": NONE}
    headline = "accuracy"
    table_metrics = ("accuracy", "nll", "ece", "auroc", "teacher_accuracy", "teacher_agreement")
    suite_seeds = {"quick": 2}  # quick: ~25 s of CPU for its 8 cells and 2 teachers
    cpu_threads = 1  # small networks: a second thread only slows them

    def config(self, scale: str) -> dict[str, Any]:
        return scale_config(DistillConfig, SCALE_CONFIGS, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        """As ``Task.grid``, but a selected temperature or alpha replaces the values of the
        kd rows only: the rows without a teacher ('-') stay, as the baselines."""
        selected = dict(selected or {})
        chosen = {a: selected.pop(a) for a in KD_AXES if a in selected}
        rows = super().grid(selected, scale)
        for axis, values in chosen.items():
            plain = [r for r in rows if r[axis] == NONE]
            kd = [r for r in rows if r[axis] != NONE]
            new = [v for v in values if v != NONE]
            rows = plain + (self._replace_values(kd, axis, new) if kd and new else [])
        rows = [dict(t) for t in dict.fromkeys(tuple(r.items()) for r in rows)]
        self.check_rows(rows)
        return rows

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(DistillConfig, cell.config)
        method = distill_method(cell.method)
        name = cell.method["classifier"]
        split = load_digits_split(ctx.seed, config.valid_fraction, config.test_fraction)
        k = split.num_classes
        student = registry.build(
            "classifier", name, params=config.students.get(name), num_classes=k
        )
        size = parameter_count(student)
        teacher_size = parameter_count(build_teacher(config.teacher, config.teacher_params, k, 0))
        if size >= teacher_size:
            raise ValueError(
                f"student classifier={name} has {size} parameters, not fewer than the "
                f"teacher {config.teacher}'s {teacher_size}; make it smaller in the config's "
                f"students.{name} (e.g. hidden=32) or widen teacher_params"
            )
        teacher = self._teacher(config, split, ctx)
        if not np.array_equal(teacher["train_ids"], np.asarray(split.id_train)):
            raise RuntimeError("the cached teacher's train split differs; delete artifacts/distill")
        soft = torch.from_numpy(teacher["train_logits"]).to(ctx.device)
        student = student.to(ctx.device)
        result = fit_classifier(
            student,
            split.x_train,
            split.y_train,
            config.fit(config.epochs),
            ctx,
            valid=(split.x_valid, split.y_valid),
            loss_fn=lambda logits, labels, idx: method(logits, labels, soft[idx]),
            desc=f"{name} {cell.method['distill']} seed={ctx.seed}",
        )
        x_test = split.x_test.to(ctx.device)
        ids = np.array([f"digit{i}" for i in np.asarray(split.id_test)])
        _, curves, _, items = score_calibrator(
            "none",
            (predict(student, split.x_valid, ctx).numpy(), split.y_valid.numpy()),
            (predict(student, x_test, ctx).numpy(), split.y_test.numpy()),
            ids,
            n_bins=config.n_bins,
        )
        items["teacher_pred"] = teacher["test_logits"].argmax(1)
        metrics = self.metrics_from_items({"test": items}, cell.config)
        metrics |= teacher["metrics"] | {"parameters": size}
        timing = classifier_timing(student, x_test, ctx, result.timing)
        curves |= result.curves | teacher["curves"]
        return CellResult(metrics, curves, timing, {"test": items})

    def _teacher(self, config: DistillConfig, split: DigitsSplit, ctx: RunContext) -> dict:
        """Train once per (seed, teacher settings); later cells load the saved logits."""
        settings = {
            k: v
            for k, v in asdict(config).items()
            if k not in ("epochs", "students")  # what the teacher does not depend on
        }
        path = ctx.artifact_dir(self.name) / (
            f"teacher-{config.teacher}-seed{ctx.seed}-{teacher_key(settings, ctx)}.npz"
        )
        fit = config.fit(config.teacher_epochs)
        return load_or_train_teacher(
            path, config.teacher, config.teacher_params, fit, split, ctx, config.n_bins
        )

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.classifier_forms("test", build_config(DistillConfig, config).n_bins)

    def metrics_from_items(self, items, config) -> dict[str, float]:
        test = items["test"]
        out = metrics_from_items(test, n_bins=build_config(DistillConfig, config).n_bins)
        if "teacher_pred" in test:  # fidelity: the student predicts what the teacher does
            agree = np.asarray(test["pred"]) == np.asarray(test["teacher_pred"])
            out["teacher_agreement"] = float(np.mean(agree))
        return out

    def dataset_card(self, config: dict[str, Any]) -> str:
        cfg = build_config(DistillConfig, config)
        n = load_digits_split(0, cfg.valid_fraction, cfg.test_fraction).sizes()
        return (
            "**digits** (scikit-learn `load_digits`, UCI optical recognition of handwritten "
            "digits): 1,797 real 8x8 grey-level images of the digits 0-9, pixel values 0-16 "
            "scaled to [0, 1]. Shipped with scikit-learn; nothing is downloaded.\n\n"
            f"- split per seed (stratified, `random_state=seed`): train {n['train']} (teacher "
            "and students train here; the teacher's logits on it are the soft targets), "
            f"valid {n['valid']} (learning curves only), test {n['test']} (scored here)"
        )

"""A zoo of digits classifiers: does temperature scaling help every model? (Galil et al. 2023)

Galil, Dabbah & El-Yaniv (ICLR 2023), "What can we learn from the selective prediction and
uncertainty estimation performance of 523 ImageNet classifiers?", Figure 4: temperature
scaling improves ECE and AUROC for most models but harms some. Here at digits scale: ≥ 40
small classifiers (bench/models/zoo_members.py) that differ in architecture, width, epochs,
weight decay, label smoothing, augmentation and distillation.

A cell is (member, calibrator, seed). Each (member, seed) is trained once; its validation
and test logits are shared by its calibrators' cells through an artifact file in the run
folder (as in the calibration task), under a file lock so that parallel workers (--jobs)
never train the same model twice. Distilled members learn from one CNN teacher per seed,
trained once and cached the same way. Each calibrator is fitted on the validation logits
and scored on the test logits; ``none`` is the baseline, so the report's paired per-item
bootstrap gives each model's change. A non-baseline cell also records its own paired
bootstrap of the change against ``none`` (curves ``paired_<metric>`` = [delta, se, lo,
hi]), so that the zoo figures are drawn from the records alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data.digits import DigitsSplit, load_digits_split
from bench.metrics import weighted
from bench.metrics.calibration import metrics_from_items
from bench.models.classifier_training import classifier_timing, predict
from bench.models.zoo_members import ZOOS, Member, cached, fit_member, names_of, zoo
from bench.registry import register
from bench.scoring import score_calibrator
from bench.store import Cell, stable_hash
from bench.tasks.base import CellResult, Task, product

PAIRED_METRICS = ("ece", "adaptive_ece", "auroc", "aurc", "nll")  # Galil's Figure 4 and more
CALIBRATORS = ("none", "temperature", "vector", "histogram", "isotonic")


@dataclass
class ZooConfig:
    zoo: str = "default"  # the member list (bench.models.zoo_members.ZOOS)
    batch_size: int = 64
    lr: float = 3e-3  # Adam (AdamW when the member has weight decay)
    valid_fraction: float = 0.2  # calibrators are fitted on this split (~360 images)
    test_fraction: float = 0.4  # and scored on this one (~720); train on the rest (~720)
    n_bins: int = 15  # ECE bins (Guo et al. 2017)
    eval_every: int = 10  # epochs between validation points of the learning curves
    teacher_width: int = 32  # the distillation teacher: a CNN with augmentation
    teacher_epochs: int = 40
    kd_temperature: float = 4.0  # Hinton et al. (2015); methods/distillation's defaults
    kd_alpha: float = 0.9
    n_boot: int = 200  # bootstrap replicates of the in-cell paired change (the SE)

    def validate(self) -> None:
        if self.zoo not in ZOOS:
            raise ValueError(f"unknown zoo {self.zoo!r}; known zoos: {', '.join(ZOOS)}")
        if min(self.batch_size, self.n_bins, self.eval_every, self.teacher_epochs) < 1:
            raise ValueError(f"invalid zoo config: {self}")
        if self.lr <= 0 or self.teacher_width < 1 or self.n_boot < 10:
            raise ValueError(f"invalid zoo config: {self}")


SCALE_CONFIGS: dict[str, dict[str, Any]] = {
    "quick": {"zoo": "quick", "teacher_epochs": 8},
    "default": {},
    "full": {},
}


def teacher_member(config: ZooConfig) -> Member:
    return Member("cnn", config.teacher_width, config.teacher_epochs, augment=True)


def paired_change(
    form: weighted.ItemForm, new: dict, old: dict, n_boot: int, seed: int
) -> list[float]:
    """[delta, se, lo, hi] of new − old over the same test items: a paired bootstrap
    (one draw of the items for both, percentile 95% interval)."""
    n = len(new["item_id"])
    weights = weighted.bootstrap_counts(np.random.default_rng(seed), n, n_boot)
    ones = np.ones((1, n))
    values = [weighted.evaluate(form, {"test": c}, np.vstack([ones, weights])) for c in (new, old)]
    assert values[0] is not None and values[1] is not None
    diff = values[0] - values[1]
    boot = diff[1:][np.isfinite(diff[1:])]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return [float(diff[0]), float(np.std(boot, ddof=1)), float(lo), float(hi)]


MEMBER_NAMES = names_of(ZOOS["default"]) + names_of(ZOOS["quick"])


@register("task", "zoo")
class ZooTask(Task):
    """≥ 40 digits classifiers x post-hoc calibrators: whom does temperature scaling harm?"""

    title = "Model zoo on digits: who is helped or harmed by temperature scaling"
    families = ("member", "calibrator")
    axes = {"member": MEMBER_NAMES}
    rows = {
        "quick": product(member=names_of(ZOOS["quick"]), calibrator=CALIBRATORS),
        "default": product(member=names_of(ZOOS["default"]), calibrator=CALIBRATORS),
        "full": product(member=names_of(ZOOS["default"]), calibrator=CALIBRATORS),
    }
    baseline = {"calibrator": "none"}
    headline = "ece"
    table_metrics = ("accuracy", "nll", "ece", "adaptive_ece", "auroc", "aurc")
    cpu_threads = 1  # small networks: one thread each, cells run in parallel with --jobs
    suite_seeds = {"quick": 1}
    suite_methods = {
        "quick": {"calibrator": ["none", "temperature"]},
        "default": {"calibrator": ["none", "temperature"]},
    }

    def config(self, scale: str) -> dict[str, object]:
        return scale_config(ZooConfig, SCALE_CONFIGS, scale)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(ZooConfig, cell.config)
        members = {m.name: m for m in zoo(config.zoo)}
        name = cell.method["member"]
        if name not in members:
            raise ValueError(f"member {name!r} is not in zoo {config.zoo!r}; see --list")
        trained = self._trained(members[name], config, ctx)
        valid = (trained["valid_logits"], trained["valid_labels"])
        test = (trained["test_logits"], trained["test_labels"])
        calibrator = cell.method["calibrator"]
        metrics, curves, timing, items = score_calibrator(
            calibrator, valid, test, trained["test_ids"], n_bins=config.n_bins
        )
        if calibrator != "none":
            _, _, _, old = score_calibrator("none", valid, test, trained["test_ids"])
            forms = weighted.classifier_forms("test", config.n_bins)
            for k, metric in enumerate(PAIRED_METRICS):
                seed = ctx.seed * 101 + k
                curves[f"paired_{metric}"] = paired_change(
                    forms[metric], items, old, config.n_boot, seed
                )
        metrics["parameters"] = float(trained["parameters"])
        curves.update(trained["curves"])
        return CellResult(metrics, curves, {**trained["timing"], **timing}, {"test": items})

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.classifier_forms("test", build_config(ZooConfig, config).n_bins)

    def metrics_from_items(self, items, config) -> dict[str, float]:
        return metrics_from_items(items["test"], n_bins=build_config(ZooConfig, config).n_bins)

    def _split(self, config: ZooConfig, seed: int) -> DigitsSplit:
        return load_digits_split(seed, config.valid_fraction, config.test_fraction)

    def _key(self, what: dict, config: ZooConfig, ctx: RunContext) -> str:
        fields = asdict(config)
        del fields["zoo"], fields["n_boot"]  # the training does not depend on them
        return stable_hash(
            what | {"seed": ctx.seed, "config": fields, "device": str(ctx.device), "amp": ctx.amp}
        )

    def _teacher(self, config: ZooConfig, ctx: RunContext) -> np.ndarray:
        """The CNN teacher's logits on the train split: trained once per seed and config."""
        teacher = teacher_member(config)
        key = self._key({"teacher": teacher.name}, config, ctx)
        path = ctx.artifact_dir(self.name) / f"teacher-{teacher.name}-seed{ctx.seed}-{key}.npz"

        def make() -> dict[str, Any]:
            split = self._split(config, ctx.seed)
            model, _ = fit_member(teacher, split, ctx, batch_size=config.batch_size, lr=config.lr)
            return {"train_logits": predict(model, split.x_train, ctx).numpy()}

        return cached(path, make)["train_logits"]

    def _trained(self, member: Member, config: ZooConfig, ctx: RunContext) -> dict:
        """Train once per (member, seed, config); later cells load the saved logits."""
        key = self._key({"member": member.name}, config, ctx)
        path = ctx.artifact_dir(self.name) / f"{member.name}-seed{ctx.seed}-{key}.npz"
        return cached(path, lambda: self._train(member, config, ctx))

    def _train(self, member: Member, config: ZooConfig, ctx: RunContext) -> dict[str, Any]:
        split = self._split(config, ctx.seed)
        teacher = torch.from_numpy(self._teacher(config, ctx)) if member.distill else None
        model, result = fit_member(
            member,
            split,
            ctx,
            teacher_logits=teacher,
            batch_size=config.batch_size,
            lr=config.lr,
            eval_every=config.eval_every,
            kd_temperature=config.kd_temperature,
            kd_alpha=config.kd_alpha,
        )
        x_test = split.x_test.to(ctx.device)
        timing = classifier_timing(model, x_test, ctx, result.timing, repeats=3)
        return {
            "valid_logits": predict(model, split.x_valid, ctx).numpy(),
            "valid_labels": split.y_valid.numpy(),
            "test_logits": predict(model, x_test, ctx).numpy(),
            "test_labels": split.y_test.numpy(),
            "test_ids": np.array([f"digit{i}" for i in np.asarray(split.id_test)]),
            "curves": result.curves,
            "timing": timing,
            "parameters": sum(p.numel() for p in model.parameters()),
        }

    def dataset_card(self, config: dict[str, object]) -> str:
        cfg = build_config(ZooConfig, config)
        sizes = self._split(cfg, 0).sizes()
        return "\n".join(
            [
                "**digits** (scikit-learn `load_digits`): 1,797 real 8x8 grey-level handwritten "
                "digits 0-9, pixels scaled to [0, 1]. Shipped with scikit-learn; no download.",
                "",
                f"- split per seed (stratified, `random_state=seed`): train {sizes['train']}, "
                f"valid {sizes['valid']} (calibrators fitted here), test {sizes['test']}",
                f"- zoo {cfg.zoo!r}: {len(ZOOS[cfg.zoo])} members "
                "(bench/models/zoo_members.py), one training per member and seed",
            ]
        )

"""Tone of voice and speaker identity on seen speakers -> accuracy, macro-F1, calibration.

The same encoder, losses and miners as the speaker task (bench.models.speech_metric),
trained with the target's labels (the embedded corpus's four prosody classes, "tone of
voice", or the speaker), on seen speakers: every speaker's utterances (all corpus splits,
English and Latvian) are divided 60/20/20 into train/valid/test by a fixed seeded
permutation (bench.data.seen_speakers). On the frozen, L2-normalised embeddings a linear
softmax classifier is fitted to the train part; the registered calibrators "none" and
"temperature" (Guo et al. 2017) are fitted on the valid logits and scored on the test
logits: accuracy, macro-F1, ECE before and after temperature scaling, NLL after. At the
default scale the valid and test utterances are their middle second (``eval_seconds``):
whole, every loss reached 100% speaker ID. With
``frontend=hf`` the encoder reads the learned weighted sum of a frozen pretrained
upstream's layers (bench.models.hf_upstream) instead of log-mel.

Per item: each test utterance's label, prediction, correctness and confidence before and
after temperature scaling, and its NLL after.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score

from bench import registry, tuning
from bench.config import build_config, scale_config
from bench.data import synthetic
from bench.data.seen_speakers import seen_speaker_splits
from bench.metrics import weighted
from bench.metrics.calibration import calibration_items, ece_from_items
from bench.metrics.retrieval import recall_at_1
from bench.models.batching import class_indices
from bench.models.hf_upstream import hf_grid, upstream_data_identity
from bench.models.linear_probe import fit_linear
from bench.models.logmel_features import FRONTENDS, InputFeatures, layer_weights
from bench.models.speaker_encoder import embed
from bench.models.speech_metric import SCALE_CONFIGS, MetricConfig, train_speech_encoder
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, RunContext, Task

TARGETS = ("tone", "speaker")
# default: valid and test utterances heard for their middle second (training on whole
# ones), so that no target saturates (whole utterances: speaker ID 100% for every loss)
PROSODY_SCALES = SCALE_CONFIGS | {"default": SCALE_CONFIGS["default"] | {"eval_seconds": 1.0}}
LOSS_PARAMS = {"proxy_nca": {"scale": 8.0}}  # Proxy-NCA++'s softmax scale (1/τ, τ ≈ 1/9)
UNTRAINED = {"loss": NONE, "miner": NONE}  # random init, no training
LOSS_ROWS = [  # quick/default: one triplet miner (the speaker task compares the miners)
    UNTRAINED,
    {"loss": "contrastive", "miner": NONE},
    {"loss": "ntxent", "miner": NONE},
    {"loss": "triplet", "miner": "semihard"},
    {"loss": "proxy_nca", "miner": NONE},
    {"loss": "proxy_anchor", "miner": NONE},
]
ALL_MINERS = [  # full: every miner of the triplet loss
    *LOSS_ROWS[:3],
    *[{"loss": "triplet", "miner": m} for m in ("all", "random", "semihard", "hardest")],
    *LOSS_ROWS[4:],
]


# equal tuning (bench.tuning), as in the speaker task: every loss gets the same random
# search over its learning rate and its own main hyper-parameter, chosen on the valid
# utterances' accuracy (the linear head fitted on train); 6 points at the default scale
TUNING = tuning.TuningSpec(
    select="valid_accuracy",
    higher_is_better=True,
    trials={"default": 6, "full": 8},
    shared=(tuning.Param("lr", 1e-4, 1e-2, log=True),),
    family="loss",
    base_params=lambda method: LOSS_PARAMS.get(method["loss"], {}),
)


def with_targets(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows for each target, the trained ones at their defaults (hp=default)."""
    return [
        {"frontend": "logmel", **r, "target": t, "hp": NONE if r == UNTRAINED else tuning.DEFAULT}
        for t in TARGETS
        for r in rows
    ]


def optional(name: str) -> str | None:
    """A grid value as a method name (None for the "no choice" value)."""
    return None if name == NONE else name


@register("task", "prosody")
class ProsodyTask(Task):
    """Tone-of-voice and speaker-ID classification on seen speakers with each loss."""

    title = "Tone of voice and speaker ID on seen speakers: accuracy, macro-F1, calibration"
    families = ("frontend", "loss", "miner", "target", tuning.COLUMN)
    axes = {"target": TARGETS, tuning.COLUMN: tuning.HP_VALUES}
    rows = {
        "quick": with_targets(LOSS_ROWS),
        "default": with_targets(LOSS_ROWS),
        "full": with_targets(ALL_MINERS),
    }
    baseline = UNTRAINED | {tuning.COLUMN: NONE}
    table_metrics = ("accuracy", "macro_f1", "ece_before", "ece_after", "nll")
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)
    tuning = TUNING

    def config(self, scale: str) -> dict:
        return scale_config(MetricConfig, PROSODY_SCALES, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        return hf_grid(super().grid(selected, scale), self.baseline, None, FRONTENDS, self.name)

    def data_identity(self, config: dict) -> Any:
        return upstream_data_identity(super().data_identity(config), config)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(MetricConfig, cell.config)
        inputs = InputFeatures(
            cell.method.get("frontend", "logmel"), config.n_mels, config.upstream, ctx
        )
        utts, feats = self._pooled(inputs, config.corpus, "clean", 0.0)
        target = cell.method["target"]
        labels, classes = class_indices(
            [u.prosody if target == "tone" else u.speaker for u in utts]
        )
        parts = seen_speaker_splits(utts)
        sub = {k: [feats[i] for i in v] for k, v in parts.items()}
        heard_utts = utts
        if (config.eval_condition, config.eval_seconds) != ("clean", 0.0):  # valid and test
            heard_utts, heard = self._pooled(
                inputs, config.corpus, config.eval_condition, config.eval_seconds
            )
            sub |= {k: [heard[i] for i in parts[k]] for k in ("valid", "test")}
        y = {k: labels[v] for k, v in parts.items()}
        model, curves, timing = train_speech_encoder(
            optional(cell.method["loss"]),
            optional(cell.method["miner"]),
            sub["train"],
            y["train"],
            config,
            ctx,
            loss_params=LOSS_PARAMS.get(cell.method["loss"]),
            valid_recall=lambda m: recall_at_1(embed(m, sub["valid"], ctx.device), y["valid"]),
            make_encoder=lambda: inputs.encoder(config.channels, config.embedding_dim),
        )
        emb = {k: embed(model, v, ctx.device) for k, v in sub.items()}
        head = fit_linear(emb["train"], y["train"], len(classes), ctx.generator())
        logits = {k: head(emb[k]) for k in ("valid", "test")}
        y_test = torch.from_numpy(y["test"])
        scored, fitted = {}, {}
        for name in ("none", "temperature"):
            calibrator = registry.build("calibrator", name)
            fitted[name] = calibrator.fit(logits["valid"], torch.from_numpy(y["valid"]))
            scored[name] = calibration_items(fitted[name](logits["test"]), y_test)
        before, after = scored["none"], scored["temperature"]
        test = {
            "item_id": np.array([heard_utts[i].id for i in parts["test"]]),
            **{k: before[k] for k in ("label", "pred", "correct")},
            "confidence_before": before["confidence"],
            "confidence_after": after["confidence"],
            "correct_after": after["correct"],
            "nll": after["nll"],
        }
        metrics = self.metrics_from_items({"test": test}, cell.config)
        metrics["temperature"] = float(fitted["temperature"].params()["temperature"])
        # what tuning selects on, never test: the head's accuracy on the valid utterances
        valid_pred = logits["valid"].argmax(1).cpu().numpy()
        metrics["valid_accuracy"] = float((valid_pred == y["valid"]).mean())
        curves["confusion"] = confusion_matrix(
            test["label"], test["pred"], labels=list(range(len(classes)))
        ).tolist()
        curves["classes"] = classes
        if (weights := layer_weights(model)) is not None:
            curves["layer_weights"] = weights
        return CellResult(metrics=metrics, curves=curves, timing=timing, items={"test": test})

    @staticmethod
    def _pooled(inputs, corpus: str, condition: str, seconds: float) -> tuple[list, list]:
        """Every split's utterances and features, in one order for every condition."""
        utts: list = []
        feats: list[torch.Tensor] = []
        for split in synthetic.SPLITS:
            u, f = inputs.split(corpus, split, condition, seconds)
            utts, feats = utts + u, feats + f
        return utts, feats

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        ece = weighted.BinnedCalibration
        return {
            "accuracy": weighted.Mean("test", weighted.column("correct"), binary=True),
            "macro_f1": weighted.MacroF1("test", "label", "pred"),
            "ece_before": ece("test", "confidence_before", "correct"),
            "ece_after": ece("test", "confidence_after", "correct_after"),
            "nll": weighted.Mean("test", weighted.column("nll")),
        }

    def metrics_from_items(self, items, config) -> dict[str, float]:
        test = items["test"]
        return {
            "accuracy": float(np.mean(test["correct"])),
            "macro_f1": float(f1_score(test["label"], test["pred"], average="macro")),
            "ece_before": ece_from_items(test["confidence_before"], test["correct"]),
            "ece_after": ece_from_items(test["confidence_after"], test["correct_after"]),
            "nll": float(np.mean(test["nll"])),
        }

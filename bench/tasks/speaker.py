"""Speaker embeddings by metric learning -> Recall@1, MAP@R, NMI and EER on unseen speakers.

In the spirit of Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020): every
loss (and, for the triplet loss, every miner) trains the same small encoder over log-mel
features with the same budget, batches and seeds. The encoder is trained on the train
speakers of the embedded corpus (English and Latvian) and evaluated on the speaker-disjoint
test speakers: retrieval (Recall@1, MAP@R), clustering (NMI of k-means) and verification
(EER over all pairs of test utterances as trials). The untrained network (same
architecture, random initialisation; loss and miner "-") is the baseline row. The curve is
Recall@1 on the valid speakers during training.

Per item: each test utterance (its speaker, the rank of its nearest same-speaker
neighbour, its AP@R, its k-means cluster) and each verification trial (score, target).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench import harness, tuning
from bench.config import build_config, scale_config
from bench.metrics import weighted
from bench.metrics.retrieval import (
    map_at_r,
    recall_at_1,
    retrieval_items,
    retrieval_metrics_from_items,
)
from bench.models.batching import class_indices
from bench.models.hf_upstream import hf_grid, upstream_data_identity
from bench.models.logmel_features import FRONTENDS, InputFeatures, layer_weights
from bench.models.speaker_encoder import embed
from bench.models.speech_metric import SCALE_CONFIGS, MetricConfig, train_speech_encoder
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import NONE, CellResult, RunContext, Task

LOSS_PARAMS = {"proxy_nca": {"scale": 8.0}}  # Proxy-NCA++'s softmax scale (1/τ, τ ≈ 1/9)
UNTRAINED = {"loss": NONE, "miner": NONE, "hp": NONE}  # random init, no training
LOSSES = [
    {"loss": "contrastive", "miner": NONE},
    {"loss": "ntxent", "miner": NONE},
    *[{"loss": "triplet", "miner": m} for m in ("all", "random", "semihard", "hardest")],
    {"loss": "proxy_nca", "miner": NONE},
    {"loss": "proxy_anchor", "miner": NONE},
]
ROWS = [{"frontend": "logmel", **UNTRAINED}] + [
    {"frontend": "logmel", **r, "hp": tuning.DEFAULT} for r in LOSSES
]
# default: 21 unseen test speakers (the "speakers" corpus) heard through noise, so that
# retrieval does not saturate (on clean whole utterances the untrained network had 96%)
SPEAKER_SCALES = SCALE_CONFIGS | {
    "default": SCALE_CONFIGS["default"] | {"corpus": "speakers", "eval_condition": "noisy"}
}
# Musgrave et al.'s protocol: every loss gets the same random search over its learning rate
# and its own main hyper-parameter (the loss's search_space), chosen on the valid speakers
TUNING = tuning.TuningSpec(
    select="valid_map_at_r",
    higher_is_better=True,
    trials={"quick": 2, "default": 8, "full": 8},
    shared=(tuning.Param("lr", 1e-4, 1e-2, log=True),),
    family="loss",
    base_params=lambda method: LOSS_PARAMS.get(method["loss"], {}),
)


def optional(name: str) -> str | None:
    """A grid value as a method name (None for the "no choice" value)."""
    return None if name == NONE else name


@register("task", "speaker")
class SpeakerTask(Task):
    """Speaker embeddings (losses x miners) -> Recall@1, MAP@R, NMI, EER on unseen speakers."""

    title = "Speaker embeddings by metric learning: retrieval and verification, unseen speakers"
    families = ("frontend", "loss", "miner", tuning.COLUMN)
    axes = {tuning.COLUMN: tuning.HP_VALUES}
    rows = {scale: ROWS for scale in SPEAKER_SCALES}
    baseline = UNTRAINED
    table_metrics = ("recall_at_1", "map_at_r", "nmi", "eer")
    suite_seeds = {"quick": 1}
    cpu_threads = 1  # small convolutions: a second thread only slows them (harness)
    tuning = TUNING

    def config(self, scale: str) -> dict:
        return scale_config(MetricConfig, SPEAKER_SCALES, scale)

    def grid(self, selected=None, scale: str = "quick") -> list[dict[str, str]]:
        return hf_grid(super().grid(selected, scale), self.baseline, None, FRONTENDS, self.name)

    def data_identity(self, config: dict) -> Any:
        return upstream_data_identity(super().data_identity(config), config)

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(MetricConfig, cell.config)
        inputs = InputFeatures(
            cell.method.get("frontend", "logmel"), config.n_mels, config.upstream, ctx
        )
        utts, feats = inputs.split(config.corpus, "train")
        labels, _ = class_indices([u.speaker for u in utts])
        heard = (config.eval_condition, config.eval_seconds)  # valid and test, not train
        v_utts, v_feats = inputs.split(config.corpus, "valid", *heard)
        v_labels = [u.speaker for u in v_utts]
        model, curves, timing = train_speech_encoder(
            optional(cell.method["loss"]),
            optional(cell.method["miner"]),
            feats,
            labels,
            config,
            ctx,
            loss_params=LOSS_PARAMS.get(cell.method["loss"]),
            valid_recall=lambda m: recall_at_1(embed(m, v_feats, ctx.device), v_labels),
            make_encoder=lambda: inputs.encoder(config.channels, config.embedding_dim),
        )
        # what tuning selects on, never test; the curve's last point is the final model's
        valid_map = map_at_r(embed(model, v_feats, ctx.device), v_labels)
        t_utts, t_feats = inputs.split(config.corpus, "test", *heard)
        t_labels = [u.speaker for u in t_utts]
        emb = embed(model, t_feats, ctx.device)
        eval_t = harness.time_fn(
            lambda: embed(model, t_feats, ctx.device), ctx.device, warmup=0, repeats=1
        )
        items = retrieval_items(emb, t_labels, [u.id for u in t_utts], seed=ctx.seed)
        metrics = self.metrics_from_items(items, cell.config)
        metrics["parameters"] = sum(p.numel() for p in model.parameters())
        metrics |= {
            "valid_recall_at_1": curves["valid_recall_at_1"][-1],
            "valid_map_at_r": valid_map,
        }
        curves["test_pca"] = pca_2d(emb)  # for the figure
        curves["test_speakers"] = t_labels
        if (weights := layer_weights(model)) is not None:
            curves["layer_weights"] = weights
        timing["eval_samples_per_s"] = len(t_feats) / (eval_t.median_ms / 1e3)
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)

    def item_forms(self, config) -> dict[str, weighted.ItemForm]:
        return weighted.retrieval_forms()

    def metrics_from_items(self, items, config) -> dict[str, float]:
        return retrieval_metrics_from_items(items)


def pca_2d(emb: np.ndarray) -> list[list[float]]:
    """The unit-normalised embeddings on their first two principal axes (4 decimals)."""
    x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return np.round(x @ vt[:2].T, 4).tolist()

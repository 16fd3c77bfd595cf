"""Speech enhancement -> PESQ (wide- and narrow-band), STOI, ESTOI, SI-SDR and their gains.

Enhancers (methods/enhancement.py) are scored on the noisy mixtures of the test speakers;
the learned ones (those with trainable parameters) are first trained on the train
speakers' mixtures (random crops) with the row's training loss. Every metric also appears
as an improvement over the noisy input (``<metric>_gain``), per utterance, so the
identity enhancer is the baseline; the per-mixture scores of the output and of the noisy
input are the cell's items. PESQ runs in a process pool; utterances on which PESQ fails
are flagged and counted (``pesq_failures``) and named in the record, never turned into
numbers.

The learned rows are tuned (bench.tuning): a random search over the learning rate, chosen on
the valid speakers' mixtures by PESQ-WB (``valid_utterances`` of them); the filters without
training keep their published settings.

The data are the embedded corpus's mixtures (six noise types, SNRs -5..15 dB), or
VoiceBank-DEMAND with ``--data voicebank=PATH`` (its train set for training, its test set
for scoring).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import torch

from bench import harness, registry, tuning
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import corpus_identity, synthetic
from bench.data.noisy_pairs import PairSet, example_index, load_pairs, test_indices
from bench.data.synthetic import SAMPLE_RATE
from bench.metrics.enhancement import (
    UtteranceScore,
    default_workers,
    enhancement_forms,
    enhancement_items,
    metrics_from_items,
    score_utterances,
)
from bench.metrics.weighted import ItemForm
from bench.models.enhance_config import SCALE_CONFIGS, EnhanceConfig
from bench.models.enhance_training import train_enhancer
from bench.models.enhancement import enhance_all
from bench.registry import register
from bench.run_lock import artifact_lock
from bench.store import Cell, stable_hash, write_atomic
from bench.tasks.base import NONE, CellResult, Items, Task, product

__all__ = ["SCALE_CONFIGS", "EnhanceConfig", "EnhanceTask", "train_enhancer"]

LOSSES = ("l1", "neg_sisdr", "mrstft")
SCORE_TEST = "score_test"  # a cell-config key only trials carry (False): no test scores
# non-learned enhancers once (nothing to train: no loss), learned ones x every training loss;
# non-learned ones do not depend on the seed, but each seed is still a cell, so every row of
# the table has the same seeds for the paired tests
ROWS = product(enhancer=("identity", "specsub", "wiener"), enh_loss=NONE, hp=NONE) + product(
    enhancer=("mask", "convtasnet"), enh_loss=LOSSES, hp=tuning.DEFAULT
)
# equal tuning (bench.tuning) of the learned enhancers: the same random search over the
# learning rate for every (enhancer, loss), chosen on the valid mixtures' PESQ-WB; 4 points
# at the default scale (a learned cell took 52-108 s: the 60-minute budget), 8 at full.
# The filters without training keep their published settings.
TUNING = tuning.TuningSpec(
    select="valid_pesq_wb",
    higher_is_better=True,
    trials={"default": 4, "full": 8},
    shared=(tuning.Param("lr", 1e-4, 3e-3, log=True),),
    trial_config={SCORE_TEST: False},  # a trial is chosen on validation: no test PESQ
)


@register("task", "enhance")
class EnhanceTask(Task):
    """Enhancers x training losses -> PESQ-WB/NB, STOI, ESTOI, SI-SDR and their gains."""

    title = "Speech enhancement: PESQ, STOI, SI-SDR on the test speakers' noisy mixtures"
    families = ("enhancer", "enh_loss", tuning.COLUMN)
    axes = {tuning.COLUMN: tuning.HP_VALUES}
    rows = {scale: ROWS for scale in SCALE_CONFIGS}
    baseline = {"enhancer": "identity", "enh_loss": NONE, tuning.COLUMN: NONE}
    tuning = TUNING
    suite_seeds = {"quick": 1, "default": 3}
    # the default suite's 60-minute budget (issue 21): every enhancer, the learned ones
    # trained with SI-SDR (Conv-TasNet's loss); the L1 and MR-STFT rows are for --methods
    suite_methods = {"default": {"enh_loss": ["neg_sisdr"]}}
    accepts_data = ("voicebank",)
    table_metrics = (
        "pesq_wb",
        "pesq_nb",
        "stoi",
        "estoi",
        "si_sdr",
        "pesq_wb_gain",
        "pesq_nb_gain",
        "stoi_gain",
        "si_sdr_gain",
        "pesq_failures",
    )

    def config(self, scale: str) -> dict:
        return scale_config(EnhanceConfig, SCALE_CONFIGS, scale)

    def data_identity(self, config: dict) -> object:
        if "voicebank" in config.get("data", {}):
            return self.dataset_card(config)
        return corpus_identity.identity(synthetic.ensure_corpus(config["corpus"]))

    def dataset_card(self, config: dict) -> str:
        if "voicebank" in config.get("data", {}):
            source = f"voicebank={config['data']['voicebank']}"
            train, test = load_pairs(source, "train"), load_pairs(source, "test")
            hours = sum(len(a) for a in train.noisy + test.noisy) / SAMPLE_RATE / 3600
            return (
                f"**VoiceBank-DEMAND** (Valentini-Botinhao et al. 2016) from "
                f"`{config['data']['voicebank']}`: {len(train.utts)} train pairs, "
                f"{len(test.utts)} test pairs, {hours:.2f} h of noisy audio at 16 kHz; scored on "
                f"{len(test_indices(test.utts, config['test_utterances']))} test pairs."
            )
        return synthetic.card(synthetic.ensure_corpus(config["corpus"]))

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        raw = dict(cell.config)
        data = raw.pop("data", {})
        score_test = raw.pop(SCORE_TEST, True)  # False in tuning trials (TUNING.trial_config)
        config = build_config(EnhanceConfig, raw)
        source = f"voicebank={data['voicebank']}" if "voicebank" in data else config.corpus
        name, loss_name = cell.method["enhancer"], cell.method["enh_loss"]
        model = registry.build("enhancer", name, sample_rate=SAMPLE_RATE).to(ctx.device)
        learned = any(p.requires_grad for p in model.parameters())
        if learned != (loss_name != NONE):
            need = "an enh_loss, not '-'" if learned else "enh_loss '-' (nothing to train)"
            raise ValueError(
                f"enhancer {name} {'is' if learned else 'is not'} learned: give it {need}"
            )
        workers = config.pesq_workers or default_workers()
        curves: dict[str, list] = {}
        timing: dict[str, float | None] = {}
        parameters = {}
        if learned:
            curves["train_loss"], timing = train_enhancer(
                model, loss_name, load_pairs(source, "train"), config, ctx
            )
            parameters["parameters"] = float(sum(p.numel() for p in model.parameters()))
            one_second = torch.zeros(1, SAMPLE_RATE, device=ctx.device)
            model.eval()
            with torch.no_grad():
                timing["flops_per_audio_second"] = harness.count_flops(lambda: model(one_second))

        # tuning selects on seed 0's valid score (its trials and default row run at seed 0);
        # VoiceBank-DEMAND has no valid split: no valid score, so its rows are not tuned
        valid = learned and config.valid_utterances and cell.seed == 0
        if valid and not source.startswith("voicebank="):
            parameters["valid_pesq_wb"] = self._valid_pesq(model, source, config, workers, ctx)
        if not score_test:  # a tuning trial: scored on validation only
            return CellResult(metrics=parameters, curves=curves, timing=timing)
        test_all = load_pairs(source, "test")
        test = test_all.subset(test_indices(test_all.utts, config.test_utterances))
        noisy_scores = self._scores(source, test, test.noisy, workers, ctx)
        enhanced, seconds = enhance_all(model, test.noisy, SAMPLE_RATE, ctx)
        timing["rtf"] = seconds / (sum(len(a) for a in test.noisy) / SAMPLE_RATE)
        timing["eval_samples_per_s"] = len(test.noisy) / seconds
        scores = self._scores(source, test, enhanced, workers, ctx)
        items = {"test": enhancement_items([u.id for u in test.utts], scores, noisy_scores)}
        curves.update(
            {
                "utt_id": [u.id for u in test.utts],
                "utt_noise_type": [u.noise_type for u in test.utts],
                "utt_snr_db": [u.snr_db for u in test.utts],
                "utt_pesq_wb": [s.pesq_wb for s in scores],
                "utt_pesq_nb": [s.pesq_nb for s in scores],
                "utt_stoi": [s.stoi for s in scores],
                "utt_si_sdr": [s.si_sdr for s in scores],
                "pesq_failed": [
                    [u.id, "; ".join(s.errors)]
                    for u, s in zip(test.utts, scores, strict=True)
                    if s.pesq_failed
                ],
                "example": [self._save_example(cell, test, enhanced, ctx)],
            }
        )
        metrics = {**parameters, **self.metrics_from_items(items, cell.config)}
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)

    @staticmethod
    def _valid_pesq(model, source: str, config: EnhanceConfig, workers: int, ctx) -> float:
        """Mean PESQ-WB of the trained model on the embedded corpus's valid mixtures (the
        valid speakers'): what tuning selects on, never the test set."""
        pairs = load_pairs(source, "valid")
        valid = pairs.subset(test_indices(pairs.utts, config.valid_utterances))
        enhanced, _ = enhance_all(model, valid.noisy, SAMPLE_RATE, ctx)
        scores = score_utterances(valid.clean, enhanced, SAMPLE_RATE, workers)
        return float(np.nanmean([s.pesq_wb for s in scores]))

    def item_forms(self, config: dict) -> dict[str, ItemForm]:
        return enhancement_forms()

    def metrics_from_items(self, items: Items, config: dict) -> dict[str, float]:
        return metrics_from_items(items["test"])

    def _scores(
        self, source: str, test: PairSet, estimates: list[np.ndarray], workers: int, ctx
    ) -> list[UtteranceScore]:
        """Scores of ``estimates`` against the test set's clean speech, computed once per run
        folder for the same audio: keyed by the estimates' bytes, so the noisy input, the
        identity's output and a filter's output at every seed (no training, the same
        output) are scored once."""
        digest = hashlib.sha256()
        for estimate in estimates:
            digest.update(np.ascontiguousarray(estimate, dtype=np.float32).tobytes())
        ids = [u.id for u in test.utts]
        key = stable_hash({"source": str(source), "ids": ids, "audio": digest.hexdigest()})
        path = ctx.artifact_dir(self.name) / f"scores-{key}.json"
        with artifact_lock(path):  # a parallel cell with the same audio waits, then reads
            if path.exists():
                return [
                    UtteranceScore(**{**d, "errors": tuple(d["errors"])})
                    for d in json.loads(path.read_text())
                ]
            scores = score_utterances(test.clean, estimates, SAMPLE_RATE, workers)
            write_atomic(path, json.dumps([asdict(s) for s in scores]))
            return scores

    def _save_example(
        self, cell: Cell, test: PairSet, enhanced: list[np.ndarray], ctx: RunContext
    ) -> str:
        """Clean / noisy / enhanced audio of one test utterance for the spectrogram panels
        (saved in the run folder; the record holds its path relative to the run)."""
        k = example_index(test.utts)
        label = "-".join(f"{v}" for v in cell.method.values())
        path = ctx.artifact_dir(self.name) / f"example-{label}-seed{cell.seed}.npz"
        np.savez_compressed(
            path, clean=test.clean[k], noisy=test.noisy[k], enhanced=enhanced[k], id=test.utts[k].id
        )
        return str(path.relative_to(ctx.run_dir))

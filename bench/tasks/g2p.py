"""Grapheme-to-phoneme on CMUdict: how the decoder is trained -> PER and WER.

A character encoder (BiGRU) with a GRU or a Transformer attention decoder (the ``arch``
axis) is trained from scratch on CMUdict words with each forcing strategy of
``methods.forcing`` (teacher forcing, scheduled sampling with three schedules, professor
forcing, and word- and sequence-level knowledge distillation from a wider teacher),
decoded greedily and with beam search, and scored per word against its several
pronunciations (``bench.metrics.g2p``: right if it matches any, PER against the closest);
the error rate by output position shows exposure bias.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import numpy as np

from bench import harness, registry, tuning
from bench.config import build_config, scale_config
from bench.context import RunContext
from bench.data import cmudict_g2p
from bench.metrics.g2p import g2p_forms, rates_from_columns, score_words
from bench.metrics.weighted import ItemForm
from bench.models import g2p_teacher
from bench.models.g2p import Seq2Seq, Vocab, decode_words
from bench.models.g2p_config import SCALE_CONFIGS, G2PConfig
from bench.models.g2p_training import train_g2p
from bench.registry import register
from bench.store import Cell
from bench.tasks.base import CellResult, Items, Task
from methods.forcing import ForcingStrategy

ARCHS = ("gru", "transformer")
FORCING = (
    "teacher",
    "scheduled_linear",
    "scheduled_exponential",
    "scheduled_inverse_sigmoid",
    "professor",
    "word_kd",
    "sequence_kd",
)


ROWS = [{"forcing": f, "arch": a, "hp": tuning.DEFAULT} for a in ARCHS for f in FORCING]
# quick: no distillation rows (a teacher, twice as wide, twice the updates, beam outputs for
# every training word, costs about as much as five quick cells), and the Transformer's
# schedules by inverse sigmoid only (the same two-pass code path as the other two): the
# task's 2-minute quick budget (146 s with all ten rows)
SAME_PATH = ("scheduled_linear", "scheduled_exponential")
QUICK_ROWS = [
    r
    for r in ROWS
    if not r["forcing"].endswith("_kd")
    and not (r["arch"] == "transformer" and r["forcing"] in SAME_PATH)
]
# default: every strategy on the GRU, the Transformer with teacher forcing only (issue 21's
# 60-minute budget: its other rows cost 19 min of cell time, word_kd alone 10 min a cell,
# mostly beam search over 2,000 test and 18,000 teacher words); `full` runs every row
DEFAULT_ROWS = [r for r in ROWS if r["arch"] == "gru" or r["forcing"] == "teacher"]
# the default suite: the strategies of finding 4 (Bengio: teacher forcing against inverse-
# sigmoid scheduled sampling) and professor forcing, each tuned; the other schedules and
# the distillation rows are there for --methods and the sweeps
SUITE_FORCING = ["teacher", "scheduled_inverse_sigmoid", "professor"]
# equal tuning (bench.tuning) of the forcing comparison on the GRU at the default scale:
# learning rate and each strategy's own constant (scheduled sampling's final teacher
# probability, professor forcing's loss weight), chosen on the valid words' greedy PER; the
# Transformer and distillation rows run at their defaults (budget)
TUNING = tuning.TuningSpec(
    select="dev_per_greedy",
    higher_is_better=False,
    trials={"default": 6, "full": 8},  # default: 6 points (the 60-minute budget)
    shared=(tuning.Param("lr", 3e-4, 1e-2, log=True),),
    family="forcing",
    params_key="forcing_params",
    tunable=lambda m: m["arch"] == "gru" and not m["forcing"].endswith("_kd"),
    base_params=lambda m: {"adversarial_weight": 0.1} if m["forcing"] == "professor" else {},
)


@register("task", "g2p")
class G2PTask(Task):
    """CMUdict G2P, forcing strategy x decoder architecture -> PER and WER."""

    title = "Grapheme-to-phoneme on CMUdict: decoder training strategies (PER and WER)"
    families = ("forcing", "arch", tuning.COLUMN)
    axes = {"arch": ARCHS, tuning.COLUMN: tuning.HP_VALUES}
    tuning = TUNING
    rows = {"quick": QUICK_ROWS, "default": DEFAULT_ROWS, "full": ROWS}
    baseline = {"forcing": "teacher"}
    suite_seeds = {"quick": 1}
    suite_methods = {"default": {"forcing": SUITE_FORCING}}
    table_metrics = (
        "test_per_greedy",
        "test_wer_greedy",
        "test_per_beam",
        "test_wer_beam",
        "dev_per_greedy",
        "teacher_per_beam",  # the KD rows' teacher: the ceiling (informational)
    )

    def config(self, scale: str) -> dict:
        return scale_config(G2PConfig, SCALE_CONFIGS, scale)

    def dataset_card(self, config: dict) -> str:
        cfg = build_config(G2PConfig, config)
        return cmudict_g2p.card(self._data(cfg), cfg.keep_stress, cfg.split_seed)

    @staticmethod
    def _data(cfg: G2PConfig) -> cmudict_g2p.G2PData:
        return cmudict_g2p.load(
            cfg.words, cfg.split_seed, cfg.valid_fraction, cfg.test_fraction, cfg.keep_stress
        )

    def run(self, cell: Cell, ctx: RunContext) -> CellResult:
        config = build_config(G2PConfig, cell.config)
        with harness.torch_threads(config.threads):
            return self._run(cell, config, ctx)

    def _run(self, cell: Cell, config: G2PConfig, ctx: RunContext) -> CellResult:
        data = self._data(config)
        vocabs = graphemes, phonemes = Vocab(data.graphemes), Vocab(data.phonemes)
        model = Seq2Seq(len(graphemes), len(phonemes), config.model(cell.method["arch"]))
        model = model.to(ctx.device)
        teachers: list[g2p_teacher.Teacher] = []  # filled if the strategy asks for one

        def teacher() -> g2p_teacher.Teacher:
            teachers.append(self._teacher(cell.method["arch"], config, data, vocabs, ctx))
            return teachers[-1]

        strategy = self._strategy(cell.method["forcing"], config, teacher).to(ctx.device)
        train = strategy.train_pairs(data.train)
        curves, timing, dev = train_g2p(model, strategy, train, data.valid, vocabs, config, ctx)
        words, refs = [w for w, _ in data.test], [p for _, p in data.test]
        t0 = time.perf_counter()
        greedy = decode_words(model, words, graphemes, phonemes, ctx.device)
        t1 = time.perf_counter()
        beam = decode_words(model, words, graphemes, phonemes, ctx.device, config.beam_width)
        t2 = time.perf_counter()
        g = score_words(refs, greedy, config.max_position)
        b = score_words(refs, beam, config.max_position)
        test = {"item_id": np.array(words), **g.columns("greedy"), **b.columns("beam")}
        items = {"test": test, "dev": dev}
        for t in teachers:  # the ceiling: the teacher's own test outputs, as items
            tg, tb = score_words(refs, t.test_greedy), score_words(refs, t.test_beam)
            items["teacher"] = {"item_id": test["item_id"], **tg.columns("greedy")}
            items["teacher"].update(tb.columns("beam"))
            curves.update(t.curves)
            timing["teacher_train_s"] = t.train_seconds
        metrics = self.metrics_from_items(items, cell.config)
        metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
        curves.update(
            position_error=g.position_error,
            position_count=g.position_count,
            position_error_beam=b.position_error,
            examples=[
                [w, " ".join(h), " ".join(r[0])]
                for w, h, r in zip(words[:5], greedy, refs, strict=False)
            ],
        )
        timing.update(
            decode_greedy_words_per_s=len(words) / (t1 - t0),
            decode_beam_words_per_s=len(words) / (t2 - t1),
        )
        return CellResult(metrics=metrics, curves=curves, timing=timing, items=items)

    @staticmethod
    def _strategy(name: str, config: G2PConfig, teacher) -> ForcingStrategy:
        params = dict(config.forcing_params)
        weight = params.pop("adversarial_weight", config.professor_weight)  # context
        return registry.build(
            "forcing",
            name,
            params=params,
            total_steps=config.steps,
            hidden_dim=config.hidden,
            adversarial_weight=weight,
            teacher=teacher,
        )

    def _teacher(self, arch: str, config: G2PConfig, data, vocabs, ctx) -> g2p_teacher.Teacher:
        """The KD teacher of (arch, seed, config), trained once and cached in the run folder."""
        settings = replace(config, steps=config.teacher_steps or 2 * config.steps)
        key = {
            k: v
            for k, v in asdict(settings).items()
            if k not in ("professor_weight", "forcing_params")
        }
        return g2p_teacher.load_or_train(
            g2p_teacher.teacher_model_config(config.model(arch), config.teacher_hidden),
            self._strategy("teacher", settings, None),
            settings,
            config.beam_width,
            data,
            vocabs,
            ctx,
            key,
        )

    def item_forms(self, config: dict) -> dict[str, ItemForm]:
        return g2p_forms()

    def metrics_from_items(self, items: Items, config: dict) -> dict[str, float]:
        """PER and WER of each decoder on test, the greedy PER on the valid words, and the
        test PER and WER of the distillation teacher when the cell has one."""
        test_greedy, test_beam = (rates_from_columns(items["test"], d) for d in ("greedy", "beam"))
        teacher: dict[str, float] = {}
        for d in ("greedy", "beam") if "teacher" in items else ():
            rates = rates_from_columns(items["teacher"], d)
            teacher |= {f"teacher_per_{d}": rates[0], f"teacher_wer_{d}": rates[1]}
        return teacher | {
            "test_per_greedy": test_greedy[0],
            "test_wer_greedy": test_greedy[1],
            "test_per_beam": test_beam[0],
            "test_wer_beam": test_beam[1],
            "dev_per_greedy": rates_from_columns(items["dev"], "greedy")[0],
        }

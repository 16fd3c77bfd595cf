"""Published results the suite can test, as data, and their verdicts on a run folder.

Each ``Finding`` names a paper's claim, the paper's number (context only: the suite's data,
models and scale differ), the task, the metric, the rows compared and the direction the
paper predicts. ``evaluate`` turns it into a ``Result`` with the statistics the report
already uses (``bench.report.item_stats``: paired bootstrap / McNemar over test items;
``bench.report.stats``: t-test over seeds, Holm; ``bench.report.zoo_figures``: harm per
zoo member): the effect in display units, its 95% interval, p, n, and a verdict:
reproduced (significant, p < 0.05, in the predicted direction), contradicted (significant
in the other direction) or inconclusive, with the smallest effect the comparison detects
at 80% power. A finding whose task or rows are not in the run is "not run", with the
command that runs them. The checks per kind of finding are in ``finding_checks``
(comparisons of rows) and ``finding_curves`` (from the records' curves).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.report.templating import MD_ENV

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = (
    "reproduced",
    "contradicted",
    "inconclusive",
    "not run",
)
ALPHA = 0.05
CLOSE_POINTS = 1.0  # Musgrave: "close" = the best−worst loss interval within ±1 point


@dataclass(frozen=True)
class Finding:
    """One published result as data.

    ``kind`` says how it is evaluated (``finding_checks.CHECKS``): "paired" compares the
    ``new`` rows with the ``old`` rows on ``metric`` (a tuple of values is a set of
    candidates, of which the best by the mean is taken; "<lowest>"/"<highest>" is the
    smallest/largest value of that axis in the run); ``expected`` is the predicted sign of
    new − old in the metric's own units (−1: lower, +1: higher)."""

    id: str
    paper: str
    claim: str
    paper_number: str
    task: str
    metric: str
    kind: str
    new: Mapping[str, str | tuple[str, ...]]
    old: Mapping[str, str | tuple[str, ...]]
    expected: int
    command: str
    note: str = ""  # always shown under the table (e.g. what the suite does not test)


DEFAULT = "python run_all.py --suite default"
METRIC_LOSSES = ("contrastive", "ntxent", "triplet", "proxy_nca", "proxy_anchor")

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "1",
        "Guo et al. 2017",
        "Temperature scaling lowers the ECE of an overconfident classifier.",
        "ResNet-110 on CIFAR-100: ECE 16.53% uncalibrated, 1.26% after temperature "
        "scaling (Table 1)",
        "calibration",
        "ece",
        "paired",
        {"classifier": "cnn", "calibrator": "temperature"},
        {"classifier": "cnn", "calibrator": "none"},
        -1,
        f"{DEFAULT} --tasks calibration --methods classifier=cnn",
    ),
    Finding(
        "2",
        "Galil et al. 2023",
        "Temperature scaling sometimes harms ECE or selective-prediction AUROC.",
        "Over 523 ImageNet classifiers, temperature scaling improved most but harmed the "
        "ranking (AUROC) of a sizeable share (qualitative; their Fig. 4)",
        "zoo",
        "ece, auroc",
        "harm",
        {"calibrator": "temperature"},
        {"calibrator": "none"},
        +1,
        f"{DEFAULT} --tasks zoo",
        "effect: share of zoo members harmed on ECE or AUROC (Wilson 95% interval); "
        "reproduced when at least one member is significantly harmed after Holm over the "
        "(member, metric) pairs; contradicted when every pair improves significantly",
    ),
    Finding(
        "3a",
        "Baevski et al. 2020 (wav2vec 2.0)",
        "Pre-training lowers the fine-tuned error when few labels are available.",
        "10 min of labels: 4.8/8.2 WER on LibriSpeech test-clean/other (abstract)",
        "ssl_phoneme",
        "test_per",
        "paired",
        {"frontend": "wav2vec", "quantizer": "gumbel", "objective": "contrastive"}
        | {"labeled": "<lowest>"},
        {"frontend": "wav2vec_random", "labeled": "<lowest>"},
        -1,
        f"{DEFAULT} --tasks ssl_phoneme",
        "wav2vec 2.0 (Gumbel quantizer, contrastive) against the same network from random "
        "weights, both fine-tuned on the smallest labeled subset",
    ),
    Finding(
        "3b",
        "Baevski et al. 2020 (wav2vec 2.0)",
        "The gain from pre-training shrinks as labels grow.",
        "all 960 h of labels: 1.8/3.3 WER (abstract), a smaller margin over supervised "
        "training than at 10 min (qualitative)",
        "ssl_phoneme",
        "test_per",
        "interaction",
        {"frontend": "wav2vec", "quantizer": "gumbel", "objective": "contrastive"},
        {"frontend": "wav2vec_random"},
        +1,
        f"{DEFAULT} --tasks ssl_phoneme",
        "effect: gain(smallest labeled) − gain(largest labeled), gain = PER(random init) − "
        "PER(pre-trained); > 0 is the predicted shrinkage",
    ),
    Finding(
        "4",
        "Bengio et al. 2015",
        "Scheduled sampling lowers errors at later output positions against teacher forcing.",
        "Gains on captioning, parsing and speech recognition, attributed to errors that "
        "accumulate along the output (qualitative)",
        "g2p",
        "position_error",
        "positions",
        {"forcing": "scheduled_inverse_sigmoid", "arch": "gru", "hp": "tuned"},
        {"forcing": "teacher", "arch": "gru", "hp": "tuned"},
        -1,
        f"{DEFAULT} --tasks g2p --methods "
        "forcing=teacher,forcing=scheduled_inverse_sigmoid,arch=gru",
        "the hp=tuned rows: both strategies chose their learning rate (and the schedule its "
        "final teacher probability) by the same random search on the valid words; effect: "
        "phoneme error rate over the later half of reference positions (greedy decoding), "
        "paired t-test over seeds (the items hold no positions)",
    ),
    Finding(
        "5a",
        "VoiceBank-DEMAND tables (Pascual et al. 2017; Défossez et al. 2020)",
        "A learned enhancer raises PESQ over the noisy input.",
        "SEGAN Table 1: PESQ noisy 1.97, SEGAN 2.16",
        "enhance",
        "pesq_wb",
        "paired",
        {"enhancer": ("convtasnet", "mask")},
        {"enhancer": "identity"},
        +1,
        f"{DEFAULT} --tasks enhance",
        "the best learned enhancer by mean PESQ (chosen on test: an optimistic pick)",
    ),
    Finding(
        "5b",
        "VoiceBank-DEMAND tables (Pascual et al. 2017; Défossez et al. 2020)",
        "A learned enhancer beats classical filters on PESQ.",
        "SEGAN Table 1: Wiener 2.22 vs SEGAN 2.16 (the classical filter ahead); later "
        "learned models reach about 3 (DEMUCS)",
        "enhance",
        "pesq_wb",
        "paired",
        {"enhancer": ("convtasnet", "mask")},
        {"enhancer": ("wiener", "specsub")},
        +1,
        f"{DEFAULT} --tasks enhance",
        "best learned enhancer against the best classical filter, both by mean PESQ",
    ),
    Finding(
        "6a",
        "Musgrave et al. 2020",
        "Under equal tuning, metric-learning losses are close.",
        "With the same tuning budget, the post-2017 losses were within a few points of the "
        "contrastive and triplet losses (qualitative)",
        "speaker",
        "recall_at_1",
        "spread",
        {"loss": METRIC_LOSSES, "hp": "tuned"},
        {},
        0,
        f"{DEFAULT} --tasks speaker",
        "the hp=tuned rows: each loss chose its learning rate and its own main "
        "hyper-parameter by the same random search on the valid speakers (bench.tuning), "
        "then ran every seed. Close: no pair differs after Holm and the best − worst "
        f"interval lies within ±{CLOSE_POINTS:g} point",
    ),
    Finding(
        "6b",
        "Musgrave et al. 2020",
        "Under equal tuning, metric-learning losses are close.",
        "as 6a",
        "digits_metric",
        "map_at_r",
        "spread",
        {"loss": METRIC_LOSSES},
        {},
        0,
        f"{DEFAULT} --tasks digits_metric",
        "as 6a, but at the suite defaults (this task does not tune: a finding about "
        "defaults), on MAP@R: Recall@1 is at its ceiling on the pooled features",
    ),
    Finding(
        "7",
        "Movshovitz-Attias et al. 2017; Kim et al. 2020",
        "Proxy losses converge in fewer updates than pair and triplet losses.",
        "Proxy-NCA converged three times as fast as triplet-based losses (abstract)",
        "speaker",
        "updates to 90% of final valid Recall@1",
        "convergence",
        {"loss": ("proxy_nca", "proxy_anchor"), "hp": "default"},
        {"loss": ("contrastive", "ntxent", "triplet"), "hp": "default"},
        -1,
        f"{DEFAULT} --tasks speaker",
        "effect: mean updates of the proxy losses − mean of the pair losses, per seed; the "
        "curve is evaluated every eval_every updates, its resolution",
    ),
)


@dataclass
class Result:
    """A finding's outcome on one run; numbers in display units (``unit``)."""

    finding: Finding
    verdict: str
    effect: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    p: float = math.nan
    n: str = ""  # e.g. "3 seeds × 1077 items"
    mde: float = math.nan  # smallest detectable effect (80% power), display units
    unit: str = ""
    test: str = ""  # which test gave p
    notes: list[str] = field(default_factory=list)
    mde_unit: str | None = None  # the detectable effect's unit when not ``unit``

    def effect_text(self) -> str:
        if self.verdict == NOT_RUN or not math.isfinite(self.effect):
            return "—"
        unit = f" {self.unit}" if self.unit else ""
        if self.unit == "share":
            return f"{100 * self.effect:.0f}% [{100 * self.lo:.0f}, {100 * self.hi:.0f}]"
        if not math.isfinite(self.lo):
            return f"{_num(self.effect)}{unit}"
        return f"{_num(self.effect)}{unit} [{_num(self.lo)}, {_num(self.hi)}]"

    def p_text(self) -> str:
        if not math.isfinite(self.p):
            return "—"
        return "< 0.001" if self.p < 0.001 else f"{self.p:.3f}"

    def verdict_text(self) -> str:
        if self.verdict == INCONCLUSIVE and math.isfinite(self.mde):
            mde_unit = self.unit if self.mde_unit is None else self.mde_unit
            unit = f" {mde_unit}" if mde_unit else ""
            return f"inconclusive (detectable: {_num(self.mde)}{unit})"
        return self.verdict

    def note_text(self) -> str:
        parts = [self.test] if self.test else []
        parts += self.notes
        if self.finding.note:
            parts.append(self.finding.note)
        if self.verdict == NOT_RUN:
            parts.append(f"run it: `{self.finding.command}`")
        return "; ".join(parts)


def _num(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    digits = max(0, min(3, 2 - math.floor(math.log10(abs(value))))) if value else 2
    return f"{value:.{digits}f}"


def verdict_of(effect: float, p: float, expected: int) -> str:
    """Reproduced / contradicted when p < α in / against the expected sign of the effect."""
    if not (math.isfinite(p) and math.isfinite(effect)) or p >= ALPHA or effect == 0:
        return INCONCLUSIVE
    return REPRODUCED if (effect > 0) == (expected > 0) else CONTRADICTED


INTRO = (
    "Published results this run can test. The paper's number is context, not a target: "
    "the suite's data, models and scale differ. Effect: the suite's difference in the "
    "paper's direction of comparison, with its 95% interval; p: two-sided, from the paired "
    "test over test items (bootstrap, McNemar for accuracies) where the cells wrote items, "
    f"else the paired t-test over seeds. Reproduced: p < {ALPHA} in the predicted "
    "direction; contradicted: p < 0.05 against it; inconclusive: neither, with the "
    "smallest effect the comparison detects at 80% power. At the quick scale most "
    "findings are inconclusive or not run."
)
HEAD = ["#", "finding", "paper's number", "suite's effect [95% CI]", "p", "n", "verdict"]


def rows(results: list[Result]) -> list[list[str]]:
    return [
        [
            r.finding.id,
            f"{r.finding.claim} ({r.finding.paper}; `{r.finding.task}`, {r.finding.metric})",
            r.finding.paper_number,
            r.effect_text(),
            r.p_text(),
            r.n or "—",
            r.verdict_text(),
        ]
        for r in results
    ]


def findings_markdown(results: list[Result]) -> list[str]:
    """The Findings section of report.md (also what ``run_all.py findings`` prints)."""
    if not results:
        return []
    text = MD_ENV.get_template("findings.md.j2").render(
        intro=INTRO,
        head=HEAD,
        rows=rows(results),
        notes=[(r.finding.id, r.note_text()) for r in results],
    )
    return text.splitlines()

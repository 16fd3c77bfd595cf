"""The tuning trials of a task (bench.tuning) as a plain table: every searched point of
every tuned row, its validation score, and which one the tuned row runs with."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import tuning
from bench.metrics import spec
from bench.report.finding_checks import RunData, compare
from bench.report.stats import holm
from bench.report.tables import display_label, fmt, header
from bench.store import Record


@dataclass
class TuningTable:
    intro: str = ""
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    # what tuning bought: each tuned row against the same row at its defaults, on test
    gains_intro: str = ""
    gains_head: list[str] = field(default_factory=list)
    gains: list[list[str]] = field(default_factory=list)


def tuning_table(task, records: list[Record], run: RunData | None = None) -> TuningTable:
    """The trials of ``task`` among ``records`` (empty when the task does not tune), and,
    with ``run`` (the run's rows and items, as the findings read them), each tuned row's
    gain over its defaults."""
    search = task.tuning
    picks = tuning.choices(task, records)
    if search is None or not picks:
        return TuningTable()
    rows = []
    for choice in picks:
        label = display_label(choice.method)
        for i, (hp, score, point) in enumerate(choice.trials):
            values = [point.get(p.name) for p in search.shared]
            own = ", ".join(
                f"{k}={'default' if v is None else f'{v:.4g}'}"
                for k, v in point.get(search.params_key, {}).items()
            )
            rows.append(
                [label, hp]
                + ["default" if v is None else f"{v:.4g}" for v in values]
                + [own or "–", fmt(search.select, score), "✓" if i == choice.best else ""]
            )
    n = max(len(c.trials) for c in picks)
    name, unit, _ = header(search.select)
    intro = (
        f"Every trained row had the same budget: {n} points (its defaults and {n - 1} drawn "
        f"at random from its search space), one seed each, scored by {name} on validation "
        "(never on test); ✓ marks the point its `hp=tuned` row reruns at every seed."
    )
    score_head = f"{name} ({unit})" if unit else name
    head = [
        "row",
        "trial",
        *(p.name for p in search.shared),
        "method parameters",
        score_head,
        "chosen",
    ]
    table = TuningTable(intro, head, rows)
    if run is not None:
        _add_gains(table, task, run)
    return table


def _add_gains(table: TuningTable, task, run: RunData) -> None:
    """Tuned − default per row on the task's headline metric (paired over test items where
    both wrote them, else over seeds), Holm over the rows."""
    metric = task.headline or task.table_metrics[0]
    found = []
    for key, tuned in run.methods(task.name, {tuning.COLUMN: tuning.TUNED}).items():
        row = {k: v for k, v in key if k != tuning.COLUMN}
        default = run.methods(task.name, {**row, tuning.COLUMN: tuning.DEFAULT})
        stat = (
            compare(run, task.name, metric, tuned, next(iter(default.values())))
            if default
            else None
        )
        if stat is not None:
            found.append((display_label(row), stat))
    if not found:
        return
    declared = spec(metric)
    scale = declared.scale if declared else 1.0
    adjusted = holm([st.p for _, st in found])
    name, unit, arrow = header(metric)
    table.gains_head = [
        "row",
        f"Δ {name} ({unit}) {arrow}".replace(" ()", ""),
        "95% CI",
        "p (Holm)",
        "test",
    ]
    table.gains = [
        [
            label,
            f"{st.effect * scale:+.2f}",
            f"[{st.lo * scale:.2f}, {st.hi * scale:.2f}]",
            "< 0.001" if p < 0.001 else f"{p:.3f}",
            f"{st.test}, {st.n}",
        ]
        for (label, st), p in zip(found, adjusted, strict=True)
    ]
    table.gains_intro = (
        f"What tuning bought: each `hp=tuned` row minus the same row at its defaults on test "
        f"{name}, with its 95% interval and p (Holm over these rows). The choice was made on "
        "validation, so this is an honest estimate of the search's gain."
    )

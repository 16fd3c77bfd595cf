"""The tuning trials of a task (bench.tuning) as a plain table: every searched point of
every tuned row, its validation score, and which one the tuned row runs with."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import tuning
from bench.report.tables import display_label, fmt, header
from bench.store import Record


@dataclass
class TuningTable:
    intro: str = ""
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def tuning_table(task, records: list[Record]) -> TuningTable:
    """The trials of ``task`` among ``records`` (empty when the task does not tune)."""
    spec = task.tuning
    picks = tuning.choices(task, records)
    if spec is None or not picks:
        return TuningTable()
    rows = []
    for choice in picks:
        label = display_label(choice.method)
        for i, (hp, score, point) in enumerate(choice.trials):
            values = [point.get(p.name) for p in spec.shared]
            own = ", ".join(
                f"{k}={'default' if v is None else f'{v:.4g}'}"
                for k, v in point.get(spec.params_key, {}).items()
            )
            rows.append(
                [label, hp]
                + ["default" if v is None else f"{v:.4g}" for v in values]
                + [own or "–", fmt(spec.select, score), "✓" if i == choice.best else ""]
            )
    n = max(len(c.trials) for c in picks)
    name, unit, _ = header(spec.select)
    intro = (
        f"Every trained row had the same budget: {n} points (its defaults and {n - 1} drawn "
        f"at random from its search space), one seed each, scored by {name} on validation "
        "(never on test); ✓ marks the point its `hp=tuned` row reruns at every seed."
    )
    score_head = f"{name} ({unit})" if unit else name
    head = [
        "row",
        "trial",
        *(p.name for p in spec.shared),
        "method parameters",
        score_head,
        "chosen",
    ]
    return TuningTable(intro, head, rows)

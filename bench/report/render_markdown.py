"""report.md: tables as GitHub Markdown, figures linked as PNG."""

from __future__ import annotations

from bench.report.baseline_tests import power_line, tests_markdown
from bench.report.model import ReportData, TaskSection
from bench.report.summary import summary_markdown
from bench.report.tables import DETERMINISTIC, SIGNIFICANCE, fmt, fmt_entry, header

LEGEND = (
    "Values are mean ± half-width of the Student-t 95% interval of the mean over the n seeds "
    "of the row (the spread due to training), then [± half-width of the 95% bootstrap "
    "interval over the test items, pooled across the seeds] (the spread due to the finite "
    f"test set); {DETERMINISTIC} marks a cell whose value is identical on every seed (it does "
    "not depend on the seed: no seed interval, no t-test); **bold** is the best mean per "
    "column among rows that share a baseline. A difference from the baseline row is marked "
    f"when significant at p < {SIGNIFICANCE} after Holm's correction over the rows of the "
    "column: † by the paired test over test items pooled across seeds (bootstrap; McNemar "
    "for accuracies), a statement about these trained models on this test set; ‡ by the "
    "paired t-test over seeds, a statement about the training procedure. With few seeds "
    "the second is rare: see the detectable differences below."
)


def column_title(metric: str) -> str:
    name, unit, arrow = header(metric)
    return f"{name} ({unit}) {arrow}" if unit else f"{name} {arrow}".strip()


def table_markdown(section: TaskSection) -> list[str]:
    t = section.table
    lines = [
        "| method | n | " + " | ".join(column_title(m) for m in t.metrics) + " |",
        "|---|---:|" + "---:|" * len(t.metrics),
    ]
    for row in t.rows:
        cells = []
        for m in t.metrics:
            e = row.entries.get(m)
            if e is None:
                cells.append("")
                continue
            text = fmt_entry(m, e) + (f" {e.marks}" if e.marks else "")
            cells.append(f"**{text}**" if e.best else text)
        label = row.label + (" (baseline)" if row.is_baseline and t.baseline_note else "")
        lines.append(f"| {label} | {len(row.seeds)} | " + " | ".join(cells) + " |")
    return lines


def timing_markdown(section: TaskSection) -> list[str]:
    keys = sorted({k for _, vals in section.timing for k in vals})
    if not keys:
        return []
    lines = [
        "| method | " + " | ".join(column_title(k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label, vals in section.timing:
        lines.append(
            f"| {label} | " + " | ".join(fmt(k, vals[k]) if k in vals else "" for k in keys) + " |"
        )
    return lines


def render_markdown(data: ReportData) -> str:
    env = data.env
    out = [
        f"# speechbench report: {data.run_id}",
        "",
        f"{data.n_ok} cells ok, {data.n_failed} failed. "
        f"Commit `{env.get('git_commit')}`, torch {env.get('torch')}, device {env.get('device')} "
        f"({env.get('gpu') or env.get('cpu')}, {env.get('torch_threads')} threads).",
        "",
    ]
    out += summary_markdown(data)
    for section in data.sections:
        out += [
            f"## {section.table.title}",
            "",
            f"Task `{section.name}`, seeds {section.seeds}. {section.table.baseline_note}",
            "",
        ]
        out += table_markdown(section) + ["", LEGEND, ""]
        power = power_line(section.table)
        if power:
            out += [power, ""]
        tests = tests_markdown(section.table)
        if tests:
            out += ["### Tests against the baseline", ""] + tests + [""]
        out += [f"- {note}" for note in section.table.notes] + [""] * bool(section.table.notes)
        timing = timing_markdown(section)
        if timing:
            out += ["### Speed (median over seeds)", ""] + timing + [""]
        for fig in section.figures:
            out += [f"![{fig.caption}](figures/{fig.stem}.png)", "", f"*{fig.caption}*", ""]
            if fig.text:
                out += [fig.text, ""]
        if section.failed:
            out += ["### Failed cells", ""]
            for rec in section.failed:
                first = (rec.error or "").splitlines()[0] if rec.error else ""
                out.append(
                    f"- {', '.join(f'{k}={v}' for k, v in rec.method.items())} "
                    f"seed {rec.seed}: `{first}`"
                )
            out.append("")
        if section.dataset_card:
            out += ["### Dataset card", "", section.dataset_card, ""]
    return "\n".join(out)

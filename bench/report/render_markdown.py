"""report.md: tables as GitHub Markdown, figures linked as PNG."""

from __future__ import annotations

from bench.report.baseline_tests import power_line, tests_markdown
from bench.report.findings import findings_markdown
from bench.report.model import ReportData, TaskSection, table_view
from bench.report.summary import summary_markdown
from bench.report.tables import DETERMINISTIC, SIGNIFICANCE, fmt, header
from bench.report.templating import MD_ENV, pipe_table

LEGEND = (
    "Values are mean ± half-width of the Student-t 95% interval of the mean over the n seeds "
    "of the row (the spread due to training), then [± half-width of the 95% bootstrap "
    "interval over the test items, pooled across the seeds] (the spread due to the finite "
    f"test set); {DETERMINISTIC} marks a cell whose value is identical on every seed (it does "
    "not depend on the seed: no seed interval, no t-test); **bold** is the best mean per "
    "column among rows that share a baseline, and every mean tied with it (equal at the "
    "printed precision, or no paired two-sided test available, over items or over seeds, "
    f"tells it from the best at p < {SIGNIFICANCE}, uncorrected). A difference from the "
    f"baseline row is marked when significant at p < {SIGNIFICANCE} after Holm's correction "
    "over the rows of the "
    "column: † by the paired test over test items pooled across seeds (bootstrap; McNemar "
    "for accuracies), a statement about these trained models on this test set; ‡ by the "
    "paired t-test over seeds, a statement about the training procedure. With few seeds "
    "the second is rare: see the detectable differences below."
)


def column_title(metric: str) -> str:
    name, unit, arrow = header(metric)
    return f"{name} ({unit}) {arrow}" if unit else f"{name} {arrow}".strip()


def table_markdown(section: TaskSection) -> list[str]:
    return MD_ENV.get_template("results.md.j2").render(view=table_view(section.table)).splitlines()


def timing_markdown(section: TaskSection) -> list[str]:
    keys = sorted({k for _, vals in section.timing for k in vals})
    if not keys:
        return []
    rows = [[label] + [fmt(k, v[k]) if k in v else "" for k in keys] for label, v in section.timing]
    return pipe_table(["method", *map(column_title, keys)], ["---"] + ["---:"] * len(keys), rows)


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
    out += findings_markdown(data.findings)
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
        trials = section.tuning
        if trials.rows:
            out += ["### Tuning trials", "", trials.intro, ""]
            align = ["---", "---"] + ["---:"] * (len(trials.head) - 5) + ["---", "---:", "---"]
            out += pipe_table(trials.head, align, trials.rows)
            out += [""]
        if trials.gains:
            out += ["### Tuned against defaults", "", trials.gains_intro, ""]
            align = ["---", "---:", "---:", "---:", "---"]
            out += pipe_table(trials.gains_head, align, trials.gains) + [""]
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

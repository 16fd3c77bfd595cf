"""report.html: one self-contained file (styles inline, figures embedded as base64 PNG),
rendered by templates/report.html.j2 over the same table model as report.md and tables.tex.

Rows show display names; the summary says better or worse by the metric's direction and
flags a best method worse than its baseline; the dataset card is Markdown rendered as HTML;
every table scrolls inside its own box and numbers do not wrap."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import markdown  # type: ignore[import-untyped, unused-ignore]  # no stubs here
from markupsafe import Markup

from bench.report import findings
from bench.report.baseline_tests import HEADER, power_line, tests_cells, tests_intro
from bench.report.model import ReportData, TaskSection, table_view
from bench.report.render_markdown import LEGEND, column_title
from bench.report.summary import INTRO, metric_title, summary_rows
from bench.report.tables import fmt
from bench.report.templating import environment

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th.num,td.num{text-align:right}
thead th{border-bottom:2px solid #444}
td.num{white-space:nowrap}
td.best{font-weight:bold}
tr.worse td{background:#fff3f0}
tr.worse td:last-child{color:#b00;font-weight:bold}
figure{margin:1.5em 0}
figure img{max-width:100%}
figcaption{font-size:13px;color:#555}
.legend{font-size:13px;color:#555}
.failed{color:#b00}
.card{font-size:14px;overflow-wrap:anywhere}
.card table{margin:0.5em 0}
pre,code{white-space:pre-wrap;overflow-wrap:anywhere}
"""

ENV = environment("html")


def markdown_html(text: str) -> Markup:
    """Markdown (e.g. a dataset card) as HTML: pipe tables become tables, each in its own
    scroll box; raw HTML in the text is escaped, never passed through."""
    body = markdown.markdown(html.escape(text, quote=False), extensions=["tables"])
    body = body.replace("<table>", '<div class="scroll"><table>').replace(
        "</table>", "</table></div>"
    )
    return Markup(body)


def _markdown_block(text: str) -> str:
    """A figure's Markdown note as HTML: pipe tables become tables, other lines paragraphs."""
    out, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):  # not the |---| rule
                rows.append(cells)
            continue
        if rows:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                for r in rows[1:]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
            rows = []
        if line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "".join(out)


def _figure_png(run_dir: Path, stem: str) -> str:
    png = run_dir / "figures" / f"{stem}.png"
    return base64.b64encode(png.read_bytes()).decode() if png.exists() else ""


def first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def _section(s: TaskSection, run_dir: Path) -> dict:
    keys = sorted({k for _, vals in s.timing for k in vals})
    labels = s.timing_display or [label for label, _ in s.timing]
    timing = [
        [label] + [fmt(k, vals[k]) if k in vals else "" for k in keys]
        for label, (_, vals) in zip(labels, s.timing, strict=True)
    ]
    tests = tests_cells(s.table) if s.table.headline is not None else []
    display = {r.label: r.display for r in s.table.rows}
    tests = [[display.get(row[0], row[0]), *row[1:]] for row in tests]
    return {
        "name": s.name,
        "title": s.table.title,
        "seeds": s.seeds,
        "note": s.table.baseline_note,
        "view": table_view(s.table),
        "power": power_line(s.table),
        "tests": tests,
        "tests_head": HEADER,
        "tests_intro": tests_intro(s.table.headline or ""),
        "notes": s.table.notes,
        "tuning": s.tuning,
        "timing": timing if keys else [],
        "timing_head": ["method", *map(column_title, keys)],
        "figures": [
            {
                "stem": f.stem,
                "caption": f.caption,
                "data": _figure_png(run_dir, f.stem),
                "note": Markup(f'<div class="scroll">{_markdown_block(f.text)}</div>')
                if f.text
                else "",
            }
            for f in s.figures
        ],
        "failed": [
            {
                "method": ", ".join(f"{k}={v}" for k, v in r.method.items()),
                "seed": r.seed,
                "error": first_line(r.error),
            }
            for r in s.failed
        ],
        "card": markdown_html(s.dataset_card) if s.dataset_card else "",
    }


def render_html(data: ReportData, run_dir: Path) -> str:
    legend = Markup(html.escape(LEGEND).replace("**bold**", "<b>bold</b>"))
    return ENV.get_template("report.html.j2").render(
        data=data,
        env=data.env,
        css=Markup(CSS),
        summary=summary_rows(data),
        summary_intro=INTRO,
        metric_title=metric_title,
        legend=legend,
        sections=[_section(s, run_dir) for s in data.sections],
        findings_intro=findings.INTRO,
        findings_head=findings.HEAD,
        findings_rows=[[c.replace("`", "") for c in row] for row in findings.rows(data.findings)],
        findings_notes=[(r.finding.id, r.note_text().replace("`", "")) for r in data.findings],
    )

"""report.html: one self-contained file (styles inline, figures embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bench.report.baseline_tests import HEADER, power_line, tests_cells, tests_intro
from bench.report.model import ReportData, TaskSection
from bench.report.render_markdown import LEGEND, column_title
from bench.report.summary import summary_rows
from bench.report.tables import fmt, fmt_entry

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{border-bottom:2px solid #444}
td.best{font-weight:bold}
figure{margin:1.5em 0}
figure img{max-width:100%}
figcaption{font-size:13px;color:#555}
.legend{font-size:13px;color:#555}
.failed{color:#b00}
"""


def _table(section: TaskSection) -> str:
    t = section.table
    head = "".join(f"<th>{html.escape(column_title(m))}</th>" for m in t.metrics)
    body = []
    for row in t.rows:
        cells = []
        for m in t.metrics:
            e = row.entries.get(m)
            if e is None:
                cells.append("<td></td>")
                continue
            text = html.escape(fmt_entry(m, e)) + (f" {e.marks}" if e.marks else "")
            cells.append(f'<td class="best">{text}</td>' if e.best else f"<td>{text}</td>")
        label = html.escape(row.label) + (
            " (baseline)" if row.is_baseline and t.baseline_note else ""
        )
        body.append(f"<tr><td>{label}</td><td>{len(row.seeds)}</td>{''.join(cells)}</tr>")
    return (
        f"<table><thead><tr><th>method</th><th>n</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _timing(section: TaskSection) -> str:
    keys = sorted({k for _, vals in section.timing for k in vals})
    if not keys:
        return ""
    head = "".join(f"<th>{html.escape(column_title(k))}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{fmt(k, vals[k]) if k in vals else ''}</td>" for k in keys)
        + "</tr>"
        for label, vals in section.timing
    )
    return (
        f"<h3>Speed (median over seeds)</h3><table><thead><tr><th>method</th>{head}</tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


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


def _figure(run_dir: Path, stem: str, caption: str) -> str:
    png = run_dir / "figures" / f"{stem}.png"
    if not png.exists():
        return f'<p class="failed">missing figure {html.escape(stem)}</p>'
    data = base64.b64encode(png.read_bytes()).decode()
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def first_line(text: str | None) -> str:
    return text.splitlines()[0] if text else ""


def _method(method: dict[str, str]) -> str:
    return html.escape(", ".join(f"{k}={v}" for k, v in method.items()))


def _tests(section: TaskSection) -> str:
    cells = tests_cells(section.table)
    if not cells or section.table.headline is None:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells
    )
    return (
        f"<h3>Tests against the baseline</h3><p>{html.escape(tests_intro(section.table.headline))}"
        f"</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def render_html(data: ReportData, run_dir: Path) -> str:
    e = {k: html.escape(str(v)) for k, v in data.env.items()}
    run_id = html.escape(data.run_id)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>speechbench {run_id}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>speechbench report: {run_id}</h1>",
        f"<p>{data.n_ok} cells ok, {data.n_failed} failed. Commit <code>{e.get('git_commit')}"
        f"</code>, torch {e.get('torch')}, device {e.get('device')} "
        f"({e.get('gpu') if data.env.get('gpu') else e.get('cpu')}).</p>",
    ]
    summary = summary_rows(data)
    if summary:
        titles = ("task", "metric", "best method", "value", "baseline", "margin")
        head = "".join(f"<th>{h}</th>" for h in titles)
        body = "".join(
            f"<tr><td>{html.escape(r.task)}</td><td>{html.escape(r.metric)}</td>"
            f"<td>{html.escape(r.best)}</td><td>{r.best_value}</td>"
            f"<td>{html.escape(r.baseline)}</td>"
            f"<td>{r.margin}{' ' + r.marks if r.marks else ''}</td></tr>"
            for r in summary
        )
        parts += ["<h2>Summary</h2>", f"<table><tr>{head}</tr>{body}</table>"]
    legend = html.escape(LEGEND).replace("**bold**", "<b>bold</b>")
    for s in data.sections:
        note = html.escape(s.table.baseline_note)
        parts += [
            f"<h2>{html.escape(s.table.title)}</h2>",
            f"<p>Task <code>{s.name}</code>, seeds {s.seeds}. {note}</p>",
            _table(s),
            f'<p class="legend">{legend}</p>',
            f'<p class="legend">{html.escape(power_line(s.table))}</p>',
            _tests(s),
            *(f'<p class="legend">{html.escape(n)}</p>' for n in s.table.notes),
            _timing(s),
        ]
        for f in s.figures:
            parts += [_figure(run_dir, f.stem, f.caption), _markdown_block(f.text)]
        if s.failed:
            items = "".join(
                f"<li>{_method(r.method)} seed {r.seed}: "
                f"<code>{html.escape(first_line(r.error))}</code></li>"
                for r in s.failed
            )
            parts.append(f'<h3 class="failed">Failed cells</h3><ul>{items}</ul>')
        if s.dataset_card:
            parts.append(f"<h3>Dataset card</h3><pre>{html.escape(s.dataset_card)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)

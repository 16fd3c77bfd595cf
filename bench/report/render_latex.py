"""tables.tex: one booktabs table per task from the template templates/tables.tex.j2, rows by
display name, the best value and its ties in bold, ± intervals, † / ‡ for significance.

Each table is shrunk to the text width when wider (never enlarged), and a table of more than
``CHUNK`` rows is split into several, the later ones captioned "(continued)", so that every
part fits on a page. Every value printed by the template is escaped for LaTeX."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from bench.report.model import CellView, ColumnView, ReportData, table_view
from bench.report.tables import DETERMINISTIC, SIGNIFICANCE, TIE_RULE
from bench.report.templating import environment

CHUNK = 25  # rows per table at most

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "·": r"$\cdot$",
    "±": r"$\pm$",
}


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def label(name: str) -> str:
    """A \\label key: letters, digits and ':' kept, anything else '-' (a label is not
    typeset, so an escape such as \\_ inside it breaks pdflatex: "Extra \\endcsname")."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == ":") else "-" for ch in name)


def _finalize(value: Any) -> Any:
    """Escape whatever the template prints, unless it is already LaTeX (Markup)."""
    return value if isinstance(value, Markup) else escape(str(value))


def _column(c: ColumnView) -> Markup:
    unit = {"‰": r"\textperthousand", "%": r"\%"}.get(c.unit, escape(c.unit))
    arrow = {"↑": r" $\uparrow$", "↓": r" $\downarrow$"}.get(c.arrow, "")
    return Markup(escape(c.name) + (f" ({unit})" if c.unit else "") + arrow)


def _cell(c: CellView) -> Markup:
    """``mean $\\pm$ h [$\\pm$ h]`` and the marks as superscripts."""
    text = escape(c.value)
    if c.deterministic:
        text += " " + escape(DETERMINISTIC)
    if c.seed_half_width:
        text += r" $\pm$ " + escape(c.seed_half_width)
    if c.item_half_width:
        text += r" [$\pm$ " + escape(c.item_half_width) + "]"
    if c.marks:
        text += "$^{" + c.marks.replace("†", r"\dagger").replace("‡", r"\ddagger") + "}$"
    return Markup(text)


ENV = environment("tex", finalize=_finalize, filters={"column": _column})
ENV.globals["cell"] = _cell


def render_latex(data: ReportData, chunk: int = CHUNK) -> str:
    if chunk < 1:
        raise ValueError(f"chunk={chunk}: a table part needs at least one row; give chunk >= 1")
    tables = []
    for s in data.sections:
        view = table_view(s.table)
        rows = view.rows
        tables.append(
            {
                "title": s.table.title,
                "note": s.table.baseline_note,
                "label": Markup(label("tab:" + s.name)),
                "view": view,
                "parts": [rows[i : i + chunk] for i in range(0, len(rows), chunk)] or [[]],
            }
        )
    return ENV.get_template("tables.tex.j2").render(
        run_id=data.run_id, tables=tables, significance=SIGNIFICANCE, tie_rule=TIE_RULE
    )

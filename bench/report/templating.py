"""The Jinja2 environments of the report renderers: templates in bench/report/templates/,
loaded as package data. HTML autoescapes; LaTeX escapes every printed value through its
``finalize`` hook unless the value is already LaTeX (``markupsafe.Markup``); Markdown
escapes only what breaks its tables (``|``) through the ``cell`` filter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jinja2

from bench.report.tables import DETERMINISTIC


def environment(
    kind: str,
    finalize: Callable[[Any], Any] | None = None,
    filters: dict[str, Callable[..., Any]] | None = None,
) -> jinja2.Environment:
    """A strict environment for the templates ``*.{kind}.j2`` (``kind``: md, html, tex)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=kind == "html",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
    )
    env.filters.update(filters or {})
    env.globals["DETERMINISTIC"] = DETERMINISTIC
    return env


def _md_cell(text: object) -> str:
    """A Markdown table cell: a pipe would end the cell, so it is escaped."""
    return str(text).replace("|", "\\|")


MD_ENV = environment("md", filters={"cell": _md_cell})


def pipe_table(
    head: Sequence[str], align: Sequence[str], rows: Sequence[Sequence[str]]
) -> list[str]:
    """A GitHub pipe table of strings, as lines (``align``: "---" or "---:" per column)."""
    text = MD_ENV.get_template("pipe_table.md.j2").render(head=head, align=align, rows=rows)
    return text.splitlines()

"""How each operation's cost grows with its input, ours against the peer (log time)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.report.figures import PALETTE, plt, save, style


def draw(rows: list[dict[str, Any]], out_dir: Path, stem: str = "speed") -> Path | None:
    """One panel per case: median ms (IQR bars) by size; ``stem``.pdf/png in ``out_dir``."""
    cases: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "ok":
            cases.setdefault(row["case"], []).append(row)
    if not cases:
        return None
    cols = min(4, len(cases))
    nrows = math.ceil(len(cases) / cols)
    with style():
        fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False)
        for ax, (name, case_rows) in zip(axes.flat, cases.items(), strict=False):
            x = range(len(case_rows))
            for side, key, colour in (("ours", "ours", 0), ("peer", "peer_timing", 1)):
                med = [r[key]["median_ms"] for r in case_rows]
                iqr = [r[key]["iqr_ms"] / 2 for r in case_rows]
                ax.errorbar(x, med, yerr=iqr, marker="o", color=PALETTE[colour], label=side)
            ax.set_yscale("log")
            ax.set_xticks(list(x), [r["size"] for r in case_rows])
            ax.set_title(name, fontsize=8)
            ax.set_ylabel("ms")
        for ax in list(axes.flat)[len(cases) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
    save(fig, Path(out_dir), stem)
    return Path(out_dir) / f"{stem}.png"

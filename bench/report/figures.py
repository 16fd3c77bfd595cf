"""Figure style and saving: one style file, a colour-blind-safe palette, PDF and PNG;
and ``Figure``, what a figure drawer returns for the report (file stem and caption)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = Path(__file__).with_name("speechbench.mplstyle")

# Okabe & Ito (2008) colour-blind-safe palette
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def style():
    """Context manager: draw a figure's whole body inside it so every artist gets the style."""
    return plt.style.context(STYLE)


FORMATS: tuple[str, ...] = ("pdf", "png")  # every format save() can write, its default


@dataclass(frozen=True)
class Figure:
    """One figure a drawer wrote: file stem under figures/ and a caption."""

    stem: str
    caption: str
    text: str = ""  # Markdown shown under the figure: numbers a figure alone cannot list


def save(fig, fig_dir: Path, stem: str, formats: Sequence[str] = FORMATS) -> None:
    """Write ``stem.pdf`` (vector) and/or ``stem.png``, as ``formats`` asks; close the figure."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        plt.close(fig)
        raise ValueError(f"unknown figure format(s) {sorted(unknown)}; known: {list(FORMATS)}")
    fig_dir.mkdir(parents=True, exist_ok=True)
    with plt.style.context(STYLE):
        if "pdf" in formats:
            fig.savefig(fig_dir / f"{stem}.pdf")
        if "png" in formats:
            fig.savefig(fig_dir / f"{stem}.png", dpi=150)
    plt.close(fig)

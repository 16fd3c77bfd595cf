"""Figure style and saving: one style file, a colour-blind-safe palette, PDF and PNG."""

from __future__ import annotations

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


FORMATS = ["pdf", "png"]  # what save() writes; `report --format` narrows it


def save(fig, fig_dir: Path, stem: str) -> None:
    """Write ``stem.pdf`` (vector) and ``stem.png`` (those in FORMATS), close the figure."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    with plt.style.context(STYLE):
        if "pdf" in FORMATS:
            fig.savefig(fig_dir / f"{stem}.pdf")
        if "png" in FORMATS:
            fig.savefig(fig_dir / f"{stem}.png", dpi=150)
    plt.close(fig)

"""Shared pieces of the task figures, so that every drawer reads the same way:

- ``method_styles``: one distinct (colour, marker) pair per method label, colour-blind-safe
  colours first (Okabe & Ito 2008), then Paul Tol's muted and bright sets;
- ``mean_points`` / ``mean_bars``: means with Student-t 95% whiskers drawn only where
  there is an interval (two seeds or more, not deterministic), never a zero-width bar;
- ``spread_note``: the caption words for the whiskers ("1 seed, no interval" when so);
- ``percent_ylim`` / ``pad_ylim``: y limits that leave a value at 0 %, 100 % or at the
  extremes of the data fully visible instead of cut by the axes edge;
- ``dodge``: small horizontal offsets for series that share categorical x positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from bench.report.figures import PALETTE
from bench.report.stats import Summary

# Paul Tol's muted (9) and bright (6, grey left out) qualitative schemes
TOL_MUTED = [
    "#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE",
    "#882255", "#44AA99", "#999933", "#AA4499",
]  # fmt: skip
TOL_BRIGHT = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377"]
COLOURS: tuple[str, ...] = tuple(dict.fromkeys(c.upper() for c in PALETTE + TOL_MUTED + TOL_BRIGHT))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*")


class Style(NamedTuple):
    """How one method is drawn in every figure of its task."""

    colour: str
    marker: str


def style_at(k: int) -> Style:
    """The k-th style: colour k mod C and marker (k + k // C) mod M, so that two methods with
    the same colour (k and k + jC) differ in marker for all k < C·M, as gcd(C + 1, M) = 1."""
    c, m = len(COLOURS), len(MARKERS)
    return Style(COLOURS[k % c], MARKERS[(k + k // c) % m])


def method_styles(labels: Iterable[str]) -> dict[str, Style]:
    """One distinct (colour, marker) per label, in first-seen order (duplicates once).

    Pass the same labels in the same order (e.g. sorted over all of a task's records) for
    each figure of a task, so that a method keeps its colour and marker across them."""
    unique = list(dict.fromkeys(labels))
    if len(unique) > len(COLOURS) * len(MARKERS):
        raise ValueError(
            f"{len(unique)} series in one figure; at most {len(COLOURS) * len(MARKERS)} "
            "can be told apart: draw fewer methods per figure"
        )
    return {label: style_at(k) for k, label in enumerate(unique)}


def has_interval(s: Summary) -> bool:
    """True when ``s`` has a real 95% interval: two values or more, not all equal."""
    return s.n > 1 and not s.deterministic and math.isfinite(s.lo) and math.isfinite(s.hi)


def spread_note(summaries: Iterable[Summary], what: str = "Student-t 95% interval") -> str:
    """Caption words for the whiskers: ``what`` over seeds, and which points have none."""
    summaries = [s for s in summaries if s.n > 0]
    if summaries and not any(has_interval(s) for s in summaries):
        n = max(s.n for s in summaries)
        return "1 seed, no interval" if n < 2 else "identical over seeds, no interval"
    if any(s.n == 1 for s in summaries):
        return f"whiskers the {what} over seeds; none where there is 1 seed"
    return f"whiskers the {what} over seeds"


def _whiskers(x: Sequence[float] | np.ndarray, summaries: Sequence[Summary], scale: float):
    keep = [i for i, s in enumerate(summaries) if has_interval(s)]
    xs = [x[i] for i in keep]
    ys = [scale * summaries[i].mean for i in keep]
    err = [
        [scale * (summaries[i].mean - summaries[i].lo) for i in keep],
        [scale * (summaries[i].hi - summaries[i].mean) for i in keep],
    ]
    return xs, ys, err


def mean_points(
    ax,
    x: Sequence[float] | np.ndarray,
    summaries: Sequence[Summary],
    style: Style,
    label: str,
    scale: float = 1.0,
    line: bool = True,
    **kwargs,
):
    """Means as markers (joined by a line when ``line``, i.e. a numeric x axis), with
    whiskers only at the points that have an interval. Returns the Line2D of the means."""
    (points,) = ax.plot(
        list(x),
        [scale * s.mean for s in summaries],
        color=style.colour,
        marker=style.marker,
        linestyle="-" if line else "None",
        label=label,
        **kwargs,
    )
    xs, ys, err = _whiskers(x, summaries, scale)
    if xs:
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=style.colour, capsize=2, lw=1)
    return points


def mean_bars(
    ax,
    x: Sequence[float] | np.ndarray,
    summaries: Sequence[Summary],
    width: float,
    colour: str,
    label: str,
    scale: float = 1.0,
    **kwargs,
):
    """Bars at the means, whiskers only on the bars that have an interval."""
    bars = ax.bar(
        list(x), [scale * s.mean for s in summaries], width, color=colour, label=label, **kwargs
    )
    xs, ys, err = _whiskers(x, summaries, scale)
    if xs:
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor="black", capsize=2, lw=1)
    return bars


def dodge(n: int, width: float = 0.5) -> list[float]:
    """Offsets of ``n`` series around a category's position, spread over ``width``."""
    if n <= 1:
        return [0.0] * n
    return list(np.linspace(-width / 2, width / 2, n))


def _finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def pad_ylim(ax, values: Iterable[float | None], pad: float = 0.06) -> None:
    """Set y limits to the range of ``values`` (data and whisker ends) widened by ``pad`` of
    that range on each side, so that no marker sits on the axes edge."""
    vals = _finite(values)
    if not vals:
        return
    lo, hi = min(vals), max(vals)
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    ax.set_ylim(lo - pad * span, hi + pad * span)


def percent_ylim(
    ax, values: Iterable[float | None] = (), pad: float = 3.0, bars: bool = False
) -> None:
    """Y limits for a percentage: 0 to 100 with ``pad`` points beyond both, widened further
    when a value (e.g. a WER above 100 %) lies outside, so 0 and 100 are fully visible.
    With ``bars`` (bars grow from 0) the axis starts at 0 unless a value is negative."""
    vals = _finite(values) + [0.0, 100.0]
    bottom = 0.0 if bars and min(vals) >= 0 else min(vals) - pad
    ax.set_ylim(bottom, max(vals) + pad)


def summary_ends(summaries: Iterable[Summary], scale: float = 1.0) -> list[float]:
    """Every mean and whisker end of ``summaries`` (for the limits), times ``scale``."""
    out = []
    for s in summaries:
        out.append(scale * s.mean)
        if has_interval(s):
            out += [scale * s.lo, scale * s.hi]
    return out

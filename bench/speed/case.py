"""What a speed case is: one operation, done by us and by a public peer on the same inputs.

A case builds, for one input size, a pair of zero-argument callables (ours, peer) that do
the same work (forward+backward where the operation is trained) on tensors made once,
outside the clock. The runner times them alternately in one process, so the ratio of the
two is measured under the same load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

SIZES = ("tiny", "small", "medium", "large")
SUITE_SIZES = {"quick": ("tiny", "small", "medium"), "default": SIZES}


class PeerMissing(RuntimeError):
    """The peer package is not installed; the row says how to install it."""

    def __init__(self, module: str, pip_name: str) -> None:
        super().__init__(f"peer {module!r} is not installed: pip install {pip_name}")
        self.module = module
        self.pip_name = pip_name


def import_peer(module: str, pip_name: str | None = None) -> Any:
    """Import a peer package, or raise PeerMissing naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise PeerMissing(module, pip_name or module) from err


@dataclass
class Workload:
    """One size of one case: the two callables and what they work on."""

    ours: Callable[[], Any]
    peer: Callable[[], Any]
    shape: str  # human-readable input size, e.g. "B=256 D=128"
    items: int  # work units per call (samples, utterances, predictions) for throughput
    # outputs of one ours()/peer() call -> None, or raise AssertionError when they differ;
    # None when the two are not comparable (different random draws)
    agree: Callable[[Any, Any], None] | None = None
    teardown: Callable[[], None] | None = None


@dataclass(frozen=True)
class SpeedCase:
    """An operation measured against its peer at several sizes."""

    name: str  # "triplet loss, batch-hard mining"
    peer: str  # "pytorch-metric-learning TripletMarginLoss + BatchHardMiner"
    sizes: dict[str, dict[str, Any]]  # size label (one of SIZES) -> build kwargs
    build: Callable[..., Workload]  # build(device=..., **sizes[label]) -> Workload
    trained: bool = False  # timed call includes backward
    group: str = ""  # table section: "metric learning", "wav2vec 2.0", "metrics"
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = set(self.sizes) - set(SIZES)
        if unknown:
            raise ValueError(
                f"case {self.name!r}: unknown size labels {sorted(unknown)}; use {SIZES}"
            )

    def workload(self, size: str, device: torch.device) -> Workload:
        if size not in self.sizes:
            raise KeyError(f"case {self.name!r} has no size {size!r}; it has {list(self.sizes)}")
        return self.build(device=device, **self.sizes[size])


CASES: dict[str, SpeedCase] = {}


def register_case(case: SpeedCase) -> SpeedCase:
    if case.name in CASES:
        raise ValueError(f"speed case {case.name!r} is registered twice")
    CASES[case.name] = case
    return case


def close(tol: float = 1e-4) -> Callable[[Any, Any], None]:
    """An ``agree`` check: both outputs are numbers or tensors equal within ``tol`` (relative)."""

    def check(ours: Any, peer: Any) -> None:
        a = torch.as_tensor(ours, dtype=torch.float64).detach().cpu()
        b = torch.as_tensor(peer, dtype=torch.float64).detach().cpu()
        if a.shape != b.shape:
            raise AssertionError(f"shapes differ: ours {tuple(a.shape)}, peer {tuple(b.shape)}")
        scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
        err = float((a - b).abs().max()) if a.numel() else 0.0
        if err > tol * scale:
            raise AssertionError(f"outputs differ by {err:.3g} (tolerance {tol * scale:.3g})")

    return check

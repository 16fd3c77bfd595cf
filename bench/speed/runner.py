"""Run speed cases: ours and the peer alternately in one process, one row per case and size.

Rows are appended to ``speed.jsonl`` as they finish (``bench.store.append_jsonl``: one
write, then fsync), so an interrupted run keeps what it measured and a re-run with the
same options skips rows already there; a line cut by a crash is set aside and measured again.

A row with an MFU is checked: a fresh matmul probe is timed just before and just after
its timing, and the row is marked invalid (status "invalid", the reason in "invalid") when
the MFU is above 100% or the two probes differ by more than ``PROBE_DISAGREEMENT``: the
machine's speed changed under the row, so its times and MFU say little. Invalid rows keep
their numbers in speed.jsonl, are not printed, and are measured again on a re-run.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import harness
from bench.speed.case import SUITE_SIZES, PeerMissing, SpeedCase, Workload
from bench.store import append_jsonl, read_jsonl

ROWS_FILE = "speed.jsonl"
PROBE_SIZE = 512  # the fresh matmul probe: 512 x 512 (about 3 ms a call on one core)
PROBE_DISAGREEMENT = 1.5  # before/after probes further apart than this factor: row invalid


@dataclass(frozen=True)
class SpeedOptions:
    """How every row is timed (all recorded in the row)."""

    device: torch.device
    threads: int
    warmup: int = 2
    min_repeats: int = 3
    max_repeats: int = 15
    budget_s: float = 4.0  # timed seconds per row and side, which sets the repeats
    amp: str = "off"
    compile: bool = False
    cuda_graph: bool = False
    memory: bool = True
    flops: bool = True

    def key_fields(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "threads": self.threads,
            "amp": self.amp,
            "compile": self.compile,
            "cuda_graph": self.cuda_graph,
        }


KEY_FIELDS = ("case", "size", "device", "threads", "amp", "compile", "cuda_graph")


def row_key(row: dict[str, Any]) -> str:
    """What makes two rows the same measurement: the case, size and timing options."""
    return json.dumps({k: row.get(k) for k in KEY_FIELDS}, sort_keys=True)


def time_pair(ours: Callable, peer: Callable, options: SpeedOptions, first_s: float):
    """Median/IQR of ours and of the peer, timed in alternation (ours, peer, ours, ...).

    Alternating spreads any change in machine load over both sides, so their ratio is
    fairer than two back-to-back blocks. Repeats fit ``budget_s`` given one call's time;
    calls slower than half a second get no warm-up beyond the first call.
    """
    repeats = int(options.budget_s / max(first_s, 1e-6))
    repeats = max(options.min_repeats, min(options.max_repeats, repeats))
    for _ in range(options.warmup if first_s < 0.5 else 0):
        ours()
        peer()
    samples: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(repeats):
        for side, fn in (("ours", ours), ("peer", peer)):
            one = harness.time_fn(fn, options.device, warmup=0, repeats=1)
            samples[side].append(one.median_ms)
    return harness.summarize_ms(samples["ours"]), harness.summarize_ms(samples["peer"])


def probe_gflops(device: torch.device, amp: str = "off") -> float:
    """Matmul GFLOP/s of ``device`` measured now: the best of 10 timed calls.

    ``harness.measured_peak_flops`` is measured once per process and kept, so it cannot
    tell whether the machine's speed changed during a row; this one is fresh each call.
    """
    dtype = harness.AMP_DTYPES.get(amp, torch.float32) if device.type == "cuda" else torch.float32
    g = torch.Generator(device=device).manual_seed(0)  # the workloads' RNG stays untouched
    a, b = (
        torch.randn(PROBE_SIZE, PROBE_SIZE, device=device, dtype=dtype, generator=g)
        for _ in range(2)
    )
    timing = harness.time_fn(lambda: a @ b, device, warmup=2, repeats=10)
    return 2 * PROBE_SIZE**3 / (timing.min_ms / 1e3) / 1e9


def invalid_reason(mfu: float | None, before: float | None, after: float | None) -> str | None:
    """Why a row's numbers are not to be trusted (None: they are): an MFU above 100%, or
    matmul probes before and after the row that disagree by more than PROBE_DISAGREEMENT."""
    if mfu is not None and mfu > 1.0:
        return f"MFU {100 * mfu:.0f}% > 100% (the peak probe ran slowed, or FLOPs overcounted)"
    if before and after:
        factor = max(before, after) / min(before, after)
        if factor > PROBE_DISAGREEMENT:
            return (
                f"matmul probe {before:.0f} GFLOP/s before the row, {after:.0f} after "
                f"(×{factor:.1f} > ×{PROBE_DISAGREEMENT}): the machine's speed changed"
            )
    return None


def _first_call(fn: Callable, device: torch.device) -> tuple[Any, float]:
    harness.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    harness.synchronize(device)
    return out, time.perf_counter() - t0


def _agreement(work: Workload, ours_out: Any, peer_out: Any) -> str:
    if work.agree is None:
        return "n/a"
    try:
        work.agree(ours_out, peer_out)
    except AssertionError as err:
        return f"differs: {err}"
    return "yes"


def measure_row(case: SpeedCase, size: str, options: SpeedOptions) -> dict[str, Any]:
    """One row: build the workload, check agreement, time both sides, memory and FLOPs."""
    row: dict[str, Any] = {
        "case": case.name,
        "group": case.group,
        "size": size,
        "peer": case.peer,
        "trained": case.trained,
        **options.key_fields(),
    }
    work = None
    try:
        work = case.workload(size, options.device)
        ours, peer = (
            harness.prepare_step(
                fn,
                options.device,
                amp=options.amp,
                compile=options.compile,
                cuda_graph=options.cuda_graph,
            )
            for fn in (work.ours, work.peer)
        )
        ours_out, ours_s = _first_call(ours, options.device)
        peer_out, peer_s = _first_call(peer, options.device)
        row["agree"] = _agreement(work, ours_out, peer_out)
        checked = options.flops and case.trained  # rows with an MFU get the probe check
        before = probe_gflops(options.device, options.amp) if checked else None
        t_ours, t_peer = time_pair(ours, peer, options, max(ours_s, peer_s))
        after = probe_gflops(options.device, options.amp) if checked else None
        row.update(shape=work.shape, items=work.items, status="ok")
        row["ours"] = {**t_ours.as_dict(), "items_per_s": work.items / (t_ours.median_ms / 1e3)}
        row["peer_timing"] = {
            **t_peer.as_dict(),
            "items_per_s": work.items / (t_peer.median_ms / 1e3),
        }
        row["ratio"] = t_peer.median_ms / t_ours.median_ms
        if options.memory:
            row["ours"]["peak_mb"] = harness.peak_memory_of(ours, options.device)
            row["peer_timing"]["peak_mb"] = harness.peak_memory_of(peer, options.device)
        if options.flops and case.trained:
            flops = harness.count_flops(work.ours)
            row["ours"]["flops"] = flops
            row["ours"]["mfu"] = harness.mfu(flops, t_ours.median_ms, options.device, options.amp)
            row["probe_gflops"] = {"before": before, "after": after}
            reason = invalid_reason(row["ours"]["mfu"], before, after)
            if reason:
                row.update(status="invalid", invalid=reason)
    except PeerMissing as err:
        return {**row, "status": "peer missing", "error": str(err)}
    except Exception as err:  # noqa: BLE001 (a failing row is reported, the run goes on)
        return {
            **row,
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=8),
        }
    finally:
        if work is not None and work.teardown is not None:
            work.teardown()
    return row


def load_rows(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``out_dir/speed.jsonl``; a line cut by a crash is skipped (measured again)."""
    return read_jsonl(Path(out_dir) / ROWS_FILE)


def plan(cases: Iterable[SpeedCase], suite: str) -> list[tuple[SpeedCase, str]]:
    if suite not in SUITE_SIZES:
        raise ValueError(f"--size {suite!r} is not one of {sorted(SUITE_SIZES)}")
    return [(c, s) for c in cases for s in SUITE_SIZES[suite] if s in c.sizes]


def run(
    cases: Iterable[SpeedCase],
    suite: str,
    options: SpeedOptions,
    out_dir: Path,
    progress: Callable[[Iterable], Iterable] | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Measure every (case, size) of ``suite``; rows already in ``out_dir`` are kept."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    if not force:  # rows measured before with these options are kept, not measured again
        reusable = ("ok", "peer missing")
        done = {row_key(r): r for r in load_rows(out_dir) if r.get("status") in reusable}
    env = harness.capture_env(options.device)
    rows = []
    todo = plan(cases, suite)
    for case, size in progress(todo) if progress else todo:
        key = row_key({"case": case.name, "size": size, **options.key_fields()})
        if key in done:
            rows.append(done[key])
            continue
        row = {**measure_row(case, size, options), "env": env, "time": time.time()}
        append_jsonl(out_dir / ROWS_FILE, row)
        rows.append(row)
    return rows

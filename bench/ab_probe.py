"""The worker of ``compare --against``: one side's code, timed on command.

``bench.against`` starts two of these, one per side, always from the current checkout:
``python <this file> --root <side root>``. The side's root is put first on ``sys.path``,
so ``import bench`` imports that side's code and this file need not exist in the
reference. Commands arrive as JSON lines on stdin and each gets one JSON line back on
the real stdout; whatever the code under test prints (to Python's or the C library's
stdout) goes to stderr, which the coordinator keeps in a log file.

Commands: ``setup`` (build a target, warm it up; untimed), ``measure`` (time it once:
wall seconds, CPU seconds of this process and its waited-for children, load average
before and after) and ``quit``. Only the standard library and the side's ``bench`` are
used here, through names that have been stable (``run_cell``, ``RunContext``,
``get_task``, ``load_cases``, ``harness.StepTimer``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

STEPS: list[tuple[float, float]] = []  # (wall s, cpu s) of each timed training step


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished, waited-for children."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def load_now() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def patch_step_timer(harness: Any) -> None:
    """Time every training step the side's loop times (``harness.StepTimer.step``) by wall
    and CPU clock; a step the loop leaves out as warm-up is left out here too."""
    timer_cls = getattr(harness, "StepTimer", None)
    if timer_cls is None:
        return
    original = timer_cls.step

    @contextlib.contextmanager
    def step(self, *args: Any, **kwargs: Any):
        before = len(self.samples_ms)
        w0, c0 = time.perf_counter(), cpu_seconds()
        with original(self, *args, **kwargs) as timed:
            yield timed
        wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        if len(self.samples_ms) > before:  # the loop kept this step (past its warm-up)
            STEPS.append((wall, cpu))

    timer_cls.step = step


class Side:
    """The targets set up in this worker and how to time them."""

    def __init__(self, device: str, scratch: Path) -> None:
        import torch

        from bench import harness

        self.torch, self.harness = torch, harness
        self.device = torch.device(device)
        self.scratch = scratch
        self.targets: dict[str, dict[str, Any]] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    # ---- speed cases: our side's callable -------------------------------------------
    def setup_case(self, key: str, name: str, size: str, min_time: float) -> dict[str, Any]:
        from bench.speed import load_cases

        cases = load_cases()
        if name not in cases:
            raise LookupError(f"no speed case {name!r} in this version")
        work = cases[name].workload(size, self.device)
        fn = work.ours
        times = []
        for _ in range(3):  # warm-up; the fastest call sets the calls per measurement
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t0)
            if times[-1] > 0.5:
                break
        calls = max(1, math.ceil(min_time / max(min(times), 1e-6)))
        self.targets[key] = {"kind": "case", "fn": fn, "calls": calls, "work": work}
        return {"shape": work.shape, "calls": calls}

    def measure_case(self, target: dict[str, Any]) -> dict[str, Any]:
        fn, calls = target["fn"], target["calls"]
        self.sync()
        w0, c0 = time.perf_counter(), cpu_seconds()
        for _ in range(calls):
            fn()
        self.sync()
        wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        return {"ours call": {"wall_s": wall, "cpu_s": cpu, "units": calls}}

    # ---- task cells: a whole cell, and its training steps ---------------------------
    def setup_cell(
        self, key: str, task: str, method: dict, scale: str, seed: int, overrides: dict
    ) -> dict[str, Any]:
        from bench.tasks.base import get_task

        found = [c for c in get_task(task).cells(scale, [seed]) if c.method == method]
        if not found:
            raise LookupError(f"task {task} has no row {method} at scale {scale} in this version")
        cell = dataclasses.replace(found[0], config={**found[0].config, **overrides})
        target = {"kind": "cell", "cell": cell}
        parts = self.measure_cell(target)  # warm-up: imports, data loading, caches
        self.targets[key] = target
        steps = parts.get("train step", {}).get("units", 0)
        return {"label": cell.label, "steps": steps}

    def measure_cell(self, target: dict[str, Any]) -> dict[str, Any]:
        from bench.cells import run_cell
        from bench.tasks.base import RunContext

        # a fresh run folder each time: tasks that keep artifacts (calibration's trained
        # logits) would otherwise skip their training on the second run
        run_dir = Path(tempfile.mkdtemp(prefix="cell-", dir=self.scratch))
        ctx = RunContext(device=self.device, run_dir=run_dir, quiet=True)
        STEPS.clear()
        try:
            self.sync()
            w0, c0 = time.perf_counter(), cpu_seconds()
            result = run_cell(target["cell"], ctx, "against", {})
            self.sync()
            wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        record = result.record
        if record.status != "ok":
            raise RuntimeError(f"the cell failed: {(record.error or '').strip()}")
        parts = {}
        if STEPS:  # the training steps alone (past the loop's warm-up), then the whole cell
            parts["train step"] = {
                "wall_s": sum(w for w, _ in STEPS),
                "cpu_s": sum(c for _, c in STEPS),
                "units": len(STEPS),
            }
        parts["cell"] = {"wall_s": wall, "cpu_s": cpu, "units": 1}
        return parts

    # ---- the commands ---------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "setup":
            key = msg["key"]
            if msg["kind"] == "case":
                return self.setup_case(key, msg["name"], msg["size"], msg.get("min_time", 0.2))
            return self.setup_cell(
                key, msg["task"], msg["method"], msg["scale"], msg["seed"], msg.get("set", {})
            )
        if op == "measure":
            target = self.targets[msg["key"]]
            load_before = load_now()
            measure = self.measure_case if target["kind"] == "case" else self.measure_cell
            parts = measure(target)
            return {"parts": parts, "load": (load_before + load_now()) / 2}
        if op == "teardown":
            work = self.targets.pop(msg["key"], {}).get("work")
            if work is not None and work.teardown is not None:
                work.teardown()
            return {}
        raise ValueError(f"unknown command {op!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the side's checkout")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    root = args.root.resolve()
    # replace this script's folder (the current checkout's bench/) by the side's root
    sys.path[0] = str(root)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints of the code under test must not corrupt the answers
    sys.stdout = sys.stderr
    scratch = Path(tempfile.mkdtemp(prefix="speechbench-ab-"))
    os.chdir(scratch)  # nothing the code writes relative to the cwd lands in a checkout

    def answer(payload: dict[str, Any]) -> None:
        answers.write(json.dumps(payload) + "\n")
        answers.flush()

    try:
        side = start(root, args.threads, args.device, scratch)
    except Exception as err:  # noqa: BLE001 (the coordinator shows it)
        answer({"ok": False, "error": f"{type(err).__name__}: {err}"})
        shutil.rmtree(scratch, ignore_errors=True)
        return 1
    threads = side.torch.get_num_threads()
    answer({"ok": True, "bench": str(Path(str(side.harness.__file__)).parent), "threads": threads})
    try:
        for line in sys.stdin:
            msg = json.loads(line)
            if msg.get("op") == "quit":
                answer({"ok": True})
                break
            try:
                answer({"ok": True, **side.handle(msg)})
            except Exception as err:  # noqa: BLE001 (reported for this target only)
                traceback.print_exc()
                answer({"ok": False, "error": f"{type(err).__name__}: {err}"})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def start(root: Path, threads: int | None, device: str, scratch: Path) -> Side:
    """Import the side's bench (and check that it is the side's), register its methods,
    time its training steps, set its threads."""
    import bench

    where = Path(bench.__file__).resolve()
    if root not in where.parents:
        raise ImportError(f"imported bench from {where}, not from {root}")
    from bench import harness, registry

    registry.load_all()
    patch_step_timer(harness)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return Side(device, scratch)


if __name__ == "__main__":
    status = main()
    sys.stderr.flush()
    os._exit(status)  # every answer is flushed; skip the interpreter's slow teardown (~1.5 s)

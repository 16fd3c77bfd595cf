"""Executors: where cells run. All of them write the same records to the same run folder.

- local, one cell at a time in this process (the default);
- local with ``jobs`` > 1: a process pool on this machine, the cores split between workers;
- ray: one Ray task per cell on a local Ray instance or the cluster at ``address``, with
  one GPU per cell when the device is cuda; a cell whose worker dies is retried once,
  then recorded as failed.

Records are appended by this (the driver) process as cells finish, so an interrupted
sweep resumes where it stopped whatever the executor.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace

from bench.cells import CellRun, new_record, run_cell
from bench.context import RunContext
from bench.store import Cell

EXECUTORS = ("local", "ray")
AUTO = "auto"
MAX_AUTO_JOBS = 4  # beyond this, memory (each worker holds its corpora) is the limit
JOBS_ENV = "SPEECHBENCH_JOBS"  # the default of --jobs when set (the tests set 1)


def parse_jobs(text: str) -> int | str:
    """``--jobs`` (or $SPEECHBENCH_JOBS): a number of at least 1, or ``auto``."""
    if text == AUTO:
        return AUTO
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"a number of at least 1 or 'auto', got {text!r}")
    return jobs


def resolve_jobs(jobs: int | str | None, device) -> int:
    """The number of parallel cells. ``None`` (no ``--jobs``): $SPEECHBENCH_JOBS, else
    ``auto``: one cell per core at one thread each, up to MAX_AUTO_JOBS (these small models
    step faster on one thread, so two one-thread cells on two cores beat one two-thread
    cell; and a cell runs on the same number of threads however many cells the run has);
    one at a time on a GPU."""
    if jobs is None:
        try:
            jobs = parse_jobs(os.environ.get(JOBS_ENV, AUTO))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"${JOBS_ENV}: {exc}") from None
    if jobs != AUTO:
        return int(jobs)
    if getattr(device, "type", str(device)) != "cpu":
        return 1
    return min(usable_cores(), MAX_AUTO_JOBS)


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def failed_run(cell: Cell, run_id: str, env: dict, error: str) -> CellRun:
    """The outcome of a cell whose worker died (the cell itself never reported)."""
    return CellRun(new_record(cell, run_id, env, status="failed", error=error))


def _worker(cell: Cell, ctx: RunContext, run_id: str, env: dict, threads: int) -> CellRun:
    """Run one cell in a worker process (pool or Ray): load the registry, split the cores."""
    import torch

    from bench import registry

    torch.set_num_threads(threads)
    registry.load_all()
    return run_cell(cell, ctx, run_id, {**env, "torch_threads": threads})


def die_with_parent() -> None:
    """Pool initializer: on Linux, ask the kernel to SIGTERM this worker when the driver
    dies, so that a killed sweep (SIGTERM, SIGKILL, out of memory) leaves no worker
    training on, orphaned; its cells rerun on resume. Elsewhere it does nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the driver died before the request was in place
        os._exit(1)


class Feed:
    """The cells of a run as a list that may grow while it runs: the caller appends
    follow-up cells (the tuned cells, bench.tuned_stage) after a yield. ``take`` hands each
    cell out once, appended cells first: they start while the first list's short cells
    are still there to fill the cores at the end, rather than forming the run's tail."""

    def __init__(self, cells: list[Cell]) -> None:
        self.cells, self._first, self._next_first = cells, len(cells), 0
        self._next_added = len(cells)

    def take(self, n: int | None = None) -> list[Cell]:
        """Up to ``n`` cells not yet handed out (all of them when ``n`` is None)."""
        out: list[Cell] = []
        while n is None or len(out) < n:
            if self._next_added < len(self.cells):
                out.append(self.cells[self._next_added])
                self._next_added += 1
            elif self._next_first < self._first:
                out.append(self.cells[self._next_first])
                self._next_first += 1
            else:
                break
        return out


def run_pool(cells: list[Cell], ctx: RunContext, run_id: str, env: dict, jobs: int):
    """Yield (cell, CellRun) as a pool of ``jobs`` processes finishes them; cells appended
    to ``cells`` meanwhile go to the same pool (its workers keep their caches). A cell is
    submitted only when a worker is free, so the appended ones can go first (Feed)."""
    threads = max(1, usable_cores() // jobs)
    quiet_ctx = replace(ctx, quiet=True)  # one bar (the driver's), not one per worker
    spawn = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    feed = Feed(cells)
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=spawn, initializer=die_with_parent
    ) as pool:
        futures: dict[Future, Cell] = {}
        while True:
            for cell in feed.take(jobs - len(futures)):
                futures[pool.submit(_worker, cell, quiet_ctx, run_id, env, threads)] = cell
            if not futures:
                return
            future = next(as_completed(futures))
            cell = futures.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # the worker process died (e.g. out of memory)
                outcome = failed_run(cell, run_id, env, f"worker died: {exc!r}")
            yield cell, outcome


def run_ray(cells: list[Cell], ctx: RunContext, run_id: str, env: dict, address: str | None):
    """Yield (cell, CellRun) as Ray tasks finish them; a dead worker's cell is retried once."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "--executor ray needs Ray: pip install -e '.[cluster]' (or pip install ray)"
        ) from exc
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    gpus = 1 if ctx.device.type == "cuda" else 0
    remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(_worker)
    quiet_ctx = replace(ctx, quiet=True)
    threads = 1 if not gpus else max(1, os.cpu_count() or 1)  # CPU cells get one core each
    feed, pending = Feed(cells), {}
    while True:
        for cell in feed.take():  # cells appended meanwhile become tasks too
            pending[remote.remote(cell, quiet_ctx, run_id, env, threads)] = cell
        if not pending:
            return
        done, _ = ray.wait(list(pending), num_returns=1)
        ref = done[0]
        cell = pending.pop(ref)
        try:
            yield cell, ray.get(ref)
        except Exception as exc:  # worker died twice (retried once by Ray)
            yield cell, failed_run(cell, run_id, env, f"Ray worker failed twice: {exc!r}")

"""Executors write the same records: in process, a local process pool, a local Ray."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench import executors, registry
from bench.cli import main
from bench.sweep import run_cells
from bench.tasks.base import RunContext, get_task

ROOT = Path(__file__).resolve().parents[1]


def _cells():
    """Two tiny calibration cells (two seeds: no shared artifacts between them)."""
    registry.load_all()
    task = get_task("calibration")
    cells = task.cells("quick", [0, 1], {"classifier": ["mlp"], "calibrator": ["none"]})
    return [replace(c, config={**c.config, "epochs": 2, "eval_every": 1}) for c in cells]


def _metrics(run_dir):
    lines = (run_dir / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    return {r["seed"]: r["metrics"] for r in records}


def _ctx(run_dir):
    return RunContext(device=torch.device("cpu"), run_dir=run_dir, quiet=True)


def test_process_pool_matches_in_process(tmp_path):
    cells = _cells()
    local = run_cells(cells, _ctx(tmp_path / "local"), "local")
    pool = run_cells(cells, _ctx(tmp_path / "pool"), "pool", jobs=2)
    assert len(local.ran) == len(pool.ran) == 2 and not pool.failed
    a, b = _metrics(tmp_path / "local"), _metrics(tmp_path / "pool")
    assert a.keys() == b.keys() == {0, 1}
    for seed in a:  # one thread per worker vs two: the same up to summation order
        assert b[seed]["accuracy"] == pytest.approx(a[seed]["accuracy"], abs=0.02)
    again = run_cells(cells, _ctx(tmp_path / "pool"), "pool", jobs=2)
    assert len(again.skipped) == 2 and not again.ran  # resumes like the local executor


@pytest.mark.parametrize("jobs", [1, 2])
def test_cells_that_follow_a_record_join_the_same_run(tmp_path, jobs):
    """``follow`` adds cells while the run goes on (the tuned stage): in process and to
    the open pool; it is asked before the run and after every record."""
    first, second = _cells()
    asked = []

    def follow(record):
        asked.append(None if record is None else record.cell_key)
        return [second] if record is not None and record.cell_key == first.key else []

    summary = run_cells([first], _ctx(tmp_path), "f", jobs=jobs, follow=follow)
    assert [c.key for c in summary.ran] == [first.key, second.key] and not summary.failed
    assert asked == [None, first.key, second.key]
    assert _metrics(tmp_path).keys() == {0, 1}


def test_jobs_auto_is_one_cell_per_core_on_a_cpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert executors.resolve_jobs("auto", cpu) == 2
    assert executors.resolve_jobs("auto", cuda) == 1  # one GPU: one cell at a time
    assert executors.resolve_jobs(3, cuda) == 3
    monkeypatch.setattr(executors.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert executors.resolve_jobs("auto", cpu) == executors.MAX_AUTO_JOBS
    monkeypatch.setenv(executors.JOBS_ENV, "auto")
    assert executors.resolve_jobs(None, cpu) == executors.MAX_AUTO_JOBS
    monkeypatch.setenv(executors.JOBS_ENV, "2")
    assert executors.resolve_jobs(None, cpu) == 2
    monkeypatch.setenv(executors.JOBS_ENV, "zero")
    with pytest.raises(ValueError, match="SPEECHBENCH_JOBS: a number of at least 1"):
        executors.resolve_jobs(None, cpu)
    for bad in ("0", "-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1 or 'auto'"):
            executors.parse_jobs(bad)


def test_bad_jobs_on_the_command_line_name_the_option(capsys):
    with pytest.raises(SystemExit):
        main(["--suite", "quick", "--jobs", "0", "--dry-run"])
    assert "--jobs: a number of at least 1 or 'auto', got '0'" in capsys.readouterr().err


def test_unknown_executor_and_bad_jobs(tmp_path):
    with pytest.raises(ValueError, match="unknown executor"):
        run_cells(_cells(), _ctx(tmp_path), "x", executor="slurm")
    with pytest.raises(ValueError, match="--jobs"):
        run_cells(_cells(), _ctx(tmp_path), "x", jobs=0)


def test_two_cell_sweep_on_local_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is in the dev and cluster extras")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # e.g. a sandbox without the shared memory Ray needs
        pytest.skip(f"a local Ray instance cannot start here: {exc}")
    try:
        summary = run_cells(_cells(), _ctx(tmp_path / "ray"), "ray", executor="ray")
    finally:
        ray.shutdown()
    assert len(summary.ran) == 2 and not summary.failed
    assert set(_metrics(tmp_path / "ray")) == {0, 1}


POOL_SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from bench.executors import die_with_parent
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                         initializer=die_with_parent) as pool:
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_pool_workers_die_with_a_killed_driver(tmp_path):
    """A SIGKILLed sweep must not leave its pool workers training on (they were orphans)."""
    driver = subprocess.Popen(
        [sys.executable, "-c", POOL_SCRIPT], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    worker = int(driver.stdout.readline())
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    for _ in range(100):  # the kernel signals the worker at once; allow it to exit
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail(f"worker {worker} outlived its killed driver")


def test_feed_hands_out_appended_cells_first_and_each_cell_once():
    cells = _cells()
    first, second = cells
    queue = [first]
    feed = executors.Feed(queue)
    assert feed.take(0) == [] and feed.take(5) == [first] and feed.take() == []
    queue += [second, replace(second, seed=5)]
    assert feed.take(1) == [second] and feed.take() == [replace(second, seed=5)]
    queue2 = [first, second]
    feed = executors.Feed(queue2)
    assert feed.take(1) == [first]
    queue2.append(replace(first, seed=7))  # appended: before the first list's rest
    assert feed.take() == [replace(first, seed=7), second]

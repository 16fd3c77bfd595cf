"""Kill safety inside training (issue 17): SIGKILL a run of a training task at many points,
resume it by re-running the same command, and compare the run folder with a clean run's.

The training task is the calibration task at a tiny config (a sweep file: an MLP trained
for 2 epochs per seed, 2 seeds x 2 calibrators = 4 cells; cells 1 and 2 train and save the
trained logits as an artifact, cells 3 and 4 load it). One chain of runs shares a run
folder, each run resuming what the previous one left:

- forced points, through a wrapper that patches one function to SIGKILL the process there
  and then calls ``bench.cli.main`` with the same arguments: at a training step, half-way
  through writing the trained-logits artifact, half-way through the ``os.write`` of a
  records append, just after an append (between cells), and half-way through writing
  ``report.html`` (after ``report.md`` was renamed into place);
- timed points: the plain command, killed from outside after delays spread over the
  duration of a resumed run (evenly spaced, and one drawn with a fixed seed);
- then the plain command once more, which must finish with exit status 0.

Checked: after every run, every line of ``records.jsonl`` is a whole valid record (only
the append kill may leave a torn last line, which the next run moves, byte for byte, to
``records.jsonl.torn-*``) and no cell has two "ok" records; at the end, the cells equal
the clean run's, their metrics, curves and per-item results are bit-for-bit the clean
run's, the report is complete (``tests.csv`` identical to the clean run's), the folder
records one invocation, and the ``.lock`` a killed run left never refused the next run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bench.store import RECORDS_FILE, RunStore, record_problem

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """\
description = "kill-safety test: a tiny calibration training"
suite = "quick"
seeds = 2

[[grid]]
task = "calibration"
methods = { classifier = ["mlp"], calibrator = ["none", "temperature"] }
config = { epochs = [2] }
"""
N_CELLS = 4

# Patches one function so that the process SIGKILLs itself at a chosen point, then runs
# the command: ``python killer.py POINT ARG... -- CLI-ARGS...``. It prints "KILLED <where>"
# just before the kill, so the test knows the point was reached.
KILLER = r'''
import os, signal, sys
from contextlib import contextmanager
from fnmatch import fnmatch

split = sys.argv.index("--")
point, params, argv = sys.argv[1], sys.argv[2:split], sys.argv[split + 1:]


def die(where):
    print(f"KILLED {where}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def rebind(old, new):
    """Point every loaded module's name for ``old`` at ``new`` (``from x import f``), this
    script's own names (the patches' reference to ``old``) excepted."""
    for module in list(sys.modules.values()):
        if module is None or module is sys.modules["__main__"]:
            continue
        for name, value in list(vars(module).items()):
            if value is old:
                setattr(module, name, new)


import bench.store as store
import bench.training as training

if point == "train":  # at training step N of the first model trained
    real_train, at = training.train, int(params[0])

    def train(forward, steps, ctx, **kwargs):
        def killing_forward(step):
            if step == at:
                die(f"train step {step} of {steps}")
            return forward(step)
        return real_train(killing_forward, steps, ctx, **kwargs)

    rebind(real_train, train)
elif point == "write":  # half-way through the first write to a file matching a pattern
    real_replacing, pattern = store.replacing, params[0]

    class HalfWriter:
        def __init__(self, fh, path):
            self.fh, self.path = fh, path

        def write(self, data):
            self.fh.write(bytes(data)[: len(data) // 2])
            self.fh.flush()
            die(f"write {self.path.name} ({len(data) // 2} of {len(data)} bytes)")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    @contextmanager
    def replacing(path):
        with real_replacing(path) as fh:
            yield HalfWriter(fh, path) if fnmatch(str(path), pattern) else fh

    rebind(real_replacing, replacing)
elif point == "append":  # the records append's single os.write gets half the bytes out
    real_os = os

    class HalfWriteOs:
        def write(self, fd, data):
            real_os.write(fd, data[: len(data) // 2])
            die(f"append ({len(data) // 2} of {len(data)} bytes)")

        def __getattr__(self, name):
            return getattr(real_os, name)

    store.os = HalfWriteOs()
elif point == "between":  # just after a record is appended (fsynced), before the next cell
    real_append = store.RunStore.append

    def append(self, record):
        real_append(self, record)
        die("after an append")

    store.RunStore.append = append
else:
    raise SystemExit(f"unknown kill point {point}")

from bench.cli import main

sys.exit(main(argv))
'''

# the forced kill points, in chain order (each needs the work the previous ones left)
FORCED_BEFORE = [
    ("train", ["3"]),  # cell 1: mid-training
    ("write", ["*/artifacts/calibration/*"]),  # cell 1: writing the trained logits
    ("append", []),  # cell 1's record, half written
    ("between", []),  # cell 1 recorded (after the torn line is set aside), cell 2 not begun
]
FORCED_AFTER = [("write", ["*/report.html"])]  # writing the report, report.md in place
# Timed kills, as fractions of the clean run's wall time T. A resumed run of the chain
# skips cell 1 and takes about 0.5-0.7 T (import, cells 2-4, report), so the delays are
# evenly spaced over (0, 0.72 T], plus one drawn uniformly in that span with a fixed seed.
TIMED_FRACTIONS = (0.18, 0.36, 0.54, 0.72)
TIMED_RANDOM = 1
TIMED_SEED = 17


@dataclass
class Step:
    """One run of the chain and the records file it left."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    records: bytes  # records.jsonl after the run
    torn: dict[str, bytes]  # records.jsonl.torn-* files after the run


def _cli_args(sweep: Path, out: Path) -> list[str]:
    return ["--sweep", str(sweep), "--quiet", "--no-figures", "--device", "cpu", "--out", str(out)]


def _run(cmd: list[str], timeout: float | None = None) -> tuple[int, str, str, float]:
    """Run ``cmd`` from the repository root; SIGKILL it after ``timeout`` s if still running.
    Returns (exit status, stdout, stderr, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # SIGKILL
        out, err = proc.communicate()
    return proc.returncode, out, err, time.perf_counter() - start


def _snapshot(name: str, run: tuple[int, str, str, float], out: Path) -> Step:
    path = out / RECORDS_FILE
    torn = {p.name: p.read_bytes() for p in out.glob(f"{RECORDS_FILE}.torn-*")}
    return Step(name, *run, path.read_bytes() if path.exists() else b"", torn)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill_safety")
    (path / "sweep.toml").write_text(SWEEP)
    (path / "killer.py").write_text(KILLER)
    return path


@pytest.fixture(scope="module")
def clean(workdir) -> tuple[Path, float]:
    """A clean run of the command, and its wall time in seconds."""
    out = workdir / "clean"
    command = [sys.executable, "run_all.py", *_cli_args(workdir / "sweep.toml", out)]
    code, _, err, seconds = _run(command)
    assert code == 0, err
    return out, seconds


@pytest.fixture(scope="module")
def chain(workdir, clean) -> tuple[Path, list[Step]]:
    """The chain of killed runs on one run folder, then the plain command to finish it."""
    out = workdir / "killed"
    args = _cli_args(workdir / "sweep.toml", out)
    plain = [sys.executable, "run_all.py", *args]
    killer = [sys.executable, str(workdir / "killer.py")]
    rng = random.Random(TIMED_SEED)
    drawn = [rng.uniform(0, TIMED_FRACTIONS[-1]) for _ in range(TIMED_RANDOM)]
    fractions = [*TIMED_FRACTIONS, *drawn]
    steps: list[Step] = []
    for point, params in FORCED_BEFORE:
        name = f"{point} {' '.join(params)}".strip()
        steps.append(_snapshot(name, _run([*killer, point, *params, "--", *args]), out))
    for fraction in fractions:
        delay = fraction * clean[1]
        steps.append(_snapshot(f"timed {delay:.1f}s", _run(plain, timeout=delay), out))
    for point, params in FORCED_AFTER:
        name = f"{point} {' '.join(params)}".strip()
        steps.append(_snapshot(name, _run([*killer, point, *params, "--", *args]), out))
    steps.append(_snapshot("final resume", _run(plain), out))
    print(f"clean run: {clean[1]:.1f}s")  # shown with -s, and with a failing test's output
    for step in steps:
        where = step.stderr.split("KILLED ")[-1].strip() if "KILLED " in step.stderr else ""
        lines = step.records.count(b"\n")
        print(f"{step.name}: status {step.returncode}, {step.seconds:.1f}s, {lines} lines {where}")
    return out, steps


def _lines(data: bytes) -> tuple[list[dict], bytes]:
    """The records of a records.jsonl's whole lines (each must be a valid record), and the
    bytes after its last newline (a torn line)."""
    *whole, tail = data.split(b"\n")
    records = []
    for number, line in enumerate(whole, start=1):
        record = json.loads(line)  # a whole line is whole JSON
        assert record_problem(record) is None, f"line {number}: {record_problem(record)}"
        records.append(record)
    return records, tail


def _ok_keys(records: list[dict]) -> Counter:
    return Counter(r["cell_key"] for r in records if r["status"] == "ok")


def _bits(value):
    """A value with every float replaced by its exact hex form (bit-for-bit comparison)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bits(v) for v in value]
    return value


def _latest(out: Path) -> dict[str, dict]:
    """The store's newest record per cell, read with no warning (nothing unreadable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return {key: vars(record) for key, record in RunStore(out).latest().items()}


def test_every_forced_kill_hit_its_point_and_no_lock_refused_a_resume(chain):
    _, steps = chain
    forced = [s for s in steps if not s.name.startswith(("timed", "final"))]
    assert len(forced) == len(FORCED_BEFORE) + len(FORCED_AFTER)
    for step in forced:  # killed where meant: past taking the lock the killed run before left
        assert step.returncode == -signal.SIGKILL, f"{step.name}: {step.returncode}\n{step.stderr}"
        assert "KILLED " in step.stderr, f"{step.name} ended without reaching its point"
    for step in steps:
        assert "in use by" not in step.stderr, f"{step.name}: refused by a dead run's lock"
        assert step.returncode in (0, -signal.SIGKILL), f"{step.name}:\n{step.stderr}"
    assert steps[-1].returncode == 0, steps[-1].stderr
    assert " 0 failed" in steps[-1].stdout, steps[-1].stdout


def test_no_record_is_ever_torn_or_duplicated(chain):
    _, steps = chain
    torn_by: dict[int, bytes] = {}
    for i, step in enumerate(steps):
        records, tail = _lines(step.records)
        duplicated = {k: n for k, n in _ok_keys(records).items() if n > 1}
        assert not duplicated, f"after {step.name}: cells recorded ok twice: {duplicated}"
        if step.name == "append":  # the only run that may leave a torn last line
            assert tail and not tail.endswith(b"}"), f"append kill left no torn line: {tail!r}"
            assert f"({len(tail)} of " in step.stderr  # exactly the bytes written before dying
            torn_by[i] = tail
        else:
            assert tail == b"", f"after {step.name}: torn last line {tail[:80]!r}"
    assert torn_by, "no append kill in the chain"
    for i, tail in torn_by.items():  # the next run moved the torn bytes aside, unchanged
        assert not steps[i].torn
        assert list(steps[i + 1].torn.values()) == [tail], steps[i + 1].torn.keys()
        assert next(iter(steps[i + 1].torn)) in steps[i + 1].stderr  # a warning names it
    assert steps[-1].torn == steps[list(torn_by)[-1] + 1].torn  # and nothing else is torn


def test_the_resumed_cells_equal_the_clean_runs(chain, clean):
    out, steps = chain
    records, _ = _lines(steps[-1].records)
    clean_records, _ = _lines((clean[0] / RECORDS_FILE).read_bytes())
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records]
    assert len(clean_records) == N_CELLS == len(records)  # no cell recorded twice
    assert set(_latest(out)) == set(_latest(clean[0])) == {r["cell_key"] for r in records}


def test_metrics_curves_and_items_are_bit_for_bit_the_clean_runs(chain, clean):
    out, _ = chain
    latest, clean_latest = _latest(out), _latest(clean[0])
    for key, record in clean_latest.items():
        label = f"{record['method']} seed={record['seed']}"
        assert _bits(latest[key]["metrics"]) == _bits(record["metrics"]), label
        assert _bits(latest[key]["curves"]) == _bits(record["curves"]), label
        with (
            np.load(out / "items" / f"{key}.npz") as got,
            np.load(clean[0] / "items" / f"{key}.npz") as want,
        ):
            assert sorted(got.files) == sorted(want.files), label
            for name in want.files:
                a, b = got[name], want[name]
                assert a.dtype == b.dtype and a.shape == b.shape, f"{label} {name}"
                assert a.tobytes() == b.tobytes(), f"{label} {name}"


def test_the_report_is_complete_and_the_folder_records_one_invocation(chain, clean):
    out, _ = chain
    for name in ("report.md", "report.html", "tables.tex"):
        assert (out / name).stat().st_size > 0, name
    assert "calibration" in (out / "report.md").read_text().lower()
    assert (out / "tests.csv").read_bytes() == (clean[0] / "tests.csv").read_bytes()
    config = tomllib.loads((out / "config.toml").read_text())
    assert len(config["invocation"]) == 1  # every resume was seen as the same command
    assert (out / ".lock").read_text() == ""  # released by the finishing run


def test_a_killed_run_leaves_only_temporary_and_torn_files_beside_the_clean_runs(chain, clean):
    out, _ = chain

    def files(root: Path) -> set[Path]:
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}

    extra = files(out) - files(clean[0])
    assert files(clean[0]) <= files(out)
    # a killed writer's temporary file stays (nothing can remove it), under a hidden name no
    # reader looks at; torn record bytes are kept for inspection
    odd = [p for p in extra if not p.name.startswith(".") or not p.name.endswith(".tmp")]
    assert [p.name for p in odd if not p.name.startswith(f"{RECORDS_FILE}.torn-")] == []

"""One writer per run folder (bench/run_lock.py): refused while held, taken over when the
holder dies, and the unique temporary files that artifacts are written through."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench import run_lock
from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from pathlib import Path
from bench.run_lock import hold
with hold(Path(sys.argv[1]), "holder-snippet"):
    print("locked", flush=True)
    time.sleep(60)
"""


def small_logits(path, n=200, k=5):
    rng = np.random.default_rng(0)
    np.savez(path, logits=rng.normal(0, 2, (n, k)), labels=rng.integers(0, k, n))
    return path


def calibrate_args(logits, out, quiet=True):
    args = ["calibrate", "--logits", str(logits), "--seeds", "2", "--no-figures"]
    return [*args, "--out", str(out), *(["--quiet"] if quiet else [])]


def test_hold_records_the_holder_and_refuses_a_second_writer(tmp_path):
    with run_lock.hold(tmp_path, "first command"):
        info = json.loads((tmp_path / ".lock").read_text())
        assert info["pid"] == os.getpid() and info["command"] == "first command"
        with pytest.raises(run_lock.RunFolderLocked) as err:  # flock: per open file, too
            with run_lock.hold(tmp_path, "second command"):
                pass
        message = str(err.value)
        assert f"pid {os.getpid()}" in message and "first command" in message
        assert str(tmp_path) in message and "\n" not in message
    assert (tmp_path / ".lock").read_text() == ""  # released: no holder recorded
    with run_lock.hold(tmp_path, "third command"):
        pass


def test_cli_refuses_a_held_folder_then_takes_it_over_when_the_holder_is_killed(tmp_path, capsys):
    logits, out = small_logits(tmp_path / "L.npz"), tmp_path / "run"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert main(calibrate_args(logits, out)) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "holder-snippet" in err and str(out) in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (out / "records.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(calibrate_args(logits, out, quiet=False)) == 0  # the kernel freed the lock
    assert f"took over {out / '.lock'} left by pid {holder.pid}" in capsys.readouterr().err
    assert len((out / "records.jsonl").read_text().splitlines()) == 10


def test_two_calibrate_commands_started_together_one_exits_2(tmp_path):
    logits, out = small_logits(tmp_path / "L.npz"), tmp_path / "R"
    command = [sys.executable, str(ROOT / "run_all.py"), *calibrate_args(logits, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes share 2 cores
    procs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1].decode()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2]
    refused = next(err for code, err in results if code == 2)
    assert "is in use by pid" in refused and "Traceback" not in refused
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    keys = [(r["method"]["calibrator"], r["seed"]) for r in records]
    assert len(keys) == 10 and len(set(keys)) == 10  # no duplicate records


def test_taking_the_lock_removes_temporaries_a_killed_writer_left(tmp_path):
    (tmp_path / "artifacts").mkdir()
    left = [tmp_path / ".report.html.k3j2.tmp", tmp_path / "artifacts" / ".a.npz.x9.tmp"]
    kept = [tmp_path / "report.html", tmp_path / "records.jsonl.torn-20261129T0000Z-ab"]
    for p in left + kept:
        p.write_text("x")
    with run_lock.hold(tmp_path, "test"):
        assert not any(p.exists() for p in left)
        assert all(p.exists() for p in kept)


def test_artifact_lock_makes_a_second_maker_wait(tmp_path):
    """Two makers of one artifact: the second waits until the first has written it."""
    path = tmp_path / "scores.json"
    order = []
    entered = threading.Event()

    def first():
        with run_lock.artifact_lock(path):
            entered.set()
            time.sleep(0.3)
            path.write_text("made")
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    entered.wait(5)
    with run_lock.artifact_lock(path):
        order.append(f"second sees {path.read_text()}")
    thread.join()
    assert order == ["first done", "second sees made"]

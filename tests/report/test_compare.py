"""compare NEW OLD: planted regressions are caught and named; changed configs are not."""

import copy
import json

import pytest

from bench.cli import main
from bench.report.compare import (
    NEWLY_FAILING,
    NOT_COMPARABLE,
    NOT_SIGNIFICANT,
    SAME,
    SLOWER,
    WORSE,
    compare_runs,
)
from bench.store import Record, RunStore, stable_hash

ECE = [0.031, 0.027, 0.035]  # per seed


def _records(ece=ECE, acc=(0.91, 0.92, 0.90), speed=1000.0, probe=50.0, config=None):
    out = []
    for seed, (e, a) in enumerate(zip(ece, acc, strict=True)):
        out.append(
            Record(
                run_id="r",
                task="calibration",
                method={"classifier": "cnn", "calibrator": "temperature"},
                config=config or {"epochs": 150},
                seed=seed,
                scale="quick",
                metrics={"ece": e, "accuracy": a, "temperature": 1.5 + seed},
                timing={"train_samples_per_s": speed},
                env={"probe_gflops": probe, "data_hash": "abc", "task_version": 1},
                cell_key=stable_hash([seed, config]),
            )
        )
    return out


def _write(folder, records):
    store = RunStore(folder)
    for r in records:
        store.append(r)
    return folder


def _verdicts(result):
    return {(r.metric): r.verdict for r in result.rows}


def test_identical_runs_have_no_regression(tmp_path):
    old = _write(tmp_path / "old", _records())
    new = _write(tmp_path / "new", _records())
    result = compare_runs(new, old)
    assert not result.regressions()
    assert _verdicts(result)["ece"] == SAME
    assert main(["compare", str(new), str(old)]) == 0


def test_planted_regression_is_caught_and_named(tmp_path, capsys):
    old = _write(tmp_path / "old", _records())
    worse = [e + 0.02 + 0.001 * k for k, e in enumerate(ECE)]  # +2 points ECE on each seed
    new = _write(tmp_path / "new", _records(ece=worse))
    result = compare_runs(new, old)
    row = next(r for r in result.rows if r.metric == "ece")
    assert row.verdict == WORSE and row.p < 0.05
    assert row.delta == pytest.approx(2.1, abs=1e-9)  # in display units (percentage points)
    assert _verdicts(result)["accuracy"] == SAME
    assert _verdicts(result)["temperature"] == "info"  # not ranked: never a regression
    assert main(["compare", str(new), str(old)]) == 3
    out = capsys.readouterr().out
    assert "1 regression" in out and "| ece |" in out and "worse" in out
    saved = json.loads((new / "compare.json").read_text())
    assert any(r["metric"] == "ece" and r["verdict"] == WORSE for r in saved)


def test_improvement_and_changes_within_tolerance(tmp_path):
    old = _write(tmp_path / "old", _records())
    new = _write(tmp_path / "new", _records(ece=[e - 0.02 for e in ECE], acc=(0.912, 0.921, 0.9)))
    verdicts = _verdicts(compare_runs(new, old))
    assert verdicts["ece"] == "better"
    assert verdicts["accuracy"] == SAME  # +0.1 points < tolerance 0.5


def test_noisy_change_is_not_significant(tmp_path):
    old = _write(tmp_path / "old", _records())
    new = _write(tmp_path / "new", _records(ece=[0.06, 0.01, 0.04]))  # mean +0.6 pts, noisy
    assert _verdicts(compare_runs(new, old))["ece"] == NOT_SIGNIFICANT


def test_one_seed_never_gates(tmp_path):
    old = _write(tmp_path / "old", _records()[:1])
    new = _write(tmp_path / "new", _records(ece=[0.2, 0, 0])[:1])
    result = compare_runs(new, old)
    assert _verdicts(result)["ece"] == NOT_SIGNIFICANT and not result.regressions()


def test_changed_config_is_not_comparable_rather_than_regressed(tmp_path, capsys):
    old = _write(tmp_path / "old", _records())
    new = _write(tmp_path / "new", _records(ece=[0.3, 0.3, 0.3], config={"epochs": 300}))
    result = compare_runs(new, old)
    assert [r.verdict for r in result.rows] == [NOT_COMPARABLE]
    assert "config" in result.rows[0].note
    assert result.unchecked() == result.rows and not result.regressions()
    # a cell nothing checked fails the command, naming it and the refresh command
    assert main(["compare", str(new), str(old)]) == 3
    err = capsys.readouterr().err
    assert "calibration[classifier=cnn, calibrator=temperature] (config)" in err
    assert f"rm -rf {old} && python run_all.py --suite quick" in err
    assert main(["compare", str(new), str(old), "--allow-unchecked"]) == 0


def test_changed_data_is_not_comparable(tmp_path):
    old = _write(tmp_path / "old", _records())
    changed = _records()
    for r in changed:
        r.env = {**r.env, "data_hash": "other"}
    result = compare_runs(_write(tmp_path / "new", changed), old)
    assert result.rows[0].verdict == NOT_COMPARABLE and result.rows[0].note == "data"


def test_changed_code_is_compared_and_said(tmp_path):
    """A new task version is what the gate is for: the cells are compared, not excused."""
    old = _write(tmp_path / "old", _records())
    refactored = _records()
    for r in refactored:
        r.env["task_version"] = "a1b2c3"
    result = compare_runs(_write(tmp_path / "new", refactored), old)
    row = next(r for r in result.rows if r.metric == "ece")
    assert row.verdict == SAME and "code changed" in row.note
    worse = _records(ece=[e + 0.02 + 0.001 * k for k, e in enumerate(ECE)])
    for r in worse:
        r.env["task_version"] = "a1b2c3"
    assert [r.metric for r in compare_runs(_write(tmp_path / "bad", worse), old).regressions()] == [
        "ece"
    ]


def test_newly_failing_cell_fails_the_comparison(tmp_path):
    old = _write(tmp_path / "old", _records())
    failing = copy.deepcopy(_records())
    failing[1].status, failing[1].error, failing[1].metrics = "failed", "RuntimeError: boom", {}
    new = _write(tmp_path / "new", failing)
    result = compare_runs(new, old)
    assert [r.verdict for r in result.rows] == [NEWLY_FAILING]
    assert "boom" in result.rows[0].note
    assert main(["compare", str(new), str(old)]) == 3


def test_stored_speed_is_normalised_by_the_probe_and_never_gates(tmp_path):
    old = _write(tmp_path / "old", _records(speed=1000.0, probe=50.0))
    slower_machine = _write(tmp_path / "a", _records(speed=500.0, probe=25.0))
    assert _verdicts(compare_runs(slower_machine, old))["train_samples_per_s"] == SAME
    slower_code = _write(tmp_path / "b", _records(speed=500.0, probe=50.0))
    result = compare_runs(slower_code, old)
    row = next(r for r in result.rows if r.metric == "train_samples_per_s")
    assert row.verdict == SLOWER and row.delta == pytest.approx(0.5)
    assert not result.regressions() and "not gated" in row.note
    assert main(["compare", str(slower_code), str(old)]) == 0


def test_compare_names_a_bad_folder(tmp_path, capsys):
    old = _write(tmp_path / "old", _records())
    assert main(["compare", str(tmp_path / "nope"), str(old)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_flop_counts_memory_and_mfu_are_not_probe_normalised(tmp_path):
    """A FLOP count does not change with the machine: the same count on a slower probe is
    'same', not 'faster' (what the probe correction would wrongly make of it)."""

    def with_timing(probe, flops):
        recs = _records(probe=probe)
        for r in recs:
            r.timing.update(flops_per_sample=flops, peak_mem_mb=100.0, mfu=0.2)
        return recs

    old = _write(tmp_path / "old", with_timing(probe=50.0, flops=1e9))
    same_work = _write(tmp_path / "a", with_timing(probe=25.0, flops=1e9))
    verdicts = _verdicts(compare_runs(same_work, old))
    assert verdicts["flops_per_sample"] == verdicts["peak_mem_mb"] == verdicts["mfu"] == SAME
    assert verdicts["train_samples_per_s"] != SAME  # throughput is still probe-normalised
    more_work = _write(tmp_path / "b", with_timing(probe=50.0, flops=2e9))
    assert _verdicts(compare_runs(more_work, old))["flops_per_sample"] == SLOWER


def test_ignore_names_what_can_be_ignored(tmp_path, capsys):
    old = _write(tmp_path / "old", _records())
    other_data = _records()
    for r in other_data:
        r.env["data_hash"] = "rehashed"
    new = _write(tmp_path / "new", other_data)
    assert _verdicts(compare_runs(new, old, ignore=("data",)))["ece"] == SAME
    assert main(["compare", str(new), str(old), "--ignore", "data"]) == 0
    assert main(["compare", str(new), str(old), "--ignore", "code"]) == 2
    assert "--ignore" in capsys.readouterr().err


def test_a_cell_missing_from_the_baseline_is_unchecked_and_fails(tmp_path, capsys):
    old = _write(tmp_path / "old", _records())
    extra = _records()
    for r in extra:
        r.method = {"classifier": "cnn", "calibrator": "platt_top"}
        r.cell_key = "x" + r.cell_key
    new = _write(tmp_path / "new", _records() + extra)
    result = compare_runs(new, old)
    assert [r.method for r in result.unchecked()] == ["classifier=cnn, calibrator=platt_top"]
    assert main(["compare", str(new), str(old)]) == 3
    assert "platt_top" in capsys.readouterr().err

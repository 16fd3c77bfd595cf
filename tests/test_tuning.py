"""Equal tuning budgets (bench.tuning): trial cells, the choice on validation, tuned cells,
run end to end through the sweep and shown in the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench import registry, tuning
from bench.context import RunContext
from bench.registry import register
from bench.report.finding_checks import RunData
from bench.report.model import build_report_data
from bench.report.tuning_table import tuning_table
from bench.store import Cell, Record, RunStore, latest_records
from bench.sweep import run_staged
from bench.tasks.base import NONE, CellResult, Task
from bench.tuned_stage import TunedStage

BEST_LR = 3e-3


class Widget:
    """A registered "method" with a search space of its own (as the losses declare)."""

    search_space = (("width", 1.0, 10.0, "linear"),)

    def __init__(self, width: float = 2.0) -> None:
        self.width = width


SPEC = tuning.TuningSpec(
    select="valid_score",
    higher_is_better=True,
    trials={"quick": 6},
    shared=(tuning.Param("lr", 1e-4, 1e-1, log=True),),
    family="widget",
)


class TunedToy(Task):
    """A task whose validation score peaks at lr = BEST_LR and width = 5 (and whose test
    score is the opposite: choosing on test would pick another point)."""

    families = ("widget", tuning.COLUMN)
    axes = {tuning.COLUMN: tuning.HP_VALUES}
    rows = {
        "quick": [
            {"widget": NONE, tuning.COLUMN: NONE},
            {"widget": "toy_widget", tuning.COLUMN: tuning.DEFAULT},
        ]
    }
    baseline = {"widget": NONE, tuning.COLUMN: NONE}
    table_metrics = ("test_score",)
    tuning = SPEC

    def config(self, scale):
        return {"lr": 1e-3, "method_params": {}}

    def run(self, cell, ctx):
        lr = cell.config["lr"]
        width = cell.config["method_params"].get("width", 2.0)
        valid = -((math.log10(lr) - math.log10(BEST_LR)) ** 2) - (width - 5) ** 2 / 10
        if cell.method["widget"] == NONE:
            valid = -100.0
        noise = 1e-3 * cell.seed
        return CellResult(metrics={"valid_score": valid, "test_score": -valid + noise})


@pytest.fixture
def toy(monkeypatch):
    registry.load_all()
    for family in ("task", "widget"):
        monkeypatch.setitem(registry._REGISTRY, family, dict(registry._REGISTRY.get(family, {})))
    register("widget", "toy_widget")(Widget)
    register("task", "tuned_toy")(TunedToy)
    return registry.build("task", "tuned_toy")


def test_param_draws_stay_in_range_and_reject_bad_ranges():
    rng = np.random.default_rng(0)
    log = tuning.Param.of(("t", 0.01, 1.0, "log"))
    draws = [log.draw(rng) for _ in range(2000)]
    assert 0.01 <= min(draws) and max(draws) <= 1.0
    # log-uniform: about half the draws below the geometric mean 0.1
    assert abs(np.mean(np.array(draws) < 0.1) - 0.5) < 0.05
    with pytest.raises(ValueError, match="0 < low < high"):
        tuning.Param("lr", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="'linear' or 'log'"):
        tuning.Param.of(("x", 1, 2, "cubic"))


def test_trial_cells_only_for_default_rows_at_seed_0_and_reproducible(toy):
    cells = toy.cells("quick", [0, 1])
    trials = [c for c in cells if tuning.is_trial(c.method)]
    assert [c.method[tuning.COLUMN] for c in trials] == [f"trial{k}" for k in range(1, 6)]
    assert {c.seed for c in trials} == {0}
    assert all(c.method["widget"] == "toy_widget" for c in trials)
    for c in trials:
        assert 1e-4 <= c.config["lr"] <= 1e-1
        assert 1.0 <= c.config["method_params"]["width"] <= 10.0
    # the same points on every call (they are part of the cells' keys)
    again = [c for c in toy.cells("quick", [0, 1]) if tuning.is_trial(c.method)]
    assert [c.key for c in again] == [c.key for c in trials]
    assert len({c.key for c in trials}) == 5


def _record(cell: Cell, valid: float | None, status: str = "ok") -> Record:
    metrics = {} if valid is None else {"valid_score": valid}
    return Record(
        run_id="r",
        task=cell.task,
        method=cell.method,
        config=cell.config,
        seed=cell.seed,
        scale=cell.scale,
        metrics=metrics,
        status=status,
        cell_key=cell.key,
    )


def test_second_stage_picks_the_best_validation_point(toy):
    cells = toy.cells("quick", [0, 1])
    default0 = next(c for c in cells if c.method[tuning.COLUMN] == tuning.DEFAULT and c.seed == 0)
    trials = [c for c in cells if tuning.is_trial(c.method)]
    scores = [0.1, 0.5, 0.9, 0.2, 0.3]
    records = [_record(default0, 0.4)] + [
        _record(c, s) for c, s in zip(trials, scores, strict=True)
    ]
    records.append(_record(trials[0], None, status="failed"))  # a failed rerun is ignored
    tuned = tuning.second_stage(cells, records, lambda name: toy)
    assert [c.seed for c in tuned] == [0, 1]  # every seed of the default row
    assert all(c.method[tuning.COLUMN] == tuning.TUNED for c in tuned)
    assert all(c.config == trials[2].config for c in tuned)  # trial3 scored 0.9

    lower = tuning.TuningSpec(**{**SPEC.__dict__, "higher_is_better": False})
    toy_low = type("Low", (TunedToy,), {"tuning": lower})()
    toy_low.registry_name = "tuned_toy"
    tuned = tuning.second_stage(cells, records, lambda name: toy_low)
    assert all(c.config == trials[0].config for c in tuned)  # trial1 scored 0.1

    # the default point wins: the tuned rows run the default config
    records = [_record(default0, 2.0)] + [
        _record(c, s) for c, s in zip(trials, scores, strict=True)
    ]
    tuned = tuning.second_stage(cells, records, lambda name: toy)
    assert all(c.config == default0.config for c in tuned)

    # ... and every tuned cell is then a default-row cell that already ran: none runs again
    ran = records + [_record(c, 0.0) for c in cells if c.seed == 1 and c.method["widget"] != NONE]
    reused = tuning.already_ran(tuned, ran)
    assert {k: (r.seed, r.method[tuning.COLUMN]) for k, r in reused.items()} == {
        c.key: (c.seed, tuning.DEFAULT) for c in tuned
    }
    # a trial's point wins: only seed 0 (the trial itself) has run
    records[3] = _record(trials[2], 9.0)
    tuned = tuning.second_stage(cells, records, lambda name: toy)
    reused = tuning.already_ran(tuned, ran)
    assert [r.cell_key for r in reused.values()] == [trials[2].key]
    assert list(reused) == [next(c.key for c in tuned if c.seed == 0)]
    # a failed trial is no computation to reuse
    failed = [r for r in ran if r.cell_key != trials[2].key] + [
        _record(trials[2], 9.0, status="failed")
    ]
    assert tuning.already_ran(tuned, failed) == {}

    # no finished trial: no tuned cells
    assert tuning.second_stage(cells, [], lambda name: toy) == []

    # a row the task does not tune has no search: no choice, no tuned cells
    untuned = tuning.TuningSpec(**{**SPEC.__dict__, "tunable": lambda m: False})
    toy_off = type("Off", (TunedToy,), {"tuning": untuned})()
    toy_off.registry_name = "tuned_toy"
    assert tuning.choices(toy_off, records) == []
    assert tuning.second_stage(cells, records, lambda name: toy_off) == []


def test_run_staged_runs_trials_then_tuned_rows_and_the_report_keeps_them_apart(
    toy, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path / "cache"))  # the ETA's cell times
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True)
    cells = toy.cells("quick", [0, 1])
    assert tuning.tuned_count(cells, lambda name: toy) == 2  # what --dry-run announces
    summary = run_staged(cells, ctx, "r")
    assert not summary.failed
    records = latest_records(tmp_path)
    hp = [r.method[tuning.COLUMN] for r in records]
    assert hp.count(tuning.TUNED) == 2 and sum(h.startswith("trial") for h in hp) == 5
    chosen = next(r for r in records if r.method[tuning.COLUMN] == tuning.TUNED)
    valid_of = {
        r.method[tuning.COLUMN]: r.metrics["valid_score"]
        for r in records
        if r.seed == 0 and r.method["widget"] != NONE and r.method[tuning.COLUMN] != tuning.TUNED
    }
    assert chosen.metrics["valid_score"] == max(valid_of.values())  # chosen on validation
    # the tuned seed-0 cell is the chosen trial's computation: copied, not run again
    by_key = {r.cell_key: r for r in records}
    tuned0 = next(r for r in records if r.method[tuning.COLUMN] == tuning.TUNED and r.seed == 0)
    source = by_key[tuned0.env["reused_from"]]
    assert source.method[tuning.COLUMN] != tuning.TUNED and source.seed == 0
    assert source.metrics == tuned0.metrics and source.config == tuned0.config
    assert tuned0.seconds == 0.0 and tuned0.cell_key != source.cell_key
    tuned1 = next(r for r in records if r.method[tuning.COLUMN] == tuning.TUNED and r.seed == 1)
    assert "reused_from" not in tuned1.env  # seed 1 at the chosen point had not run: it ran
    assert len(summary.ran) == len(cells) + 2
    # a resumed run derives the same tuned cells and runs nothing
    again = run_staged(cells, ctx, "r")
    assert not again.ran and len(again.skipped) == len(cells) + 2

    table = tuning_table(toy, records, RunData(tmp_path, records))
    assert len(table.rows) == 6 and sum(row[-1] == "✓" for row in table.rows) == 1
    # the gain on test: the toy's test score falls as its valid score rises
    (gain,) = table.gains
    by_seed = {
        (r.method[tuning.COLUMN], r.seed): r.metrics["test_score"]
        for r in records
        if r.method["widget"] != NONE
    }
    delta = sum(by_seed["tuned", s] - by_seed["default", s] for s in (0, 1)) / 2
    assert float(gain[1]) == pytest.approx(delta, abs=0.01) and delta < 0
    assert "over seeds" in gain[-1]
    assert "width=2" in table.rows[0][3]  # the default point shows the signature's default
    data = build_report_data(tmp_path, figures=False)
    rows = [r.method[tuning.COLUMN] for r in data.sections[0].table.rows]
    assert sorted(rows) == sorted([NONE, tuning.DEFAULT, tuning.TUNED])  # no trial rows


def test_tuned_cells_are_queued_as_soon_as_their_task_finishes_its_first_stage(
    toy, tmp_path, monkeypatch
):
    """The tuned stage follows the run: nothing before the task's last first-stage record
    (a failed one counts as finished), then its tuned cells to run, the copies stored."""
    register("task", "other_toy")(type("OtherToy", (TunedToy,), {}))
    other = registry.build("task", "other_toy")
    cells = toy.cells("quick", [0, 1])
    later = other.cells("quick", [0])
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True)
    stage = TunedStage(cells + later, ctx, "r")
    assert stage.follow(None) == []
    store = RunStore(tmp_path)
    for i, cell in enumerate(cells):
        valid = 1.0 if cell.method[tuning.COLUMN] == "trial2" else 0.0
        status = "failed" if cell.method[tuning.COLUMN] == "trial4" else "ok"
        record = _record(cell, valid, status)
        store.append(record)
        queued = stage.follow(record)
        if i < len(cells) - 1:
            assert queued == []
    assert [(c.task, c.seed, c.method[tuning.COLUMN]) for c in queued] == [
        ("tuned_toy", 1, "tuned")
    ]
    trial2 = next(c for c in cells if c.method[tuning.COLUMN] == "trial2")
    assert queued[0].config == trial2.config
    copy = next(r for r in latest_records(tmp_path) if r.method[tuning.COLUMN] == tuning.TUNED)
    assert copy.env["reused_from"] == trial2.key and copy.seed == 0
    assert [c.seed for c in stage.copied] == [0]
    # the other task's stage is its own: released by its own last record only
    for cell in later[:-1]:
        assert stage.follow(_record(cell, 0.0)) == []
    assert stage.follow(_record(later[-1], 0.0)) == []  # not stored: no trials, no tuned

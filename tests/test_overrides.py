"""--set task.field=value: parsed as TOML, type-checked, applied to that task's cells only,
and recorded in every record."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.overrides import apply_sets, parse_sets, parse_value
from bench.sweep import expand


@pytest.mark.parametrize(
    "text, value",
    [("600", 600), ("1e-3", 1e-3), ("true", True), ('"gru"', "gru"), ("gru", "gru"),
     ("[1, 2]", [1, 2]), ("none", None)],
)  # fmt: skip
def test_values_are_toml_and_bare_words_are_strings(text, value):
    assert parse_value(text) == value


def test_each_set_reaches_only_its_tasks_cells():
    cells = expand("quick", ["calibration", "digits_metric"], seeds=1, check_data=False)
    out = apply_sets(cells, ["calibration.epochs=7", "calibration.lr=0.01"])
    for before, after in zip(cells, out, strict=True):
        if before.task == "calibration":
            assert after.config["epochs"] == 7 and after.config["lr"] == 0.01
            assert after.key != before.key  # resuming never mixes the default cells in
        else:
            assert after == before
    assert parse_sets(["g2p.steps=1", "g2p.lr=2"]) == {"g2p": {"steps": 1, "lr": 2}}


@pytest.mark.parametrize(
    "item, match",
    [
        ("calibration.epochz=3", "no key 'epochz'; known here: .*epochs"),
        ("calibration.epochs=many", "expected int, got 'many'"),
        ("g2p.steps=3", "task 'g2p' is not in this run"),
        ("epochs=3", "expected TASK.FIELD=VALUE"),
    ],
)
def test_bad_sets_are_input_errors_that_name_the_fix(item, match):
    cells = expand("quick", ["calibration"], seeds=1, check_data=False)
    with pytest.raises(ValueError, match=match):
        apply_sets(cells, [item])


def test_a_run_records_the_override(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--suite", "quick", "--tasks", "calibration", "--seeds", "1", "--quiet"]
    argv += ["--methods", "classifier=mlp,calibrator=none", "--out", str(out)]
    assert main([*argv, "--set", "calibration.epochs=2", "--set", "calibration.eval_every=1"]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert records and all(r["config"]["epochs"] == 2 for r in records)
    assert main([*argv, "--set", "calibration.epochs=2.5"]) == 2
    assert "expected int" in capsys.readouterr().err


def test_upstream_is_a_set_for_each_task_that_takes_one(tmp_path):
    from dataclasses import replace

    from bench.overrides import upstream_sets

    cells = expand("quick", ["calibration"], seeds=1, check_data=False)
    assert upstream_sets(cells, None) == []
    with pytest.raises(ValueError, match="no such folder; give a local transformers"):
        upstream_sets(cells, tmp_path / "missing")
    with pytest.raises(ValueError, match=r"none of this run's tasks \(calibration\)"):
        upstream_sets(cells, tmp_path)
    taking = [replace(c, config={**c.config, "upstream": ""}) for c in cells]
    (sets,) = upstream_sets(taking, tmp_path)
    assert apply_sets(taking, [sets])[0].config["upstream"] == str(tmp_path.resolve())


def test_frontend_hf_without_an_upstream_is_a_usage_error(capsys):
    argv = ["--suite", "quick", "--tasks", "speaker", "--methods", "frontend=hf", "--dry-run"]
    assert main(argv) == 2
    assert "frontend=hf needs --upstream PATH" in capsys.readouterr().err

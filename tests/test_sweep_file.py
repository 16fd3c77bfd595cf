"""Sweep files: parsing, strict errors, hyper-parameter grids and --dry-run."""

import pytest

from bench import registry
from bench.cli import main
from bench.sweep_file import expand_sweep, load_sweep

SWEEP = """
description = "two calibrators at two epoch counts"
suite = "quick"
seeds = 2

[[grid]]
task = "calibration"
methods = { classifier = ["mlp"], calibrator = ["none", "temperature"] }
config = { epochs = [5, 10] }
"""


@pytest.fixture(autouse=True)
def _registry():
    registry.load_all()


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sweep_expands_methods_seeds_and_hyper_parameters(tmp_path):
    cells = expand_sweep(load_sweep(_write(tmp_path, SWEEP)))
    assert len(cells) == 2 * 2 * 2  # calibrators x epochs x seeds
    assert {c.config["epochs"] for c in cells} == {5, 10}
    assert all(c.method["epochs"] == str(c.config["epochs"]) for c in cells)
    assert len({c.key for c in cells}) == len(cells)
    assert {c.seed for c in cells} == {0, 1}


def test_dry_run_prints_the_cells_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--sweep", str(_write(tmp_path, SWEEP)), "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 cells" in printed and "calibrator=temperature,epochs=10] seed=1" in printed
    assert not out.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suite = 'huge'\n[[grid]]\ntask = 'calibration'", "suite 'huge' unknown"),
        ("sedes = 3\n[[grid]]\ntask = 'calibration'", "unknown key"),
        ("suite = 'quick'", "no \\[\\[grid\\]\\] table"),
        ("[[grid]]\nmethods = {}", "needs task"),
        ("[[grid]]\ntask = 'calibration'\nconfig = { epoch = [1] }", "no key 'epoch'"),
        ("[[grid]]\ntask = 'calibration'\nmethods = { calibrator = ['platt'] }", "platt"),
        ("[[grid]\ntask = 1", "not valid TOML"),
    ],
)
def test_bad_sweep_files_name_the_problem(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises((ValueError, LookupError), match=message):
        expand_sweep(load_sweep(path))


def test_sweep_excludes_task_and_method_flags(tmp_path, capsys):
    args = ["--sweep", str(_write(tmp_path, SWEEP)), "--tasks", "calibration", "--dry-run"]
    assert main(args) == 2
    assert "drop --tasks" in capsys.readouterr().err


def test_builtin_sweeps_expand(capsys):
    from pathlib import Path

    files = sorted((Path(__file__).parent.parent / "sweeps").glob("*.toml"))
    assert files
    for path in files:
        assert main(["--sweep", str(path), "--dry-run"]) == 0, path
        assert " cells" in capsys.readouterr().out

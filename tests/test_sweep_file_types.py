"""Sweep files: hyper-parameter values checked against the config dataclass's field types
at expand time (so --dry-run catches them), and --data corpora checked once up front."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench import registry
from bench.cli import main
from bench.data.errors import CorpusError
from bench.sweep_file import check_value, config_types, expand_sweep, load_sweep

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _registry():
    registry.load_all()


def _sweep(tmp_path, task, config, name="s.toml"):
    path = tmp_path / name
    path.write_text(f'suite = "quick"\nseeds = 1\n[[grid]]\ntask = "{task}"\nconfig = {config}\n')
    return path


def test_string_for_int_names_file_key_type_and_value(tmp_path):
    path = _sweep(tmp_path, "calibration", '{ epochs = ["abc"] }')
    with pytest.raises(ValueError) as e:
        expand_sweep(load_sweep(path))
    message = str(e.value)
    assert str(path) in message and "[[grid]] #1" in message
    assert "config.epochs: expected int, got 'abc' (str)" in message


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{ epochs = [true] }", "config.epochs: expected int, got True"),
        ("{ epochs = [5, 1.5] }", "config.epochs: expected int, got 1.5"),
        ("{ lr = ['fast'] }", "config.lr: expected float, got 'fast'"),
    ],
)
def test_wrong_types_are_rejected(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        expand_sweep(load_sweep(_sweep(tmp_path, "calibration", config)))


def test_right_types_pass_and_int_widens_to_float(tmp_path):
    cells = expand_sweep(load_sweep(_sweep(tmp_path, "calibration", "{ lr = [1, 0.5] }")))
    assert {c.config["lr"] for c in cells} == {0.5, 1}


def test_nested_keys_are_checked(tmp_path):
    types = config_types("asr", {**_asr_config(), "data": {"librispeech": "/x"}})
    assert types["pretraining.steps"] is int and types["lr"] is float
    path = _sweep(tmp_path, "asr", '{ "pretraining.steps" = ["many"] }')
    with pytest.raises(ValueError, match="config.pretraining.steps: expected int, got 'many'"):
        expand_sweep(load_sweep(path))


def _asr_config():
    from bench.tasks.base import get_task

    return get_task("asr").config("quick")


def test_sequences_literals_and_unknown_annotations():
    from typing import Any, Literal

    check_value([1, 2], tuple[int, ...], "k")
    check_value(None, int | None, "k")
    check_value("x", Any, "k")  # unknown: skipped
    with pytest.raises(ValueError, match=r"k: expected tuple\[int, \.\.\.\], got \[1, 'a'\]"):
        check_value([1, "a"], tuple[int, ...], "k")
    with pytest.raises(ValueError, match="expected Literal"):
        check_value("c", Literal["a", "b"], "k")


def test_dry_run_exits_2_without_traceback(tmp_path):
    path = _sweep(tmp_path, "calibration", '{ epochs = ["abc"] }')
    proc = subprocess.run(
        [sys.executable, "run_all.py", "--sweep", str(path), "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "expected int, got 'abc'" in proc.stderr


def test_data_is_checked_once_per_sweep_not_per_entry(tmp_path, monkeypatch):
    import bench.sweep as sweep_module
    import bench.sweep_file as sweep_file_module

    calls: dict[str, list] = {"sweep_file": [], "expand": []}
    monkeypatch.setattr(sweep_file_module, "check_corpora", calls["sweep_file"].append)
    monkeypatch.setattr(sweep_module, "check_corpora", calls["expand"].append)
    path = tmp_path / "two.toml"
    path.write_text(TWO_ASR_ENTRIES)
    expand_sweep(load_sweep(path), {"librispeech": tmp_path})
    assert calls == {"sweep_file": [{"librispeech": tmp_path}], "expand": []}


TWO_ASR_ENTRIES = 'suite = "quick"\nseeds = 1\n[[grid]]\ntask = "asr"\n[[grid]]\ntask = "asr"\n'


def test_bad_data_corpus_fails_the_sweep_up_front(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    path = tmp_path / "two.toml"
    path.write_text(TWO_ASR_ENTRIES)
    with pytest.raises(CorpusError, match="is an empty folder"):
        expand_sweep(load_sweep(path), {"librispeech": tmp_path / "empty"})
    args = ["--sweep", str(path), "--data", f"librispeech={tmp_path / 'empty'}", "--dry-run"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is an empty folder" in err and "Traceback" not in err

"""The README's "Adding a method" and "Adding a task" examples run as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.cells import run_cell
from bench.context import RunContext
from bench.store import Cell

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(f"## {heading}") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _load(heading: str, module_name: str) -> types.ModuleType:
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module  # dataclasses look their module up
    exec(compile(_example(heading), f"README.md ({heading})", "exec"), module.__dict__)
    return module


def test_adding_a_method_example_registers_a_working_calibrator():
    _load("Adding a method", "readme_method_example")
    assert "platt_top" in registry.names("calibrator")
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 4, 600))
    logits = 4.0 * torch.nn.functional.one_hot(labels, 4).double() + torch.randn(600, 4).double()
    logits[:150] = torch.randn(150, 4).double() * 4  # some confidently wrong rows
    calibrator = registry.build("calibrator", "platt_top").fit(logits, labels)
    probs = calibrator(logits)
    assert torch.allclose(probs.sum(1), torch.ones(600, dtype=probs.dtype))
    nll = torch.nn.functional.nll_loss(probs.log(), labels)
    raw = torch.nn.functional.cross_entropy(logits, labels)
    assert nll < raw  # fitting by NLL lowers the NLL it is fitted on


def test_adding_a_task_example_runs_a_cell_with_items(tmp_path: Path):
    _load("Adding a task", "readme_task_example")
    task = registry.get("task", "digits_accuracy")()
    assert [r["classifier"] for r in task.grid()] == ["mlp", "cnn"]
    config = {**task.config("quick"), "steps": 20}
    cell = Cell(
        task="digits_accuracy", method={"classifier": "mlp"}, seed=0, scale="quick", config=config
    )
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True)
    outcome = run_cell(cell, ctx, "readme", {})
    assert outcome.record.status == "ok", outcome.record.error
    metrics = outcome.record.metrics
    assert 0.5 < metrics["accuracy"] <= 1.0
    assert metrics == task.metrics_from_items(outcome.items, config)
    assert len(outcome.record.curves["train_loss"]) == 20
    assert run_cell(cell, ctx, "readme", {}).record.metrics == metrics  # seeded once, same


@pytest.fixture(autouse=True, scope="module")
def _forget_examples():
    yield
    for family, name in (("calibrator", "platt_top"), ("task", "digits_accuracy")):
        registry._REGISTRY.get(family, {}).pop(name, None)


def _block(heading: str, language: str) -> str:
    text = README.read_text()
    section = text[text.index(f"### {heading}") if f"### {heading}" in text else 0 :]
    section = section[section.index(heading) :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_exporting_results_example_prints_the_shape_it_states(capsys, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.chdir(README.parent)
    code = _block("Exporting results", "python")
    exec(compile(code, "README.md (Exporting results)", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    stated = re.search(r"print\(df\.shape\)  # (\(\d+, \d+\))", code).group(1)
    assert printed[0] == stated  # keep the README's number true when the baseline changes
    assert "temperature" in "\n".join(printed[1:])


def test_exit_codes_examples_exit_as_shown(capsys, monkeypatch):
    from bench.cli import main

    built_in = {k: v for k, v in registry._REGISTRY["calibrator"].items() if k != "platt_top"}
    monkeypatch.setitem(registry._REGISTRY, "calibrator", built_in)  # not the example's

    lines = _block("Exit codes", "console").splitlines()
    cases = [
        (lines[i], lines[i + 1], int(lines[i + 3]))
        for i in range(len(lines))
        if lines[i].startswith("$ python run_all.py")
    ]
    assert len(cases) == 2
    for command, message, status in cases:
        argv = command.split()[3:] + ["--dry-run"]  # an input error stops before any cell runs
        assert main(argv) == status
        assert capsys.readouterr().err.strip() == message


def test_plugin_example_declares_the_group_the_registry_loads():
    from bench.plugins import GROUP

    toml = _block("Adding a method", "toml")
    assert toml.splitlines()[0] == f'[project.entry-points."{GROUP}"]'

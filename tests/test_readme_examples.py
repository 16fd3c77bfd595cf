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

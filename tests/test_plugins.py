"""Plugins: a package installed beside speechbench registers its own method through the
``speechbench.plugins`` entry-point group, and a sweep runs it like a built-in one."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from bench import plugins, registry
from bench.cli import main

PLUGIN_MODULE = '''
import torch

from bench.registry import register
from methods.calibration import Calibrator


@register("calibrator", "halve_logits", display="Halved logits")
class HalveLogits(Calibrator):
    """A fixed temperature of 2: the plugin's own calibrator."""

    def _fit(self, logits, labels):
        pass

    def _transform(self, logits):
        return torch.softmax(logits / 2, dim=1)
'''


def _install(site: Path, name: str, module_text: str, entry: str) -> None:
    """A distribution as pip leaves it in site-packages: the package and its dist-info."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(textwrap.dedent(module_text))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n{entry}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary folder on sys.path; registrations made during the test are undone."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    registry.load_all()  # the built-in names first, so the snapshot below holds them
    before = {f: dict(names) for f, names in registry._REGISTRY.items()}
    yield folder
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    for name in [m for m in sys.modules if m.startswith("demo_plugin")]:
        del sys.modules[name]


def test_a_plugins_method_runs_in_a_sweep(site, tmp_path):
    _install(site, "demo_plugin", PLUGIN_MODULE, "demo = demo_plugin")
    assert [ep.name for ep in plugins.entry_points()] == ["demo"]
    assert plugins.load_plugins() == ["demo"]
    assert "halve_logits" in registry.names("calibrator")
    assert registry.display_name("calibrator", "halve_logits") == "Halved logits"
    out = tmp_path / "run"
    argv = ["--suite", "quick", "--tasks", "calibration", "--seeds", "1", "--quiet"]
    argv += ["--methods", "classifier=mlp,calibrator=halve_logits", "--out", str(out)]
    argv += ["--set", "calibration.epochs=2", "--set", "calibration.eval_every=1"]
    assert main(argv) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    ran = {r["method"]["calibrator"]: r for r in records}
    assert set(ran) == {"none", "halve_logits"}  # the plugin's method beside the baseline
    assert ran["halve_logits"]["status"] == "ok"
    assert ran["halve_logits"]["metrics"]["nll"] != ran["none"]["metrics"]["nll"]


def test_a_broken_plugin_is_one_line_naming_it(site, capsys, monkeypatch):
    _install(site, "demo_plugin_broken", "raise RuntimeError('boom')", "bad = demo_plugin_broken")
    with pytest.raises(plugins.PluginError, match=r"'bad' \(demo_plugin_broken, from demo_plugin"):
        plugins.load_plugins()
    monkeypatch.setattr(registry, "_LOADED", False)  # the next command loads it again
    assert main(["--list"]) == 2
    err = capsys.readouterr().err
    assert "failed to load: RuntimeError: boom; fix or uninstall that package" in err


def test_a_plugin_name_that_collides_with_a_built_in_one_is_an_error(site):
    clash = PLUGIN_MODULE.replace('"halve_logits"', '"temperature"')
    _install(site, "demo_plugin_clash", clash, "clash = demo_plugin_clash")
    with pytest.raises(plugins.PluginError, match="calibrator/temperature is already registered"):
        plugins.load_plugins()

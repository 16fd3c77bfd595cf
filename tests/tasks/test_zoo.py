import math

import numpy as np
import pytest
import torch

from bench.config import build_config
from bench.context import RunContext
from bench.metrics import weighted
from bench.models import zoo_members
from bench.models.zoo_members import ARCHITECTURES, MEMBERS, Member, check_member, check_members
from bench.report import item_stats
from bench.report.zoo_figures import changes, draw, spearman, summary_rows, wilson
from bench.store import Record
from bench.tasks import zoo as zoo_task
from bench.tasks.base import get_task
from bench.tasks.zoo import ZooConfig, paired_change

TINY = {**get_task("zoo").config("quick"), "teacher_epochs": 2, "n_boot": 50}


def test_default_zoo_spans_every_architecture_and_axis():
    members = check_members(MEMBERS)
    names = [m.name for m in members]
    assert len(names) >= 40 and len(set(names)) == len(names)
    assert {m.arch for m in members} == set(ARCHITECTURES)
    for arch in ARCHITECTURES:  # each architecture varies in width and epochs
        mine = [m for m in members if m.arch == arch]
        assert len({m.width for m in mine}) > 1 and len({m.epochs for m in mine}) > 1, arch
        assert any(m.weight_decay > 0 for m in mine) and any(m.augment for m in mine), arch
        assert {0.0, 0.1, 0.2} <= {m.label_smoothing for m in mine}, arch
        assert any(m.distill for m in mine), arch
    assert {m.patch for m in members if m.arch == "vit"} == {2, 4}
    assert "cnn-w16-e60-wd0-ls0.1" in names and "vit-p2-w32-e30-wd0-ls0-aug-kd" in names
    task = get_task("zoo")
    cells = task.cells("default", [0, 1, 2])
    assert len(cells) == len(names) * len(zoo_task.CALIBRATORS) * 3
    assert task.baseline_of({"member": names[0], "calibrator": "temperature"}) == {
        "member": names[0],
        "calibrator": "none",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"arch": "transformer", "width": 8, "epochs": 1}, "unknown architecture 'transformer'"),
        ({"arch": "vit", "width": 8, "epochs": 1, "patch": 3}, "patch 3 does not divide"),
        ({"arch": "vit", "width": 8, "epochs": 1}, "patch None does not divide"),
        ({"arch": "cnn", "width": 8, "epochs": 1, "patch": 2}, "only vit has a patch"),
        ({"arch": "cnn", "width": 8, "epochs": 1, "depth": 2}, "unknown key"),
        ({"arch": "cnn", "width": 0, "epochs": 1}, "width and epochs"),
        ({"arch": "cnn", "width": 8, "epochs": 1, "label_smoothing": 0.1, "distill": True}, "kd"),
    ],
)
def test_bad_member_is_an_input_error(spec, message):
    with pytest.raises(ValueError, match=message):
        check_member(spec)


def test_duplicate_names_and_unknown_zoo_are_input_errors(monkeypatch):
    spec = {"arch": "mlp", "width": 8, "epochs": 2}
    with pytest.raises(ValueError, match="mlp-w8-e2-wd0-ls0 is listed twice"):
        check_members([spec, dict(spec)])
    with pytest.raises(ValueError, match="unknown zoo 'huge'"):
        build_config(ZooConfig, {"zoo": "huge"})
    monkeypatch.setitem(zoo_members.ZOOS, "quick", [spec, spec])
    with pytest.raises(ValueError, match="listed twice"):
        zoo_task.zoo("quick")
    with pytest.raises(ValueError, match="unknown member"):
        get_task("zoo").grid({"member": ["mlp-w1-e1"]})


@pytest.mark.parametrize("calibrator", ["none", "temperature"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    calibrator, tmp_path, check_task_cell
):
    method = {"member": "resnet-w8-e6-wd0-ls0", "calibrator": calibrator}
    check_task_cell("zoo", method, TINY, tmp_path)


def test_teacher_is_trained_once_per_seed_and_reused(tmp_path, monkeypatch):
    calls: list[str] = []
    real = zoo_task.fit_member

    def spy(member, *args, **kwargs):
        calls.append(member.name)
        return real(member, *args, **kwargs)

    monkeypatch.setattr(zoo_task, "fit_member", spy)
    task = get_task("zoo")
    config = build_config(ZooConfig, TINY)
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    students = [Member("mlp", 8, 2, distill=True), Member("mlp", 16, 2, distill=True)]
    for student in students + students:  # the second pass loads every artifact
        out = task._trained(student, config, ctx)
        assert out["test_logits"].shape == (len(out["test_labels"]), 10)
    teacher = zoo_task.teacher_member(config).name
    assert calls == [teacher, students[0].name, students[1].name]
    assert len(list((tmp_path / "artifacts" / "zoo").glob("teacher-*.npz"))) == 1
    task._teacher(config, ctx.for_cell(1))  # a new seed: a new teacher
    assert calls.count(teacher) == 2


def test_paired_change_matches_the_report_paired_bootstrap():
    rng = np.random.default_rng(0)
    n = 1000
    conf_old = rng.uniform(0.5, 1.0, n)
    correct = (rng.uniform(size=n) < conf_old - 0.2).astype(float)
    ids = np.array([f"i{k}" for k in range(n)])
    old = {"item_id": ids, "confidence": conf_old, "correct": correct}
    old["nll"] = -np.log(np.where(correct == 1, conf_old, (1 - conf_old) / 9))
    new = {**old, "confidence": conf_old - 0.2}
    form = weighted.classifier_forms("test", 15)["ece"]
    delta, se, lo, hi = paired_change(form, new, old, 500, seed=1)
    want = weighted.evaluate(form, {"test": new}, np.ones((1, n)))[0]
    want -= weighted.evaluate(form, {"test": old}, np.ones((1, n)))[0]
    assert delta == pytest.approx(want) and delta < 0  # the shift removed the overconfidence
    test = item_stats.paired_test(
        form,
        item_stats.replicates(form, {0: {"test": new}}),
        item_stats.replicates(form, {0: {"test": old}}),
        {0: {"test": new}},
        {0: {"test": old}},
    )
    assert test.delta == pytest.approx(delta)
    assert se == pytest.approx(test.se, rel=0.25) and lo < delta < hi and hi < 0
    assert paired_change(form, old, old, 100, seed=0) == [0.0, 0.0, 0.0, 0.0]


def test_wilson_and_spearman_hand_cases():
    z2 = 1.959963984540054**2
    assert wilson(0, 10).hi == pytest.approx(z2 / (10 + z2))
    assert wilson(5, 10).lo == pytest.approx(1 - wilson(5, 10).hi)
    assert math.isnan(wilson(0, 0).value)
    corr = spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 100])
    assert corr.rho == pytest.approx(1.0) and corr.p < 0.05


def _record(member: str, cal: str, seed: int, **curves) -> Record:
    metrics = {"accuracy": 0.9 + 0.01 * len(member), "auroc": 0.8 + 0.01 * len(member)}
    return Record("r", "zoo", {"member": member, "calibrator": cal}, {}, seed, "quick",
                  metrics=metrics, curves=curves)  # fmt: skip


def test_harm_is_oriented_by_metric_direction_and_pooled_over_seeds(tmp_path):
    records = [_record(m, "none", s) for m in ("a", "bb", "ccc") for s in (0, 1)]
    for s in (0, 1):  # a: ECE falls (helps); bb: ECE rises (harms); ccc: AUROC falls (harms)
        records.append(_record("a", "temperature", s, paired_ece=[-0.02, 0.005, -0.03, -0.01]))
        records.append(_record("bb", "temperature", s, paired_ece=[0.01, 0.01, -0.01, 0.03]))
        records.append(_record("ccc", "temperature", s, paired_auroc=[-0.05, 0.01, -0.07, -0.03]))
    ece = {c.member: c for c in changes(records, "temperature", "ece")}
    assert ece["a"].improvement == pytest.approx(0.02) and not ece["a"].harmed
    assert ece["a"].significantly_improved  # 0.02 ± 1.96 · sqrt(2 · 0.005²) / 2
    assert ece["bb"].harmed and not ece["bb"].significantly_harmed  # 1.96 · 0.01 / √2 > 0.01
    auroc = changes(records, "temperature", "auroc")
    assert [c.member for c in auroc] == ["ccc"] and auroc[0].significantly_harmed
    rows = {r["metric"]: r for r in summary_rows(records)}
    assert rows["ece"]["harmed"].startswith("1/2 = 50%")
    figs = list(draw(records, tmp_path))
    assert {f.stem for f in figs} >= {"zoo_improvement_vs_accuracy", "zoo_harm_table"}
    assert (tmp_path / "zoo_summary.md").read_text().count("temperature") == 2

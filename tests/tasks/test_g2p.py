"""The G2P task: scoring with several references, the grid, and a tiny end-to-end run."""

import json

import pytest

from bench.cli import main
from bench.tasks import g2p
from bench.tasks.base import get_task

TINY = {
    "words": 300,
    "emb_dim": 8,
    "hidden": 16,
    "layers": 1,
    "heads": 2,
    "ff_dim": 16,
    "steps": 4,
    "batch_size": 8,
    "eval_every": 2,
    "valid_words": 10,
    "beam_width": 2,
}


def test_align_errors_marks_substituted_and_deleted_reference_positions():
    assert g2p.align_errors(list("abcd"), list("abcd")) == (0, [False] * 4)
    assert g2p.align_errors(list("abcd"), list("axd")) == (2, [False, True, True, False])
    dist, wrong = g2p.align_errors(list("ab"), list("aab"))  # one insertion
    assert dist == 1 and wrong == [False, False]


def test_score_uses_the_closest_of_several_references():
    refs = [
        (("R", "IY", "D"), ("R", "EH", "D")),  # "read": either is right
        (("K", "AE", "T"),),
        (("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")),
    ]
    hyps = [["R", "EH", "D"], ["K", "AH", "T"], ["T", "AH", "M", "AA", "T"]]
    s = g2p.score(refs, hyps, max_position=6)
    # word 1 matches its second reference; word 2: 1 sub / 3; word 3: 1 del against the
    # closer second reference (6 phones) -> PER = 2 / (3 + 3 + 6)
    assert s["per"] == pytest.approx(2 / 12)
    assert s["wer"] == pytest.approx(2 / 3)
    assert s["position_count"] == [3, 3, 3, 1, 1, 1]
    assert s["position_error"][:3] == [0.0, pytest.approx(1 / 3), 0.0]
    assert s["position_error"][5] == 1.0  # the deleted final OW


def test_grid_is_forcing_by_arch_with_teacher_baseline_per_arch():
    task = get_task("g2p")
    rows = task.grid()
    assert len(rows) == 10 and {r["arch"] for r in rows} == {"gru", "transformer"}
    row = {"forcing": "professor", "arch": "transformer"}
    assert task.baseline_of(row) == {"forcing": "teacher", "arch": "transformer"}
    assert task.baseline_of({"forcing": "teacher", "arch": "gru"}) is None
    assert task.grid({"arch": ["gru"], "forcing": ["teacher"]}) == [
        {"forcing": "teacher", "arch": "gru"}
    ]


def test_config_is_strict():
    with pytest.raises(ValueError, match="unknown key"):
        g2p.build_config(g2p.G2PConfig, {"stepz": 3})


def test_g2p_task_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(g2p.SCALE_CONFIGS, "quick", TINY)
    out = tmp_path / "run"
    args = ["--suite", "quick", "--tasks", "g2p", "--quiet", "--out", str(out)]
    args += ["--methods", "forcing=teacher,forcing=scheduled_linear,forcing=professor"]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    for r in records:
        assert 0 <= r["metrics"]["test_wer_greedy"] <= 1
        assert r["metrics"]["test_per_beam"] >= 0
        assert len(r["curves"]["teacher_prob"]) == TINY["steps"]
        assert r["timing"]["decode_beam_words_per_s"] > 0
    ss = next(r for r in records if r["method"]["forcing"] == "scheduled_linear")
    assert ss["curves"]["teacher_prob"][0] == 1.0 > ss["curves"]["teacher_prob"][-1]
    assert (
        "disc_loss" in next(r for r in records if r["method"]["forcing"] == "professor")["curves"]
    )
    assert (out / "figures" / "g2p_error_by_position.png").exists()
    assert (out / "figures" / "g2p_schedules.png").exists()
    assert (
        "test_per_beam" in (out / "report.md").read_text()
        or "PER" in (out / "report.md").read_text()
    )
    assert "CMU" in (out / "dataset_card.md").read_text()

"""The G2P task: scoring with several references, the grid, and a tiny end-to-end run."""

import json

import numpy as np
import pytest
import torch

from bench.cells import run_cell
from bench.cli import main
from bench.context import RunContext
from bench.metrics.g2p import align_errors, error_rates, score_words
from bench.models import g2p_teacher
from bench.models.g2p import Seq2Seq, Vocab, beam_decode, max_output_len
from bench.store import Cell
from bench.sweep import parse_methods
from bench.tasks import g2p
from bench.tasks.base import get_task
from methods.sequence_distillation import SequenceKD

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
    "teacher_hidden": 32,
}


def test_align_errors_marks_substituted_and_deleted_reference_positions():
    assert align_errors(list("abcd"), list("abcd")) == (0, [False] * 4)
    assert align_errors(list("abcd"), list("axd")) == (2, [False, True, True, False])
    dist, wrong = align_errors(list("ab"), list("aab"))  # one insertion
    assert dist == 1 and wrong == [False, False]


def test_score_uses_the_closest_of_several_references():
    refs = [
        (("R", "IY", "D"), ("R", "EH", "D")),  # "read": either is right
        (("K", "AE", "T"),),
        (("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")),
    ]
    hyps = [["R", "EH", "D"], ["K", "AH", "T"], ["T", "AH", "M", "AA", "T"]]
    s = score_words(refs, hyps, max_position=6)
    # word 1 matches its second reference; word 2: 1 sub / 3; word 3: 1 del against the
    # closer second reference (6 phones) -> PER = 2 / (3 + 3 + 6)
    assert s.edits.tolist() == [0, 1, 1] and s.ref_len.tolist() == [3, 3, 6]
    assert s.correct.tolist() == [1, 0, 0]
    per, wer = s.rates()
    assert per == pytest.approx(2 / 12)
    assert wer == pytest.approx(2 / 3)
    assert s.position_count == [3, 3, 3, 1, 1, 1]
    assert s.position_error[:3] == [0.0, pytest.approx(1 / 3), 0.0]
    assert s.position_error[5] == 1.0  # the deleted final OW
    assert error_rates(np.array([2]), np.array([4]), np.array([0])) == (0.5, 1.0)
    with pytest.raises(ValueError, match="every reference is empty"):
        error_rates(np.array([1]), np.array([0]), np.array([0]))


def test_grid_is_forcing_by_arch_with_teacher_baseline_per_arch():
    task = get_task("g2p")
    rows = task.grid()
    assert len(rows) == 8 and {r["arch"] for r in rows} == {"gru", "transformer"}
    # quick: the Transformer's schedules by inverse sigmoid only (one two-pass code path)
    assert {r["forcing"] for r in rows if r["arch"] == "transformer"} == {
        "teacher",
        "scheduled_inverse_sigmoid",
        "professor",
    }
    assert {r["hp"] for r in rows} == {"default"}
    default = task.grid(scale="default")  # the distillation rows: default and full only
    assert len(default) == 8 and not any(r["forcing"].endswith("_kd") for r in rows)
    # default: every strategy on the GRU, the Transformer with teacher forcing (budget);
    # --methods arch=transformer reaches its other strategies, `full` runs them all
    assert [r["forcing"] for r in default if r["arch"] == "transformer"] == ["teacher"]
    assert len(task.grid(scale="full")) == 14
    transformer = task.grid({"arch": ["transformer"]}, scale="default")
    assert {r["forcing"] for r in transformer} == set(g2p.FORCING)
    for kd in ("word_kd", "sequence_kd"):
        assert task.baseline_of({"forcing": kd, "arch": "gru", "hp": "default"}) == {
            "forcing": "teacher",
            "arch": "gru",
            "hp": "default",
        }
    assert {r["forcing"] for r in task.grid({"forcing": ["word_kd"]})} == {"teacher", "word_kd"}
    row = {"forcing": "professor", "arch": "transformer", "hp": "default"}
    assert task.baseline_of(row) == {"forcing": "teacher", "arch": "transformer", "hp": "default"}
    # a tuned row pairs with the tuned teacher forcing: equal budgets on both sides
    tuned = {"forcing": "professor", "arch": "gru", "hp": "tuned"}
    assert task.baseline_of(tuned) == {"forcing": "teacher", "arch": "gru", "hp": "tuned"}
    assert task.baseline_of({"forcing": "teacher", "arch": "gru", "hp": "default"}) is None
    assert task.grid({"arch": ["gru"], "forcing": ["teacher"]}) == [
        {"forcing": "teacher", "arch": "gru", "hp": "default"}
    ]
    professor = task.grid({"forcing": ["professor"]})  # the teacher baselines stay
    assert {(r["forcing"], r["arch"]) for r in professor} == {
        (f, a) for f in ("teacher", "professor") for a in ("gru", "transformer")
    }
    assert all(task.cells(scale, [0]) for scale in ("quick", "default", "full"))
    with pytest.raises(LookupError, match="known forcing names"):
        parse_methods("forcing=nope")


def test_default_scale_tunes_the_gru_forcing_rows_on_the_valid_words():
    task = get_task("g2p")
    assert not [c for c in task.cells("quick", [0]) if c.method["hp"].startswith("trial")]
    trials = [c for c in task.cells("default", [0, 1]) if c.method["hp"].startswith("trial")]
    tuned_rows = {c.method["forcing"] for c in trials}
    assert tuned_rows == {
        "teacher",
        "scheduled_linear",
        "scheduled_exponential",
        "scheduled_inverse_sigmoid",
        "professor",
    }
    assert {c.method["arch"] for c in trials} == {"gru"} and {c.seed for c in trials} == {0}
    assert len(trials) == 5 * 5  # 6 points per row at default, its default among them
    assert task.tuning.select == "dev_per_greedy" and not task.tuning.higher_is_better
    prof = [c for c in trials if c.method["forcing"] == "professor"]
    weights = [c.config["forcing_params"]["adversarial_weight"] for c in prof]
    assert all(0.01 <= w <= 1.0 for w in weights) and len(set(weights)) == 5
    # the searched values reach the strategies: professor's weight is its context
    config = g2p.build_config(g2p.G2PConfig, prof[0].config)
    strategy = task._strategy("professor", config, None)
    assert strategy.weight == weights[0]
    lin = next(c for c in trials if c.method["forcing"] == "scheduled_linear")
    strategy = task._strategy("scheduled_linear", g2p.build_config(g2p.G2PConfig, lin.config), None)
    assert strategy.epsilon == lin.config["forcing_params"]["epsilon"]


def test_config_is_strict():
    with pytest.raises(ValueError, match="unknown key"):
        g2p.build_config(g2p.G2PConfig, {"stepz": 3})
    with pytest.raises(ValueError, match="teacher_hidden=64 is smaller than the student"):
        g2p.build_config(g2p.G2PConfig, {"hidden": 128, "teacher_hidden": 64})
    with pytest.raises(ValueError, match="teacher_steps=-1"):
        g2p.build_config(g2p.G2PConfig, {"teacher_steps": -1})


def test_g2p_task_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(g2p.SCALE_CONFIGS, "quick", TINY)
    out = tmp_path / "run"
    args = ["--suite", "quick", "--tasks", "g2p", "--quiet", "--out", str(out)]
    args += ["--methods", "forcing=teacher,forcing=scheduled_inverse_sigmoid,forcing=professor"]
    args[-1] += ",forcing=sequence_kd"
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 8 and all(r["status"] == "ok" for r in records)
    for r in records:
        assert 0 <= r["metrics"]["test_wer_greedy"] <= 1
        assert r["metrics"]["test_per_beam"] >= 0
        assert len(r["curves"]["teacher_prob"]) == TINY["steps"]
        assert r["timing"]["decode_beam_words_per_s"] > 0
    ss = next(r for r in records if r["method"]["forcing"] == "scheduled_inverse_sigmoid")
    assert ss["curves"]["teacher_prob"][0] > ss["curves"]["teacher_prob"][-1]
    assert (
        "disc_loss" in next(r for r in records if r["method"]["forcing"] == "professor")["curves"]
    )
    assert (out / "figures" / "g2p_error_by_position.png").exists()
    assert (out / "figures" / "g2p_schedules.png").exists()
    assert (out / "figures" / "g2p_distillation.png").exists()
    assert (
        "test_per_beam" in (out / "report.md").read_text()
        or "PER" in (out / "report.md").read_text()
    )
    assert "CMU" in (out / "dataset_card.md").read_text()


@pytest.mark.parametrize("forcing", ["teacher", "professor", "sequence_kd"])
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    forcing, tmp_path, check_task_cell
):
    config = {**get_task("g2p").config("quick"), **TINY}
    check_task_cell("g2p", {"forcing": forcing, "arch": "gru", "hp": "default"}, config, tmp_path)


def test_items_are_the_test_and_valid_words(tmp_path):
    config = {**get_task("g2p").config("quick"), **TINY}
    method = {"forcing": "professor", "arch": "transformer", "hp": "default"}
    cell = Cell("g2p", method, 0, "quick", config)
    run = run_cell(cell, RunContext(torch.device("cpu"), run_dir=tmp_path, quiet=True), "t", {})
    assert run.record.status == "ok", run.record.error
    data = get_task("g2p")._data(g2p.build_config(g2p.G2PConfig, config))
    test, dev = run.items["test"], run.items["dev"]
    assert test["item_id"].tolist() == [w for w, _ in data.test]
    assert dev["item_id"].tolist() == [w for w, _ in data.valid[: TINY["valid_words"]]]
    assert (test["ref_len_greedy"] > 0).all() and set(test["correct_beam"]) <= {0, 1}
    curves = run.record.curves
    assert run.record.metrics["dev_per_greedy"] == curves["valid_per"][-1]
    assert curves["valid_step"] == [2, 4] and len(curves["disc_loss"]) == TINY["steps"]


def _tiny_cell(forcing: str, run_dir, arch: str = "gru"):
    config = {**get_task("g2p").config("quick"), **TINY}
    cell = Cell("g2p", {"forcing": forcing, "arch": arch, "hp": "default"}, 0, "quick", config)
    run = run_cell(cell, RunContext(torch.device("cpu"), run_dir=run_dir, quiet=True), "t", {})
    assert run.record.status == "ok", run.record.error
    return run


def test_the_teacher_is_trained_once_per_arch_and_seed_and_reused(tmp_path, monkeypatch):
    trained = []
    real = g2p_teacher._train

    def counting(*args, **kwargs):
        trained.append(args[0].cfg.hidden)
        return real(*args, **kwargs)

    monkeypatch.setattr(g2p_teacher, "_train", counting)
    word = _tiny_cell("word_kd", tmp_path / "run")
    seq = _tiny_cell("sequence_kd", tmp_path / "run")
    again = _tiny_cell("word_kd", tmp_path / "run")  # as a resumed run would
    assert trained == [TINY["teacher_hidden"]]  # one teacher, the wide one, trained once
    assert len(list((tmp_path / "run" / "artifacts" / "g2p").glob("teacher-gru-*.pt"))) == 1
    assert again.record.metrics == word.record.metrics  # same student with a loaded teacher
    teacher_metrics = {k: v for k, v in word.record.metrics.items() if k.startswith("teacher_")}
    assert set(teacher_metrics) == {
        f"teacher_{m}_{d}" for m in ("per", "wer") for d in ("greedy", "beam")
    }
    assert teacher_metrics.items() <= seq.record.metrics.items()
    assert word.items["teacher"]["item_id"].tolist() == word.items["test"]["item_id"].tolist()
    assert "teacher_per_greedy" not in _tiny_cell("teacher", tmp_path / "run").record.metrics
    assert trained == [TINY["teacher_hidden"]]


def test_sequence_kd_trains_the_student_on_the_teachers_beam_outputs(tmp_path, monkeypatch):
    seen: list[tuple[list[int], list[int]]] = []
    real = SequenceKD.forward

    def spying(self, model, src, inputs, targets, step):
        seen.extend(zip(src.tolist(), targets.tolist(), strict=True))
        return real(self, model, src, inputs, targets, step)

    monkeypatch.setattr(SequenceKD, "forward", spying)
    _tiny_cell("sequence_kd", tmp_path)
    config = g2p.build_config(g2p.G2PConfig, {**get_task("g2p").config("quick"), **TINY})
    data = get_task("g2p")._data(config)
    graphemes, phonemes = Vocab(data.graphemes), Vocab(data.phonemes)
    (path,) = (tmp_path / "artifacts" / "g2p").glob("teacher-gru-*.pt")
    teacher = Seq2Seq(len(graphemes), len(phonemes), g2p_teacher.teacher_model_config(
        config.model("gru"), config.teacher_hidden
    ))  # fmt: skip
    teacher.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    teacher.eval()
    assert len(seen) == TINY["steps"] * TINY["batch_size"]
    gold = {w: {tuple(p) for p in prons} for w, prons in data.train}
    differs = 0
    for src, tgt in seen:
        word = "".join(graphemes.decode(src))
        ids = beam_decode(
            teacher,
            torch.tensor([graphemes.encode(word)]),
            TINY["beam_width"],
            max_output_len(word),
        )
        assert phonemes.decode(tgt) == phonemes.decode(ids)  # the teacher's beam output
        differs += tuple(phonemes.decode(tgt)) not in gold[word]
    assert differs > 0  # a barely trained teacher: its outputs are not the gold ones

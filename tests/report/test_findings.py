"""Findings on hand-made records and items whose answer is known, and on a copy of the
committed quick baseline (never written in place)."""

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench import findings_command
from bench.report.finding_checks import RunData
from bench.report.finding_curves import later_error, updates_to
from bench.report.findings import (
    CONTRADICTED,
    FINDINGS,
    INCONCLUSIVE,
    NOT_RUN,
    REPRODUCED,
    findings_markdown,
)
from bench.report.findings_eval import evaluate, evaluate_run
from bench.store import Record, write_items

BY_ID = {f.id: f for f in FINDINGS}
BASELINE = Path(__file__).resolve().parents[2] / "reports" / "baseline"


def record(task, method, seed, metrics, curves=None, key=None):
    return Record(
        run_id="r",
        task=task,
        method=method,
        config={},
        seed=seed,
        scale="quick",
        metrics=metrics,
        curves=curves or {},
        cell_key=key or f"{task}-{'-'.join(method.values())}-{seed}",
    )


def enhance_run(tmp_path, shift, noise=0.0, seeds=(0, 1), n=200):
    """identity and mask cells on the same n utterances; mask = identity + shift (+ noise)."""
    rng = np.random.default_rng(0)
    records = []
    for seed in seeds:
        base = rng.uniform(1.2, 2.5, n)
        for name, scores in (
            ("identity", base),
            ("mask", base + shift + noise * rng.standard_normal(n)),
        ):
            rec = record("enhance", {"enhancer": name, "enh_loss": "-"}, seed, {})
            rec.metrics["pesq_wb"] = float(scores.mean())
            ids = np.array([f"u{i}" for i in range(n)])
            write_items(tmp_path, rec.cell_key, {"test": {"item_id": ids, "pesq_wb": scores}})
            records.append(rec)
    return RunData(tmp_path, records)


def test_clear_gain_over_items_is_reproduced(tmp_path):
    r = evaluate(BY_ID["5a"], enhance_run(tmp_path, shift=0.3, noise=0.05))
    assert r.verdict == REPRODUCED and r.p < 0.01
    assert r.lo < 0.3 < r.hi and abs(r.effect - 0.3) < 0.02 and r.unit == "MOS-LQO"
    assert r.n == "2 seeds × 200 items" and "bootstrap" in r.test


def test_opposite_effect_is_contradicted(tmp_path):
    r = evaluate(BY_ID["5a"], enhance_run(tmp_path, shift=-0.3, noise=0.05))
    assert r.verdict == CONTRADICTED and r.effect < 0


def test_noise_is_inconclusive_with_a_detectable_effect(tmp_path):
    r = evaluate(BY_ID["5a"], enhance_run(tmp_path, shift=0.0, noise=0.5))
    assert r.verdict == INCONCLUSIVE and r.p >= 0.05
    # SE of a mean of 400 paired differences of sd 0.5, halved by the 2 seeds' average
    assert 0.05 < r.mde < 0.12 and "detectable" in r.verdict_text()


def test_missing_task_or_rows_is_not_run_with_the_command(tmp_path):
    run = enhance_run(tmp_path, shift=0.3)
    r = evaluate(BY_ID["1"], run)
    assert r.verdict == NOT_RUN and "--tasks calibration" in r.note_text()
    r = evaluate(BY_ID["5b"], run)  # no classical filter in the run
    assert r.verdict == NOT_RUN and "wiener" in r.note_text()


def g2p_curves(later):
    # 4 positions with counts; the later half (positions 3, 4) carries error ``later``
    return {"position_error": [0.1, 0.1, later, later, None], "position_count": [9, 9, 5, 5, 0]}


def test_positions_over_seeds():
    assert later_error(record("g2p", {}, 0, {}, g2p_curves(0.4)), 4) == pytest.approx(0.4)
    records = []
    for seed, (ss, tf) in enumerate([(0.20, 0.40), (0.22, 0.41), (0.25, 0.45)]):
        for forcing, later in (("scheduled_inverse_sigmoid", ss), ("teacher", tf)):
            m = {"forcing": forcing, "arch": "gru", "hp": "tuned"}
            records.append(record("g2p", m, seed, {"test_per_greedy": 0.3}, g2p_curves(later)))
            # the rows at their defaults point the other way: they are not the finding's
            m = {"forcing": forcing, "arch": "gru", "hp": "default"}
            records.append(record("g2p", m, seed, {"test_per_greedy": 0.3}, g2p_curves(1 - later)))
    r = evaluate(BY_ID["4"], RunData(Path("/nonexistent"), records))
    assert r.verdict == REPRODUCED and r.effect == pytest.approx(-19.667, abs=1e-3)
    assert r.unit == "points" and r.n == "3 seeds" and r.hi < 0


def speaker_run(tmp_path, ranks_by_loss, n_items, hp="tuned"):
    records = []
    for loss, correct in ranks_by_loss.items():
        rec = record("speaker", {"loss": loss, "miner": "-", "hp": hp}, 0, {})
        rank = np.where(np.arange(n_items) < correct, 1, 2)
        rec.metrics["recall_at_1"] = float(np.mean(rank == 1))
        ids = np.array([f"q{i}" for i in range(n_items)])
        write_items(tmp_path, rec.cell_key, {"test": {"item_id": ids, "rank": rank}})
        records.append(rec)
    return RunData(tmp_path, records)


def test_spread_close_and_far(tmp_path):
    same = speaker_run(tmp_path / "a", {"contrastive": 9000, "ntxent": 9000}, 10000)
    # rows at their defaults and tuning trials are not the finding's rows
    defaults = speaker_run(tmp_path / "a", {"triplet": 10, "proxy_nca": 20}, 10000, "default")
    trials = speaker_run(tmp_path / "a", {"proxy_anchor": 30}, 10000, "trial3")
    same.records += defaults.records + trials.records
    r = evaluate(BY_ID["6a"], same)
    assert r.verdict == REPRODUCED and r.effect == 0 and "random search" in r.note_text()
    assert "2 losses" in r.note_text()
    far = speaker_run(tmp_path / "b", {"contrastive": 900, "ntxent": 700, "triplet": 890}, 1000)
    r = evaluate(BY_ID["6a"], far)
    assert r.verdict == CONTRADICTED and r.effect == pytest.approx(20.0)
    assert "McNemar" in r.test and r.p < 0.001


def test_convergence_counts_updates_to_90_percent_of_final():
    curve = {"step": [0, 25, 50, 100], "valid_recall_at_1": [0.1, 0.5, 0.85, 0.9]}
    assert updates_to(record("speaker", {}, 0, {}, curve)) == 50  # 0.85 ≥ 0.81
    records = []
    for seed in range(3):
        for loss, reached in (("proxy_nca", 25), ("proxy_anchor", 25 + 25 * (seed == 2))):
            curve = {"step": [0, 25, 50, 75, 100], "valid_recall_at_1": [0.1] * 5}
            curve["valid_recall_at_1"] = [0.1 if s < reached else 0.9 for s in curve["step"]]
            method = {"loss": loss, "miner": "-", "hp": "default"}
            records.append(record("speaker", method, seed, {}, curve))
        for loss in ("contrastive", "ntxent"):
            curve = {"step": [0, 25, 50, 75, 100], "valid_recall_at_1": [0.1, 0.2, 0.3, 0.9, 0.9]}
            method = {"loss": loss, "miner": "-", "hp": "default"}
            records.append(record("speaker", method, seed, {}, curve))
    r = evaluate(BY_ID["7"], RunData(Path("/nonexistent"), records))
    assert r.verdict == REPRODUCED and r.unit == "updates"
    assert r.effect == pytest.approx(np.mean([-50, -50, -37.5]))


def zoo_records(harm_se):
    """Two members; member b's temperature scaling raises ECE by 5 points (se ``harm_se``)."""
    records = []
    for seed in range(2):
        for member, delta in (("a", -0.05), ("b", 0.05)):
            records.append(
                record("zoo", {"member": member, "calibrator": "none"}, seed, {"accuracy": 0.9})
            )
            se = 0.005 if member == "a" else harm_se
            curves = {
                "paired_ece": [delta, se, delta - 2 * se, delta + 2 * se],
                "paired_auroc": [0.0, 0.01, -0.02, 0.02],
            }
            m = {"member": member, "calibrator": "temperature"}
            records.append(record("zoo", m, seed, {"accuracy": 0.9}, curves))
    return records


def test_zoo_harm():
    r = evaluate(BY_ID["2"], RunData(Path("/nonexistent"), zoo_records(0.005)))
    assert r.verdict == REPRODUCED and r.effect == 0.5 and r.unit == "share"
    assert "1 (member, metric) pairs significantly harmed" in r.note_text()
    r = evaluate(BY_ID["2"], RunData(Path("/nonexistent"), zoo_records(0.2)))
    assert r.verdict == INCONCLUSIVE and math.isfinite(r.mde)


def test_baseline_copy_every_finding_has_a_verdict(tmp_path):
    run = tmp_path / "baseline"
    run.mkdir()
    shutil.copy(BASELINE / "records.jsonl", run / "records.jsonl")
    shutil.copytree(BASELINE / "items", run / "items")
    results = evaluate_run(run)
    assert [r.finding.id for r in results] == [f.id for f in FINDINGS]
    verdicts = {REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN}
    for r in results:
        assert r.verdict in verdicts and "not evaluated" not in r.note_text(), r.note_text()
    md = findings_markdown(results)
    assert md[0] == "## Findings" and sum(line.startswith("| ") for line in md) == len(FINDINGS) + 1
    parser = argparse.ArgumentParser()
    findings_command.add_parser(parser.add_subparsers(dest="command"))
    assert findings_command.run(parser.parse_args(["findings", str(run)])) == 0
    assert (run / "findings.md").read_text().startswith("## Findings")
    assert findings_command.run(parser.parse_args(["findings", str(tmp_path / "none")])) == 2

"""tools/gpu-check.sh and its table (tools/gpu_check_table.py): the table from hand-made
work folders, and the whole script on this machine (the CPU path when there is no GPU)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu-check.sh"


def _tool():
    spec = importlib.util.spec_from_file_location(
        "gpu_check_table", SCRIPT.parent / "gpu_check_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


table = _tool()


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _steps(work: Path, steps: list[tuple[str, int, int]], limit: int = 0) -> None:
    work.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{n}\t{rc}\t{s}\t{limit}\n" for n, rc, s in steps)
    (work / "steps.tsv").write_text(lines)


def _speed_row(size: str, status: str = "ok", **extra) -> dict:
    timing = {"median_ms": 2.0, "iqr_ms": 0.1, "peak_mb": 12.5, "mfu": 0.25}
    row = {
        "case": "NT-Xent loss",
        "size": size,
        "status": status,
        "amp": "bf16",
        "compile": True,
        "cuda_graph": True,
        "agree": "yes",
        "ours": timing,
        "peer_timing": {"median_ms": 5.0, "iqr_ms": 0.2},
        "ratio": 2.5,
    }
    return {**row, **extra}


def _record(frontend: str, timing: dict, status: str = "ok") -> dict:
    return {
        "method": {"frontend": frontend, "quantizer": "gumbel", "objective": "contrastive"},
        "seed": 0,
        "scale": "full",
        "status": status,
        "error": None,
        "timing": timing,
        "config": {"model_size": "base", "stem": "conv", "steps": 300, "batch_size": 16},
        "env": {"device": "cuda"},
    }


def _compare(task: str, method: str, metric: str, verdict: str, old=None, new=None) -> dict:
    return {
        "task": task,
        "method": method,
        "metric": metric,
        "verdict": verdict,
        "old": old,
        "new": new,
        "delta": None,
        "p": None,
        "seeds": 1,
        "note": "",
    }


def _full_work(work: Path, compare_rc: int = 3) -> None:
    _steps(work, [("speed", 0, 100), ("ssl", 0, 200), ("quick", 0, 60), ("compare", compare_rc, 9)])
    _jsonl(
        work / "speed" / "speed.jsonl",
        [
            _speed_row("tiny", ratio=0.5),
            _speed_row("tiny"),  # a re-run's row replaces the first one
            _speed_row("small", status="invalid", invalid="MFU 130% > 100%"),
            _speed_row("medium", status="failed", error="RuntimeError: capture failed\ntrace"),
        ],
    )
    timing = {
        "train_samples_per_s": 50.0,
        "train_audio_s_per_s": 75.0,
        "step_ms_median": 320.0,
        "mfu": 0.123,
        "peak_mem_mb": 10240.0,
    }
    _jsonl(
        work / "ssl" / "records.jsonl",
        [
            _record("wav2vec_random", {"finetune_train_samples_per_s": 3.0}),
            _record("wav2vec", timing),
        ],
    )
    (work / "quick").mkdir()
    rows = [
        _compare("calibration", "classifier=mlp", "ece", "same", 5.0, 5.1),
        _compare("calibration", "classifier=mlp", "accuracy", "same", 92.0, 92.0),
        _compare("calibration", "classifier=mlp", "train_samples_per_s", "slower"),
        _compare("calibration", "classifier=mlp", "peak_mem_mb", "same"),  # a timing: not counted
        _compare("calibration", "classifier=cnn", "-", "only in old"),
        _compare("speaker", "loss=triplet", "recall_at_1", "worse", 90.0, 80.0),
        _compare("speaker", "loss=ntxent", "eer", "not significant", 10.0, 12.0),
        _compare("speaker", "loss=proxy_anchor", "-", "only in new"),
    ]
    (work / "quick" / "compare.json").write_text(json.dumps(rows))


def _row(text: str, start: str) -> str:
    hits = [line for line in text.splitlines() if line.startswith(start)]
    assert len(hits) == 1, (start, text)
    return hits[0]


def test_table_from_hand_made_work_folder(tmp_path: Path) -> None:
    _full_work(tmp_path)
    text, status = table.build(tmp_path, "cuda", gpu=True)
    assert status == 0  # compare's 3 is a finding, reported below, not a failed step
    assert table.NO_GPU not in text
    assert "Steps took 369 s in all (budget 480 s)" in text
    tiny = _row(text, "| speed | NT-Xent loss [tiny]")
    assert "ours 2 ms, peer 5 ms, ratio 2.50; ours 12.5 MB; MFU 25.0%; agree yes | ok |" in tiny
    assert _row(text, "| speed | NT-Xent loss [small]").endswith("| MFU 130% > 100% | invalid |")
    assert "RuntimeError: capture failed | failed |" in _row(
        text, "| speed | NT-Xent loss [medium]"
    )
    ssl = _row(text, "| SSL pre-training |")
    assert "base model, conv stem, 300 updates of batch 16, cuda" in ssl
    assert "50 samples/s; 75 audio s/s; step 320 ms; MFU 12.3%; peak 1.024e+04 MiB | ok |" in ssl
    calibration = _row(text, "| compare vs reports/baseline | calibration |")
    assert "1 cells compared: 2 metrics within tolerance, 0 beyond" in calibration
    assert calibration.endswith("| within tolerances |")
    speaker = _row(text, "| compare vs reports/baseline | speaker |")
    assert "1 better, 1 worse" not in speaker and "0 better, 1 worse" in speaker
    assert "1 cells not checked: [loss=proxy_anchor] (only in new)" in speaker
    assert "loss=triplet recall_at_1 90 -> 80" in speaker and speaker.endswith("| REGRESSION |")
    assert _row(text, "| compare vs reports/baseline | exit status |").endswith("| exit 3 |")
    for name in ("speed", "ssl", "quick", "compare"):
        assert _row(text, f"| step | {name} |").endswith("| ran |")
    assert "FAILED" not in text


def test_failed_step_is_named_and_its_part_missing(tmp_path: Path) -> None:
    _full_work(tmp_path, compare_rc=2)  # compare's usage error is a failure, not a finding
    _steps(tmp_path, [("speed", 0, 1), ("ssl", 1, 2), ("quick", 0, 3), ("compare", 2, 4)])
    (tmp_path / "ssl" / "records.jsonl").unlink()
    text, status = table.build(tmp_path, "cpu", gpu=False)
    assert status == 1
    assert table.NO_GPU in text and "(budget 120 s)" in text
    assert _row(text, "| SSL pre-training |").endswith("| missing |")
    assert _row(text, "| step | ssl |").endswith("| FAILED |")
    assert _row(text, "| step | speed |").endswith("| ran |")
    assert (
        f"gpu-check FAILED: step(s) ssl (exit 1, log {tmp_path / 'ssl.log'}), compare (exit 2"
        in text
    )


def test_step_killed_at_its_limit_fails_and_over_budget_is_said(tmp_path: Path) -> None:
    _full_work(tmp_path)
    _steps(
        tmp_path,
        [("speed", 124, 180), ("ssl", 0, 179), ("quick", 0, 90), ("compare", 3, 30)],
        limit=180,
    )
    text, status = table.build(tmp_path, "cuda", gpu=True)
    assert status == 1
    assert "Steps took 479 s in all (budget 480 s)" in text  # 479 s: inside the budget
    assert _row(text, "| step | speed |").startswith(
        "| step | speed | exit 124: killed at its 180 s limit in 180 s (limit 180 s); log"
    )
    assert "gpu-check FAILED: step(s) speed (exit 124: killed at its 180 s limit, log" in text
    assert _row(text, "| step | compare |").endswith("| ran |")
    _steps(tmp_path, [("speed", 0, 300), ("ssl", 0, 200)], limit=0)
    text, status = table.build(tmp_path, "cuda", gpu=True)
    assert status == 0 and "Steps took 500 s in all (over budget) (budget 480 s)" in text


def test_statuses_of_a_quiet_comparison_and_a_cell_without_mfu(tmp_path: Path) -> None:
    _steps(tmp_path, [("compare", 0, 1)])
    (tmp_path / "quick").mkdir()
    rows = [_compare("calibration", "classifier=mlp", "ece", "not significant", 5.0, 7.0)]
    (tmp_path / "quick" / "compare.json").write_text(json.dumps(rows))
    _jsonl(tmp_path / "ssl" / "records.jsonl", [_record("wav2vec", {"train_samples_per_s": 9.0})])
    text, status = table.build(tmp_path, "cuda", gpu=True)
    assert status == 0
    calibration = _row(text, "| compare vs reports/baseline | calibration |")
    assert calibration.endswith("| beyond tolerance, not significant |")
    assert _row(text, "| compare vs reports/baseline | speaker |").endswith("| nothing compared |")
    assert _row(text, "| SSL pre-training |").endswith("| no mfu, peak_mem_mb |")
    assert _row(text, "| speed | - |").endswith("| missing |")
    assert "| exit status | no regression | exit 0 |" in text


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    bad = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr
    if not torch.cuda.is_available():
        cuda = subprocess.run(
            ["bash", str(SCRIPT), "--device", "cuda", "--out", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert cuda.returncode == 2 and "torch sees no GPU; use --device cpu" in cuda.stderr


def test_script_runs_on_this_machine_cpu_path(tmp_path: Path) -> None:
    """The whole script at the tiny size on the CPU (about 1.5-2.5 minutes on 2 busy cores)."""
    work = tmp_path / "work"
    done = subprocess.run(
        ["bash", str(SCRIPT), "--device", "cpu", "--out", str(work)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    if not torch.cuda.is_available():
        assert table.NO_GPU in text.splitlines()
    assert (work / "gpu-check.md").read_text() == text
    lines = text.splitlines()
    assert lines.count("| part | row | result | status |") == 1  # one table
    for size in ("tiny", "small", "medium"):
        assert _row(text, f"| speed | NT-Xent loss [{size}]").split("|")[-2].strip() in (
            "ok",
            "invalid",
        )
    assert _row(text, "| SSL pre-training |").endswith("| ok |")
    assert "tiny model, logmel stem, 5 updates of batch 2, cpu" in text
    statuses = {"within tolerances", "beyond tolerance, not significant", "better", "REGRESSION"}
    statuses |= {"not checked", "nothing compared"}  # e.g. a baseline older than the task
    for task in ("calibration", "speaker"):
        row = _row(text, f"| compare vs reports/baseline | {task} |")
        assert " cells compared: " in row and row.split("|")[-2].strip() in statuses
    assert _row(text, "| compare vs reports/baseline | exit status |").split("|")[-2].strip() in (
        "exit 0",
        "exit 3",
    )
    for name in ("speed", "ssl", "quick", "compare"):
        assert _row(text, f"| step | {name} |").endswith("| ran |")

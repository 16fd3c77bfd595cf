"""The one table of ``tools/gpu-check.sh``: speed rows, the SSL pre-training cell, the compare.

    python tools/gpu_check_table.py WORK --device cuda|cpu --gpu True|False

WORK is the script's work folder: ``steps.tsv`` (one line per step: name, exit status,
seconds, time limit or 0), ``speed/speed.jsonl`` (``run_all.py speed``), ``ssl/records.jsonl`` (the
full-scale pre-training cell), ``quick/compare.json`` (``run_all.py compare`` of the quick
calibration and speaker cells with reports/baseline). A part whose files are missing (its
step failed) gets a row that says so; the table is always printed, and written to
WORK/gpu-check.md.

Exit status: 0 when every step ran (``compare`` counts as run when it exits 0, or 3: a
regression or an unchecked cell, which the table reports); 1 when a step failed, naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from bench.metrics import TIMING_UNITS  # noqa: E402  (timing keys, which compare never gates)

COMPARE_TASKS = ("calibration", "speaker")
# exit statuses that mean "the step ran": compare's 3 is its finding, reported in the table
RAN = {"compare": (0, 3)}
BUDGET_S = {"cuda": 480, "cpu": 120}  # the 8 minutes on one GPU; 2 minutes on 2 cores
NO_GPU = "no GPU: checked the script's logic on cpu at the tiny size; nothing was measured on a GPU"
UNCHECKED = ("only in new", "not comparable")
GATING = ("worse", "newly failing", "items differ")
HEADER = ["| part | row | result | status |", "|---|---|---|---|"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` ([] when missing); a line cut by a crash is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


TIMED_OUT = 124  # the exit status of `timeout` when it killed the step at its limit
Step = tuple[str, int, int, int]  # name, exit status, seconds, time limit (0: none)


def read_steps(work: Path) -> list[Step]:
    """(name, exit status, seconds, limit) of every step the script ran, in order."""
    path = work / "steps.tsv"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        name, rc, seconds, limit = line.split("\t")
        out.append((name, int(rc), int(seconds), int(limit)))
    return out


def failed_steps(steps: list[Step]) -> list[tuple[str, int]]:
    return [(name, rc) for name, rc, _, _ in steps if rc not in RAN.get(name, (0,))]


def _ms(t: dict[str, Any]) -> str:
    m = t["median_ms"]
    return f"{m:.3g} ms"


def speed_rows(work: Path) -> list[str]:
    """One line per speed case and size: ours against the peer, memory and MFU."""
    rows = read_jsonl(work / "speed" / "speed.jsonl")
    if not rows:
        return ["| speed | - | no speed rows (see the speed step) | missing |"]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:  # a re-run appends: the last row of a case and size counts
        latest[(row["case"], row["size"])] = row
    out = []
    for (case, size), row in latest.items():
        opts = f"amp {row.get('amp')}, compile {row.get('compile')}, graphs {row.get('cuda_graph')}"
        label = f"{case} [{size}] ({opts})"
        status = row.get("status", "?")
        if status == "invalid":
            out.append(f"| speed | {label} | {row.get('invalid', '')} | invalid |")
            continue
        if status != "ok":
            why = str(row.get("error", "")).splitlines()[0] if row.get("error") else ""
            out.append(f"| speed | {label} | {why} | {status} |")
            continue
        ours, peer = row["ours"], row["peer_timing"]
        parts = [f"ours {_ms(ours)}, peer {_ms(peer)}, ratio {row['ratio']:.2f}"]
        if ours.get("peak_mb") is not None:
            parts.append(f"ours {ours['peak_mb']:.1f} MB")
        if ours.get("mfu") is not None:
            parts.append(f"MFU {100 * ours['mfu']:.1f}%")
        agree = str(row.get("agree", "n/a"))
        parts.append(f"agree {'no' if agree.startswith('differs') else agree}")
        out.append(f"| speed | {label} | {'; '.join(parts)} | ok |")
    return out


def _fmt(value: Any, unit: str, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g} {unit}".rstrip()


def ssl_rows(work: Path) -> list[str]:
    """The pre-trained cell(s) of the SSL run: throughput, MFU, peak memory."""
    records = read_jsonl(work / "ssl" / "records.jsonl")
    latest = {json.dumps([r["method"], r["seed"]], sort_keys=True): r for r in records}
    pretrained = [r for r in latest.values() if r["method"].get("frontend") == "wav2vec"]
    if not pretrained:
        return [
            "| SSL pre-training | - | no pre-trained cell recorded (see the ssl step) | missing |"
        ]
    out = []
    for rec in pretrained:
        c, m = rec["config"], rec["method"]
        label = (
            f"{m.get('quantizer')} + {m.get('objective')}, {rec.get('scale')} scale: "
            f"{c.get('model_size')} model, {c.get('stem')} stem, {c.get('steps')} updates "
            f"of batch {c.get('batch_size')}, {rec['env'].get('device')}"
        )
        if rec.get("status") != "ok":
            error = str(rec.get("error") or "").splitlines()[:1]
            out.append(f"| SSL pre-training | {label} | {' '.join(error)} | failed |")
            continue
        t = rec.get("timing", {})
        mfu = t.get("mfu")
        result = "; ".join(
            [
                f"{_fmt(t.get('train_samples_per_s'), 'samples/s')}",
                f"{_fmt(t.get('train_audio_s_per_s'), 'audio s/s')}",
                f"step {_fmt(t.get('step_ms_median'), 'ms')}",
                f"MFU {'-' if mfu is None else f'{100 * mfu:.1f}%'}",
                f"peak {_fmt(t.get('peak_mem_mb'), 'MiB', 4)}",
            ]
        )
        missing = [k for k in ("train_samples_per_s", "mfu", "peak_mem_mb") if t.get(k) is None]
        status = "ok" if not missing else f"no {', '.join(missing)}"
        out.append(f"| SSL pre-training | {label} | {result} | {status} |")
    return out


def compare_rows(work: Path, rc: int | None) -> list[str]:
    """Per task: how many metrics are within compare's tolerances, beyond them, worse; and
    the cells nothing checked."""
    path = work / "quick" / "compare.json"
    if not path.is_file():
        return ["| compare | - | no compare.json (see the quick and compare steps) | missing |"]
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for task in COMPARE_TASKS:
        mine = [r for r in rows if r["task"] == task and r["verdict"] != "only in old"]
        # timing rows (shown by compare, never gated) are not quality metrics
        quality = [r for r in mine if r["metric"] != "-" and r["metric"] not in TIMING_UNITS]
        cells = {r["method"] for r in quality}
        count = {
            v: sum(r["verdict"] == v for r in quality)
            for v in ("same", "not significant", "better", "worse", "items differ", "info")
        }
        unchecked = [r for r in mine if r["verdict"] in UNCHECKED]
        failing = [r for r in mine if r["verdict"] == "newly failing"]
        parts = [
            f"{len(cells)} cells compared: {count['same']} metrics within tolerance, "
            f"{count['not significant']} beyond it but not significant, "
            f"{count['better']} better, {count['worse']} worse"
        ]
        if count["items differ"]:
            parts.append(f"{count['items differ']} with different test items")
        if failing:
            parts.append(f"{len(failing)} cells newly failing")
        if unchecked:
            names = ", ".join(
                f"[{r['method']}] ({r['verdict']}{': ' + r['note'] if r['note'] else ''})"
                for r in unchecked[:3]
            )
            more = f" and {len(unchecked) - 3} more" if len(unchecked) > 3 else ""
            parts.append(f"{len(unchecked)} cells not checked: {names}{more}")
        worse = [r for r in mine if r["verdict"] in GATING]
        for r in worse[:3]:
            parts.append(
                f"{r['method']} {r['metric']} {r['old']:.3g} -> {r['new']:.3g}"
                if r["old"] is not None
                else f"{r['method']} {r['verdict']}"
            )
        if worse or failing:
            status = "REGRESSION"
        elif unchecked:
            status = "not checked"
        elif count["not significant"] or count["better"]:
            status = "beyond tolerance, not significant" if count["not significant"] else "better"
        elif not quality:
            status = "nothing compared"
        else:
            status = "within tolerances"
        out.append(f"| compare vs reports/baseline | {task} | {'; '.join(parts)} | {status} |")
    verdict = {0: "no regression", 3: "regression or unchecked cells (reported above)"}
    status = "-" if rc is None else f"exit {rc}"
    out.append(
        f"| compare vs reports/baseline | exit status | "
        f"{verdict.get(rc, 'failed') if rc is not None else 'not run'} | {status} |"
    )
    return out


def _timed_out(rc: int, limit: int) -> str:
    return f": killed at its {limit} s limit" if limit and rc == TIMED_OUT else ""


def step_rows(steps: list[Step], work: Path) -> list[str]:
    bad = {name for name, _ in failed_steps(steps)}
    out = []
    for name, rc, seconds, limit in steps:
        ran = f"exit {rc}{_timed_out(rc, limit)} in {seconds} s"
        ran += f" (limit {limit} s)" if limit else ""
        status = "FAILED" if name in bad else "ran"
        out.append(f"| step | {name} | {ran}; log {work / (name + '.log')} | {status} |")
    return out


def build(work: Path, device: str, gpu: bool) -> tuple[str, int]:
    """The text to print (preamble lines and the table) and the exit status."""
    steps = read_steps(work)
    rcs = {name: rc for name, rc, _, _ in steps}
    total = sum(seconds for _, _, seconds, _ in steps)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    lines = [f"# gpu-check on {device}", ""]
    if not gpu:
        lines.append(NO_GPU)
    elif kind == "cpu":
        lines.append(
            "--device cpu: checked the script's logic on cpu at the tiny size; "
            "nothing was measured on the GPU"
        )
    over = " (over budget)" if total > BUDGET_S[kind] else ""
    lines.append(
        f"Steps took {total} s in all{over} (budget {BUDGET_S[kind]} s); work folder {work}."
    )
    lines.append(
        f"compare: the quick cells on {device} against the CPU baseline; numerics differ "
        'between devices, so "within tolerances" means every metric moved by no more than '
        "its tolerance in bench.metrics (timings are shown by compare, never gated)."
    )
    lines += ["", *HEADER]
    lines += speed_rows(work) + ssl_rows(work) + compare_rows(work, rcs.get("compare"))
    lines += step_rows(steps, work)
    failed = failed_steps(steps)
    if failed:
        limits = {name: limit for name, _, _, limit in steps}
        names = ", ".join(
            f"{name} (exit {rc}{_timed_out(rc, limits[name])}, log {work / (name + '.log')})"
            for name, rc in failed
        )
        lines += ["", f"gpu-check FAILED: step(s) {names}"]
    return "\n".join(lines) + "\n", 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--device", required=True)
    parser.add_argument("--gpu", required=True, choices=["True", "False"])
    args = parser.parse_args(argv)
    text, status = build(args.work, args.device, args.gpu == "True")
    (args.work / "gpu-check.md").write_text(text, encoding="utf-8")
    print(text, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Bad input on the command line (issue 17): each case exits with status 2 (README, "Exit
codes"), names the bad path, key or value on stderr, prints no traceback and leaves an
earlier run folder byte-for-byte as it was. The commands run in-process (``main``), where
an uncaught exception fails the test, and in a real process where only one can show what
the user sees (a warning on stderr, the lock held by another process)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent
N, K = 200, 5
HOLDER = """
import sys, time
from pathlib import Path
from bench.run_lock import hold
with hold(Path(sys.argv[1]), "holder-snippet"):
    print("locked", flush=True)
    time.sleep(60)
"""


# ------------------------------------------------------------------------------ helpers


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def save_logits(path: Path, logits: np.ndarray | None = None, labels=None) -> Path:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (N, K)) if logits is None else logits
    labels = rng.integers(0, K, N) if labels is None else labels
    np.savez(path, logits=logits, labels=labels)
    return path


def tone(path: Path, rate: int = 16000) -> Path:
    """A short 16-bit sine (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(400) / rate)
    sf.write(path, x.astype(np.float32), rate, subtype="PCM_16")
    return path


def garbage(path: Path) -> Path:
    """Random bytes under an audio name (a truncated download)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def folder_corpus(root: Path, bad: Callable[[Path], Path]) -> tuple[Path, Path]:
    """A ``folder`` corpus (manifest.csv) of one good 16 kHz file and one ``bad`` one."""
    tone(root / "ok.wav")
    bad_file = bad(root / "phone" / "call.wav")
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["path"], ["ok.wav"], ["phone/call.wav"]])
    return root, bad_file


def librispeech(root: Path, bad: Callable[[Path], Path]) -> tuple[Path, Path]:
    """A one-chapter LibriSpeech subset of two utterances, the second written by ``bad``."""
    chapter = root / "LibriSpeech" / "dev-clean" / "84" / "121123"
    tone(chapter / "84-121123-0000.flac")
    bad_file = bad(chapter / "84-121123-0001.flac")
    (chapter / "84-121123.trans.txt").write_text("84-121123-0000 A\n84-121123-0001 B\n")
    return root / "LibriSpeech", bad_file


def calibrate(logits: Path, out: Path, seeds: int = 1) -> list[str]:
    args = ["calibrate", "--logits", str(logits), "--seeds", str(seeds), "--quiet"]
    return [*args, "--no-figures", "--out", str(out)]


def run(*args: str) -> list[str]:
    """``run`` of the quick suite, quiet and without figures, with ``args`` added."""
    return ["run", "--suite", "quick", "--quiet", "--no-figures", *args]


def one_line_error(text: str, *named: str) -> None:
    assert "Traceback" not in text, text
    for name in named:
        assert name in text, f"{name!r} not in {text!r}"


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Path:
    """An earlier run folder (a tiny ``calibrate --logits`` run), shared by the module."""
    tmp = tmp_path_factory.mktemp("earlier")
    out = tmp / "run"
    assert main(calibrate(save_logits(tmp / "L.npz"), out, seeds=2)) == 0
    assert (out / "records.jsonl").is_file()
    return out


# ------------------------------------------------------------------------------ the cases
# each builds (argv, strings stderr must contain) from a scratch folder and the earlier run


def _methods(spec: str, *named: str):
    return lambda t, e: (run("--tasks", "calibration", "--methods", spec, "--out", str(e)), named)


def _sweep(body: str, *named: str):
    def build(t: Path, e: Path):
        path = t / "s.toml"
        path.write_text(body)
        return run("--sweep", str(path), "--dry-run", "--out", str(e)), (str(path), *named)

    return build


GRID = 'suite = "quick"\nseeds = 1\n[[grid]]\ntask = "calibration"\n'
UNKNOWN_TASK = 'suite = "quick"\n[[grid]]\ntask = "nosuch"\n'


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _data(corpus: str, make: Callable[[Path], tuple[Path, Path]], *named: str):
    """``run --data CORPUS=ROOT`` for the task that reads the corpus; stderr names the bad
    file (or the root) and ``named``."""

    def build(t: Path, e: Path):
        root, bad = make(t)
        argv = run("--tasks", "asr", "--seeds", "1", "--data", f"{corpus}={root}", "--out", str(e))
        return argv, (str(bad), *named)

    return build


def _corpus_card(make: Callable[[Path], tuple[Path, Path]], *named: str):
    """``data --corpus folder=ROOT``: the command that reads a folder corpus."""

    def build(t: Path, e: Path):
        root, bad = make(t)
        return ["data", "--corpus", f"folder={root}"], (str(bad), *named)

    return build


def _missing(t: Path) -> tuple[Path, Path]:
    return t / "no_such_corpus", t / "no_such_corpus"


def _empty(t: Path) -> tuple[Path, Path]:
    (t / "empty").mkdir()
    return t / "empty", t / "empty"


def _logits(write: Callable[[Path], object], *named: str):
    def build(t: Path, e: Path):
        path = t / "model.npz"
        write(path)
        return calibrate(path, e), (str(path), *named)

    return build


def _object_arrays(path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(path, logits=rng.normal(size=(N, K)).astype(object), labels=np.zeros(N, object))


def _object_labels(path: Path) -> None:
    save_logits(path, labels=np.arange(N).astype(object) % K)


def _nan(path: Path) -> None:
    logits = np.random.default_rng(0).normal(size=(N, K))
    logits[7, 2] = np.nan
    save_logits(path, logits=logits)


def _truncated(path: Path) -> None:
    save_logits(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _npy(path: Path) -> None:
    """One array written by numpy.save under an .npz name."""
    with path.open("wb") as fh:
        np.save(fh, np.zeros((N, K)))


def _zip_of_text(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("logits.npy", "not an array")
        z.writestr("labels.npy", "not an array")


NOT_NPZ = "not an .npz file"
OBJECT_FIX = ("dtype=object", "logits float (N, K)", "labels int (N,)")

CASES = [
    # task and method selection
    pytest.param(
        lambda t, e: (run("--tasks", "nosuch", "--out", str(e)), ("'nosuch'",)), id="unknown-task"
    ),
    pytest.param(_methods("calibrator=nosuch", "'nosuch'"), id="unknown-method"),
    pytest.param(_methods("calibrator", "'calibrator'", "family=name"), id="methods-without-="),
    pytest.param(_methods("loss=triplet", "family loss"), id="methods-family-unused"),
    # seeds
    pytest.param(
        lambda t, e: (
            run("--tasks", "calibration", "--seeds", "0", "--out", str(e)),
            ("--seeds", "got 0"),
        ),
        id="run-seeds-0",
    ),
    pytest.param(
        lambda t, e: (calibrate(save_logits(t / "L.npz"), e, seeds=0), ("--seeds", "got 0")),
        id="calibrate-seeds-0",
    ),
    # --out
    pytest.param(
        lambda t, e: (calibrate(save_logits(t / "L.npz"), e / "records.jsonl"), (str(e),)),
        id="calibrate-out-is-a-file",
    ),
    pytest.param(
        lambda t, e: (
            run("--tasks", "calibration", "--seeds", "1", "--methods", "calibrator=none")
            + ["--out", str(e / "report.md")],
            (str(e / "report.md"), "existing file"),
        ),
        id="run-out-is-a-file",
    ),
    pytest.param(
        lambda t, e: (
            calibrate(save_logits(t / "L.npz"), e / "records.jsonl" / "sub"),
            (str(e / "records.jsonl" / "sub"),),
        ),
        id="out-under-a-file",
    ),
    # sweep files
    pytest.param(_sweep(GRID + "epochz = 3\n", "epochz"), id="sweep-unknown-key"),
    pytest.param(  # names the task, though not the sweep file as the other sweep errors do
        lambda t, e: (
            run("--sweep", str(_write(t / "s.toml", UNKNOWN_TASK)), "--dry-run"),
            ("'nosuch'",),
        ),
        id="sweep-unknown-task",
    ),
    pytest.param(
        _sweep(GRID + 'config = { epochs = ["abc"] }\n', "config.epochs", "'abc'"),
        id="sweep-wrong-value-type",
    ),
    pytest.param(
        lambda t, e: (
            run("--sweep", str(t / "missing.toml"), "--dry-run", "--out", str(e)),
            (str(t / "missing.toml"), "does not exist"),
        ),
        id="sweep-file-missing",
    ),
    # --data corpora
    pytest.param(_data("librispeech", _missing, "does not exist"), id="data-missing-path"),
    pytest.param(_data("librispeech", _empty, "empty folder"), id="data-empty-folder"),
    pytest.param(
        _corpus_card(lambda t: folder_corpus(t, lambda p: tone(p, 8000)), "8000 Hz", "16000 Hz"),
        id="folder-manifest-8khz-file",
    ),
    pytest.param(
        lambda t, e: (
            run("--tasks", "asr", "--data", f"folder={folder_corpus(t, tone)[0]}", "--out", str(e)),
            ("--data folder", "no selected task reads"),
        ),
        id="run-data-folder-is-read-by-no-task",
    ),
    pytest.param(
        _data("librispeech", lambda t: librispeech(t, lambda p: tone(p, 8000)), "8000 Hz"),
        id="data-8khz-file",
    ),
    pytest.param(
        _data("librispeech", lambda t: librispeech(t, garbage), "cannot read audio file"),
        id="data-corrupt-audio",
    ),
    pytest.param(
        _corpus_card(lambda t: folder_corpus(t, garbage), "cannot read audio file"),
        id="folder-manifest-corrupt-audio",
    ),
    # calibrate --logits
    pytest.param(_logits(lambda p: None, "no such file"), id="logits-missing"),
    pytest.param(
        _logits(lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000)), NOT_NPZ),
        id="logits-random-bytes",
    ),
    pytest.param(
        _logits(lambda p: p.write_text("logits,labels\n0.5,1\n"), NOT_NPZ), id="logits-text-file"
    ),
    pytest.param(_logits(lambda p: p.write_bytes(b""), NOT_NPZ), id="logits-empty-file"),
    pytest.param(
        _logits(_npy, NOT_NPZ, ".npy"),
        id="logits-npy-not-npz",
    ),
    pytest.param(_logits(_truncated, "not a readable .npz"), id="logits-truncated-npz"),
    pytest.param(_logits(_zip_of_text, "not a numpy array"), id="logits-zip-not-npy"),
    pytest.param(_logits(_object_arrays, "'logits'", *OBJECT_FIX), id="logits-object-arrays"),
    pytest.param(_logits(_object_labels, "'labels'", *OBJECT_FIX), id="labels-object-array"),
    pytest.param(_logits(_nan, "NaN"), id="logits-nan"),
    pytest.param(
        _logits(lambda p: save_logits(p, labels=np.zeros(N - 1, int)), f"N = {N}", f"({N - 1},)"),
        id="labels-mis-shaped",
    ),
    pytest.param(
        _logits(lambda p: save_logits(p, logits=np.zeros(N)), f"got shape ({N},)"),
        id="logits-mis-shaped",
    ),
    pytest.param(
        _logits(lambda p: save_logits(p, labels=np.full(N, K)), f"[0, {K})", f"..{K}"),
        id="labels-above-range",
    ),
    pytest.param(
        _logits(lambda p: save_logits(p, labels=np.full(N, -1)), f"[0, {K})", "-1.."),
        id="labels-negative",
    ),
    pytest.param(
        _logits(lambda p: save_logits(p, np.zeros((0, K)), np.zeros(0, int)), "N"),
        id="logits-no-rows",
    ),
    # report and compare
    pytest.param(
        lambda t, e: (["report", str(t / "no_run"), "--no-figures"], (str(t / "no_run"),)),
        id="report-missing-folder",
    ),
    pytest.param(
        lambda t, e: (["compare", str(e), str(t)], (f"{t} is not a run folder",)),
        id="compare-old-not-a-run-folder",
    ),
    pytest.param(
        lambda t, e: (["compare", str(t), str(e)], (f"{t} is not a run folder",)),
        id="compare-new-not-a-run-folder",
    ),
]


@pytest.mark.parametrize("build", CASES)
def test_bad_input_exits_2_naming_it(build, earlier, tmp_path, capsys):
    argv, named = build(tmp_path, earlier)
    before = snapshot(earlier)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    one_line_error(out + err, *named)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "allow_pickle" not in err  # never the advice to load a file through pickle
    assert snapshot(earlier) == before


def test_object_array_message_is_not_numpys_alone(tmp_path, capsys):
    path = tmp_path / "objects.npz"
    _object_arrays(path)
    assert main(calibrate(path, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "Object arrays cannot be loaded" not in err and "allow_pickle" not in err
    assert str(path) in err and "numpy.savez" in err


def test_second_writer_on_a_locked_run_folder(earlier, capsys, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(earlier)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(earlier)  # with the holder recorded in .lock
        assert main(calibrate(save_logits(tmp_path / "L.npz"), earlier)) == 2
        err = capsys.readouterr().err
        one_line_error(err, str(earlier), f"pid {holder.pid}", "holder-snippet")
        assert len(err.strip().splitlines()) == 1
        assert snapshot(earlier) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_report_skips_a_json_line_that_is_not_an_object(earlier, tmp_path):
    """The report still builds (exit 0); a warning on stderr names the file and the line."""
    folder = tmp_path / "run"
    shutil.copytree(earlier, folder)
    records = folder / "records.jsonl"
    n_lines = len(records.read_text().splitlines())
    with records.open("a") as fh:
        fh.write("[1, 2, 3]\n")
    done = subprocess.run(
        [sys.executable, "run_all.py", "report", str(folder), "--no-figures"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert str(records) in done.stderr
    assert f"line {n_lines + 1}: a JSON list, not an object" in done.stderr
    assert (folder / "report.md").is_file()

"""Audio checks at index time (every real-corpus loader reads each file's header) and the
up-front ``--data`` check: one CorpusError naming the file, what is wrong and the fix."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import registry
from bench.cli import main
from bench.data.audio import AudioFormatError
from bench.data.checks import CorpusError, check_corpora, check_corpus
from bench.data.folder import load_folder
from bench.data.librispeech import load_librispeech
from bench.data.real_corpora import CORPUS_NAMES
from bench.data.timit import load_timit
from bench.data.voicebank import load_voicebank
from bench.sweep import expand


def tone(path: Path, rate: int = 16000, samples: int = 400, fmt: str | None = None) -> Path:
    """A short sine written with soundfile (format from the suffix unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(samples) / rate)
    sf.write(path, x.astype(np.float32), rate, format=fmt, subtype="PCM_16")
    return path


def garbage(path: Path) -> Path:
    """Random bytes under an audio name: what a truncated download looks like."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def manifest(root: Path, *paths: str) -> Path:
    """``root/manifest.csv`` listing ``paths`` (default 16 kHz)."""
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["path"], *[[p] for p in paths]])
    return root


def libri(root: Path, bad: str | None = None) -> Path:
    """A one-chapter LibriSpeech subset of three utterances; ``bad`` names one to corrupt."""
    chapter = root / "LibriSpeech" / "dev-clean" / "84" / "121123"
    for k in range(3):
        uid = f"84-121123-{k:04d}"
        (garbage if uid == bad else tone)(chapter / f"{uid}.flac")
    lines = [f"84-121123-{k:04d} WORD {k}" for k in range(3)]
    (chapter / "84-121123.trans.txt").write_text("\n".join(lines) + "\n")
    return root / "LibriSpeech"


def test_8khz_file_in_16khz_manifest_names_file_and_both_rates(tmp_path):
    tone(tmp_path / "ok.wav")
    bad = tone(tmp_path / "phone" / "call.wav", rate=8000)
    manifest(tmp_path, "ok.wav", "phone/call.wav")
    with pytest.raises(CorpusError) as e:
        load_folder(tmp_path)
    message = str(e.value)
    assert str(bad) in message and "8000 Hz" in message and "16000 Hz" in message
    assert "sample_rate column" in message and "sox" in message  # where the rate comes from
    assert "ok.wav" not in message  # only the bad file is listed
    with pytest.raises(CorpusError, match="call.wav is sampled at 8000 Hz, expected 16000 Hz"):
        check_corpus("folder", tmp_path)


def test_corrupt_wav_is_named_and_no_libsndfile_error_escapes(tmp_path):
    bad = garbage(tmp_path / "broken.wav")
    manifest(tmp_path, "broken.wav")
    with pytest.raises(CorpusError) as e:
        check_corpus("folder", tmp_path)
    assert isinstance(e.value, AudioFormatError) and isinstance(e.value, ValueError)
    assert not isinstance(e.value, sf.LibsndfileError) and e.value.__cause__ is None
    assert f"cannot read audio file {bad}" in str(e.value)


def test_empty_and_sampleless_audio_files(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    sf.write(tmp_path / "silent.wav", np.zeros(0, np.float32), 16000)
    manifest(tmp_path, "zero.wav", "silent.wav")
    with pytest.raises(CorpusError, match=r"2 unusable audio file\(s\)") as e:
        load_folder(tmp_path)
    assert "cannot read audio file" in str(e.value) and "silent.wav holds no samples" in str(
        e.value
    )


def test_many_bad_files_are_listed_then_counted(tmp_path):
    names = [f"u{k:02d}.wav" for k in range(13)]
    for name in names:
        tone(tmp_path / name, rate=22050)
    manifest(tmp_path, *names)
    with pytest.raises(CorpusError, match=r"13 unusable audio file\(s\)") as e:
        load_folder(tmp_path)
    assert "u09.wav" in str(e.value) and "u10.wav" not in str(e.value)
    assert "... and 3 more" in str(e.value)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_empty_folder_is_a_clear_error(tmp_path, name):
    with pytest.raises(CorpusError, match=f"{name} root {tmp_path} is an empty folder"):
        check_corpus(name, tmp_path)


def test_librispeech_corrupt_flac(tmp_path):
    root = libri(tmp_path, bad="84-121123-0001")
    with pytest.raises(CorpusError, match=r"84-121123-0001\.flac") as e:
        load_librispeech(root)
    assert "1 unusable audio file(s) in the librispeech corpus" in str(e.value)
    assert "LibriSpeech is 16 kHz" in str(e.value)


def test_timit_wrong_rate(tmp_path):
    speaker = tmp_path / "TRAIN" / "DR1" / "FCJF0"
    tone(speaker / "SI1.WAV", rate=8000, fmt="NIST")  # SPHERE, like the real TIMIT files
    (speaker / "SI1.PHN").write_text("0 200 h#\n200 400 sh\n")
    (speaker / "SI1.TXT").write_text("0 400 She.\n")
    with pytest.raises(CorpusError, match=r"SI1\.WAV is sampled at 8000 Hz, expected 16000"):
        load_timit(tmp_path)


def test_voicebank_corrupt_clean_twin(tmp_path):
    for kind in ("clean", "noisy"):
        for uid in ("p232_001", "p232_002"):
            tone(tmp_path / f"{kind}_testset_wav" / f"{uid}.wav")
    bad = garbage(tmp_path / "clean_testset_wav" / "p232_002.wav")
    with pytest.raises(CorpusError, match=f"cannot read audio file {bad}"):
        load_voicebank(tmp_path)


def test_check_corpora_counts_a_good_corpus(tmp_path):
    assert check_corpora({"librispeech": libri(tmp_path)}) == {"librispeech": 3}


def test_expand_checks_the_data_before_any_cell(tmp_path, capsys):
    registry.load_all()
    root = libri(tmp_path, bad="84-121123-0002")
    with pytest.raises(CorpusError, match=r"84-121123-0002\.flac"):
        expand("quick", ["asr"], data={"librispeech": root})
    assert expand("quick", ["asr"], data={"librispeech": root}, check_data=False)
    args = ["--suite", "quick", "--tasks", "asr", "--data", f"librispeech={root}", "--dry-run"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "84-121123-0002.flac" in err and "Traceback" not in err

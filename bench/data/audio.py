"""Reading audio files with errors that name the file and say what was expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data.errors import CorpusError

# what libsndfile raises for a file it cannot open (TypeError: a RAW file needs a format)
_READ_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError)


class AudioFormatError(CorpusError):
    """An audio file that cannot be used as it is (unreadable, wrong rate, empty)."""


def unreadable(path: Path, exc: Exception) -> str:
    """The message for a file libsndfile cannot open."""
    return f"cannot read audio file {path} ({exc}); expected WAV/FLAC/OGG readable by libsndfile"


def wrong_rate(path: Path, rate: int, expected: int) -> str:
    """The message for a file at another sample rate than the corpus promises."""
    return f"{path} is sampled at {rate} Hz, expected {expected} Hz"


def resample_hint(expected: int) -> str:
    """How to fix a wrong sample rate."""
    return f"resample it (e.g. sox in.wav -r {expected} out.wav) or fix the corpus path"


def audio_problem(path: str | Path, expected_sample_rate: int) -> str | None:
    """What makes ``path`` unusable at ``expected_sample_rate``, or None if nothing does.

    Reads the header only (``soundfile.info``), so a whole corpus is checked in seconds
    when it is indexed, instead of failing one training run later on a bad file.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except _READ_ERRORS as exc:
        return unreadable(path, exc)
    if info.samplerate != expected_sample_rate:
        return wrong_rate(path, info.samplerate, expected_sample_rate)
    if info.frames == 0:
        return f"{path} holds no samples"
    return None


def read_audio(path: str | Path, expected_sample_rate: int | None = None) -> np.ndarray:
    """float32 mono samples of ``path``; multi-channel audio is averaged to mono.

    Raises FileNotFoundError for a missing file and AudioFormatError for an unreadable
    one or one whose sample rate is not ``expected_sample_rate`` (no silent resampling:
    a wrong rate usually means the wrong file or corpus layout).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except _READ_ERRORS as exc:
        raise AudioFormatError(unreadable(path, exc)) from exc
    if expected_sample_rate is not None and rate != expected_sample_rate:
        message = wrong_rate(path, rate, expected_sample_rate)
        raise AudioFormatError(f"{message}; {resample_hint(expected_sample_rate)}")
    if data.shape[0] == 0:
        raise AudioFormatError(f"{path} holds no samples")
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]

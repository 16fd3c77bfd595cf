"""Reading audio files with errors that name the file and say what was expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioFormatError(ValueError):
    """An audio file that cannot be used as it is (unreadable, wrong rate, empty)."""


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
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(
            f"cannot read audio file {path} ({exc}); expected WAV/FLAC/OGG readable by libsndfile"
        ) from exc
    if expected_sample_rate is not None and rate != expected_sample_rate:
        raise AudioFormatError(
            f"{path} is sampled at {rate} Hz, expected {expected_sample_rate} Hz; resample it "
            f"(e.g. sox in.wav -r {expected_sample_rate} out.wav) or fix the corpus path"
        )
    if data.shape[0] == 0:
        raise AudioFormatError(f"{path} holds no samples")
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]

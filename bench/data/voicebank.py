"""VoiceBank-DEMAND: noisy/clean speech pairs for enhancement, with transcripts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.corpus_layout import check_root, finish, layout_error, wanted_splits
from bench.data.items import Utterance

LAYOUT = """\
  ROOT/clean_trainset_28spk_wav/*.wav   ROOT/noisy_trainset_28spk_wav/*.wav
  ROOT/clean_testset_wav/*.wav          ROOT/noisy_testset_wav/*.wav
  ROOT/trainset_28spk_txt/*.txt         ROOT/testset_txt/*.txt  (transcripts, optional)
  folders matched by clean_train*wav, noisy_train*wav, clean_test*wav, noisy_test*wav
  (so the 56spk variant works too); every noisy file needs a clean file of the same name"""


def _err(exc_type: type[Exception], message: str) -> Exception:
    return layout_error(exc_type, message, LAYOUT)


def load_voicebank(
    root: str | Path, splits: str | Iterable[str] | None = None, sample_rate: int = 16000
) -> list[Utterance]:
    """VoiceBank-DEMAND pairs: ``path`` = noisy file, ``clean_path`` = clean, split
    train / test, speaker = the id's prefix (p226_001 -> p226).

    ``sample_rate`` is the rate of the copy on disk (the originals are 48 kHz, the common
    downsampled copy 16 kHz); every file's header is checked against it. With a
    transcript folder present every utterance needs its transcript.
    """
    root = check_root(root, "voicebank", LAYOUT)
    wanted = wanted_splits(splits, ("train", "test"), lower=True)
    items: list[Utterance] = []
    for split in ("train", "test"):
        if wanted is None or split in wanted:
            for noisy_dir in _matching_dirs(root, f"noisy_{split}*wav"):
                items.extend(_pairs(root, noisy_dir, split, sample_rate))
    if not items and wanted is None:
        raise _err(FileNotFoundError, f"no noisy_train*wav or noisy_test*wav folder in {root}")
    return finish("voicebank", LAYOUT, root, items, wanted, _rate_note(sample_rate))


def _matching_dirs(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_dir())  # not the .zip archives


def _pairs(root: Path, noisy_dir: Path, split: str, rate: int) -> list[Utterance]:
    """The pairs of one noisy folder, with its clean twin folder and optional transcripts."""
    stem = noisy_dir.name.removeprefix("noisy_")  # e.g. trainset_28spk_wav
    clean_dir = root / f"clean_{stem}"
    if not clean_dir.is_dir():
        candidates = _matching_dirs(root, f"clean_{split}*wav")
        if len(candidates) != 1:
            raise _err(FileNotFoundError, f"clean folder {clean_dir} (for {noisy_dir}) is missing")
        clean_dir = candidates[0]
    txt_dir: Path | None = root / f"{stem.removesuffix('_wav')}_txt"
    if txt_dir is not None and not txt_dir.is_dir():
        candidates = _matching_dirs(root, f"{split}*txt")
        txt_dir = candidates[0] if len(candidates) == 1 else None
    noisy = sorted(f for f in noisy_dir.iterdir() if f.suffix.lower() == ".wav")
    clean_files = sorted(f for f in clean_dir.iterdir() if f.suffix.lower() == ".wav")
    for folder, files in ((noisy_dir, noisy), (clean_dir, clean_files)):
        if not files:
            raise _err(ValueError, f"{folder} holds no .wav files")
    items = []
    for f in noisy:
        clean = clean_dir / f.name
        if not clean.is_file():
            raise _err(FileNotFoundError, f"noisy file {f} has no clean twin {clean}")
        transcript = None
        if txt_dir is not None:
            txt = txt_dir / f"{f.stem}.txt"
            if not txt.is_file():
                raise _err(FileNotFoundError, f"transcript {txt} of {f} is missing")
            transcript = txt.read_text(encoding="utf-8", errors="replace").strip()
        speaker = f.stem.split("_")[0]
        items.append(
            Utterance(f.stem, f, speaker, split, rate, transcript=transcript, clean_path=clean)
        )
    return items


def _rate_note(expected: int) -> str:
    """Where the expected rate comes from, and the two ways out of a mismatch."""
    return (
        f"sample_rate={expected} is the rate load_voicebank expects on disk (the originals "
        "are 48 kHz, the common copy 16 kHz): pass the copy's rate as sample_rate if the "
        f"tasks accept it, or resample the corpus to {expected} Hz"
    )

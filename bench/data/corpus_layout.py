"""The layout checks shared by the real-corpus loaders (``librispeech.py``, ``timit.py``,
``voicebank.py``, ``folder.py``): errors that end with the expected layout, the root check,
split selection and the final check-and-sort of the utterances a loader found, which
includes a header check (readable, sample rate) of every audio file.

This module sits below the loaders and ``real_corpora`` (which registers them), so the
loaders import from here and nothing imports in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.audio import AudioFormatError, audio_problem
from bench.data.errors import CorpusError
from bench.data.items import Utterance

MAX_LISTED = 10  # unusable audio files listed in one error (then a count of the rest)


def layout_error(exc_type: type[Exception], message: str, layout: str) -> Exception:
    """An exception whose message ends with the corpus's expected layout. ValueError
    becomes CorpusError (a ValueError), the one type callers catch for unusable corpora."""
    exc_type = CorpusError if exc_type is ValueError else exc_type
    return exc_type(f"{message}\nexpected layout:\n{layout}")


def check_root(root: str | Path, corpus: str, layout: str) -> Path:
    """``root`` as a Path; it must be an existing, non-empty folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise layout_error(FileNotFoundError, f"{corpus} root {path} does not exist", layout)
    if not path.is_dir():
        raise layout_error(ValueError, f"{corpus} root {path} is a file, not a folder", layout)
    if not any(path.iterdir()):
        raise layout_error(ValueError, f"{corpus} root {path} is an empty folder", layout)
    return path


def wanted_splits(
    splits: str | Iterable[str] | None, known: Iterable[str] | None = None, lower: bool = False
) -> set[str] | None:
    """Requested splits as a set (None = all); a lone string is one split, not characters."""
    if splits is None:
        return None
    wanted = {splits} if isinstance(splits, str) else set(splits)
    if lower:
        wanted = {s.lower() for s in wanted}
    if not wanted:
        raise ValueError("splits is empty; pass None for all splits")
    if known is not None and not wanted <= set(known):
        raise ValueError(f"unknown splits {sorted(wanted - set(known))}; known: {sorted(known)}")
    return wanted


def finish(
    corpus: str,
    layout: str,
    root: Path,
    items: list[Utterance],
    wanted: set[str] | None,
    rate_note: str = "",
) -> list[Utterance]:
    """Check the result is non-empty, covers the requested splits, has unique ids and
    usable audio (``check_audio_files``; ``rate_note`` says where the expected rate comes
    from); sort by id."""
    if not items:
        raise layout_error(ValueError, f"no {corpus} utterances found under {root}", layout)
    found = {u.split for u in items}
    if wanted is not None and wanted - found:
        message = f"split(s) {sorted(wanted - found)} not found under {root}; found {sorted(found)}"
        raise layout_error(ValueError, message, layout)
    items.sort(key=lambda u: u.id)
    for a, b in zip(items, items[1:], strict=False):
        if a.id == b.id:
            message = f"duplicate utterance id {a.id}: {a.path} and {b.path}"
            raise layout_error(ValueError, message, layout)
    check_audio_files(corpus, root, items, rate_note)
    return items


def check_audio_files(corpus: str, root: Path, items: list[Utterance], rate_note: str) -> None:
    """Header-check every audio file (and clean reference) of ``items`` at its utterance's
    sample rate; raise one AudioFormatError listing the unusable ones.

    Only headers are read (``audio_problem``), so this costs seconds at index time and an
    8 kHz file in a 16 kHz corpus, or a corrupt one, fails before any training.
    """
    problems = []
    for utt in items:
        for path in (utt.path, utt.clean_path):
            problem = None if path is None else audio_problem(path, utt.sample_rate)
            if problem is not None:
                problems.append(problem)
    if not problems:
        return
    listed = "\n  ".join(problems[:MAX_LISTED])
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    rates = sorted({u.sample_rate for u in items})
    sox = f" (e.g. sox in.wav -r {rates[0]} out.wav)" if len(rates) == 1 else ""
    fix = f"fix: resample files at another rate{sox}, replace unreadable or empty ones"
    note = f"; {rate_note}" if rate_note else ""
    raise AudioFormatError(
        f"{len(problems)} unusable audio file(s) in the {corpus} corpus at {root}:\n  "
        f"{listed}{more}\n{fix}{note}"
    )


def subdirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir())

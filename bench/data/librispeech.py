"""LibriSpeech: read speech with upper-case transcripts, one split per subset folder."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bench.data.corpus_layout import check_root, finish, layout_error, subdirs, wanted_splits
from bench.data.items import Utterance

LAYOUT = """\
  ROOT/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac  (or .wav)
  ROOT/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   lines 'ID WORDS...'
  ROOT = the LibriSpeech folder holding subsets (train-clean-100, dev-clean, test-clean,
  test-other, ...), the folder holding LibriSpeech/, or a single subset folder;
  split = subset name"""
RATE_NOTE = "LibriSpeech is 16 kHz; re-extract or replace the files listed"


def _err(exc_type: type[Exception], message: str) -> Exception:
    return layout_error(exc_type, message, LAYOUT)


def load_librispeech(
    root: str | Path, splits: str | Iterable[str] | None = None
) -> list[Utterance]:
    """LibriSpeech utterances of all subsets under ``root`` (or of ``splits``, subset names)."""
    root = check_root(root, "librispeech", LAYOUT)
    if (root / "LibriSpeech").is_dir():  # the folder the archives extract into
        root = root / "LibriSpeech"
    dirs = subdirs(root)
    if any(d.name.isdigit() for d in dirs):  # speaker folders: root is one subset
        subsets = {root.name: root}
    else:
        subsets = {d.name: d for d in dirs if any(s.name.isdigit() for s in subdirs(d))}
    if not subsets:
        raise _err(ValueError, f"no subset or speaker folders under {root}")
    wanted = wanted_splits(splits)
    if wanted is not None and wanted - set(subsets):
        missing = sorted(wanted - set(subsets))
        raise _err(ValueError, f"subset(s) {missing} not under {root}; found {sorted(subsets)}")
    items: list[Utterance] = []
    for subset, subset_dir in sorted(subsets.items()):
        if wanted is None or subset in wanted:
            n = len(items)
            for chapter in sorted(p for p in subset_dir.glob("*/*") if p.is_dir()):
                items.extend(_chapter(chapter, subset))
            if len(items) == n:
                raise _err(ValueError, f"no utterances in subset folder {subset_dir}")
    return finish("librispeech", LAYOUT, root, items, wanted, RATE_NOTE)


def _chapter(chapter: Path, subset: str) -> list[Utterance]:
    """The utterances of one chapter folder, checked against its .trans.txt both ways."""
    speaker, prefix = chapter.parent.name, f"{chapter.parent.name}-{chapter.name}"
    audio = {f.stem: f for f in chapter.iterdir() if f.suffix.lower() in (".flac", ".wav")}
    trans = chapter / f"{prefix}.trans.txt"
    if not trans.is_file():
        if audio:
            raise _err(FileNotFoundError, f"transcript file {trans} is missing")
        return []
    pattern = re.compile(rf"{re.escape(prefix)}-\d+")
    items = []
    for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) < 2 or not pattern.fullmatch(parts[0]):
            message = f"{trans}:{lineno}: cannot parse {line!r}; expected '{prefix}-<utt> WORDS'"
            raise _err(ValueError, message)
        uid = parts[0]
        if uid not in audio:
            raise _err(FileNotFoundError, f"{chapter / uid}.flac (line {lineno}) is missing")
        items.append(Utterance(uid, audio.pop(uid), speaker, subset, transcript=parts[1].strip()))
    if audio:
        names = sorted(f.name for f in audio.values())
        raise _err(ValueError, f"{trans} has no transcript line for {names[:5]} ({len(names)})")
    return items

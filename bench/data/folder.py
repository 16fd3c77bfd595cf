"""Any corpus described by a ``manifest.csv``: one row per utterance."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from bench.data.corpus_layout import check_root, finish, layout_error, wanted_splits
from bench.data.items import Utterance

LAYOUT = """\
  ROOT/manifest.csv with a header row; required column: path (relative to ROOT or
  absolute); optional: id, speaker, split, transcript, language, phonemes (space-separated),
  sample_rate (default 16000), clean_path; other columns go to Utterance.extra.
  Defaults: id = file stem, speaker 'unknown', split 'test', language 'en'"""

COLUMNS: tuple[str, ...] = ("path", "id", "speaker", "split", "transcript", "language", "phonemes")
COLUMNS += ("sample_rate", "clean_path")
RATE_NOTE = "the manifest's sample_rate column sets each row's expected rate (default 16000)"


def _err(exc_type: type[Exception], message: str) -> Exception:
    return layout_error(exc_type, message, LAYOUT)


def load_folder(root: str | Path, splits: str | Iterable[str] | None = None) -> list[Utterance]:
    """Utterances listed in ``root/manifest.csv`` (any corpus, any split names)."""
    root = check_root(root, "folder", LAYOUT)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise _err(FileNotFoundError, f"manifest {manifest} is missing")
    wanted = wanted_splits(splits)
    items = []
    with manifest.open(newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheet BOMs
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns:
            raise _err(ValueError, f"{manifest} has no 'path' column; found columns {columns}")
        reader.fieldnames = columns
        for rownum, raw in enumerate(reader, 1):
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            utt = _row(root, row, f"{manifest} row {rownum} (line {reader.line_num})")
            if wanted is None or utt.split in wanted:
                items.append(utt)
    if not items and wanted is None:
        raise _err(ValueError, f"{manifest} lists no utterances")
    return finish("folder", LAYOUT, root, items, wanted, RATE_NOTE)


def _row(root: Path, row: dict[str, str], where: str) -> Utterance:
    """One manifest row as an Utterance; errors name the row and the path."""
    paths = {}
    for key in ("path", "clean_path"):
        if row.get(key):
            path = Path(row[key]).expanduser()
            paths[key] = path if path.is_absolute() else root / path
            if not paths[key].is_file():
                raise _err(FileNotFoundError, f"{where}: {key} {paths[key]} does not exist")
    if "path" not in paths:
        raise _err(ValueError, f"{where}: the path cell is empty")
    rate = row.get("sample_rate") or "16000"
    if not rate.isdigit() or int(rate) <= 0:
        raise _err(ValueError, f"{where}: sample_rate {rate!r} is not a positive integer")
    return Utterance(
        id=row.get("id") or paths["path"].stem,
        path=paths["path"],
        speaker=row.get("speaker") or "unknown",
        split=row.get("split") or "test",
        sample_rate=int(rate),
        language=row.get("language") or "en",
        transcript=row.get("transcript") or None,
        phonemes=tuple(row["phonemes"].split()) if row.get("phonemes") else None,
        clean_path=paths.get("clean_path"),
        extra={k: v for k, v in row.items() if k not in COLUMNS},
    )

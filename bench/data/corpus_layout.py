"""The layout checks shared by the real-corpus loaders (``librispeech.py``, ``timit.py``,
``voicebank.py``, ``folder.py``): errors that end with the expected layout, the root check,
split selection and the final check-and-sort of the utterances a loader found.

This module sits below the loaders and ``real_corpora`` (which registers them), so the
loaders import from here and nothing imports in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.items import Utterance


def layout_error(exc_type: type[Exception], message: str, layout: str) -> Exception:
    """An exception whose message ends with the corpus's expected layout."""
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
    corpus: str, layout: str, root: Path, items: list[Utterance], wanted: set[str] | None
) -> list[Utterance]:
    """Check the result is non-empty, covers the requested splits, has unique ids; sort."""
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
    return items


def subdirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir())

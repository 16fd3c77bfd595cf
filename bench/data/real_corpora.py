"""Loaders for real speech corpora the user owns, yielding the same ``Utterance`` as the
synthetic corpus: the shared layout checks, the ``LOADERS`` registry and ``--data`` parsing.

The loaders live in ``librispeech.py``, ``timit.py``, ``voicebank.py`` and ``folder.py``;
each ``load_<name>(root, splits=None, ...)`` reads a corpus's standard layout, checks it
and returns utterances sorted by id. Audio is not read (``Utterance.load()`` reads it
lazily and checks its sample rate). Errors name the path and end with the expected layout:
a path that should exist and does not -> FileNotFoundError; a folder with nothing usable,
a bad label line or manifest row -> ValueError; a wrong sample rate -> AudioFormatError.

``LOADERS`` is built on first use (module ``__getattr__``) because the loader modules
import the helpers below; importing them here eagerly would make an import cycle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.data.items import Utterance

CORPUS_NAMES = ("librispeech", "timit", "voicebank", "folder")


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


@functools.cache
def _registry() -> tuple[dict[str, Callable[..., list[Utterance]]], dict[str, str]]:
    from bench.data import folder, librispeech, timit, voicebank

    modules = {"librispeech": librispeech, "timit": timit, "voicebank": voicebank}
    modules["folder"] = folder
    loaders = {name: getattr(m, f"load_{name}") for name, m in modules.items()}
    return loaders, {name: m.LAYOUT for name, m in modules.items()}


def __getattr__(name: str):
    """``LOADERS`` (name -> loader), ``LAYOUTS`` (name -> layout text) and the
    ``load_<name>`` functions, imported on first use."""
    if name.startswith("load_") and name[5:] in CORPUS_NAMES:
        return _registry()[0][name[5:]]
    if name == "LOADERS":
        return _registry()[0]
    if name == "LAYOUTS":
        return _registry()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_corpus(name: str, root: str | Path, **options) -> list[Utterance]:
    """``LOADERS[name](root, **options)``; an unknown name lists the known ones."""
    if name not in CORPUS_NAMES:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPUS_NAMES)}")
    return _registry()[0][name](root, **options)


def parse_data_arg(text: str) -> tuple[str, Path]:
    """``'NAME=PATH'`` (the CLI's ``--data``) -> (name, path); NAME must be a known loader."""
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise ValueError(
            f"--data {text!r} is not NAME=PATH (e.g. librispeech=/data/LibriSpeech); "
            f"NAME is one of {', '.join(CORPUS_NAMES)}"
        )
    if name not in CORPUS_NAMES:
        raise ValueError(
            f"--data {text!r}: unknown corpus {name!r}; known corpora: {', '.join(CORPUS_NAMES)}"
        )
    return name, Path(path).expanduser()

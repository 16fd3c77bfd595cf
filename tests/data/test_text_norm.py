import pytest

from bench.data.text_norm import alphabet, characters, normalize


def test_punctuation_case_and_whitespace():
    assert normalize("  Hello,   WORLD!\tHow are\nyou?  ") == "hello world how are you"
    assert normalize("well-known (U.S.A.) \u201cquote\u201d") == "well known u s a quote"
    assert normalize("") == "" and normalize(" ?! ") == ""
    assert normalize("Room 101, floor 3") == "room 101 floor 3"  # digits are kept


def test_apostrophes_kept_only_inside_words():
    assert normalize("Don't stop, it's John's") == "don't stop it's john's"
    assert normalize("Don\u2019t") == "don't"  # typographic apostrophe becomes "'"
    assert normalize("'Quoted' words' ends ''") == "quoted words ends"
    assert normalize("rock'n'roll") == "rock'n'roll"
    assert normalize("a''b") == "ab"  # neither apostrophe has a letter on both sides


def test_latvian_diacritics_and_nfc():
    text = "Ābele, čūska; Ēģīķļņšž!"
    assert normalize(text, "lv") == "ābele čūska ēģīķļņšž"
    decomposed = "a\u0304bols"  # "a" + combining macron: NFC composes it to "ā"
    assert normalize(decomposed, "lv") == "ābols" and len(normalize(decomposed, "lv")) == 5
    assert normalize("ЖУРНАЛ Ελλάδα") == "журнал ελλάδα"  # letters of any script
    assert normalize("O'Brien", "lv") == "obrien"  # no apostrophe in the Latvian alphabet


@pytest.mark.parametrize(
    "text",
    ["Don't  STOP!", "'a' -- b", "Ā  ē?", "x''y 'z", "İstanbul", "a\u0304\u0301b", "½ 3² _x_"],
)
def test_idempotent_so_refs_and_hyps_meet(text):
    for language in ("en", "lv"):
        once = normalize(text, language)
        assert normalize(once, language) == once
    # a reference and a hypothesis that differ only in case/punctuation score as equal
    assert normalize("Hello, World.") == normalize("hello world")


def test_alphabets():
    en, lv = alphabet("en"), alphabet("lv")
    assert len(en) == 28 and en[-2:] == ["'", " "] and en[:3] == ["a", "b", "c"]
    assert len(lv) == 34 and lv[-1] == " " and len(set(lv)) == 34
    assert set("āčēģīķļņšū ž") <= set(lv) and not {"q", "w", "x", "y"} & set(lv)
    with pytest.raises(ValueError, match="known"):
        alphabet("xx")


def test_characters_maps_and_rejects_unknown():
    assert characters("Don't go!", "en") == list("don't go")
    assert characters("Ķēķis", "lv") == list("ķēķis")
    with pytest.raises(ValueError, match=r"'é'.*'en' alphabet.*extend alphabet"):
        characters("café", "en")
    with pytest.raises(ValueError, match=r"'7'.*'lv'"):
        characters("7 kaķi", "lv")

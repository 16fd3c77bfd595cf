"""TIMIT: phonetically aligned read speech; phones folded 61 -> 39 for PER."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.corpus_layout import check_root, finish, layout_error, subdirs, wanted_splits
from bench.data.items import PhoneSegment, Utterance

LAYOUT = """\
  ROOT/{TRAIN,TEST}/<DR>/<SPEAKER>/<UTT>.WAV  (NIST SPHERE or RIFF WAV, 16 kHz)
  ROOT/{TRAIN,TEST}/<DR>/<SPEAKER>/<UTT>.PHN  lines 'START END PHONE' (sample positions)
  ROOT/{TRAIN,TEST}/<DR>/<SPEAKER>/<UTT>.TXT  line 'START END SENTENCE'
  ROOT/{TRAIN,TEST}/<DR>/<SPEAKER>/<UTT>.WRD  lines 'START END WORD' (optional)
  upper- or lower-case names; split = train / test"""
RATE_NOTE = "TIMIT is 16 kHz; re-extract or replace the files listed"

# TIMIT's 61 phones folded to the 39 classes of Lee & Hon (1989), as in Kaldi's
# egs/timit/s5/conf/phones.60-48-39.map (third column). None = dropped (glottal stop q).
TIMIT_61_TO_39: dict[str, str | None] = {
    "aa": "aa", "ae": "ae", "ah": "ah", "ao": "aa", "aw": "aw", "ax": "ah", "ax-h": "ah",
    "axr": "er", "ay": "ay", "b": "b", "bcl": "sil", "ch": "ch", "d": "d", "dcl": "sil",
    "dh": "dh", "dx": "dx", "eh": "eh", "el": "l", "em": "m", "en": "n", "eng": "ng",
    "epi": "sil", "er": "er", "ey": "ey", "f": "f", "g": "g", "gcl": "sil", "h#": "sil",
    "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih", "iy": "iy", "jh": "jh", "k": "k",
    "kcl": "sil", "l": "l", "m": "m", "n": "n", "ng": "ng", "nx": "n", "ow": "ow", "oy": "oy",
    "p": "p", "pau": "sil", "pcl": "sil", "q": None, "r": "r", "s": "s", "sh": "sh", "t": "t",
    "tcl": "sil", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw", "v": "v", "w": "w",
    "y": "y", "z": "z", "zh": "sh",
}  # fmt: skip
TIMIT_PHONES_39: tuple[str, ...] = tuple(sorted({p for p in TIMIT_61_TO_39.values() if p}))
TIMIT_SILENCE = "sil"  # kept in alignments, removed from Utterance.phonemes (PER)


def _err(exc_type: type[Exception], message: str) -> Exception:
    return layout_error(exc_type, message, LAYOUT)


def fold_timit_phones(phones: Iterable[str]) -> tuple[str, ...]:
    """61-phone TIMIT labels -> the 39-class sequence scored by PER (q and sil removed)."""
    folded = (TIMIT_61_TO_39[p.lower()] for p in phones)
    return tuple(p for p in folded if p is not None and p != TIMIT_SILENCE)


def load_timit(
    root: str | Path, splits: str | Iterable[str] | None = None, include_sa: bool = False
) -> list[Utterance]:
    """TIMIT utterances with folded phonemes and phone alignments.

    The SA1/SA2 dialect sentences (read by every speaker) are skipped unless
    ``include_sa``, as in the standard recipes (Kaldi's timit): they would bias phone
    recognition toward two sentences. Ids are ``SPEAKER_UTT`` (e.g. FCJF0_SI1027) and
    speakers the speaker folder name, both upper-cased whatever the files' case.
    ``phonemes`` are the 39 folded classes without q and sil; ``alignment`` keeps sil
    (q is dropped, leaving a gap). ``extra`` holds dialect_region, sex and, if a .WRD
    file exists, words as (word, start, end).
    """
    root = check_root(root, "timit", LAYOUT)
    wanted = wanted_splits(splits, ("train", "test"), lower=True)
    split_dirs = [d for d in subdirs(root) if d.name.lower() in ("train", "test")]
    if not split_dirs:
        raise _err(FileNotFoundError, f"no TRAIN or TEST folder in {root}")
    items: list[Utterance] = []
    for split_dir in split_dirs:
        split = split_dir.name.lower()
        if wanted is not None and split not in wanted:
            continue
        for speaker_dir in sorted(p for p in split_dir.glob("*/*") if p.is_dir()):
            for utt, wav in _audio_files(speaker_dir).items():
                if include_sa or not utt.startswith("SA"):
                    items.append(_utterance(speaker_dir, utt, wav, split))
    return finish("timit", LAYOUT, root, items, wanted, RATE_NOTE)


def _audio_files(speaker_dir: Path) -> dict[str, Path]:
    """Utterance name (upper case) -> audio file. A converted ``X.wav`` or ``X.WAV.wav``
    beside the original SPHERE ``X.WAV`` is preferred (any reader handles RIFF)."""
    found: dict[str, tuple[bool, Path]] = {}
    for f in sorted(speaker_dir.iterdir()):
        base = f.name
        while base.lower().endswith(".wav"):
            base = base[:-4]
        if base != f.name and f.is_file():
            key, converted = base.upper(), f.name.endswith(".wav")
            if key not in found or converted > found[key][0]:
                found[key] = (converted, f)
    return {k: v[1] for k, v in sorted(found.items())}


def _utterance(speaker_dir: Path, utt: str, wav: Path, split: str) -> Utterance:
    """One TIMIT utterance from its audio and .PHN/.TXT (and optional .WRD) files."""
    files = {f.name.lower(): f for f in speaker_dir.iterdir()}
    label: dict[str, Path | None] = {}
    for ext in ("phn", "txt", "wrd"):
        label[ext] = files.get(f"{utt.lower()}.{ext}")
        if label[ext] is None and ext != "wrd":
            missing = speaker_dir / f"{utt}.{ext.upper()}"
            raise _err(FileNotFoundError, f"{missing} (label file of {wav}) is missing")
    phn, txt = label["phn"], label["txt"]
    assert phn is not None and txt is not None  # checked above
    alignment = []
    for start, end, phone, where in _segments(phn):
        if phone.lower() not in TIMIT_61_TO_39:
            raise _err(ValueError, f"{where}: {phone!r} is not one of the 61 TIMIT phones")
        folded = TIMIT_61_TO_39[phone.lower()]
        if folded is not None:
            alignment.append(PhoneSegment(folded, start, end))
    text = txt.read_text(encoding="utf-8", errors="replace").strip()
    parts = text.split(maxsplit=2)
    if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        raise _err(ValueError, f"{label['txt']}: cannot parse {text[:80]!r}")
    speaker = speaker_dir.name.upper()
    extra: dict[str, object] = {
        "dialect_region": speaker_dir.parent.name.upper(),
        "sex": speaker[:1],
    }
    if label["wrd"] is not None:
        extra["words"] = tuple((w, s, e) for s, e, w, _ in _segments(label["wrd"]))
    return Utterance(
        id=f"{speaker}_{utt}",
        path=wav,
        speaker=speaker,
        split=split,
        transcript=parts[2].strip(),
        phonemes=tuple(s.phone for s in alignment if s.phone != TIMIT_SILENCE),
        alignment=tuple(alignment),
        extra=extra,
    )


def _segments(path: Path) -> list[tuple[int, int, str, str]]:
    """(start, end, label, 'file:line') of a .PHN/.WRD file; errors name the file and line."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        ok = len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit()
        if not ok or int(parts[0]) > int(parts[1]):
            message = (
                f"{path}:{lineno}: cannot parse {line!r}; expected 'START END LABEL' with "
                "sample positions START <= END"
            )
            raise _err(ValueError, message)
        rows.append((int(parts[0]), int(parts[1]), parts[2], f"{path}:{lineno}"))
    if not rows:
        raise _err(ValueError, f"{path} is empty")
    return rows

"""Dataset cards: what a corpus holds, in Markdown, for `run_all.py data` and every report."""

from __future__ import annotations

from collections import Counter, defaultdict

import soundfile as sf

from bench.data.items import Utterance

SYNTHETIC_NOTE = (
    "Synthetic speech from espeak-ng (formant synthesis; GPL-3.0, loaded at run time). "
    "Speakers are espeak voice variants with their own pitch and rate; prosody classes are "
    "synthetic stand-ins for emotions (rate, pitch, range and volume settings), not emotional "
    "recordings. English sentences come from a template grammar over CMUdict words; Latvian "
    "ones are sequences of common words. Splits are speaker- and sentence-disjoint."
)


def _seconds(u: Utterance) -> float:
    n = u.extra.get("num_samples") if u.extra else None
    if n is None:
        n = sf.info(u.path).frames
    return n / u.sample_rate


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def dataset_card(
    name: str,
    utterances: list[Utterance],
    mixtures: list[Utterance] | None = None,
    note: str = "",
    generation: dict | None = None,
) -> str:
    """Markdown card: size per split, speakers, phoneme counts, prosody and noise balance."""
    lines = [f"**{name}**", ""]
    if note:
        lines += [note, ""]
    per_split: dict[tuple[str, str], list[Utterance]] = defaultdict(list)
    for u in utterances:
        per_split[(u.language, u.split)].append(u)
    rows = []
    total = 0.0
    for (lang, split), items in sorted(per_split.items()):
        secs = sum(_seconds(u) for u in items)
        total += secs
        rows.append(
            [
                lang,
                split,
                len(items),
                len({u.speaker for u in items}),
                f"{secs / 3600:.3f}",
                f"{secs / max(1, len(items)):.2f}",
            ]
        )
    lines += [
        f"{len(utterances)} utterances, {total / 3600:.3f} hours, "
        f"{len({u.speaker for u in utterances})} speakers.",
        "",
    ]
    lines += _table(["language", "split", "utterances", "speakers", "hours", "mean s/utt"], rows)
    if generation:
        lines += [
            "",
            f"Generated at {generation['realtime_factor']:.0f}x real time "
            f"({generation['audio_seconds']:.0f} s of audio in "
            f"{generation['synthesis_seconds']:.1f} s, {generation['jobs']} job(s); "
            f"{generation.get('total_seconds', float('nan')):.1f} s with the noisy mixtures).",
        ]
    for lang in sorted({u.language for u in utterances}):
        counts = Counter(p for u in utterances if u.language == lang for p in (u.phonemes or ()))
        if counts:
            inventory = ", ".join(f"{p} {c}" for p, c in counts.most_common())
            lines += ["", f"Phonemes ({lang}, {len(counts)} in use): {inventory}"]
    prosody = Counter((u.split, u.prosody) for u in utterances if u.prosody)
    if prosody:
        classes = sorted({p for _, p in prosody})
        splits = sorted({s for s, _ in prosody})
        lines += ["", "Prosody classes (utterances per split):", ""]
        lines += _table(
            ["split", *classes], [[s, *(prosody[(s, c)] for c in classes)] for s in splits]
        )
    if mixtures:
        kinds = Counter(m.noise_type for m in mixtures)
        snrs = Counter(m.snr_db for m in mixtures)
        lines += ["", f"Noisy mixtures: {len(mixtures)} (one per utterance).", ""]
        lines += _table(["noise type", "mixtures"], [[k, c] for k, c in sorted(kinds.items())])
        lines += [""] + _table(
            ["SNR (dB)", "mixtures"], [[f"{k:g}", c] for k, c in sorted(snrs.items())]
        )
    return "\n".join(lines)

"""Noisy mixtures of the synthetic corpus, for enhancement and robustness tasks.

Every clean utterance gets one mixture: the noise type cycles through NOISE_TYPES and the
SNR through the config's grid (so both are balanced within each split), babble is made
from 3-6 other speakers of the same split and language, and the SNR is measured against
the speech's active level (bench.data.noise). Each mixture is seeded by its index, so the
set is deterministic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.data.noise import NOISE_TYPES, make_noise, measured_snr_db, mix_at_snr

SAMPLE_RATE = 16000


def build_mixtures(config, root: Path, rows: list[dict], progress=None) -> list[dict]:
    """Write ``noisy/<split>/<id>.flac`` for every manifest row; returns the mixture rows."""
    out = []
    items = list(enumerate(rows))
    bar = progress(items, desc="mix noise", unit="utt") if progress else items
    by_group: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        by_group.setdefault((r["split"], r["language"]), []).append(r)
    for i, row in bar:
        rng = np.random.default_rng([config.seed, 7919, i])
        clean = sf.read(root / row["path"], dtype="float32")[0]
        kind = NOISE_TYPES[i % len(NOISE_TYPES)]
        snr = float(config.snr_grid_db[(i // len(NOISE_TYPES)) % len(config.snr_grid_db)])
        talkers = None
        if kind == "babble":
            others = [
                r
                for r in by_group[(row["split"], row["language"])]
                if r["speaker"] != row["speaker"]
            ]
            if len(others) < 3:
                kind = "pink"  # too few other speakers in this split for babble
            else:
                picks = rng.choice(len(others), size=min(6, len(others)), replace=False)
                talkers = [sf.read(root / others[k]["path"], dtype="float32")[0] for k in picks]
        noise = make_noise(kind, len(clean), rng, SAMPLE_RATE, talkers=talkers)
        mix = mix_at_snr(clean, noise, snr, rng=rng, sample_rate=SAMPLE_RATE)
        rel = Path("noisy") / row["split"] / f"{row['id']}.flac"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, mix.noisy, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
        clean_rel = row["path"]
        if mix.gain < 1.0:  # clipping protection scaled the speech: store the scaled reference
            clean_rel = str(Path("noisy") / row["split"] / f"{row['id']}.clean.flac")
            sf.write(root / clean_rel, mix.clean, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
        out.append(
            {
                **{
                    k: row[k]
                    for k in (
                        "speaker",
                        "split",
                        "language",
                        "transcript",
                        "phonemes",
                        "alignment",
                        "prosody",
                        "num_samples",
                    )
                },
                "id": f"{row['id']}_noisy",
                "path": str(rel),
                "clean_path": clean_rel,
                "noise_type": kind,
                "snr_db": snr,
                "snr_db_measured": round(measured_snr_db(mix.clean, mix.noise, SAMPLE_RATE), 3),
                "gain": mix.gain,
                "sha1": hashlib.sha1((root / rel).read_bytes()).hexdigest(),
            }
        )
    return out

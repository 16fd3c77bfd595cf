"""The identity of a built corpus or pool: what fixes its data, for a run's data hash
(``Task.data_identity``), so that a comparison refuses cells that ran on other data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["identity", "manifest_digest"]


def manifest_digest(path: Path) -> str:
    """SHA-256 of a manifest without its per-file audio checksums: the utterances, texts,
    voices, alignments and lengths fix the data; the audio's last bits may not be the same
    on every CPU (the 16 kHz resampler's float sums round differently on other SIMD paths,
    and a sample on a rounding edge of 16-bit PCM flips). `data verify` still checks each
    file against its checksum on this machine."""
    digest = hashlib.sha256()
    with path.open() as fh:
        for line in fh:
            row = {k: v for k, v in json.loads(line).items() if k != "sha1"}
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def identity(root: Path) -> dict:
    """What fixes a built corpus's data: config and generator version, and the digests of
    its manifests (``manifest_digest``); not the build speed, which varies."""
    files = ("manifest.jsonl", "mixtures.jsonl")
    sums = {name: manifest_digest(root / name) for name in files}
    return {"corpus": json.loads((root / "corpus.json").read_text()), **sums}

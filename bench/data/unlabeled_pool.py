"""The unlabeled pool that self-supervised pre-training draws from: the corpus's train
audio (both languages), the noisy twins of that audio, and an unlabeled-only synthetic pool
of new speakers saying new sentences, built once and cached.

No valid or test audio enters the pool, and no valid or test text is said in it: the
unlabeled-only part draws its sentences from the corpus's grammar minus every sentence of
the corpus's valid and test splits, and its voices from espeak variants that no valid or
test speaker uses, under speaker ids of its own. It lives in
``<cache>/pool-<scale>-<hash>/``, where the hash covers its config, the generator versions
and the corpus config it excludes; ``pool.json`` marks a complete build, as ``corpus.json``
does for the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.data import corpus_identity, lexicon, synthetic
from bench.data.items import Utterance
from bench.data.speakers import PROSODY_CLASSES, VARIANTS, Speaker
from bench.data.synthetic import SAMPLE_RATE, CorpusConfig, PlannedUtterance

POOL_VERSION = 1  # bump when a change here changes the pool's output or its sources
SPLIT = "unlabeled"  # the split name of the unlabeled-only utterances
SOURCES = ("corpus_train_en", "corpus_train_lv", "noisy_train", "unlabeled_en", "unlabeled_lv")


@dataclass(frozen=True)
class PoolConfig:
    """What the unlabeled-only pool is made of (everything here goes into its hash)."""

    speakers_en: int  # new English speakers
    speakers_lv: int  # new Latvian speakers
    utterances_per_speaker: int  # each a fresh draw from the grammar
    seed: int = 0  # drawn on a stream of its own, never the corpus's

    def validate(self) -> None:
        if min(self.speakers_en, self.speakers_lv) < 0 or self.speakers_en + self.speakers_lv < 1:
            raise ValueError(f"the pool needs at least one speaker: {self}")
        if self.utterances_per_speaker < 1:
            raise ValueError(f"the pool needs at least one utterance per speaker: {self}")

    def digest(self, corpus: CorpusConfig) -> str:
        blob = json.dumps(
            {
                "config": asdict(self),
                "corpus": corpus.digest(),  # covers the corpus config and its generator version
                "pool_version": POOL_VERSION,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


# Sized so that the whole pool is at least 10x the corpus's English train split (the
# largest labeled set) at quick and default; ~2.2 s of speech per utterance.
POOL_SCALES: dict[str, PoolConfig] = {
    # about 40 minutes of speech
    "quick": PoolConfig(speakers_en=48, speakers_lv=12, utterances_per_speaker=18),
    # about 4 hours
    "default": PoolConfig(speakers_en=160, speakers_lv=40, utterances_per_speaker=33),
    # about 10 hours
    "full": PoolConfig(speakers_en=240, speakers_lv=60, utterances_per_speaker=55),
}

_STREAM = 0x5EED  # salt of the pool's random stream, so its draws differ from the corpus's


def pool_config(scale: str) -> PoolConfig:
    if scale not in POOL_SCALES:
        raise ValueError(f"unknown pool scale {scale!r}; known: {', '.join(POOL_SCALES)}")
    return POOL_SCALES[scale]


def plan_pool(config: PoolConfig, corpus: CorpusConfig) -> list[PlannedUtterance]:
    """Every utterance of the unlabeled-only pool: new speakers on variants no valid or test
    speaker of ``corpus`` uses, each sentence drawn fresh and never a valid or test one."""
    held_out = [p for p in synthetic.plan(corpus) if p.split != "train"]
    banned_texts = {(p.speaker.language, p.text) for p in held_out}
    variants = [v for v in VARIANTS if v not in {p.speaker.variant for p in held_out}]
    if not variants:
        raise ValueError("every espeak variant is used by a valid or test speaker")
    rng = np.random.default_rng([_STREAM, config.seed])
    planned = []
    for language, n_speakers in (("en", config.speakers_en), ("lv", config.speakers_lv)):
        order = rng.permutation(len(variants))
        for k in range(n_speakers):
            variant = variants[order[k % len(variants)]]
            speaker = Speaker(
                id=f"pool-{language}{k:03d}_{variant}",  # corpus ids start with the language
                language=language,
                variant=variant,
                pitch=int(rng.integers(35, 66)),
                rate=int(rng.integers(150, 196)),
            )
            for u in range(config.utterances_per_speaker):
                text = lexicon.sentence(language, rng)
                while (language, text) in banned_texts:
                    text = lexicon.sentence(language, rng)
                prosody = PROSODY_CLASSES[(u + k) % len(PROSODY_CLASSES)]
                planned.append(
                    PlannedUtterance(
                        id=f"{speaker.id}_{u:04d}",
                        speaker=speaker,
                        split=SPLIT,
                        text=text,
                        prosody=prosody.name,
                        voice=speaker.voice(prosody, rng),
                        seed=int(rng.integers(2**31 - 1)),
                    )
                )
    return planned


def build_pool(
    config: PoolConfig, corpus: CorpusConfig, out_dir: Path, jobs: int = 1, progress=None
) -> dict:
    """Synthesise the unlabeled-only pool into ``out_dir`` (must not exist); returns build
    statistics. Like the corpus, it is built in a temporary folder renamed into place."""
    tmp = out_dir.with_name(out_dir.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    planned = plan_pool(config, corpus)
    t0 = time.perf_counter()
    rows = sorted(synthetic.synthesize(planned, tmp, jobs, progress), key=lambda r: r["id"])
    seconds = time.perf_counter() - t0
    lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    (tmp / "manifest.jsonl").write_text("".join(lines))
    audio_seconds = sum(r["num_samples"] for r in rows) / SAMPLE_RATE
    info = {
        "config": asdict(config),
        "corpus_config": asdict(corpus),
        "corpus_digest": corpus.digest(),
        "pool_version": POOL_VERSION,
        "generator_version": synthetic.GENERATOR_VERSION,
        "utterances": len(rows),
        "audio_hours": audio_seconds / 3600,
    }
    (tmp / "pool.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    stats = {
        "synthesis_seconds": seconds,
        "audio_seconds": audio_seconds,
        "realtime_factor": audio_seconds / seconds,
        "jobs": jobs,
    }
    (tmp / "build_stats.json").write_text(json.dumps(stats, indent=1))  # timing: not hashed
    if out_dir.exists():  # another process finished the same pool first: keep theirs
        shutil.rmtree(tmp)
    else:
        tmp.replace(out_dir)
    return stats


def pool_dir(scale: str) -> Path:
    corpus = synthetic.scale_config(scale)
    return synthetic.cache_root() / f"pool-{scale}-{pool_config(scale).digest(corpus)}"


def ensure_pool(scale: str = "quick", jobs: int | None = None, progress=None) -> Path:
    """The unlabeled-only pool's folder, built first if missing or incomplete."""
    config, corpus = pool_config(scale), synthetic.scale_config(scale)
    config.validate()
    corpus.validate()
    out = pool_dir(scale)
    if not (out / "pool.json").exists():
        if out.exists():
            shutil.rmtree(out)  # stale: a folder without the completion file
        out.parent.mkdir(parents=True, exist_ok=True)
        jobs = jobs or min(2, os.cpu_count() or 1)
        build_pool(config, corpus, out, jobs=jobs, progress=progress)
    return out


def pool_sources(scale: str) -> dict[str, list[Utterance]]:
    """The utterances of each source of the pool (keys: SOURCES), in pool_audio's order."""
    corpus_root = synthetic.ensure_corpus(scale)
    corpus = synthetic.load_manifest(corpus_root)
    mixtures = synthetic.load_manifest(corpus_root, "mixtures.jsonl")
    unlabeled = synthetic.load_manifest(ensure_pool(scale))
    return {
        "corpus_train_en": [u for u in corpus if u.split == "train" and u.language == "en"],
        "corpus_train_lv": [u for u in corpus if u.split == "train" and u.language == "lv"],
        "noisy_train": [m for m in mixtures if m.split == "train"],  # mixed from train speech
        "unlabeled_en": [u for u in unlabeled if u.language == "en"],
        "unlabeled_lv": [u for u in unlabeled if u.language == "lv"],
    }


_AUDIO: dict[tuple[Path, Path], list[np.ndarray]] = {}


def pool_audio(scale: str) -> list[np.ndarray]:
    """Every waveform of the pool (float32, 16 kHz), sources in SOURCES order; cached per
    process, keyed by the corpus and pool folders (which carry their config hashes)."""
    key = (synthetic.ensure_corpus(scale), ensure_pool(scale))
    if key not in _AUDIO:
        sources = pool_sources(scale)
        # the corpus's train audio comes through load_split, so the tasks share its arrays
        audio = [*synthetic.load_split(scale, "train", "en")[1]]
        audio += synthetic.load_split(scale, "train", "lv")[1]
        for name in ("noisy_train", "unlabeled_en", "unlabeled_lv"):
            audio += [u.load() for u in sources[name]]
        _AUDIO[key] = audio
    return _AUDIO[key]


def pool_summary(scale: str) -> dict:
    """Utterances and minutes per source and in all, and the pool's size over the English
    train split's (the largest labeled set), for the report and the dataset card."""
    sources = {
        name: {
            "utterances": len(utts),
            "minutes": sum(u.extra["num_samples"] for u in utts) / SAMPLE_RATE / 60,
        }
        for name, utts in pool_sources(scale).items()
    }
    total = sum(s["minutes"] for s in sources.values())
    return {
        "sources": sources,
        "utterances": sum(s["utterances"] for s in sources.values()),
        "minutes": total,
        "ratio_to_english_train": total / sources["corpus_train_en"]["minutes"],
    }


def pool_identity(scale: str) -> dict:
    """What fixes the pool's data, for the run's data hash: the corpus's identity, the
    sources taken from it, and the unlabeled-only pool's config and manifest digest
    (``corpus_identity.manifest_digest``: not the audio's CPU-dependent last bits)."""
    root = ensure_pool(scale)
    return {
        "corpus": corpus_identity.identity(synthetic.ensure_corpus(scale)),
        "sources": list(SOURCES),
        "pool": json.loads((root / "pool.json").read_text()),
        "pool_manifest": corpus_identity.manifest_digest(root / "manifest.jsonl"),
    }


def pool_card(scale: str) -> str:
    """Markdown: what self-supervised pre-training reads, per source."""
    summary = pool_summary(scale)
    lines = [
        "**Unlabeled pre-training pool** (no labels are read; no valid or test sentence, "
        "speaker, voice or audio):",
        "",
        "| source | utterances | minutes |",
        "|---|---:|---:|",
    ]
    for name, s in summary["sources"].items():
        lines.append(f"| {name} | {s['utterances']} | {s['minutes']:.1f} |")
    lines.append(f"| all | {summary['utterances']} | {summary['minutes']:.1f} |")
    lines += ["", f"{summary['ratio_to_english_train']:.1f}x the English train split."]
    return "\n".join(lines)

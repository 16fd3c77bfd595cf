"""The embedded speech corpus: espeak-ng speech with words, phonemes, alignments, speakers,
tone-of-voice classes and noisy mixtures, built on first use and cached.

The corpus lives in ``<cache>/speech-<scale>-<hash>/`` where the hash covers the generator
config and version, so a changed config builds a new corpus next to the old one. A build
goes to a temporary folder that is renamed into place when complete, so a crash never
leaves a half corpus that looks finished. Each speaker is synthesised in a fresh process
(espeak keeps state between utterances), which makes builds byte-identical.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench import harness
from bench.data import lexicon, phonemes
from bench.data.espeak import EspeakError, Voice
from bench.data.items import PhoneSegment, Utterance
from bench.data.speakers import PROSODY_CLASSES, Speaker, make_speakers

GENERATOR_VERSION = 1  # bump when a change to the generator changes its output
SAMPLE_RATE = 16000
SPLITS = ("train", "valid", "test")
SPEAKERS_PER_SHARD = 8  # speakers synthesised by one espeak process (part of the output's identity)


@dataclass(frozen=True)
class CorpusConfig:
    """What the synthetic corpus is made of (everything here goes into its hash)."""

    speakers_en: int = 36  # English speakers, split speaker-disjoint by split_fractions
    # Latvian speakers (espeak's lv voice), split the same way: 25 give the ASR task's
    # Latvian test set 5 speakers
    speakers_lv: int = 25
    utterances_per_speaker: int = 40
    sentences_per_language: int = 600  # the fixed sentence inventory, split by SPLITS
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # of speakers and sentences
    snr_grid_db: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0, 15.0)  # mixtures' SNRs
    seed: int = 0

    def validate(self) -> None:
        if self.speakers_en < 3 and self.speakers_en != 0:
            raise ValueError("speakers_en must be 0 or at least 3 (one per split)")
        if self.speakers_lv < 3 and self.speakers_lv != 0:
            raise ValueError("speakers_lv must be 0 or at least 3 (one per split)")
        if abs(sum(self.split_fractions) - 1) > 1e-9 or min(self.split_fractions) <= 0:
            raise ValueError(f"split_fractions must be > 0 and sum to 1: {self.split_fractions}")
        if self.utterances_per_speaker < 1 or self.sentences_per_language < 3:
            raise ValueError("need at least 1 utterance per speaker and 3 sentences")

    def digest(self) -> str:
        blob = json.dumps({"config": asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


SCALES: dict[str, CorpusConfig] = {
    # about 11 minutes of speech: a smoke test of every speech task
    "quick": CorpusConfig(
        speakers_en=20, speakers_lv=6, utterances_per_speaker=12, sentences_per_language=200
    ),
    # about 1.2 hours
    "default": CorpusConfig(),
    # many speakers, few utterances each: the speaker task's 21 unseen test speakers
    "speakers": CorpusConfig(speakers_en=80, speakers_lv=25, utterances_per_speaker=16),
    # about 8 hours
    "full": CorpusConfig(
        speakers_en=100, speakers_lv=30, utterances_per_speaker=100, sentences_per_language=3000
    ),
}


def cache_root() -> Path:
    """$SPEECHBENCH_CACHE, else ~/.cache/speechbench."""
    return Path(os.environ.get("SPEECHBENCH_CACHE", Path.home() / ".cache" / "speechbench"))


@dataclass(frozen=True)
class PlannedUtterance:
    id: str
    speaker: Speaker
    split: str
    text: str
    prosody: str
    voice: Voice
    seed: int


def split_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Integer counts per split, each at least 1, summing to n."""
    counts = [max(1, int(round(n * f))) for f in fractions]
    counts[0] = n - sum(counts[1:])
    return counts


def plan(config: CorpusConfig) -> list[PlannedUtterance]:
    """Every utterance of the corpus: speaker, split, sentence, prosody, espeak settings."""
    rng = np.random.default_rng(config.seed)
    planned: list[PlannedUtterance] = []
    for language, n_speakers in (("en", config.speakers_en), ("lv", config.speakers_lv)):
        if n_speakers == 0:
            continue
        speakers = make_speakers(language, n_speakers, rng)
        sentences = list(
            dict.fromkeys(
                lexicon.sentence(language, rng) for _ in range(2 * config.sentences_per_language)
            )
        )[: config.sentences_per_language]
        # speaker-disjoint splits, and sentence-disjoint too (no test sentence in training)
        spk_counts = split_counts(len(speakers), config.split_fractions)
        sen_counts = split_counts(len(sentences), config.split_fractions)
        spk_bounds, sen_bounds = np.cumsum([0, *spk_counts]), np.cumsum([0, *sen_counts])
        for s, split in enumerate(SPLITS):
            pool = sentences[sen_bounds[s] : sen_bounds[s + 1]]
            for k, speaker in enumerate(speakers[spk_bounds[s] : spk_bounds[s + 1]]):
                for u in range(config.utterances_per_speaker):
                    prosody = PROSODY_CLASSES[(u + k) % len(PROSODY_CLASSES)]
                    planned.append(
                        PlannedUtterance(
                            id=f"{speaker.id}_{u:04d}",
                            speaker=speaker,
                            split=split,
                            text=pool[int(rng.integers(len(pool)))],
                            prosody=prosody.name,
                            voice=speaker.voice(prosody, rng),
                            seed=int(rng.integers(2**31 - 1)),
                        )
                    )
    return planned


def _synthesize_shard(shard: list[tuple[str, str, Voice, int]]):
    """espeak output (22.05 kHz int16 + events) for one speaker, from a fresh process."""
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([repo, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.data.espeak_worker"],
        input=pickle.dumps(shard),
        capture_output=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise EspeakError(
            f"espeak worker failed (exit {proc.returncode}): {proc.stderr.decode()[-2000:]}"
        )
    return pickle.loads(proc.stdout)


@functools.cache
def _resampler(rate: int):
    """torchaudio's windowed-sinc resampler to 16 kHz (its kernel is built once per rate)."""
    import torchaudio

    return torchaudio.transforms.Resample(rate, SAMPLE_RATE)


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    import torch

    wave = torch.from_numpy(samples.astype(np.float32) / 32768.0)
    with torch.no_grad():
        out = _resampler(rate)(wave).numpy()
    return np.clip(out, -1.0, 32767 / 32768)


def synthesize(
    planned: list[PlannedUtterance], out: Path, jobs: int = 1, progress=None
) -> list[dict]:
    """Synthesise ``planned`` into ``out/audio/<split>/<speaker>/``; its manifest rows, in
    synthesis order (fixed by the shards, not by ``jobs``)."""
    by_speaker: dict[str, list[PlannedUtterance]] = {}
    for p in planned:
        by_speaker.setdefault(p.speaker.id, []).append(p)
    # fixed groups of speakers per fresh espeak process: the grouping (not the number of
    # jobs) decides the output, so builds are byte-identical for any --jobs
    groups = list(by_speaker.values())
    shards = [
        [(p.id, p.text, p.voice, p.seed) for ps in groups[i : i + SPEAKERS_PER_SHARD] for p in ps]
        for i in range(0, len(groups), SPEAKERS_PER_SHARD)
    ]
    index = {p.id: p for p in planned}
    rows = []
    # a fresh espeak process per speaker makes builds byte-identical; threads only wait
    with (
        ThreadPoolExecutor(max_workers=jobs) as pool,
        harness.torch_threads(1),
    ):  # resample on one thread: espeak uses the others
        results = pool.map(_synthesize_shard, shards)
        bar = (
            progress(results, total=len(shards), desc="synthesise", unit="shard")
            if progress
            else results
        )
        for shard_result in bar:
            for uid, syn in shard_result:
                p = index[uid]
                audio = _to_16k(syn.samples, syn.sample_rate)
                scale = SAMPLE_RATE / syn.sample_rate
                alignment = phonemes.align(syn.phonemes, len(audio), p.speaker.language, scale)
                rel = Path("audio") / p.split / p.speaker.id / f"{uid}.flac"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(out / rel, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
                rows.append(
                    {
                        "id": uid,
                        "path": str(rel),
                        "speaker": p.speaker.id,
                        "split": p.split,
                        "language": p.speaker.language,
                        "transcript": p.text,
                        "phonemes": list(phonemes.phoneme_sequence(alignment)),
                        "alignment": [[s.phone, s.start, s.end] for s in alignment],
                        "prosody": p.prosody,
                        "num_samples": len(audio),
                        "voice": asdict(p.voice),
                        "sha1": _sha1(out / rel),
                    }
                )
    return rows


def build(config: CorpusConfig, out_dir: Path, jobs: int = 1, progress=None) -> dict:
    """Synthesise the corpus into ``out_dir`` (must not exist); returns build statistics."""
    from bench.data.mixtures import build_mixtures

    tmp = out_dir.with_name(out_dir.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "audio").mkdir(parents=True)
    planned = plan(config)
    _resampler(22050)  # import torch and build the kernel before the clock starts
    t0 = time.perf_counter()
    rows = synthesize(planned, tmp, jobs, progress)
    synth_seconds = time.perf_counter() - t0
    audio_seconds = 0.0
    for row in rows:  # summed in synthesis order, as corpus.json always has been
        audio_seconds += row["num_samples"] / SAMPLE_RATE
    rows.sort(key=lambda r: r["id"])
    _write_jsonl(tmp / "manifest.jsonl", rows)
    mix_rows = build_mixtures(config, tmp, rows, progress=progress)
    _write_jsonl(tmp / "mixtures.jsonl", mix_rows)
    info = {
        "config": asdict(config),
        "version": GENERATOR_VERSION,
        "sample_rate": SAMPLE_RATE,
        "phoneme_inventory": {lang: phonemes.phone_set(lang) for lang in ("en", "lv")},
        "utterances": len(rows),
        "mixtures": len(mix_rows),
        "audio_hours": audio_seconds / 3600,
    }
    (tmp / "corpus.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    stats = {
        "synthesis_seconds": synth_seconds,  # espeak + resampling + alignment + FLAC
        "audio_seconds": audio_seconds,
        "realtime_factor": audio_seconds / synth_seconds,
        "total_seconds": time.perf_counter() - t0,  # including the noisy mixtures
        "jobs": jobs,
    }
    (tmp / "build_stats.json").write_text(json.dumps(stats, indent=1))  # timing: not hashed
    if out_dir.exists():  # another process finished the same corpus first: keep theirs
        shutil.rmtree(tmp)
    else:
        tmp.replace(out_dir)
    return stats


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def corpus_dir(scale: str = "quick", config: CorpusConfig | None = None) -> Path:
    config = config or scale_config(scale)
    return cache_root() / f"speech-{scale}-{config.digest()}"


def scale_config(scale: str) -> CorpusConfig:
    if scale not in SCALES:
        raise ValueError(f"unknown corpus scale {scale!r}; known: {', '.join(SCALES)}")
    return SCALES[scale]


def ensure_corpus(
    scale: str = "quick", config: CorpusConfig | None = None, jobs: int | None = None, progress=None
) -> Path:
    """The corpus folder, built first if missing (or if its manifest is incomplete)."""
    config = config or scale_config(scale)
    config.validate()
    out = corpus_dir(scale, config)
    if not (out / "corpus.json").exists():
        if out.exists():
            shutil.rmtree(out)  # stale: a folder without the completion file
        out.parent.mkdir(parents=True, exist_ok=True)
        build(config, out, jobs=jobs or min(2, os.cpu_count() or 1), progress=progress)
    return out


def load_manifest(root: Path, name: str = "manifest.jsonl") -> list[Utterance]:
    """Utterances of a built corpus (``mixtures.jsonl`` gives the noisy pairs)."""
    out = []
    with (root / name).open() as fh:
        for line in fh:
            r = json.loads(line)
            out.append(
                Utterance(
                    id=r["id"],
                    path=root / r["path"],
                    speaker=r["speaker"],
                    split=r["split"],
                    sample_rate=SAMPLE_RATE,
                    language=r["language"],
                    transcript=r.get("transcript"),
                    phonemes=tuple(r["phonemes"]) if r.get("phonemes") is not None else None,
                    alignment=tuple(PhoneSegment(*s) for s in r["alignment"])
                    if r.get("alignment")
                    else None,
                    prosody=r.get("prosody"),
                    clean_path=root / r["clean_path"] if r.get("clean_path") else None,
                    noise_type=r.get("noise_type"),
                    snr_db=r.get("snr_db"),
                    extra={"num_samples": r["num_samples"]},
                )
            )
    return out


_SPLIT_CACHE: dict[tuple[Path, str, str], tuple[list[Utterance], list[np.ndarray]]] = {}


def load_split(scale: str, split: str, language: str = "en"):
    """(utterances, audio arrays) of one split and language, built if needed, cached per
    process (keyed by the corpus folder, which carries the config hash)."""
    root = ensure_corpus(scale)
    key = (root, split, language)
    if key not in _SPLIT_CACHE:
        utts = [u for u in load_manifest(root) if u.split == split and u.language == language]
        _SPLIT_CACHE[key] = (utts, [u.load() for u in utts])
    return _SPLIT_CACHE[key]


def card(root: Path) -> str:
    """The dataset card of a built synthetic corpus (also written to card.md)."""
    from bench.data.card import SYNTHETIC_NOTE, dataset_card

    stats_path = root / "build_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
    info = json.loads((root / "corpus.json").read_text())
    text = dataset_card(
        f"speechbench synthetic speech corpus (generator v{info['version']}, {root.name})",
        load_manifest(root),
        load_manifest(root, "mixtures.jsonl"),
        SYNTHETIC_NOTE,
        stats,
    )
    (root / "card.md").write_text(text + "\n")
    return text


def verify(root: Path) -> list[str]:
    """Problems found in a built corpus (missing files, changed audio); empty when sound."""
    problems = []
    for name in ("manifest.jsonl", "mixtures.jsonl"):
        with (root / name).open() as fh:
            for line in fh:
                r = json.loads(line)
                path = root / r["path"]
                if not path.exists():
                    problems.append(f"missing {path}")
                elif _sha1(path) != r["sha1"]:
                    problems.append(f"changed {path} (checksum differs from the manifest)")
    return problems

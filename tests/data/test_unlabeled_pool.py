"""The unlabeled pre-training pool: no valid/test text, speakers or audio in it, every
source present, deterministic builds, and a cache that is reused or rebuilt when stale."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from bench.data import lexicon, synthetic
from bench.data import unlabeled_pool as up

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=3, speakers_lv=3, utterances_per_speaker=4, sentences_per_language=12
)
TINY_POOL = up.PoolConfig(speakers_en=2, speakers_lv=1, utterances_per_speaker=3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A tiny corpus and pool at scale "quick", built in a cache of the module's own."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("cache")
        mp.setenv("SPEECHBENCH_CACHE", str(root))
        mp.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
        mp.setitem(up.POOL_SCALES, "quick", TINY_POOL)
        up.ensure_pool("quick")
        yield root


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _checksum(audio: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest()


def test_pool_says_no_held_out_sentence_and_uses_no_held_out_voice(cache):
    corpus = _rows(synthetic.ensure_corpus("quick") / "manifest.jsonl")
    pool = _rows(up.ensure_pool("quick") / "manifest.jsonl")
    held_out = [r for r in corpus if r["split"] != "train"]
    assert len(pool) == 3 * 3 and {r["split"] for r in pool} == {up.SPLIT}
    assert {r["language"] for r in pool} == {"en", "lv"}
    assert not {r["transcript"] for r in pool} & {r["transcript"] for r in held_out}
    assert not {r["speaker"] for r in pool} & {r["speaker"] for r in corpus}
    # a speaker's espeak variant is its voice: no valid/test voice is reused, in any language
    variants = [{r["voice"]["name"].split("+")[1] for r in rows} for rows in (pool, held_out)]
    assert not variants[0] & variants[1]


def test_held_out_sentences_are_redrawn(monkeypatch):
    """The exclusion works when the grammar does hit a held-out sentence: a grammar that
    first says every valid/test sentence of the corpus must not get one into the pool."""
    held_out = {
        (p.speaker.language, p.text) for p in synthetic.plan(TINY_CORPUS) if p.split != "train"
    }
    queued = {lang: [t for lg, t in sorted(held_out) if lg == lang] for lang in ("en", "lv")}

    def held_out_first(language, rng):
        return queued[language].pop() if queued[language] else lexicon.sentence(language, rng)

    monkeypatch.setattr(up, "lexicon", SimpleNamespace(sentence=held_out_first))
    planned = up.plan_pool(TINY_POOL, TINY_CORPUS)
    assert not queued["en"] and not queued["lv"]  # every held-out sentence was drawn
    assert len(planned) == 9 and not {(p.speaker.language, p.text) for p in planned} & held_out


def test_many_pool_speakers_still_avoid_every_held_out_voice():
    planned = up.plan_pool(up.PoolConfig(200, 0, 1), TINY_CORPUS)
    held_out = {p.speaker.variant for p in synthetic.plan(TINY_CORPUS) if p.split != "train"}
    variants = {p.speaker.variant for p in planned}
    assert len(planned) == 200 and len(variants) == len(up.VARIANTS) - len(held_out)
    assert not variants & held_out


def test_pool_audio_has_every_source_and_no_held_out_audio(cache):
    root = synthetic.ensure_corpus("quick")
    audio = up.pool_audio("quick")
    sources = up.pool_sources("quick")
    assert list(sources) == list(up.SOURCES) and all(sources.values())
    assert len(audio) == sum(len(utts) for utts in sources.values())
    in_pool = {_checksum(a) for a in audio}
    for utts in sources.values():
        assert {_checksum(u.load()) for u in utts} <= in_pool
    corpus = synthetic.load_manifest(root) + synthetic.load_manifest(root, "mixtures.jsonl")
    held_out = {_checksum(u.load()) for u in corpus if u.split != "train"}
    assert held_out and not held_out & in_pool
    assert up.pool_audio("quick") is audio  # cached per process


def test_noisy_twins_are_those_of_the_train_utterances(cache):
    sources = up.pool_sources("quick")
    train = {u.id for u in sources["corpus_train_en"] + sources["corpus_train_lv"]}
    assert {m.id.removesuffix("_noisy") for m in sources["noisy_train"]} == train


def test_summary_counts_and_minutes(cache):
    summary = up.pool_summary("quick")
    assert summary["sources"]["unlabeled_en"]["utterances"] == 2 * 3
    assert summary["sources"]["corpus_train_en"]["utterances"] == 4
    assert summary["utterances"] == len(up.pool_audio("quick"))
    seconds = sum(len(a) for a in up.pool_audio("quick")) / synthetic.SAMPLE_RATE
    assert summary["minutes"] == pytest.approx(seconds / 60)
    assert summary["ratio_to_english_train"] > 1


def test_build_is_deterministic(cache, tmp_path):
    again = tmp_path / "again"
    up.build_pool(TINY_POOL, TINY_CORPUS, again, jobs=1)  # other jobs, same output
    first = up.ensure_pool("quick")
    for name in ("manifest.jsonl", "pool.json"):  # the manifest holds each file's SHA-1
        assert (first / name).read_bytes() == (again / name).read_bytes()
    for row in _rows(again / "manifest.jsonl"):
        assert hashlib.sha1((again / row["path"]).read_bytes()).hexdigest() == row["sha1"]


def test_cache_is_reused_and_an_incomplete_folder_rebuilt(cache, monkeypatch):
    root = up.ensure_pool("quick")
    manifest = (root / "manifest.jsonl").read_bytes()
    builds = []
    real_build = up.build_pool
    monkeypatch.setattr(up, "build_pool", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    assert up.ensure_pool("quick") == root and builds == []
    (root / "pool.json").unlink()  # as if a build had died before completing
    (root / "stray.txt").write_text("left by a dead build")
    assert up.ensure_pool("quick") == root and builds == [1]
    assert (root / "pool.json").exists() and not (root / "stray.txt").exists()
    assert (root / "manifest.jsonl").read_bytes() == manifest


def test_identity_changes_with_the_pool(cache, monkeypatch):
    before = up.pool_identity("quick")
    assert up.pool_identity("quick") == before
    monkeypatch.setitem(up.POOL_SCALES, "quick", up.PoolConfig(1, 1, 2))
    after = up.pool_identity("quick")
    assert after["pool_manifest"] != before["pool_manifest"]
    assert after["corpus"] == before["corpus"]


def test_digest_covers_the_pool_and_the_excluded_corpus():
    digest = TINY_POOL.digest(TINY_CORPUS)
    assert up.PoolConfig(2, 1, 4).digest(TINY_CORPUS) != digest
    assert TINY_POOL.digest(synthetic.CorpusConfig(speakers_en=4)) != digest
    with pytest.raises(ValueError, match="at least one speaker"):
        up.PoolConfig(0, 0, 3).validate()

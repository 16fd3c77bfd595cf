"""Generation speed of the embedded corpus (a benchmark, not a timed test).

    python -m pytest tests/benchmarks/test_corpus_speed.py --benchmark-enable -s

prints the real-time factor of synthesis + resampling + alignment + FLAC writing with one
espeak process at a time (one core); the issue's target is at least 200x real time.
"""

import shutil

from bench.data import synthetic

CONFIG = synthetic.CorpusConfig(
    speakers_en=8, speakers_lv=0, utterances_per_speaker=20, sentences_per_language=60
)


def test_corpus_generation_speed(benchmark, tmp_path):
    stats = []

    def build():
        out = tmp_path / "corpus"
        shutil.rmtree(out, ignore_errors=True)
        stats.append(synthetic.build(CONFIG, out, jobs=1))

    benchmark.pedantic(build, rounds=2, iterations=1)
    best = max(s["realtime_factor"] for s in stats)
    benchmark.extra_info["realtime_factor"] = best
    print(
        f"\ncorpus generation: {stats[-1]['audio_seconds']:.0f} s of audio, "
        f"{best:.0f}x real time on one espeak process"
    )
    assert best > 1  # a sanity bound only; the figure is read from the output

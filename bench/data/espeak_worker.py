"""Subprocess entry point: synthesise one shard of utterances in a fresh espeak-ng.

Run as ``python -m bench.data.espeak_worker`` with a pickled list of
(id, text, Voice, seed) on stdin; writes a pickled list of (id, Synthesis) to stdout.
A fresh process per shard makes the output independent of what was synthesised before
(espeak keeps state between utterances), and this module imports only numpy and ctypes,
so starting it costs a fraction of a second.
"""

from __future__ import annotations

import pickle
import sys

from bench.data.espeak import Espeak


def main() -> None:
    shard = pickle.load(sys.stdin.buffer)
    engine = Espeak()
    out = [(uid, engine.synthesize(text, voice, seed)) for uid, text, voice, seed in shard]
    pickle.dump(out, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    main()

"""``run_all.py data``: build or verify the embedded corpus, or print a real corpus's card."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    data = sub.add_parser("data", help="build or verify the embedded corpus; print its card")
    data.add_argument("--scale", default="quick", choices=["quick", "default", "speakers", "full"])
    data.add_argument("--jobs", type=int, default=None, help="parallel espeak processes")
    data.add_argument("--verify", action="store_true", help="check every file's checksum")
    data.add_argument(
        "--corpus",
        default=None,
        metavar="NAME=PATH",
        help="print the card of a real corpus instead (librispeech, timit, ...)",
    )
    data.add_argument("--quiet", action="store_true")
    return data


def run(args) -> int:
    from bench.data import synthetic
    from bench.data.card import dataset_card
    from bench.data.real_corpora import load_corpus, parse_data_arg

    if args.corpus:
        name, path = parse_data_arg(args.corpus)
        print(dataset_card(f"{name} at {path}", load_corpus(name, path)))
        return 0
    progress = None if args.quiet else _tqdm
    root = synthetic.ensure_corpus(args.scale, jobs=args.jobs, progress=progress)
    print(f"corpus: {root}", file=sys.stderr)
    if args.verify:
        problems = synthetic.verify(root)
        if problems:
            print("corpus verification failed:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
            print(f"delete {root} and run this command again to rebuild it", file=sys.stderr)
            return 1
        print("verified: every file matches its manifest checksum", file=sys.stderr)
    print(synthetic.card(root))
    return 0


def _tqdm(iterable, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(iterable, leave=False, dynamic_ncols=True, **kwargs)

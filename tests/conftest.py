"""Shared test set-up: repo root importable, few threads (CI has 2 cores), and CLI runs in
this process (--jobs 1: a pool of spawned workers per tiny test run would cost seconds;
bench.executors' pool is tested in tests/test_executors.py)."""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
torch.set_num_threads(1)
os.environ.setdefault("SPEECHBENCH_JOBS", "1")

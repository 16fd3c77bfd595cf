"""Shared test set-up: repo root importable, few threads (CI has 2 cores)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
torch.set_num_threads(1)

"""Speed of our methods and metrics against their public peers (``python run_all.py speed``)."""

import importlib

CASE_MODULES = (
    "bench.speed.cases_metric_learning",
    "bench.speed.cases_wav2vec",
    "bench.speed.cases_metrics",
)


def load_cases() -> dict:
    """Import every case module (which registers its cases) and return the registry."""
    for name in CASE_MODULES:
        importlib.import_module(name)
    from bench.speed.case import CASES

    return CASES

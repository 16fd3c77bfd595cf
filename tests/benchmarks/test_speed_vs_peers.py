"""Every speed case as a pytest-benchmark, ours and the peer as separate benchmarks.

    python -m pytest tests/benchmarks/test_speed_vs_peers.py --benchmark-enable \
        --benchmark-group-by=param:case_name
    SPEECHBENCH_SPEED_SIZE=medium python -m pytest tests/benchmarks/... --benchmark-enable

groups each operation's two rows together so pytest-benchmark's table shows the ratio.
`python run_all.py speed` measures the same cases in alternation and prints one table;
this file exists for pytest-benchmark's history and comparison tools (--benchmark-save,
--benchmark-compare). Without --benchmark-enable (the default) each side runs once at the
tiny size, which checks that every case builds and runs.
"""

import os

import pytest
import torch

from bench.speed import load_cases
from bench.speed.case import PeerMissing

SIZE = os.environ.get("SPEECHBENCH_SPEED_SIZE", "tiny")
CASES = load_cases()


@pytest.mark.parametrize("side", ["ours", "peer"])
@pytest.mark.parametrize("case_name", list(CASES))
def test_speed_case(benchmark, case_name, side):
    case = CASES[case_name]
    if SIZE not in case.sizes:
        pytest.skip(f"{case_name} has no size {SIZE}")
    try:
        work = case.workload(SIZE, torch.device("cpu"))
    except PeerMissing as err:
        pytest.skip(str(err))
    fn = work.ours if side == "ours" else work.peer
    fn()  # warm-up outside the statistics
    benchmark.extra_info.update(shape=work.shape, items=work.items, peer=case.peer)
    benchmark.pedantic(fn, rounds=5, iterations=1)
    if work.teardown is not None:
        work.teardown()

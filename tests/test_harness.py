import time

import pytest
import torch

from bench import harness


def test_seed_everything_makes_draws_repeatable():
    harness.seed_everything(7)
    a = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    harness.seed_everything(7)
    b = (torch.rand(3), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]


def test_pick_device():
    assert harness.pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert harness.pick_device(None).type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-cuda error message")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        harness.pick_device("cuda")


def test_amp_checks():
    cpu = torch.device("cpu")
    harness.check_amp(cpu, "off")
    harness.check_amp(cpu, "bf16")
    with pytest.raises(ValueError, match="fp16 needs a cuda"):
        harness.check_amp(cpu, "fp16")
    with pytest.raises(ValueError, match="not one of"):
        harness.check_amp(cpu, "fp8")
    with harness.autocast(cpu, "bf16"):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16


def test_summarize_ms_median_and_iqr():
    t = harness.summarize_ms([5.0, 1.0, 3.0, 2.0, 4.0])
    assert t.median_ms == 3.0 and t.min_ms == 1.0 and t.max_ms == 5.0 and t.repeats == 5
    assert t.iqr_ms == pytest.approx(2.0)  # inclusive quartiles 2 and 4


def test_time_fn_warms_up_and_repeats():
    calls = []
    timing = harness.time_fn(lambda: calls.append(1), warmup=2, repeats=4)
    assert len(calls) == 6 and timing.repeats == 4


def test_time_fn_orders_slow_and_fast_work():
    """Relative, not absolute: a 20 ms sleep times longer than a no-op on any machine."""
    slow = harness.time_fn(lambda: time.sleep(0.02), warmup=0, repeats=3)
    fast = harness.time_fn(lambda: None, warmup=0, repeats=3)
    assert slow.median_ms >= 19.0 > fast.median_ms


def test_step_timer_skips_warmup_steps():
    timer = harness.StepTimer(torch.device("cpu"), skip=2)
    for _ in range(5):
        with timer.step(items=10):
            pass
    assert len(timer.samples_ms) == 3 and timer.items == 30
    assert timer.items_per_s() is None or timer.items_per_s() > 0


def test_count_flops_of_a_matmul():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert harness.count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_peak_memory_and_env():
    assert harness.peak_memory_mb(torch.device("cpu")) > 10
    env = harness.capture_env(torch.device("cpu"))
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert env["cpu"]


def test_measured_peak_flops_is_positive_and_cached():
    first = harness.measured_peak_flops(torch.device("cpu"), size=128)
    assert first > 0
    assert harness.measured_peak_flops(torch.device("cpu"), size=128) == first

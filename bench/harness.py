"""Device, seeding, mixed precision, timing, memory, FLOPs and environment capture.

Every task goes through these helpers so that numbers from different tasks are measured
the same way: warm-up first, synchronize on cuda before reading the clock, median and
spread of repeats, units in the key names.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(requested: str | None = None) -> torch.device:
    """cuda when available, else cpu; ``requested`` ("cpu", "cuda", "cuda:1") overrides."""
    if requested is None or requested in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device {requested} was asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}); use --device cpu"
        )
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (all devices); returns a CPU generator seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def check_amp(device: torch.device, amp: str) -> None:
    """Raise a clear error when ``amp`` is not supported on ``device``."""
    if amp == "off":
        return
    if amp not in AMP_DTYPES:
        raise ValueError(f"--amp {amp!r} is not one of: bf16, fp16, off")
    if device.type == "cpu" and amp == "fp16":
        raise ValueError("--amp fp16 needs a cuda device; on the CPU use --amp bf16 or --amp off")
    if device.type == "cuda" and amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bf16 support; use --amp fp16 or --amp off")


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """Mixed-precision context for forward passes (a no-op when amp is "off")."""
    check_amp(device, amp)
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so a clock read measures finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one operation, in milliseconds."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    max_ms: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize_ms(samples_ms: list[float]) -> Timing:
    """Median, inter-quartile range, min and max of a list of durations."""
    if not samples_ms:
        raise ValueError("no timing samples to summarize")
    ordered = sorted(samples_ms)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return Timing(
        median_ms=statistics.median(ordered),
        iqr_ms=q3 - q1,
        min_ms=ordered[0],
        max_ms=ordered[-1],
        repeats=len(ordered),
    )


def time_fn(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed calls.

    On cuda, CUDA events bracket each call and the device is synchronized before the
    elapsed time is read; on the CPU, ``time.perf_counter`` is used.
    """
    device = torch.device(device)
    if repeats < 1:
        raise ValueError("time_fn needs repeats >= 1")
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples: list[float] = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            synchronize(device)
            samples.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e3)
    return summarize_ms(samples)


@dataclass
class TimedStep:
    items: int  # samples processed by the step (for samples/s)


class StepTimer:
    """Collects per-step wall times of a training loop (first ``skip`` steps are warm-up)."""

    def __init__(self, device: torch.device, skip: int = 3) -> None:
        self.device = device
        self.skip = skip
        self.samples_ms: list[float] = []
        self.items = 0
        self._seen = 0

    @contextlib.contextmanager
    def step(self, items: int = 0) -> Iterator[TimedStep]:
        """Time one step; the caller may set ``.items`` on the yielded object inside."""
        timed = TimedStep(items)
        synchronize(self.device)
        t0 = time.perf_counter()
        yield timed
        synchronize(self.device)
        elapsed_ms = (time.perf_counter() - t0) * 1e3
        self._seen += 1
        if self._seen > self.skip:
            self.samples_ms.append(elapsed_ms)
            self.items += timed.items

    def items_per_s(self) -> float | None:
        total_s = sum(self.samples_ms) / 1e3
        return self.items / total_s if total_s > 0 else None

    def summary(self) -> Timing | None:
        return summarize_ms(self.samples_ms) if self.samples_ms else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: the cuda allocator's peak on GPU, the process's peak RSS on CPU.

    On CPU the figure is the whole process's high-water mark so far, not this cell's.
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20  # kB on Linux, B on macOS


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn`` (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


_PEAK_FLOPS: dict[tuple[str, str], float] = {}


def measured_peak_flops(device: torch.device, amp: str = "off", size: int | None = None) -> float:
    """Achievable FLOP/s of ``device``, measured once per process by a square matmul probe.

    MFU is reported against this measured peak rather than a datasheet figure, so that it
    is meaningful on any CPU and GPU. The probe is 1024² on a CPU and 4096² on a GPU (a
    1024² matmul is too small to reach a large GPU's peak, which would overstate MFU).
    """
    key = (str(device), amp)
    if size is None:
        size = 4096 if device.type == "cuda" else 1024
    if key not in _PEAK_FLOPS:
        dtype = AMP_DTYPES.get(amp, torch.float32) if device.type == "cuda" else torch.float32
        # its own generator: the global RNG a cell draws from must not depend on whether
        # this process had measured the peak before (the first cell used to draw here)
        g = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(size, size, device=device, dtype=dtype, generator=g)
        b = torch.randn(size, size, device=device, dtype=dtype, generator=g)
        timing = time_fn(lambda: a @ b, device=device, warmup=2, repeats=5)
        _PEAK_FLOPS[key] = 2 * size**3 / (timing.min_ms / 1e3)
    return _PEAK_FLOPS[key]


def mfu(
    flops_per_call: int | None, median_ms: float, device: torch.device, amp: str = "off"
) -> float | None:
    """Model FLOPs utilisation: counted FLOP/s over the measured peak (None if unknown)."""
    if not flops_per_call or median_ms <= 0:
        return None
    return flops_per_call / (median_ms / 1e3) / measured_peak_flops(device, amp)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run on ``n`` intra-op threads (None: leave them), then restore. Small convolutions
    gain nothing from a second thread, and on a shared 2-core CPU two threads ran 10x
    slower (75 vs 740 ms per step of the speaker encoder, measured under load)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (None: leave as is) and return the number in effect."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads}: give a positive number of threads")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def prepare_step(
    fn: Callable[[], object],
    device: torch.device,
    *,
    amp: str = "off",
    compile: bool = False,
    cuda_graph: bool = False,
    warmup: int = 3,
) -> Callable[[], object]:
    """The callable that is timed: ``fn`` under AMP, optionally compiled, optionally a CUDA graph.

    The same code serves CPU and cuda; only CUDA graphs need a cuda device. A graph replays
    the kernels ``fn`` launched while captured, so ``fn`` must work on tensors made once
    (as speed cases do) and must not synchronize with the host.
    """
    check_amp(device, amp)
    if cuda_graph and device.type != "cuda":
        raise ValueError("--cuda-graphs needs a cuda device; drop it on the CPU")
    step = torch.compile(fn) if compile else fn

    def amp_step() -> object:
        with autocast(device, amp):
            return step()

    if not cuda_graph:
        return amp_step
    side = torch.cuda.Stream(device)  # capture needs warm-up on a side stream
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):
            amp_step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = amp_step()

    def replay() -> object:
        graph.replay()
        return out

    return replay


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence C-level writes to stderr (the profiler's start/stop log lines) for a block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_of(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak memory (MB) that one call of ``fn`` allocates above what was live before it.

    cuda: the caching allocator's peak. CPU: the peak of torch's CPU allocations, read from
    the profiler's memory events, plus the peak of the Python heap (numpy arrays, lists)
    from tracemalloc; memory of other processes (e.g. a scoring pool) is not seen. None when
    the profiler gives no memory events.
    """
    if device.type == "cuda":
        synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base) / 2**20
    import tracemalloc

    from torch.profiler import ProfilerActivity, profile

    with (
        _quiet_native_stderr(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        tracemalloc.start()
        try:
            fn()
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    try:
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except AttributeError:  # the profiler's private result API moved
        return None
    live = torch_peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        torch_peak = max(torch_peak, live)
    return (torch_peak + python_peak) / 2**20


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_env(device: torch.device) -> dict[str, object]:
    """What a result depends on besides the code: commit, versions, hardware, threads."""
    return {
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "platform": platform.platform(),
    }

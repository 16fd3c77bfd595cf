"""The speed harness: timed steps (AMP, compile, CUDA graphs), memory, MFU, rows and table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench import harness
from bench.cli import main
from bench.speed import case as case_mod
from bench.speed import command, runner, table
from bench.speed.case import PeerMissing, SpeedCase, Workload, close

CPU = torch.device("cpu")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a cuda device")


def options(**kw) -> runner.SpeedOptions:
    return runner.SpeedOptions(device=CPU, threads=1, warmup=1, min_repeats=3, budget_s=0.01, **kw)


# ------------------------------------------------------------------ harness: timed step


def test_prepare_step_plain_and_bf16_autocast():
    a = torch.randn(8, 8)
    plain = harness.prepare_step(lambda: a @ a, CPU)
    assert plain().dtype == torch.float32
    bf16 = harness.prepare_step(lambda: a @ a, CPU, amp="bf16")
    assert bf16().dtype == torch.bfloat16  # the matmul ran under autocast
    with pytest.raises(ValueError, match="fp16 needs a cuda device"):
        harness.prepare_step(lambda: a, CPU, amp="fp16")


def test_prepare_step_compiles_the_same_callable(monkeypatch):
    seen = []

    def fake_compile(fn):
        seen.append(fn)
        return lambda: ("compiled", fn())

    monkeypatch.setattr(torch, "compile", fake_compile)
    step = harness.prepare_step(lambda: 3, CPU, compile=True)
    assert step() == ("compiled", 3) and len(seen) == 1


def test_cuda_graphs_need_cuda():
    with pytest.raises(ValueError, match="needs a cuda device"):
        harness.prepare_step(lambda: None, CPU, cuda_graph=True)


@cuda_only
def test_cuda_graph_replays_the_captured_step():
    dev = torch.device("cuda")
    x = torch.ones(4, device=dev)
    out = torch.zeros(4, device=dev)

    def step():
        out.add_(x)
        return out

    replay = harness.prepare_step(step, dev, cuda_graph=True, warmup=1)
    before = out.clone()
    replay()
    torch.cuda.synchronize()
    assert torch.equal(out, before + 1)  # one replay adds once more
    timing = harness.time_fn(replay, dev, warmup=1, repeats=3)
    assert timing.repeats == 3 and timing.median_ms >= 0


@cuda_only
def test_cuda_peak_memory_counts_a_known_allocation():
    dev = torch.device("cuda")
    mb = harness.peak_memory_of(lambda: torch.empty(2**20, device=dev), dev)  # 4 MB
    assert 4.0 <= mb < 6.0


def test_cpu_peak_memory_counts_torch_and_numpy_allocations():
    def torch_work():
        a = torch.ones(2**20)  # 4 MB
        b = a * 2  # another 4 MB while a is live
        return float(b.sum())

    mb = harness.peak_memory_of(torch_work, CPU)
    assert 8.0 <= mb < 9.0
    mb_np = harness.peak_memory_of(lambda: float(np.ones(2**20).sum()), CPU)  # 8 MB float64
    assert 8.0 <= mb_np < 9.0


def test_mfu_is_counted_flops_over_measured_peak(monkeypatch):
    monkeypatch.setattr(harness, "measured_peak_flops", lambda device, amp="off": 1e9)
    assert harness.mfu(2_000_000, median_ms=4.0, device=CPU) == pytest.approx(0.5)
    assert harness.mfu(None, 4.0, CPU) is None and harness.mfu(0, 4.0, CPU) is None


def test_set_threads_records_and_rejects():
    before = torch.get_num_threads()
    try:
        assert harness.set_threads(1) == 1 == torch.get_num_threads()
        assert harness.set_threads(None) == 1
        with pytest.raises(ValueError, match="positive number"):
            harness.set_threads(0)
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------- runner and table


def _pair(ours_value=1.0, peer_value=1.0, agree=True, calls=None):
    def build(device, n):
        if calls is not None:
            calls.append(n)
        x = torch.randn(n, 4, requires_grad=True)
        w = torch.randn(4, 3)

        def ours():
            x.grad = None
            loss = (x @ w).sum()
            loss.backward()
            return torch.tensor(ours_value)

        def peer():
            x.grad = None
            loss = (x @ w).sum() + 0 * x.sum()
            loss.backward()
            return torch.tensor(peer_value)

        return Workload(ours, peer, f"n={n}", n, agree=close() if agree else None)

    return build


def fake_case(name="fake op", trained=True, **kw):
    return SpeedCase(
        name=name,
        peer="peer lib",
        sizes={"tiny": {"n": 4}, "small": {"n": 8}, "large": {"n": 16}},
        build=_pair(**kw),
        trained=trained,
        group="fake",
    )


def test_row_has_both_timings_ratio_memory_and_flops():
    row = runner.measure_row(fake_case(), "small", options())
    assert row["status"] == "ok" and row["agree"] == "yes" and row["shape"] == "n=8"
    ours, peer = row["ours"], row["peer_timing"]
    assert row["ratio"] == pytest.approx(peer["median_ms"] / ours["median_ms"])
    assert ours["repeats"] == peer["repeats"] >= 3
    assert ours["items_per_s"] == pytest.approx(8 / (ours["median_ms"] / 1e3))
    assert ours["peak_mb"] is not None and peer["peak_mb"] is not None
    assert ours["flops"] == 2 * (2 * 8 * 4 * 3)  # x @ w forward, and the grad of x
    assert row["threads"] == 1 and row["amp"] == "off" and row["device"] == "cpu"


def test_disagreeing_outputs_are_reported_not_hidden():
    row = runner.measure_row(fake_case(peer_value=2.0), "tiny", options())
    assert row["status"] == "ok" and row["agree"].startswith("differs")
    assert "| no |" in table.markdown([row])


def test_missing_peer_and_failing_case_become_rows():
    def missing(device, n):
        raise PeerMissing("nopkg", "no-pkg")

    def broken(device, n):
        raise RuntimeError("boom")

    base = dict(peer="p", sizes={"tiny": {"n": 1}}, group="g")
    row = runner.measure_row(SpeedCase("m", build=missing, **base), "tiny", options())
    assert row["status"] == "peer missing" and "pip install no-pkg" in row["error"]
    row = runner.measure_row(SpeedCase("b", build=broken, **base), "tiny", options())
    assert row["status"] == "failed" and "boom" in row["error"]
    assert "pip install no-pkg" not in table.markdown([row]) and "boom" in table.markdown([row])


def test_run_appends_rows_and_resumes(tmp_path):
    calls = []
    case = SpeedCase("resumable", "p", {"tiny": {"n": 2}, "small": {"n": 3}}, _pair(calls=calls))
    rows = runner.run([case], "quick", options(), tmp_path)
    assert [r["size"] for r in rows] == ["tiny", "small"] and calls == [2, 3]
    lines = (tmp_path / runner.ROWS_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["env"]["torch_threads"] >= 1
    with (tmp_path / runner.ROWS_FILE).open("a") as f:
        f.write('{"cut by a cra')  # a crash mid-write leaves a broken last line
    with pytest.warns(UserWarning, match="unreadable line"):
        again = runner.run([case], "quick", options(), tmp_path)
    assert calls == [2, 3] and [r["ratio"] for r in again] == [r["ratio"] for r in rows]
    with pytest.warns(UserWarning, match="torn last line"):  # set aside, not appended to
        runner.run([case], "quick", options(), tmp_path, force=True)
    assert calls == [2, 3, 2, 3]
    assert len(runner.load_rows(tmp_path)) == 4  # every line whole again
    (aside,) = tmp_path.glob(runner.ROWS_FILE + ".torn-*")
    assert aside.read_text() == '{"cut by a cra'
    other_threads = runner.SpeedOptions(device=CPU, threads=2, min_repeats=1, budget_s=0.01)
    runner.run([case], "quick", other_threads, tmp_path)
    assert calls == [2, 3, 2, 3, 2, 3]  # rows of other options are not reused


def test_suites_pick_sizes_and_unknown_sizes_are_refused():
    case = fake_case()
    assert [s for _, s in runner.plan([case], "quick")] == ["tiny", "small"]
    assert [s for _, s in runner.plan([case], "default")] == ["tiny", "small", "large"]
    with pytest.raises(ValueError, match="not one of"):
        runner.plan([case], "huge")
    with pytest.raises(ValueError, match="unknown size labels"):
        SpeedCase("x", "p", {"giant": {}}, _pair())


def test_table_groups_rows_and_lists_slower_ones():
    fast = runner.measure_row(fake_case(), "tiny", options())
    slow = {**fast, "case": "slow op", "ratio": 0.5}
    text = table.markdown([fast, slow])
    assert text.count("### fake") == 1 and "fake op (vs peer lib)" in text and "| 0.50 |" in text
    assert table.slower_rows([fast, slow])[-1]["case"] == "slow op"


def test_case_selection_by_substring_and_clear_error():
    cases = {"ECE": fake_case("ECE"), "WER": fake_case("WER")}
    assert [c.name for c in command.select(cases, "ece")] == ["ECE"]
    assert len(command.select(cases, "fake")) == 2  # the group matches too
    with pytest.raises(ValueError, match="matches no case; the cases are: ECE, WER"):
        command.select(cases, "pesq")


def test_cli_speed_prints_the_table_and_writes_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(case_mod, "CASES", {})
    monkeypatch.setattr("bench.speed.CASE_MODULES", ())
    case_mod.register_case(fake_case("cli op"))
    out = tmp_path / "speed"
    code = main(
        [
            "speed",
            "--cases",
            "cli op",
            "--threads",
            "1",
            "--budget",
            "0.01",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "cli op (vs peer lib)" in text and "1 torch threads" in text
    assert (out / "speed.md").read_text().startswith("# Speed")
    assert (out / "speed.png").stat().st_size > 0 and (out / "speed.pdf").stat().st_size > 0
    assert len((out / runner.ROWS_FILE).read_text().splitlines()) == 2
    assert main(["speed", "--cuda-graphs", "--device", "cpu", "--out", str(out)]) == 2


# ------------------------------------------------- validity: MFU over 100%, unsteady probe


def test_probe_is_measured_afresh_and_reasons_are_stated(monkeypatch):
    calls = []
    real = harness.time_fn
    monkeypatch.setattr(harness, "time_fn", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert runner.probe_gflops(CPU) > 0 and runner.probe_gflops(CPU) > 0
    assert len(calls) == 2  # not cached, unlike harness.measured_peak_flops
    assert runner.invalid_reason(None, None, None) is None
    assert runner.invalid_reason(0.4, 100.0, 140.0) is None  # within x1.5
    assert "MFU 120% > 100%" in runner.invalid_reason(1.2, 100.0, 100.0)
    reason = runner.invalid_reason(0.4, 100.0, 40.0)
    assert "100 GFLOP/s before the row, 40 after (×2.5 > ×1.5)" in reason


def test_mfu_above_100_percent_marks_the_row_invalid_and_it_is_measured_again(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(harness, "measured_peak_flops", lambda device, amp="off": 1.0)
    row = runner.measure_row(fake_case(), "tiny", options())
    assert row["status"] == "invalid" and row["invalid"].startswith("MFU ")
    assert row["ours"]["mfu"] > 1 and row["probe_gflops"]["before"] > 0  # numbers kept
    text = table.markdown([row])
    assert f"| invalid ({row['invalid']}) |" in text and "±" not in text and "%" in text
    assert table.slower_rows([{**row, "ratio": 0.5}]) == []
    calls = []
    case = SpeedCase("resumable", "p", {"tiny": {"n": 2}}, _pair(calls=calls), trained=True)
    runner.run([case], "quick", options(), tmp_path)
    runner.run([case], "quick", options(), tmp_path)
    assert calls == [2, 2]  # an invalid row is not reused


def test_probes_that_disagree_mark_the_row_invalid(monkeypatch):
    speeds = iter([100.0, 40.0, 100.0, 90.0])
    monkeypatch.setattr(runner, "probe_gflops", lambda device, amp="off": next(speeds))
    row = runner.measure_row(fake_case(), "tiny", options())
    assert row["status"] == "invalid" and "machine's speed changed" in row["invalid"]
    assert row["probe_gflops"] == {"before": 100.0, "after": 40.0}
    row = runner.measure_row(fake_case(), "tiny", options())
    assert row["status"] == "ok" and "invalid" not in row
    assert "invalid" not in table.markdown([row])
    untrained = runner.measure_row(fake_case(trained=False), "tiny", options())
    assert "probe_gflops" not in untrained  # no MFU, no check

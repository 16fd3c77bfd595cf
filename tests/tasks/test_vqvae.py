"""Tests for the vqvae task: its grid and baseline, input errors, the quantizers it builds,
a tiny cell through the harness (quantized and without a quantizer), and its figures."""

from __future__ import annotations

import pytest
import torch

from bench.config import build_config
from bench.report.vqvae_figures import draw
from bench.store import Cell, Record
from bench.tasks.base import get_task
from bench.tasks.vqvae import VQVAEConfig, build_quantizer, codebook_size

TINY = {
    **get_task("vqvae").config("quick"),
    "hidden": 8,
    "code_dim": 4,
    "steps": 3,
    "batch_size": 2,
    "crop_frames": 16,
    "eval_every": 2,
    "valid_utterances": 2,
}


def test_grid_is_quantizers_by_sizes_plus_one_row_without_quantizer():
    task = get_task("vqvae")
    default = task.grid(scale="default")
    assert len(default) == 13
    assert {"quantizer": "none", "codebook": "-"} in default
    assert {r["codebook"] for r in default if r["quantizer"] != "none"} == {"32", "256", "1024"}
    quick = task.grid(scale="quick")
    assert len(quick) == 5 and {r["codebook"] for r in quick} == {"32", "-"}
    assert task.baseline_of({"quantizer": "vq_ema", "codebook": "256"}) == {
        "quantizer": "vq_st",
        "codebook": "256",
    }
    assert task.baseline_of({"quantizer": "vq_st", "codebook": "32"}) is None
    # a selected size narrows the quantized rows; the row without a quantizer stays "-"
    narrowed = task.grid({"codebook": ["256"]}, scale="default")
    assert len(narrowed) == 5 and {"quantizer": "none", "codebook": "-"} in narrowed
    with pytest.raises(ValueError, match="unknown codebook '1'"):
        task.grid({"codebook": ["1"]}, scale="default")


def test_bad_codebook_sizes_and_configs_are_input_errors():
    assert codebook_size("vq_st", "256") == 256 and codebook_size("none", "-") == 0
    for bad in ("1", "0", "-", "8192", "many"):
        with pytest.raises(ValueError, match="must be an integer in"):
            codebook_size("vq_ema", bad)
    with pytest.raises(ValueError, match="takes codebook '-'"):
        codebook_size("none", "32")
    with pytest.raises(ValueError, match="crop_frames must be even"):
        build_config(VQVAEConfig, crop_frames=15)
    with pytest.raises(ValueError, match="unknown key"):
        build_config(VQVAEConfig, codebook=32)


def test_quantizers_are_built_with_one_group_and_the_row_size():
    config = build_config(VQVAEConfig, steps=100)
    gumbel = build_quantizer("gumbel", 256, config)
    assert (gumbel.num_groups, gumbel.num_entries, gumbel.out_dim) == (1, 256, 64)
    gumbel.anneal(70)  # τ reaches wav2vec 2.0's floor at 70% of the steps
    assert gumbel.tau == pytest.approx(0.5)
    gumbel.anneal(35)
    assert gumbel.tau == pytest.approx(1.0)
    for name in ("vq_st", "vq_ema", "vq_restart"):
        q = build_quantizer(name, 32, config)
        assert q.registry_name == name and q.codebook.shape == (1, 32, 64)
    assert build_quantizer("none", 0, config).num_entries == 0


def test_a_bad_codebook_in_a_cell_fails_with_the_fix(tmp_path):
    from bench.context import RunContext

    task = get_task("vqvae")
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    method = {"quantizer": "vq_st", "codebook": "1"}
    cell = Cell(task="vqvae", method=method, seed=0, scale="quick", config=TINY)
    with pytest.raises(ValueError, match=r"\[2, 4096\]"):
        task.run(cell, ctx)


@pytest.mark.parametrize(
    "method",
    [{"quantizer": "vq_restart", "codebook": "32"}, {"quantizer": "none", "codebook": "-"}],
    ids=["vq_restart", "none"],
)
def test_cell_is_deterministic_and_its_metrics_come_from_its_items(
    method, tmp_path, check_task_cell
):
    check_task_cell("vqvae", method, TINY, tmp_path)


def _record(quantizer: str, size: str, seed: int, collapse: bool) -> Record:
    steps = [2, 4, 6]
    ppl = [2.0, 1.5, 1.2] if collapse else [4.0, 9.0, 20.0]
    return Record(
        run_id="r",
        task="vqvae",
        method={"quantizer": quantizer, "codebook": size},
        config={},
        seed=seed,
        scale="quick",
        metrics={"recon_mse": 0.4 + 0.01 * seed, "phone_pnmi": 0.2},
        curves={"step": steps, "valid_code_perplexity": ppl, "valid_code_usage": [0.1] * 3}
        if size != "-"
        else {"step": steps},
    )


def test_figures_draw_from_records(tmp_path):
    records = [
        _record(q, s, seed, collapse=q == "vq_st")
        for q in ("vq_st", "vq_restart")
        for s in ("32", "256")
        for seed in (0, 1)
    ] + [_record("none", "-", 0, False)]
    figs = list(draw(records, tmp_path, formats=("png",)))
    assert [f.stem for f in figs] == ["vqvae_codebook_use", "vqvae_final"]
    assert (tmp_path / "vqvae_codebook_use.png").exists() and (
        tmp_path / "vqvae_final.png"
    ).exists()

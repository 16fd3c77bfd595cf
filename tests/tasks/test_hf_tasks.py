"""``frontend=hf`` in the five tasks that take a pretrained upstream of your own: each runs
one cell on a tiny saved checkpoint at the tiny scale (deterministic, metrics from its
items), records the learned layer weights, and the CLI runs it end to end with --set."""

import json
import re
from pathlib import Path

import pytest
import torch

from bench.cells import run_cell
from bench.cli import main
from bench.context import RunContext
from bench.data import synthetic
from bench.models import hf_upstream, logmel_features, pretraining, speech_metric
from bench.store import Cell
from bench.tasks import asr, augment, prosody, speaker, ssl_phoneme
from bench.tasks.base import get_task
from tests.tasks.conftest import run_tiny

transformers = pytest.importorskip("transformers")

TINY_CORPUS = synthetic.CorpusConfig(
    speakers_en=6, speakers_lv=3, utterances_per_speaker=4, sentences_per_language=12
)
METRIC = {"steps": 2, "classes_per_batch": 2, "samples_per_class": 2, "crop_frames": 30}
SMALL = {"channels": 8, "embedding_dim": 8, "eval_every": 2}
CONFIGS = {  # the tiny scale of each task (module, key of its SCALE_CONFIGS, config)
    "speaker": {"corpus": "quick", **METRIC, **SMALL},
    "prosody": {"corpus": "quick", **METRIC, **SMALL},
    "augment": {"corpus": "quick", "steps": 2, "batch_size": 4, "crop_frames": 30, **SMALL},
    "asr": {"corpus": "quick", "steps": 3, "freeze_steps": 1, "batch_size": 2, "beam_width": 2},
    "ssl_phoneme": {"corpus": "quick", "model_size": "tiny", "steps": 2, "batch_size": 2}
    | {"crop_seconds": 0.5, "probe_epochs": 2, "probe_starts": 1, "ft_steps": 2},
}
TINY_PRETRAIN = {"corpus": "quick", "model_size": "tiny", "steps": 2, "batch_size": 2}
HF_ROWS = {
    "speaker": {"frontend": "hf", "loss": "ntxent", "miner": "-", "hp": "default"},
    "prosody": {"frontend": "hf", "loss": "-", "miner": "-", "target": "tone", "hp": "-"},
    "augment": {"frontend": "hf", "augment": "specaugment"},
    "asr": {"frontend": "hf", "quantizer": "-", "objective": "-", "language": "lv"}
    | {"labeled": "all"},
    "ssl_phoneme": {"frontend": "hf", "quantizer": "-", "objective": "-", "labeled": "all"},
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A tiny corpus and tiny scales for the module, and a tiny saved wav2vec2 checkpoint."""
    folder = tmp_path_factory.mktemp("tiny_w2v2")
    config = transformers.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        conv_dim=(16, 16, 16),
        conv_kernel=(10, 8, 4),
        conv_stride=(5, 8, 8),
    )
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPEECHBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setitem(synthetic.SCALES, "quick", TINY_CORPUS)
        mp.setitem(speech_metric.SCALE_CONFIGS, "quick", CONFIGS["speaker"])
        mp.setitem(speaker.SPEAKER_SCALES, "quick", CONFIGS["speaker"])
        mp.setitem(prosody.PROSODY_SCALES, "quick", CONFIGS["prosody"])
        mp.setitem(augment.SCALE_CONFIGS, "quick", CONFIGS["augment"])
        mp.setitem(asr.SCALE_CONFIGS, "quick", CONFIGS["asr"])
        mp.setitem(ssl_phoneme.SCALE_CONFIGS, "quick", CONFIGS["ssl_phoneme"])
        mp.setitem(pretraining.PRETRAIN_SCALES, "quick", TINY_PRETRAIN)
        mp.setattr(synthetic, "_SPLIT_CACHE", {})
        mp.setattr(logmel_features, "_FEATURES", {})
        mp.setattr(hf_upstream, "_CACHE", {})
        yield str(folder)


@pytest.mark.parametrize("task_name", list(HF_ROWS))
def test_each_task_runs_an_hf_cell(task_name, upstream, tmp_path, check_task_cell):
    task = get_task(task_name)
    row = HF_ROWS[task_name]
    assert row in task.grid({"frontend": ["hf"]}, "quick")  # what --methods frontend=hf makes
    config = {**task.config("quick"), "upstream": upstream}
    check_task_cell(task_name, row, config, tmp_path)
    record = run_tiny(task_name, row, config, tmp_path / "c").record
    key = "probe_layer_weights" if task_name == "ssl_phoneme" else "layer_weights"
    weights = record.curves[key]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0)
    assert task.data_hash(config) != task.data_hash(task.config("quick"))


def test_hf_without_an_upstream_names_the_option(upstream, tmp_path):
    task = get_task("speaker")
    cell = Cell("speaker", HF_ROWS["speaker"], 0, "quick", task.config("quick"))
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True)
    record = run_cell(cell, ctx, "test", {}).record
    assert record.status == "failed" and "needs --upstream PATH" in (record.error or "")


def test_the_readme_example_runs_end_to_end(upstream, tmp_path):
    """README, "Bring your own pretrained model": its command on a tiny saved checkpoint."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Bring your own pretrained model") :]
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    words = command.replace("\\\n", " ").split("#")[0].split()
    assert words[:2] == ["python", "run_all.py"] and "/path/to/checkpoint" in words
    args = [upstream if w == "/path/to/checkpoint" else w for w in words[2:]]
    out = tmp_path / "run"
    assert main([*args, "--seeds", "1", "--quiet", "--out", str(out)]) == 0
    lines = (out / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {(r["method"]["frontend"], r["method"]["loss"]) for r in records} == {
        ("hf", "ntxent"),
        ("hf", "-"),  # its baseline: the untrained encoder over the same upstream
    }
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert r["config"]["upstream"] == upstream
        assert len(r["curves"]["layer_weights"]) == 3
    assert (out / "figures" / "speaker_layer_weights.png").exists()
    assert "speaker_layer_weights" in (out / "report.md").read_text()


@pytest.mark.parametrize("task_name", ["speaker", "prosody", "augment", "asr"])
def test_a_front_end_the_task_cannot_use_is_an_input_error(task_name):
    with pytest.raises(ValueError, match=f"'mfcc' does not fit {task_name}"):
        get_task(task_name).grid({"frontend": ["mfcc"]}, "quick")


def test_hf_rows_of_the_grid_are_paired_and_not_repeated():
    ssl = get_task("ssl_phoneme").grid({"frontend": ["hf"]}, "quick")
    assert [r for r in ssl if r["frontend"] == "hf"] == [HF_ROWS["ssl_phoneme"]]
    asr_rows = get_task("asr").grid({"frontend": ["hf"]}, "quick")
    assert [r["language"] for r in asr_rows if r["frontend"] == "hf"] == ["en", "lv"]
    assert {r["frontend"] for r in asr_rows} == {"hf", "logmel"}  # logmel: the baseline
    prosody = get_task("prosody").grid({"frontend": ["hf"], "loss": ["ntxent"]}, "quick")
    targets = ("tone", "speaker")
    assert prosody == [
        {"frontend": "hf", "loss": "ntxent", "miner": "-", "target": t, "hp": "default"}
        for t in targets
    ] + [{"frontend": "hf", "loss": "-", "miner": "-", "target": t, "hp": "-"} for t in targets]

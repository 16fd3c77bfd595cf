"""The hf front end: a tiny randomly initialised transformers checkpoint saved into a
temporary folder is loaded frozen, its hidden states are cached, and the learned
weighted sum of its layers is SUPERB's softmax(w)·stack; bad folders are input errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.context import RunContext
from bench.models import hf_upstream
from bench.models.hf_upstream import (
    NO_UPSTREAM,
    HFUpstream,
    LayerWeightedSum,
    WeightedSumEncoder,
    check_upstream,
    flatten_layers,
    hf_grid,
    train_batch,
    upstream_identity,
)
from bench.report.upstream_figures import draw_layer_weights
from bench.store import Record

transformers = pytest.importorskip("transformers")

CTX = RunContext(device=torch.device("cpu"), quiet=True)
CONV = {"conv_dim": (16, 16, 16), "conv_kernel": (10, 8, 4), "conv_stride": (5, 8, 8)}  # 20 ms
TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2,
    **CONV,
}
KINDS = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
    "hubert": ("HubertConfig", "HubertModel"),
    "wavlm": ("WavLMConfig", "WavLMModel"),
}


def save_tiny(folder: Path, kind: str = "wav2vec2", extractor_rate: int | None = 16000) -> str:
    """A tiny randomly initialised audio encoder saved with save_pretrained (seeded)."""
    config_cls, model_cls = (getattr(transformers, n) for n in KINDS[kind])
    extra = {"num_buckets": 8, "max_bucket_distance": 20} if kind == "wavlm" else {}
    torch.manual_seed(0)
    model_cls(config_cls(**TINY, **extra)).save_pretrained(folder)
    if extractor_rate is not None:
        extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=extractor_rate)
        extractor.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return save_tiny(tmp_path_factory.mktemp("tiny_w2v2"))


def wave(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds)).astype(np.float32)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_loads_frozen_and_gives_every_layer(tmp_path, kind):
    up = registry.build("frontend", "hf", upstream=save_tiny(tmp_path, kind), ctx=CTX)
    assert isinstance(up, HFUpstream)
    assert not up.model.training
    assert not any(p.requires_grad for p in up.model.parameters())
    (states,) = up.hidden_states([wave(0.5)])
    assert states.shape == (3, 25, 16)  # input + 2 blocks, 0.5 s at 20 ms, hidden 16
    assert up.layers == 3 and up.dim == 16 and not states.requires_grad


def test_states_are_the_models_own_and_computed_once(tiny, monkeypatch):
    monkeypatch.setattr(hf_upstream, "_CACHE", {})
    up = HFUpstream(tiny, CTX)
    audio = [wave(0.4, 1), wave(0.6, 2)]
    calls = []
    up.model.register_forward_hook(lambda *a: calls.append(1))
    first = up.hidden_states(audio)
    again = up.hidden_states(audio)
    assert len(calls) == 2 and all(a is b for a, b in zip(first, again, strict=True))
    # the same as transformers' own feature extractor and model, called directly
    extractor = transformers.AutoFeatureExtractor.from_pretrained(tiny)
    model = transformers.AutoModel.from_pretrained(tiny).eval()
    inputs = extractor(audio[1], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        want = torch.stack(model(inputs.input_values, output_hidden_states=True).hidden_states)
    torch.testing.assert_close(first[1], want[:, 0], rtol=1e-5, atol=1e-5)


def test_without_an_extractor_each_utterance_is_normalised(tmp_path):
    up = HFUpstream(save_tiny(tmp_path, extractor_rate=None), CTX)
    assert up.extractor is None
    x = up._inputs([wave(0.3) * 7 + 0.5])["input_values"]
    assert float(x.mean()) == pytest.approx(0, abs=1e-5)
    assert float(x.var()) == pytest.approx(1, abs=1e-3)


def test_a_model_at_another_rate_gets_resampled_audio(tmp_path):
    up = HFUpstream(save_tiny(tmp_path, extractor_rate=8000), CTX)
    assert up.sample_rate == 8000
    (states,) = up.hidden_states([wave(1.0)])
    assert states.shape[1] == 25  # 8000 samples at 320 per frame, not 50


def test_weights_start_uniform_get_gradients_and_sum_as_softmax():
    torch.manual_seed(0)
    ws = LayerWeightedSum(3)
    stack = torch.randn(2, 5, 3, 4)  # (B, T, L, D)
    assert ws.layer_weights() == pytest.approx([1 / 3] * 3)
    torch.testing.assert_close(ws(stack), stack.mean(2))
    ws(stack).pow(2).sum().backward()
    assert ws.weights.grad is not None and ws.weights.grad.abs().sum() > 0
    w = torch.tensor([0.5, -1.0, 2.0])
    with torch.no_grad():
        ws.weights.copy_(w)
    e = torch.exp(w) / torch.exp(w).sum()  # softmax by hand
    hand = e[0] * stack[:, :, 0] + e[1] * stack[:, :, 1] + e[2] * stack[:, :, 2]
    torch.testing.assert_close(ws(stack), hand)
    normed = LayerWeightedSum(3, layer_norm=True)
    layer0 = stack[..., 0, :]
    ln0 = (layer0 - layer0.mean(-1, keepdim=True)) / torch.sqrt(
        layer0.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    with torch.no_grad():
        normed.weights.copy_(torch.tensor([50.0, 0.0, 0.0]))  # all weight on layer 0
    torch.testing.assert_close(normed(stack), ln0, rtol=1e-4, atol=1e-4)


def test_encoder_over_flattened_layers_sums_then_encodes():
    torch.manual_seed(0)
    stacks = [torch.randn(3, t, 4) for t in (7, 9)]
    feats = [flatten_layers(s) for s in stacks]
    assert feats[0].shape == (7, 12) and torch.equal(feats[0][2, 4:8], stacks[0][1, 2])
    enc = WeightedSumEncoder(3, 4, channels=6, embedding_dim=5).normalise_with(feats).eval()
    x = torch.stack([feats[0], feats[1][:7]])
    out = enc(x, torch.tensor([7, 7]))
    direct = enc.encoder(
        torch.stack([stacks[0].mean(0), stacks[1][:, :7].mean(0)]), torch.tensor([7, 7])
    )
    torch.testing.assert_close(out, direct)
    out.sum().backward()
    assert enc.featurize.weights.grad is not None


def test_spec_augment_masks_every_layer_alike(tiny):
    up = HFUpstream(tiny, CTX)
    spec = registry.build("augment", "specaugment")
    rng = np.random.default_rng(3)
    waves = [torch.from_numpy(wave(0.6, s)) for s in (1, 2)]
    x = train_batch(up, waves, spec, rng)  # (B, T, L * D)
    clean = up.batch_states(waves).transpose(1, 2).reshape(2, x.shape[1], -1)
    changed = (x != clean).reshape(2, x.shape[1], up.layers, up.dim)
    assert changed.any()
    assert torch.equal(changed[:, :, 0], changed[:, :, 1])
    assert torch.equal(changed[:, :, 0], changed[:, :, 2])


@pytest.mark.parametrize("bad", ["missing", "empty", "garbage"])
def test_bad_folders_are_input_errors_that_name_the_folder(tmp_path, bad):
    folder = tmp_path / bad
    if bad != "missing":
        folder.mkdir()
    if bad == "garbage":
        (folder / "config.json").write_text('{"model_type": "wav2vec2", "hidden_size": "x"')
    with pytest.raises(ValueError, match=str(folder)):
        HFUpstream(str(folder), CTX)
    with pytest.raises(ValueError, match="--upstream PATH"):
        check_upstream("")
    assert "--upstream PATH" in NO_UPSTREAM


def test_identity_follows_the_checkpoints_content(tmp_path):
    a = save_tiny(tmp_path / "a")
    b = save_tiny(tmp_path / "b")
    assert upstream_identity(a) == upstream_identity(b)  # same content, other folder
    (Path(b) / "config.json").write_text((Path(b) / "config.json").read_text() + " ")
    assert upstream_identity(a) != upstream_identity(b)


def test_hf_rows_get_fixed_values_no_duplicates_and_their_baseline():
    rows = [
        {"frontend": "hf", "quantizer": "gumbel", "loss": "a"},
        {"frontend": "hf", "quantizer": "vq", "loss": "a"},
        {"frontend": "logmel", "quantizer": "-", "loss": "a"},
    ]
    got = hf_grid(rows, {"loss": "-"}, {"quantizer": "-"})
    assert got == [
        {"frontend": "hf", "quantizer": "-", "loss": "a"},
        {"frontend": "logmel", "quantizer": "-", "loss": "a"},
        {"frontend": "hf", "quantizer": "-", "loss": "-"},
    ]


def test_the_figure_shows_the_learned_weights_of_hf_rows_only(tmp_path):
    def record(frontend: str, seed: int, weights: list[float]) -> Record:
        method = {"frontend": frontend, "loss": "ntxent", "miner": "-"}
        curves = {"layer_weights": weights}
        return Record(
            run_id="r",
            task="speaker",
            method=method,
            config={},
            seed=seed,
            scale="quick",
            curves=curves,
        )

    records = [
        record("hf", 0, [0.2, 0.3, 0.5]),
        record("hf", 1, [0.4, 0.3, 0.3]),
        record("logmel", 0, [1.0, 0.0, 0.0]),
    ]
    (fig,) = draw_layer_weights(records, tmp_path, ("png",))
    assert (tmp_path / f"{fig.stem}.png").exists()
    assert "| loss=ntxent | 0.300 | 0.300 | 0.400 |" in fig.text
    assert list(draw_layer_weights(records[2:], tmp_path, ("png",))) == []


def test_asr_downstream_gives_padded_batches_the_unpadded_result(tiny):
    from bench.models.hf_asr import HFRecognizer

    torch.manual_seed(0)
    up = HFUpstream(tiny, CTX)
    model = HFRecognizer(up, n_tokens=5, hidden=8).eval()
    states = up.hidden_states([wave(0.4, 1), wave(0.7, 2)])
    with torch.no_grad():
        batch, lengths = model.from_states(states)
        alone, _ = model.from_states(states[:1])
        direct = model(torch.from_numpy(wave(0.4, 1)).unsqueeze(0))
    assert batch.shape == (2, 35, 6) and lengths == [20, 35]
    torch.testing.assert_close(batch[0, :20], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(direct, alone)
    assert model.featurize.layer_weights() == pytest.approx([1 / 3] * 3)

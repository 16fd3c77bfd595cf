"""CTC fine-tuning: masks, padding, and a recogniser that learns a tiny task."""

import numpy as np
import torch

from bench import registry
from bench.context import RunContext
from bench.models.ctc_recognizer import (
    CTCRecognizer,
    FinetuneConfig,
    channel_mask,
    fine_tune,
    greedy_tokens,
    length_batches,
    log_probs_of,
)
from bench.models.wav2vec import Wav2Vec
from bench.models.wav2vec_config import config_for

registry.load_all()


def _recognizer(n_tokens: int = 2) -> CTCRecognizer:
    torch.manual_seed(0)
    network = Wav2Vec(config_for("tiny", stem="logmel"), "gumbel", "contrastive")
    return CTCRecognizer(network, n_tokens)


def test_channel_mask_draws_one_band_per_utterance_at_its_rate():
    config = FinetuneConfig(channel_mask_prob=0.5, channel_mask_width=4)
    mask = channel_mask(2000, 32, config, torch.Generator().manual_seed(0))
    widths = mask.sum(1)
    assert 0.45 < float((widths > 0).float().mean()) < 0.55
    assert int(widths.max()) <= 4
    for row in mask[widths > 0][:50]:  # one band: its True entries are consecutive
        idx = torch.nonzero(row).flatten()
        assert int(idx[-1] - idx[0]) + 1 == len(idx)
    assert not channel_mask(10, 32, FinetuneConfig(channel_mask_prob=0.0), None).any()


def test_a_padded_batch_scores_each_utterance_as_alone():
    """An utterance's scores do not depend on the batch it is padded into: the padded
    frames are masked (without the lengths, the padding changes them)."""
    model = _recognizer().eval()
    short, long = 0.1 * torch.randn(3200), 0.1 * torch.randn(8000)
    padded = torch.nn.functional.pad(short, (0, 4800))
    with torch.no_grad():
        both = model(torch.stack([padded, long]), [3200, 8000])
        alone = model(torch.nn.functional.pad(short, (0, 640)).unsqueeze(0), [3200])
        unmasked = model(torch.stack([padded, long]))
    frames = model.frames(3200)
    assert torch.allclose(both[0, :frames], alone[0, :frames], atol=1e-5)
    assert not torch.allclose(unmasked[0, :frames], alone[0, :frames], atol=1e-3)


def test_fine_tuning_learns_a_two_tone_task_and_is_deterministic(tmp_path):
    """Low tone then high tone -> tokens "a b"; high then low -> "b a"."""
    sr, rng = 16000, np.random.default_rng(0)
    t = np.arange(sr // 2) / sr

    def tone(f):
        return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)

    audio, labels = [], []
    for k in range(16):
        first, second = (300, 2500) if k % 2 == 0 else (2500, 300)
        audio.append(np.concatenate([tone(first), tone(second)]) + rng.normal(0, 0.01, sr))
        labels.append(torch.tensor([1, 2] if k % 2 == 0 else [2, 1]))
    audio = [a.astype(np.float32) for a in audio]
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    config = FinetuneConfig(steps=300, freeze_steps=5, batch_size=8, lr=3e-3)
    results = []
    for global_seed in (1, 2):
        model = _recognizer()
        torch.manual_seed(global_seed)  # the global RNG's state must not matter
        trained = fine_tune(model, audio, labels, config, ctx)
        results.append(trained.curves["finetune_loss"])
    hyps = [greedy_tokens(log_probs_of(model, a, ctx.device), ["a", "b"]) for a in audio[:4]]
    assert hyps == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    assert results[0] == results[1]


def test_length_batches_see_every_utterance_once_per_epoch_with_little_padding():
    """Each epoch is a permutation cut into full batches (the short remainder dropped),
    and sorting within pools cuts padding against random batches of the same size."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(8000, 72000, size=103).tolist()
    batches = length_batches(lengths, 8, 4, np.random.default_rng(1))
    epoch = [next(batches) for _ in range(103 // 8)]  # 3 pools of 32 -> 12 batches, + 7 left
    assert all(len(b) == 8 for b in epoch)
    seen = [i for b in epoch for i in b]
    assert len(seen) == len(set(seen)) >= 96

    def padding(batch):
        return sum(max(lengths[i] for i in batch) - lengths[i] for i in batch)

    shuffled = [list(rng.choice(103, 8, replace=False)) for _ in range(200)]
    sorted_pad = np.mean([padding(next(batches)) for _ in range(200)])
    assert sorted_pad < 0.5 * np.mean([padding(b) for b in shuffled])


def test_length_batches_of_fewer_utterances_than_a_batch():
    batches = length_batches([100, 300, 200], 8, 4, np.random.default_rng(0))
    assert sorted(next(batches)) == [0, 1, 2]


def test_fine_tuning_sets_fairseqs_fine_tuning_dropouts(tmp_path):
    """wav2vec 2.0 pre-trains with dropout and attention dropout 0.1 and fine-tunes with
    activation dropout 0.1 only (fairseq's base_10m); fine_tune puts the latter in place."""
    model = _recognizer()
    blocks = list(model.network.context.layers)
    assert blocks[0].attention.dropout == 0.1 and blocks[0].dropout.p == 0.1
    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp_path, quiet=True).for_cell(0)
    audio = [np.zeros(8000, dtype=np.float32)] * 4
    fine_tune(model, audio, [torch.tensor([1])] * 4, FinetuneConfig(steps=1), ctx)
    for block in blocks:
        assert block.attention.dropout == 0.0 and block.dropout.p == 0.0
        assert block.ffn[2].p == 0.1 and block.ffn[4].p == 0.0
    assert model.network.context.dropout.p == 0.0 and model.network.dropout_input.p == 0.0

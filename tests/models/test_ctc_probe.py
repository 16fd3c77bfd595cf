import torch

from bench.models.ctc_probe import BLANK, ProbeConfig, decode, greedy_decode, train_probe


def test_greedy_collapse_on_hand_made_posteriors():
    vocab = ["a", "b"]
    # frames: a a blank a b b blank -> "a a b" (a repeated across a blank stays twice)
    best = [1, 1, BLANK, 1, 2, 2, BLANK]
    log_probs = torch.full((len(best), 3), -10.0)
    log_probs[torch.arange(len(best)), torch.tensor(best)] = 0.0
    assert greedy_decode(log_probs, len(best), vocab) == ["a", "a", "b"]
    assert greedy_decode(log_probs, 2, vocab) == ["a"]  # length limits the frames read


def test_probe_learns_a_separable_toy_task():
    torch.manual_seed(0)
    vocab = ["x", "y", "z"]
    protos = torch.eye(4)[:3] * 3
    feats, targets = [], []
    for _ in range(60):
        seq = torch.randint(0, 3, (4,)).tolist()
        frames = [protos[t].repeat(3, 1) for t in seq]  # 3 frames per token
        frames = [torch.cat([f, torch.zeros(1, 4) + torch.tensor([0, 0, 0, 3.0])]) for f in frames]
        feats.append(torch.cat(frames) + 0.1 * torch.randn(16, 4))
        targets.append([vocab[t] for t in seq])
    probe = train_probe(
        feats, targets, vocab, ProbeConfig(epochs=60, lr=0.05), torch.Generator().manual_seed(0)
    )
    hyps = decode(probe, feats[:10])
    assert sum(h == t for h, t in zip(hyps, targets[:10], strict=True)) >= 8

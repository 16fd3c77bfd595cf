"""The context network's attention against torch's own multi-head attention."""

import torch
from torch import nn

from bench.models.wav2vec_blocks import SelfAttention


def _as_torch(attention: SelfAttention, dim: int, heads: int) -> nn.MultiheadAttention:
    """torch's MultiheadAttention with the same weights (its in_proj is q, k, v stacked)."""
    reference = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(attention.qkv.weight)
        reference.in_proj_bias.copy_(attention.qkv.bias)
        reference.out_proj.weight.copy_(attention.out.weight)
        reference.out_proj.bias.copy_(attention.out.bias)
    return reference.eval()


def test_self_attention_matches_torch_multihead_attention_with_a_padding_mask():
    torch.manual_seed(0)
    dim, heads = 32, 4
    attention = SelfAttention(dim, heads, dropout=0.1).eval()
    reference = _as_torch(attention, dim, heads)
    x = torch.randn(3, 11, dim)
    pad = torch.zeros(3, 11, dtype=torch.bool)
    pad[1, 7:] = True
    pad[2, 4:] = True
    ours = attention(x, pad)
    theirs = reference(x, x, x, key_padding_mask=pad, need_weights=False)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attention(x), reference(x, x, x, need_weights=False)[0])


def test_attention_dropout_acts_in_training_only():
    torch.manual_seed(0)
    attention = SelfAttention(16, 2, dropout=0.5)
    x = torch.randn(2, 9, 16)
    attention.train()
    assert not torch.equal(attention(x), attention(x))
    attention.eval()
    assert torch.equal(attention(x), attention(x))

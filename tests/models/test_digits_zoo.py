import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from bench import registry
from bench.models.digits_zoo import SmallResNet, SmallViT, patchify, shift_rotate


@pytest.mark.parametrize(
    ("name", "params"),
    [("resnet", {"channels": 4}), ("resnet", {"channels": 4, "blocks": 2}),
     ("vit", {"patch_size": 2, "dim": 16}), ("vit", {"patch_size": 4, "dim": 16})],
)  # fmt: skip
def test_registered_and_shapes(name, params):
    model = registry.build("classifier", name, params=params, num_classes=7)
    assert model(torch.rand(5, 1, 8, 8)).shape == (5, 7)


def _zeros_and_ones():
    data = load_digits(n_class=2)
    x = torch.from_numpy((data.images / 16.0).astype(np.float32))[:, None][:96]
    return x, torch.from_numpy(data.target)[:96]


@pytest.mark.parametrize(
    "model", [lambda: SmallResNet(4, num_classes=2), lambda: SmallViT(4, dim=16, num_classes=2)]
)
def test_learns_a_tiny_problem(model):
    torch.manual_seed(0)
    net = model()
    x, y = _zeros_and_ones()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    assert (net(x).argmax(1) == y).float().mean() == 1.0
    assert loss.item() < 0.2 * first


def test_patchify_row_major_hand_case():
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    p = patchify(x, 4)
    assert p.shape == (1, 4, 16)
    top_left = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]
    assert p[0, 0].tolist() == top_left
    assert p[0, 1].tolist() == [v + 4 for v in top_left]  # then the top right
    assert p[0, 2].tolist() == [v + 32 for v in top_left]  # then the bottom left
    assert p[0, 3].tolist() == [v + 36 for v in top_left]
    two = patchify(x, 2)
    assert two.shape == (1, 16, 4) and two[0, 1].tolist() == [2, 3, 10, 11]
    assert two[0, 4].tolist() == [16, 17, 24, 25]


def test_vit_tokens_are_class_token_then_embedded_patches():
    vit = SmallViT(patch_size=2, dim=4, heads=2)
    with torch.no_grad():
        vit.embed.weight.copy_(torch.eye(4))
        vit.embed.bias.zero_()
        vit.pos.zero_()
        vit.cls.fill_(-1.0)
    x = torch.rand(3, 1, 8, 8)
    tokens = vit.tokens(x)
    assert tokens.shape == (3, 17, 4)
    assert torch.all(tokens[:, 0] == -1)
    assert torch.equal(tokens[:, 1:], patchify(x, 2))


@pytest.mark.parametrize("patch", [3, 5, 0])
def test_vit_patch_must_divide_eight(patch):
    with pytest.raises(ValueError, match="does not divide"):
        SmallViT(patch_size=patch)


def test_shift_rotate_is_seeded_small_and_keeps_mass():
    x = torch.zeros(64, 1, 8, 8)
    x[:, 0, 3, 4] = 1.0  # one bright pixel away from the border
    a = shift_rotate(x, torch.Generator().manual_seed(0), max_degrees=0.0)
    b = shift_rotate(x, torch.Generator().manual_seed(0), max_degrees=0.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, shift_rotate(x, torch.Generator().manual_seed(1), max_degrees=0.0))
    # a bilinear translation keeps the mass and moves the centre of mass by the shift
    assert torch.allclose(a.sum(dim=(1, 2, 3)), torch.ones(64), atol=1e-5)
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    cy = (a[:, 0] * rows).sum(dim=(1, 2))
    cx = (a[:, 0] * cols).sum(dim=(1, 2))
    assert (cy - 3).abs().max() <= 1 + 1e-5 and (cx - 4).abs().max() <= 1 + 1e-5
    assert (cx - 4).abs().max() > 0.5  # and it does move
    same = shift_rotate(x, torch.Generator().manual_seed(0), max_shift=0.0, max_degrees=0.0)
    assert torch.allclose(same, x, atol=1e-6)  # no shift, no rotation: the identity
    rotated = shift_rotate(torch.rand(8, 1, 8, 8), torch.Generator(), max_shift=0.0)
    assert rotated.shape == (8, 1, 8, 8)

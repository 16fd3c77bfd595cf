"""The image augmentations (methods/image_augment.py) and the warp they share with the
shifted test sets (bench/data/digits_shifted.py); the task: tests/tasks/test_image_augment.py."""

import pytest
import torch
from torchvision.transforms import v2

from bench import registry
from bench.data.digits_shifted import affine_each, shifted_copies
from methods.image_augment import RandomAffineImages

NAMES = ("none", "rotation", "scale", "both")


def _asymmetric(n: int = 1) -> torch.Tensor:
    """Images with no rotational symmetry: distinct values in every pixel."""
    return torch.arange(n * 64, dtype=torch.float32).reshape(n, 1, 8, 8) / 64


def test_the_family_holds_the_four_augmentations():
    assert set(NAMES) <= set(registry.names("image_augment"))


def test_rotation_by_90_degrees_is_rot90_counter_clockwise():
    x = _asymmetric(2)
    out = affine_each(x, torch.tensor([90.0, -90.0]), torch.ones(2))
    assert torch.allclose(out[0], torch.rot90(x[0], 1, (1, 2)), atol=1e-5)
    assert torch.allclose(out[1], torch.rot90(x[1], -1, (1, 2)), atol=1e-5)


def test_rescaling_a_ramp_about_the_centre():
    """I(r, c) = c scaled by s about the centre (3.5, 3.5): O(r, c) = 3.5 + (c - 3.5) / s,
    exactly, where the source lies inside the image (bilinear is exact on a ramp)."""
    ramp = torch.arange(8.0).expand(8, 8)[None, None].clone()
    out = affine_each(ramp, torch.zeros(1), torch.tensor([2.0]))
    want = 3.5 + (torch.arange(8.0) - 3.5) / 2
    assert torch.allclose(out[0, 0], want.expand(8, 8), atol=1e-5)


def test_angle_zero_and_scale_one_are_the_identity():
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(affine_each(x, torch.zeros(5), torch.ones(5)), x)
    for aug in (RandomAffineImages(), RandomAffineImages(0.0, (1.0, 1.0))):
        assert aug(x, torch.Generator().manual_seed(0)) is x
    assert registry.build("image_augment", "none")(x, torch.Generator()) is x


def test_the_warp_matches_torchvision_random_transforms_replayed():
    """v2.RandomRotation / v2.RandomAffine draw from the global RNG; replaying their draw,
    affine_each gives their output (their rotation counter-clockwise, affine clockwise)."""
    img = torch.rand(1, 8, 8)
    torch.manual_seed(3)
    angle = torch.empty(1).uniform_(-30, 30).item()
    torch.manual_seed(3)
    ref = v2.RandomRotation(30, interpolation=v2.InterpolationMode.BILINEAR)(img)
    ours = affine_each(img[None], torch.tensor([angle]), torch.ones(1))[0]
    assert torch.allclose(ours, ref, atol=1e-5)
    torch.manual_seed(4)
    angle = torch.empty(1).uniform_(-30, 30).item()
    scale = torch.empty(1).uniform_(0.7, 1.3).item()
    torch.manual_seed(4)
    affine = v2.RandomAffine(30, scale=(0.7, 1.3), interpolation=v2.InterpolationMode.BILINEAR)
    ours = affine_each(img[None], torch.tensor([-angle]), torch.tensor([scale]))[0]
    assert torch.allclose(ours, affine(img), atol=1e-5)


def test_draws_come_from_the_generator_per_image():
    aug = registry.build("image_augment", "both")
    angles, scales = aug.sample(1000, torch.Generator().manual_seed(0))
    u = torch.rand(2, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(angles, (2 * u[0] - 1) * 30.0)  # angles first, then scales
    assert torch.equal(scales, 0.7 + u[1] * (1.3 - 0.7))
    assert angles.abs().max() <= 30 and 0.7 <= scales.min() and scales.max() <= 1.3
    assert angles.std() > 10 and scales.std() > 0.1  # one draw per image, not per batch
    rot = registry.build("image_augment", "rotation", params={"degrees": 10.0})
    a, s = rot.sample(50, torch.Generator().manual_seed(1))
    assert a.abs().max() <= 10 and torch.equal(s, torch.ones(50, dtype=torch.float64))
    x = _asymmetric(4)
    out = aug(x, torch.Generator().manual_seed(5))
    a, s = aug.sample(4, torch.Generator().manual_seed(5))
    assert torch.equal(out, affine_each(x, a, s))


@pytest.mark.parametrize("name", NAMES)
def test_each_augmentation_is_deterministic_per_generator(name):
    aug, x = registry.build("image_augment", name), torch.rand(16, 1, 8, 8)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
    if name != "none":
        assert not torch.equal(a, aug(x, torch.Generator().manual_seed(8)))
        assert not torch.equal(a, x)
    state = torch.random.get_rng_state()
    aug(x, torch.Generator().manual_seed(7))
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is untouched


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"degrees": -5.0}, "degrees must be"),
        ({"degrees": float("nan")}, "degrees must be"),
        ({"scale": (0.0, 1.2)}, "0 < low <= high"),
        ({"scale": (1.3, 0.7)}, "0 < low <= high"),
        ({"scale": 1.2}, "pair"),
    ],
)
def test_bad_ranges_are_input_errors(params, message):
    name = "rotation" if "degrees" in params else "scale"
    with pytest.raises(ValueError, match=message):
        registry.build("image_augment", name, params=params)


def test_shifted_copies_pair_by_id_and_are_deterministic():
    x, y = _asymmetric(3), torch.tensor([4, 5, 6])
    ids = ["digit7", "digit8", "digit9"]
    xr, yr, idr = shifted_copies(x, y, ids, angles=(-90.0, 90.0))
    assert list(idr) == [f"{i}/rot-90" for i in ids] + [f"{i}/rot+90" for i in ids]
    assert torch.equal(yr, torch.cat([y, y]))
    assert torch.allclose(xr[3], torch.rot90(x[0], 1, (1, 2)), atol=1e-5)
    xs, _, ids_s = shifted_copies(x, y, ids, scales=(0.7, 1.3))
    assert ids_s[0] == "digit7/scale0.7" and ids_s[-1] == "digit9/scale1.3"
    assert torch.equal(xs, shifted_copies(x, y, ids, scales=(0.7, 1.3))[0])
    with pytest.raises(ValueError, match="not both"):
        shifted_copies(x, y, ids, angles=(30.0,), scales=(0.7,))
    with pytest.raises(ValueError, match="> 0"):
        shifted_copies(x, y, ids, scales=(-1.0,))

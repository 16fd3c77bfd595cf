"""Tests for methods.calibration: the contract of every calibrator, then each one's maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.isotonic import IsotonicRegression

import methods.calibration as mc
from bench import registry


def _calibrator_classes() -> dict[str, type]:
    """Calibrators registered by methods.calibration, by registry name.

    Read from the ``registry_family``/``registry_name`` attributes that ``@register`` sets,
    not from ``registry.names("calibrator")``: names() runs ``load_all()``, which imports every
    registering module (tasks, models), and would tie these unit tests to unrelated code.
    A calibrator added to methods/calibration.py is picked up here automatically.
    """
    return {
        cls.registry_name: cls
        for cls in vars(mc).values()
        if isinstance(cls, type) and getattr(cls, "registry_family", None) == "calibrator"
    }


CALIBRATORS = _calibrator_classes()
NAMES = sorted(CALIBRATORS)


def make(name: str, **kwargs) -> mc.Calibrator:
    return CALIBRATORS[name](**kwargs)


def sample_labels(probs: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(probs, 1, generator=g).squeeze(1)


def random_logits(n: int, k: int, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=torch.float64) * scale


@pytest.fixture(scope="module")
def small_data() -> tuple[torch.Tensor, torch.Tensor]:
    z = random_logits(300, 4, 2.0, seed=1)
    return z, sample_labels(torch.softmax(z, 1), seed=2)


def nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return -torch.log(probs[torch.arange(len(labels)), labels]).mean().item()


def ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al. 2017), equal-width bins (lo, hi] on confidence."""
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    total = 0.0
    for m in range(n_bins):
        lo, hi = m / n_bins, (m + 1) / n_bins
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            gap = (correct[in_bin].mean() - conf[in_bin].mean()).abs().item()
            total += in_bin.double().mean().item() * gap
    return total


# ---- the contract, for every registered calibrator ------------------------------------
def test_expected_calibrators_present():
    assert {"none", "temperature", "vector", "histogram", "isotonic"} <= set(NAMES)


def test_registry_resolves_every_calibrator():
    # other tests may register extra calibrators, so check inclusion, not equality
    assert set(NAMES) <= set(registry.names("calibrator"))
    for name in NAMES:
        assert registry.get("calibrator", name) is CALIBRATORS[name]


@pytest.mark.parametrize("name", NAMES)
def test_output_is_a_probability_table(name, small_data):
    z, y = small_data
    cal = make(name)
    assert cal.fit(z, y) is cal
    test = random_logits(50, 4, 2.0, seed=3).float()  # float32 in, float64 out
    q = cal(test)
    assert isinstance(q, torch.Tensor)
    assert q.shape == (50, 4)
    assert q.dtype == torch.float64
    assert q.device == test.device
    assert not q.requires_grad
    assert (q >= 0).all()
    torch.testing.assert_close(q.sum(1), torch.ones(50, dtype=torch.float64))
    params = cal.params()
    assert isinstance(params, dict)
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in params.items())


@pytest.mark.parametrize("name", NAMES)
def test_accepts_numpy_and_grad_tensors(name, small_data):
    z, y = small_data
    from_torch = make(name).fit(z, y)(z[:20])
    from_numpy = make(name).fit(z.numpy(), y.numpy().astype(np.int32))(z[:20].numpy())
    assert from_numpy.dtype == torch.float64 and from_numpy.device.type == "cpu"
    torch.testing.assert_close(from_numpy, from_torch)
    leaf = z.clone().requires_grad_()
    torch.testing.assert_close(make(name).fit(leaf, y)(leaf[:20]), from_torch)


@pytest.mark.parametrize("name", NAMES)
def test_fit_under_no_grad_and_inference_mode(name, small_data):
    z, y = small_data
    expected = make(name).fit(z, y)(z)
    with torch.no_grad():
        torch.testing.assert_close(make(name).fit(z, y)(z), expected)
    with torch.inference_mode():
        zi, yi = z.clone(), y.clone()  # inference tensors
        torch.testing.assert_close(make(name).fit(zi, yi)(zi), expected)


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted_raises(name, small_data):
    cal = make(name)
    with pytest.raises(RuntimeError, match=r"call fit\(valid_logits, valid_labels\) first"):
        cal(small_data[0])
    with pytest.raises(RuntimeError, match="not fitted"):
        cal.params()


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name, small_data):
    z, y = small_data
    a = make(name).fit(z, y)
    b = make(name).fit(z, y)
    assert torch.equal(a(z), b(z))
    assert torch.equal(a(z), a(z))
    assert a.params() == b.params()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_logits_raise(name, bad, small_data):
    z, y = small_data
    poisoned = z.clone()
    poisoned[5, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        make(name).fit(poisoned, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        make(name).fit(z, y)(poisoned)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise(name, small_data):
    z, y = small_data
    cases = [
        ((z, y[:-1]), "shape"),  # label count != N
        ((z[0], y[:1]), r"shape \(N, K\)"),  # 1-D logits
        ((z, y.view(-1, 1)), "shape"),  # 2-D labels
        ((z, y.double()), "integer"),  # float labels
        ((z, torch.full_like(y, 4)), r"\[0, 4\)"),  # label == K
        ((z, torch.full_like(y, -1)), r"\[0, 4\)"),  # negative label
        ((z[:0], y[:0]), "at least one sample"),
        ((z[:, :1], torch.zeros_like(y)), "K >= 2"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            make(name).fit(*args)
    cal = make(name).fit(z, y)
    with pytest.raises(ValueError, match="fitted on 4"):
        cal(z[:, :3])
    with pytest.raises(ValueError, match=r"shape \(N, K\)"):
        cal(z[0])


@pytest.mark.parametrize("name", NAMES)
def test_refit_replaces_previous_fit(name, small_data):
    z, y = small_data
    z3 = random_logits(200, 3, 2.0, seed=4)
    y3 = sample_labels(torch.softmax(z3, 1), seed=5)
    cal = make(name).fit(z, y).fit(z3, y3)
    assert torch.equal(cal(z3), make(name).fit(z3, y3)(z3))
    with pytest.raises(ValueError, match="fitted on 3"):
        cal(z)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name, small_data):
    z, y = small_data
    assert make(name).fit(z, y)(z[:0]).shape == (0, 4)


# ---- none -----------------------------------------------------------------------------
def test_none_is_softmax(small_data):
    z, y = small_data
    cal = make("none").fit(z, y)
    torch.testing.assert_close(cal(z), torch.softmax(z, dim=1), rtol=0, atol=0)
    assert cal.params() == {}


# ---- temperature scaling --------------------------------------------------------------
@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_temperature_recovers_known_temperature(true_t):
    z = random_logits(20000, 10, 3.0, seed=10)  # z ~ N(0, 3^2)
    y = sample_labels(torch.softmax(z / true_t, 1), seed=11)  # y ~ softmax(z / T*)
    cal = make("temperature").fit(z, y)
    assert cal.converged
    assert cal.temperature == pytest.approx(true_t, rel=0.05)
    assert cal.params() == {"temperature": cal.temperature}

    # independent reference: scipy's bounded scalar minimiser of the NLL over T
    zn, yn = z.numpy(), y.numpy()

    def nll_of(t: float) -> float:
        return -log_softmax(zn / t, axis=1)[np.arange(len(yn)), yn].mean()

    ref = minimize_scalar(nll_of, bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-7})
    assert ref.success
    assert cal.temperature == pytest.approx(ref.x, rel=1e-3)
    assert cal.nll == pytest.approx(ref.fun, rel=1e-9)


def test_temperature_keeps_argmax(small_data):
    z, y = small_data
    cal = make("temperature", init_temperature=3.0).fit(z * 4, y)  # overconfident -> T > 1
    assert cal.temperature > 1.0
    assert torch.equal(cal(z).argmax(1), z.argmax(1))


def test_temperature_init_does_not_matter(small_data):
    z, y = small_data
    a = make("temperature", init_temperature=0.2).fit(z, y).temperature
    b = make("temperature", init_temperature=5.0).fit(z, y).temperature
    assert a == pytest.approx(b, rel=1e-5)


@pytest.mark.parametrize("kwargs", [{"init_temperature": 0.0}, {"max_iter": 0}])
def test_temperature_bad_kwargs(kwargs):
    with pytest.raises(ValueError):
        make("temperature", **kwargs)


# ---- vector scaling -------------------------------------------------------------------
def test_vector_recovers_known_parameters():
    k = 10
    w_true = torch.linspace(0.5, 1.5, k, dtype=torch.float64)
    b_true = torch.linspace(-1.0, 1.0, k, dtype=torch.float64).flip(0)
    z = random_logits(20000, k, 2.0, seed=20)
    true_q = torch.softmax(z * w_true + b_true, 1)  # q* = softmax(w* . z + b*)
    y = sample_labels(true_q, seed=21)
    cal = make("vector").fit(z, y)
    assert cal.converged
    torch.testing.assert_close(cal.weight, w_true, rtol=0, atol=0.1)
    torch.testing.assert_close(cal.bias, b_true - b_true.mean(), rtol=0, atol=0.2)
    assert cal.bias.sum().abs().item() < 1e-9  # reported centred
    assert (cal(z) - true_q).abs().mean().item() < 0.01
    p = cal.params()
    assert set(p) == {"w_mean", "w_min", "w_max"}
    assert p["w_min"] <= p["w_mean"] <= p["w_max"]
    assert p["w_mean"] == pytest.approx(cal.weight.mean().item())


def test_lbfgs_warns_when_not_converged():
    z = random_logits(1000, 5, 3.0, seed=24)
    y = sample_labels(torch.softmax(z * 0.3, 1), seed=25)
    with pytest.warns(RuntimeWarning, match=r"max \|grad\|"):
        cal = make("vector", max_iter=1).fit(z, y)
    assert cal.converged is False


def test_vector_matches_temperature_when_true_model_is_a_temperature():
    z = random_logits(5000, 5, 3.0, seed=22)
    y = sample_labels(torch.softmax(z / 2.0, 1), seed=23)
    vec = make("vector").fit(z, y)
    temp = make("temperature").fit(z, y)
    assert vec.nll <= temp.nll + 1e-9  # vector scaling contains temperature scaling
    assert (vec(z) - temp(z)).abs().max().item() < 0.05


# ---- histogram binning ----------------------------------------------------------------
def two_class_logits(p1: list[float]) -> torch.Tensor:
    """Logits [0, log(p1 / (1 - p1))], so softmax(z)_1 = p1 (exactly 0.5 for p1 = 0.5)."""
    return torch.tensor([[0.0, math.log(p / (1 - p))] for p in p1], dtype=torch.float64)


def test_histogram_hand_computed():
    # n_bins = 4: B1 = [0, .25], B2 = (.25, .5], B3 = (.5, .75], B4 = (.75, 1].
    #   sample   p1    label | p0 = 1 - p1
    #   a        0.10  0     | 0.90
    #   b        0.20  1     | 0.80
    #   c        0.50  1     | 0.50   (exactly on an edge: falls in the lower bin, B2)
    #   d        0.60  0     | 0.40
    #   e        0.90  1     | 0.10
    #   f        0.95  1     | 0.05
    # class 1 (fraction of label 1 per bin of p1):
    #   B1 {a, b} -> 1/2,  B2 {c} -> 1,  B3 {d} -> 0,  B4 {e, f} -> 1
    # class 0 (fraction of label 0 per bin of p0):
    #   B1 {e, f} -> 0,  B2 {c, d} -> 1/2,  B3 {} -> empty, centre 0.625,  B4 {a, b} -> 1/2
    z = two_class_logits([0.10, 0.20, 0.50, 0.60, 0.90, 0.95])
    y = torch.tensor([0, 1, 1, 0, 1, 1])
    cal = make("histogram", n_bins=4).fit(z, y)
    expected = torch.tensor([[0.0, 0.5, 0.625, 0.5], [0.5, 1.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(cal.bin_values, expected)
    torch.testing.assert_close(
        cal.bin_counts, torch.tensor([[2.0, 2, 0, 2], [2, 1, 1, 2]], dtype=torch.float64)
    )
    assert cal.params() == {}

    # test points: p1 = 0.7 -> class 1 in B3 (0), class 0 (p0 = 0.3) in B2 (1/2) -> [1, 0]
    #              p1 = 0.3 -> class 1 in B2 (1), class 0 (p0 = 0.7) in the empty B3 (0.625)
    #                          -> [0.625, 1] / 1.625
    #              p1 = 0.5 -> both classes in B2: class 0 -> 1/2, class 1 -> 1 -> [1/3, 2/3]
    q = cal(two_class_logits([0.7, 0.3, 0.5]))
    expected_q = torch.tensor(
        [[1.0, 0.0], [0.625 / 1.625, 1 / 1.625], [1 / 3, 2 / 3]], dtype=torch.float64
    )
    torch.testing.assert_close(q, expected_q)


def test_histogram_empty_bins_get_their_centre():
    z = two_class_logits([0.55, 0.6, 0.65])  # p1 in (.5, .75], p0 in (.25, .5]
    y = torch.tensor([1, 1, 0])
    cal = make("histogram", n_bins=4).fit(z, y)
    centres = torch.tensor([0.125, 0.375, 0.625, 0.875], dtype=torch.float64)
    # class 0 data only in B2, class 1 only in B3; every other bin is empty
    torch.testing.assert_close(cal.bin_values[0, [0, 2, 3]], centres[[0, 2, 3]])
    torch.testing.assert_close(cal.bin_values[1, [0, 1, 3]], centres[[0, 1, 3]])
    torch.testing.assert_close(cal.bin_values[0, 1], torch.tensor(1 / 3, dtype=torch.float64))
    torch.testing.assert_close(cal.bin_values[1, 2], torch.tensor(2 / 3, dtype=torch.float64))


def test_histogram_edges_zero_and_one():
    cal = make("histogram", n_bins=4)
    probs = torch.tensor([[0.0, 0.25, 0.2500001, 1.0]], dtype=torch.float64)
    assert cal._bin_index(probs).tolist() == [[0, 0, 1, 3]]


def test_renormalise_all_zero_row_is_uniform():
    scores = torch.tensor([[0.0, 0.0, 0.0], [1.0, 3.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.25, 0.75, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(mc._renormalise(scores), expected)


def test_histogram_bad_kwargs():
    with pytest.raises(ValueError):
        make("histogram", n_bins=0)


# ---- isotonic regression --------------------------------------------------------------
def test_isotonic_equals_sklearn_per_class(small_data):
    z, y = small_data
    test = random_logits(40, 4, 3.0, seed=30)  # wider than the fit range: exercises clipping
    q = make("isotonic").fit(z, y)(test)

    p_fit, p_test = torch.softmax(z, 1).numpy(), torch.softmax(test, 1).numpy()
    scores = np.empty_like(p_test)
    for k in range(4):
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
        iso.fit(p_fit[:, k], (y.numpy() == k).astype(float))
        scores[:, k] = iso.predict(p_test[:, k])
    total = scores.sum(1, keepdims=True)
    expected = np.where(total > 0, scores / np.where(total > 0, total, 1), 0.25)
    torch.testing.assert_close(q, torch.from_numpy(expected))


def test_isotonic_is_monotone_per_class(small_data):
    z, y = small_data
    cal = make("isotonic").fit(z, y)
    grid = torch.linspace(0, 1, 501, dtype=torch.float64).unsqueeze(1).expand(-1, 4)
    scores = cal._class_scores(grid)  # f_k(p) for p on a grid, before renormalisation
    assert (scores.diff(dim=0) >= 0).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert cal.params() == {}


# ---- all calibrators help on an overconfident model -----------------------------------
def test_calibrators_fix_overconfidence():
    k = 10
    true_z = random_logits(8000, k, 1.0, seed=40)
    y = sample_labels(torch.softmax(true_z, 1), seed=41)
    logits = 3 * true_z  # an overconfident model with the right ranking
    valid, test = slice(0, 4000), slice(4000, None)
    base = make("none").fit(logits[valid], y[valid])(logits[test])
    base_nll, base_ece = nll(base, y[test]), ece(base, y[test])
    assert base_ece > 0.15  # the case really is overconfident
    for name in ("temperature", "vector", "histogram", "isotonic"):
        q = make(name).fit(logits[valid], y[valid])(logits[test])
        assert ece(q, y[test]) < base_ece / 2, name
        if name in ("temperature", "vector"):  # binning methods may give p = 0 -> NLL inf
            assert nll(q, y[test]) < base_nll, name
    temp = make("temperature").fit(logits[valid], y[valid])
    assert temp.temperature == pytest.approx(3.0, rel=0.1)

"""Post-hoc calibrators: map a classifier's logits to better-calibrated probabilities.

Contract (DESIGN.md): ``fit(logits, labels) -> self`` on the validation split, then
``calibrator(logits) -> probs``. Logits are (N, K) floats, labels (N,) integer class indices;
torch tensors or numpy arrays. The output is a float64 torch tensor of probabilities (rows
sum to 1) on the logits' device. ``params()`` gives the scalar fitted parameters worth
recording in a report.

The base class :class:`Calibrator` owns conversion, validation and the fitted state; each
calibrator implements the two hooks ``_fit(logits, labels)`` and ``_transform(logits)``,
which receive validated float64 logits and int64 labels on the logits' device.

Notation: z are the logits of one sample, p = softmax(z) the uncalibrated probabilities,
q the calibrated ones, y the label, K the number of classes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Self, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.isotonic import IsotonicRegression

from bench.registry import register

__all__ = [
    "Calibrator",
    "HistogramBinning",
    "IsotonicCalibration",
    "NoCalibration",
    "TemperatureScaling",
    "VectorScaling",
]

# Largest |dNLL/dparam| accepted as "converged" for the LBFGS fits (NLL is a mean per sample).
GRAD_TOLERANCE = 1e-5

T = TypeVar("T")


class Calibrator:
    """Base class: input conversion and validation, fitted state; subclasses add two hooks."""

    registry_family: str
    registry_name: str

    def __init__(self) -> None:
        self.n_classes: int | None = None  # set by fit(); None means "not fitted"

    # ---- public API -------------------------------------------------------------------
    def fit(self, logits: Any, labels: Any) -> Self:
        """Fit on validation ``logits`` (N, K) and ``labels`` (N,); returns ``self``."""
        # the LBFGS fits need autograd, also when called under no_grad() or inference_mode()
        with torch.inference_mode(False), torch.enable_grad():
            z = _as_logits(logits, "fit")
            y = _as_labels(labels, z)
            if z.shape[0] == 0:
                raise ValueError("fit() needs at least one sample; got logits of shape (0, K)")
            z = z.clone() if z.is_inference() else z  # inference tensors refuse autograd
            y = y.clone() if y.is_inference() else y
            self.n_classes = None  # a fit that fails midway must not leave a half-fitted state
            self._fit(z, y)
        self.n_classes = z.shape[1]
        return self

    def __call__(self, logits: Any) -> torch.Tensor:
        """Calibrated probabilities (N, K), float64, on the logits' device."""
        self._check_fitted()
        z = _as_logits(logits, "__call__")
        if z.shape[1] != self.n_classes:
            raise ValueError(
                f"logits have {z.shape[1]} classes but {type(self).__name__} was fitted on "
                f"{self.n_classes}"
            )
        with torch.no_grad():
            return self._transform(z)

    def params(self) -> dict[str, float]:
        """Scalar fitted parameters worth recording (empty if there are none)."""
        self._check_fitted()
        return self._params()

    # ---- hooks ------------------------------------------------------------------------
    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        raise NotImplementedError

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _params(self) -> dict[str, float]:
        return {}

    # ---- helpers ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.n_classes is None:
            raise RuntimeError(
                f"{type(self).__name__} is not fitted; call fit(valid_logits, valid_labels) first"
            )


@register("calibrator", "none", display="No calibration")
class NoCalibration(Calibrator):
    """The uncalibrated baseline: q = softmax(z). Fitting only records K."""

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        pass

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=1)  # q = softmax(z)


@register("calibrator", "temperature", display="Temperature scaling")
class TemperatureScaling(Calibrator):
    """Temperature scaling: one scalar T > 0, q = softmax(z / T).

    Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017,
    Sec. 4.2. T minimises the validation NLL; it is fitted over log T (so T stays positive)
    with LBFGS (strong-Wolfe line search) in float64, starting from ``init_temperature``.
    Dividing by T does not change the argmax, so accuracy is unchanged.
    """

    def __init__(self, init_temperature: float = 1.0, max_iter: int = 100) -> None:
        super().__init__()
        if not (init_temperature > 0 and math.isfinite(init_temperature)):
            raise ValueError(f"init_temperature must be a positive number, got {init_temperature}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.init_temperature = float(init_temperature)
        self.max_iter = int(max_iter)
        self.temperature: float | None = None
        self.nll: float | None = None  # validation NLL at the fitted T
        self.converged: bool | None = None

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        log_t = torch.tensor(
            math.log(self.init_temperature), dtype=torch.float64, device=logits.device
        ).requires_grad_()

        def nll() -> torch.Tensor:
            # NLL(T) = -1/N sum_i log softmax(z_i / T)_{y_i},  with T = exp(log T)
            return F.cross_entropy(logits * torch.exp(-log_t), labels)

        self.nll, self.converged = _minimise(nll, [log_t], self.max_iter, type(self).__name__)
        self.temperature = math.exp(log_t.item())

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        temperature = _fitted(self.temperature, self)
        return torch.softmax(logits / temperature, dim=1)  # q = softmax(z / T)

    def _params(self) -> dict[str, float]:
        return {"temperature": _fitted(self.temperature, self)}


@register("calibrator", "vector", display="Vector scaling")
class VectorScaling(Calibrator):
    """Vector scaling: q = softmax(w * z + b), w and b of shape (K,).

    Guo et al. 2017, Sec. 4.2 (matrix scaling with W restricted to a diagonal). w and b
    minimise the validation NLL with LBFGS (strong-Wolfe) in float64, from w = 1, b = 0.
    softmax is invariant to adding a constant to b, so the fitted b is reported centred
    (mean 0); the probabilities do not change.
    """

    def __init__(self, max_iter: int = 500) -> None:
        super().__init__()
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.max_iter = int(max_iter)
        self.weight: torch.Tensor | None = None  # w, (K,), float64, CPU
        self.bias: torch.Tensor | None = None  # b, (K,), float64, CPU, mean 0
        self.nll: float | None = None
        self.converged: bool | None = None

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        k = logits.shape[1]
        w = torch.ones(k, dtype=torch.float64, device=logits.device, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, device=logits.device, requires_grad=True)

        def nll() -> torch.Tensor:
            # NLL(w, b) = -1/N sum_i log softmax(w * z_i + b)_{y_i}
            return F.cross_entropy(logits * w + b, labels)

        self.nll, self.converged = _minimise(nll, [w, b], self.max_iter, type(self).__name__)
        self.weight = w.detach().cpu()
        self.bias = (b - b.mean()).detach().cpu()

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        w = _fitted(self.weight, self).to(logits.device)
        b = _fitted(self.bias, self).to(logits.device)
        return torch.softmax(logits * w + b, dim=1)  # q = softmax(w * z + b)

    def _params(self) -> dict[str, float]:
        w = _fitted(self.weight, self)
        return {"w_mean": w.mean().item(), "w_min": w.min().item(), "w_max": w.max().item()}


@register("calibrator", "histogram", display="Histogram binning")
class HistogramBinning(Calibrator):
    """Histogram binning, one-vs-rest for K classes.

    Zadrozny & Elkan, "Obtaining calibrated probability estimates from decision trees and
    naive Bayesian classifiers", ICML 2001; extended to K classes one-vs-rest as in Guo
    et al. 2017, Sec. 4.1. For each class k the score p_k = softmax(z)_k is split into
    ``n_bins`` equal-width bins B_m = (lo_m, hi_m] (0.0 falls in the first bin, 1.0 in the
    last). Each bin gets theta_km = fraction of validation samples in B_m whose label is k;
    an empty bin gets its centre (lo_m + hi_m) / 2, i.e. it keeps the uncalibrated score
    level. At test time p_k is replaced by theta of its bin and the K values are
    renormalised to sum to 1 (uniform if they are all 0).
    """

    def __init__(self, n_bins: int = 15) -> None:
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = int(n_bins)
        self.bin_edges = torch.linspace(0.0, 1.0, self.n_bins + 1, dtype=torch.float64)
        self.bin_values: torch.Tensor | None = None  # theta, (K, n_bins), float64, CPU
        self.bin_counts: torch.Tensor | None = None  # validation samples per bin, (K, n_bins)

    def _bin_index(self, probs: torch.Tensor) -> torch.Tensor:
        """Bin of each score: m with lo_m < p <= hi_m; 0.0 -> first bin, 1.0 -> last."""
        edges = self.bin_edges.to(probs.device)
        # bucketize(right=False) returns i with edges[i-1] < p <= edges[i]
        return (torch.bucketize(probs, edges) - 1).clamp_(0, self.n_bins - 1)

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        probs = torch.softmax(logits, dim=1)  # p = softmax(z)
        k = probs.shape[1]
        bins = self._bin_index(probs).T  # (K, N)
        is_k = F.one_hot(labels, k).T.to(torch.float64)  # [y_i = k], (K, N)
        counts = torch.zeros(k, self.n_bins, dtype=torch.float64, device=probs.device)
        hits = torch.zeros_like(counts)
        counts.scatter_add_(1, bins, torch.ones_like(is_k))
        hits.scatter_add_(1, bins, is_k)
        edges = self.bin_edges.to(probs.device)
        centres = ((edges[:-1] + edges[1:]) / 2).expand(k, -1)
        # theta_km = |{i in B_m : y_i = k}| / |B_m|; empty bin -> centre of B_m
        theta = torch.where(counts > 0, hits / counts.clamp(min=1), centres)
        self.bin_values = theta.cpu()
        self.bin_counts = counts.cpu()

    def _class_scores(self, probs: torch.Tensor) -> torch.Tensor:
        """theta of each score's bin, class by class, before renormalisation; (N, K)."""
        theta = _fitted(self.bin_values, self).to(probs.device)  # (K, n_bins)
        bins = self._bin_index(probs)  # (N, K)
        return theta.gather(1, bins.T).T  # q_k = theta_{k, bin(p_k)}

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        return _renormalise(self._class_scores(torch.softmax(logits, dim=1)))


@register("calibrator", "isotonic", display="Isotonic regression")
class IsotonicCalibration(Calibrator):
    """Isotonic regression, one-vs-rest for K classes.

    Zadrozny & Elkan, "Transforming classifier scores into accurate multiclass probability
    estimates", KDD 2002. For each class k a non-decreasing step function f_k is fitted to
    the pairs (p_k, [y = k]) of the validation split by least squares (pool adjacent
    violators; sklearn's IsotonicRegression, clipped to [0, 1] and, outside the fitted score
    range, to the end values). At test time q_k = f_k(p_k), renormalised to sum to 1
    (uniform if all K values are 0).
    """

    def __init__(self) -> None:
        super().__init__()
        self.regressors: list[IsotonicRegression] | None = None

    def _fit(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        probs = torch.softmax(logits, dim=1).cpu().numpy()  # p = softmax(z)
        y = labels.cpu().numpy()
        self.regressors = []
        for k in range(probs.shape[1]):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            # f_k = argmin_{f non-decreasing} sum_i (f(p_ik) - [y_i = k])^2
            iso.fit(probs[:, k], (y == k).astype(np.float64))
            self.regressors.append(iso)

    def _class_scores(self, probs: torch.Tensor) -> torch.Tensor:
        """f_k(p_k) class by class, before renormalisation; (N, K)."""
        p = probs.cpu().numpy()
        out = np.empty_like(p, dtype=np.float64)
        if len(p) == 0:  # sklearn rejects empty input
            return torch.from_numpy(out).to(probs.device)
        for k, iso in enumerate(_fitted(self.regressors, self)):
            out[:, k] = iso.predict(p[:, k])  # q_k = f_k(p_k)
        return torch.from_numpy(out).to(probs.device)

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        return _renormalise(self._class_scores(torch.softmax(logits, dim=1)))


# ---- module helpers -------------------------------------------------------------------
def _fitted(value: T | None, calibrator: Calibrator) -> T:
    """A fitted attribute, set by ``fit()``: the hooks run only after it (the base checks)."""
    if value is None:
        raise RuntimeError(
            f"{type(calibrator).__name__} is not fitted; call fit(valid_logits, valid_labels) first"
        )
    return value


def _as_logits(logits: Any, where: str) -> torch.Tensor:
    """(N, K) float64 tensor on the input's device (CPU for numpy); validates values."""
    z = logits.detach() if isinstance(logits, torch.Tensor) else torch.as_tensor(logits)
    if z.dtype == torch.bool or z.is_complex():
        raise ValueError(f"{where}: logits must be real numbers, got dtype {z.dtype}")
    if z.ndim != 2:
        raise ValueError(f"{where}: logits must have shape (N, K), got {tuple(z.shape)}")
    if z.shape[1] < 2:
        raise ValueError(f"{where}: logits need K >= 2 classes, got shape {tuple(z.shape)}")
    z = z.to(torch.float64)
    if not torch.isfinite(z).all():
        bad = (~torch.isfinite(z)).sum().item()
        raise ValueError(f"{where}: logits contain {bad} NaN or inf value(s)")
    return z


def _as_labels(labels: Any, logits: torch.Tensor) -> torch.Tensor:
    """(N,) int64 tensor on the logits' device; checks length and range [0, K)."""
    y = labels.detach() if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
    if y.dtype == torch.bool or y.is_complex() or y.is_floating_point():
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    n, k = logits.shape
    if y.shape != (n,):
        raise ValueError(
            f"labels must have shape (N,) = ({n},) to match logits {tuple(logits.shape)}, "
            f"got {tuple(y.shape)}"
        )
    y = y.to(device=logits.device, dtype=torch.int64)
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"labels must lie in [0, {k}) for K = {k} classes, "
            f"got values in [{y.min().item()}, {y.max().item()}]"
        )
    return y


def _renormalise(scores: torch.Tensor) -> torch.Tensor:
    """Rows divided by their sum; an all-zero row becomes uniform 1/K."""
    total = scores.sum(dim=1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[1])
    return torch.where(total > 0, scores / total.clamp(min=torch.finfo(scores.dtype).tiny), uniform)


def _minimise(
    loss_fn: Callable[[], torch.Tensor], params: list[torch.Tensor], max_iter: int, who: str
) -> tuple[float, bool]:
    """Minimise ``loss_fn`` over ``params`` in place with LBFGS (strong-Wolfe).

    Returns the final loss and whether it converged (max |gradient| <= GRAD_TOLERANCE);
    warns if it did not. Raises if the loss or parameters became non-finite.
    """
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=GRAD_TOLERANCE / 10,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    loss = closure()  # fresh loss and gradient at the final parameters
    # a parameter without a gradient (None) has a zero one
    grad_max = max(0.0 if p.grad is None else p.grad.abs().max().item() for p in params)
    if not (math.isfinite(loss.item()) and all(torch.isfinite(p).all() for p in params)):
        raise RuntimeError(f"{who}: the NLL fit diverged (loss {loss.item()})")
    converged = grad_max <= GRAD_TOLERANCE
    if not converged:
        warnings.warn(
            f"{who}: LBFGS (max_iter={max_iter}) stopped with max |grad| = {grad_max:.2e} "
            f"> {GRAD_TOLERANCE:g}; the validation NLL may not be minimised "
            "(a larger max_iter may help; separable validation data has no minimum)",
            RuntimeWarning,
            stacklevel=4,
        )
    for p in params:
        p.grad = None
    return loss.item(), converged

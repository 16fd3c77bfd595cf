"""data2vec's EMA teacher (Baevski et al., "data2vec", ICML 2022, §3.2-3.3): the targets it
makes (:func:`data2vec_targets`), its decay schedule (:func:`ema_decay`), its update
(:func:`ema_update`), and :class:`EMATeacher`, which the data2vec objective owns
(methods/ssl_objectives.py re-exports all four).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EMATeacher", "data2vec_targets", "ema_decay", "ema_update"]


def data2vec_targets(layer_outputs: list[torch.Tensor], top_k: int) -> torch.Tensor:
    """Teacher targets y_t (B, T, D): the average of the top-K blocks, each instance-normalised.

    data2vec §3.3 "Targets": y_t = (1/K) Σ_{l=L−K+1}^{L} â_t^l, with â^l the output of block l
    normalised, for speech by instance normalisation over time per channel (no affine
    parameters; paper K = 8 of 12 blocks). Computed in float32, as fairseq does. Padded frames
    are not excluded from the time statistics (fairseq does not either).
    """
    if not layer_outputs:
        raise ValueError("data2vec_targets needs at least one layer output")
    if not 1 <= top_k <= len(layer_outputs):
        raise ValueError(f"top_k must be in [1, {len(layer_outputs)}], got {top_k}")
    shape = layer_outputs[0].shape
    if len(shape) != 3 or any(layer.shape != shape for layer in layer_outputs):
        raise ValueError("layer_outputs must all be (B, T, D) tensors of the same shape")
    top = layer_outputs[-top_k:]
    normed = [F.instance_norm(a.float().transpose(1, 2)).transpose(1, 2) for a in top]  # â^l
    return torch.stack(normed).mean(dim=0)  # (1/K) Σ_l â^l


def ema_decay(
    step: int, tau0: float = 0.999, tau_end: float = 0.9999, tau_steps: int = 30000
) -> float:
    """EMA decay τ at update ``step``: linear from τ0 to τe over τn updates, then τe.

    data2vec §3.2 "Teacher parameterization"; speech values τ0 = 0.999, τe = 0.9999,
    τn = 30,000 (§4.2).
    """
    if step < 0 or tau_steps < 0:
        raise ValueError(f"step and tau_steps must be >= 0, got {step} and {tau_steps}")
    if step >= tau_steps:
        return float(tau_end)
    return tau0 + (tau_end - tau0) * step / tau_steps  # τ = τ0 + (τe − τ0) · step/τn


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: Δ ← τ Δ + (1 − τ) θ for each floating-point parameter (data2vec §3.2).

    Teacher and student must have the same parameter names and shapes. Buffers (e.g.
    normalisation statistics) are copied from the student, not averaged; integer buffers too.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    t_params, s_params = dict(teacher.named_parameters()), dict(student.named_parameters())
    if t_params.keys() != s_params.keys():
        missing = sorted(t_params.keys() ^ s_params.keys())
        raise ValueError(f"teacher and student parameters differ: {', '.join(missing[:5])}")
    for name, t in t_params.items():
        s = s_params[name]
        if t.shape != s.shape:
            raise ValueError(f"shape mismatch for {name}: {tuple(t.shape)} vs {tuple(s.shape)}")
        if t.is_floating_point():
            t.lerp_(s.to(t.dtype), 1.0 - decay)  # Δ + (1 − τ)(θ − Δ) = τΔ + (1 − τ)θ
        else:
            t.copy_(s)
    s_buffers = dict(student.named_buffers())
    for name, buffer in teacher.named_buffers():
        if name in s_buffers:
            buffer.copy_(s_buffers[name])


class EMATeacher(nn.Module):
    """data2vec's teacher (§3.2-3.3): an EMA copy of the student network; its targets are
    :func:`data2vec_targets` of its top-K layers, computed without gradient.

    ``student(x, return_layers=True)`` must return ``(output, [per-layer outputs])``.
    ``update(student, step)`` is the EMA step after optimizer update ``step``
    (:func:`ema_decay`, :func:`ema_update`); it returns the decay used.
    """

    def __init__(
        self,
        student: nn.Module,
        top_k: int = 8,
        tau0: float = 0.999,
        tau_end: float = 0.9999,
        tau_steps: int = 30000,
    ) -> None:
        super().__init__()
        self.network = copy.deepcopy(student).requires_grad_(False)
        self.top_k, self.tau0, self.tau_end, self.tau_steps = top_k, tau0, tau_end, tau_steps

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) input -> (B, T, D) targets
        self.network.eval()
        _, layers = self.network(x.detach(), return_layers=True)
        return data2vec_targets(layers, self.top_k)

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> float:
        decay = ema_decay(step, self.tau0, self.tau_end, self.tau_steps)
        ema_update(self.network, student, decay)
        return decay

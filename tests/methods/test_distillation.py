"""Tests for methods.distillation: the KD loss against its formula, its gradient against
the closed form T·(p_s − p_t) of Hinton et al. §2.1, and its inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from methods.distillation import KnowledgeDistillation, NoDistillation, kd_loss, soft_target_kl


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_kd_loss_equals_its_formula_on_a_hand_case():
    zs = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    zt = np.array([[3.0, 1.0, -2.0], [-1.0, 0.0, 2.0]])
    y = np.array([0, 2])
    t, alpha = 4.0, 0.9
    ps, pt = _softmax(zs / t), _softmax(zt / t)
    kl = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    ce = np.mean(-np.log(_softmax(zs)[np.arange(2), y]))
    want = alpha * t * t * kl + (1 - alpha) * ce
    got = kd_loss(torch.tensor(zs), torch.tensor(y), torch.tensor(zt), t, alpha)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # the registered method is the same function; "none" is plain cross-entropy
    kd = KnowledgeDistillation(temperature=t, alpha=alpha)
    assert kd(torch.tensor(zs), torch.tensor(y), torch.tensor(zt)).item() == pytest.approx(want)
    assert NoDistillation()(torch.tensor(zs), torch.tensor(y)).item() == pytest.approx(ce)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0, 8.0])
def test_soft_term_gradient_is_t_times_the_probability_gap(t):
    """∂/∂z_s [T²·KL(p_t‖p_s)] = T·(p_s − p_t) per row (divided by N for the batch mean):
    the T² keeps the gradient's scale as T changes."""
    gen = torch.Generator().manual_seed(0)
    zs = torch.randn(5, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    soft_target_kl(zs, zt, t).backward()
    want = t * (torch.softmax(zs / t, 1) - torch.softmax(zt / t, 1)) / 5
    torch.testing.assert_close(zs.grad.double(), want.detach(), rtol=1e-5, atol=1e-7)


def test_soft_term_is_zero_when_the_student_matches_and_teacher_gets_no_gradient():
    z = torch.randn(4, 10, requires_grad=True)
    teacher = torch.randn(4, 10, requires_grad=True)
    assert soft_target_kl(z.detach(), z.detach(), 3.0).item() == pytest.approx(0.0, abs=1e-6)
    kd_loss(z, torch.zeros(4, dtype=torch.long), teacher, 2.0, 0.5).backward()
    assert teacher.grad is None  # the teacher is a fixed target


def test_alpha_one_is_pure_soft_targets_and_alpha_zero_pure_labels():
    zs, zt, y = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 1, 2])
    assert kd_loss(zs, y, zt, 2.0, 1.0).item() == pytest.approx(
        soft_target_kl(zs, zt, 2.0).item(), rel=1e-6
    )
    ce = torch.nn.functional.cross_entropy(zs, y).item()
    assert kd_loss(zs, y, zt, 2.0, 0.0).item() == pytest.approx(ce, rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KnowledgeDistillation(**kwargs)


def test_kd_needs_a_teacher_of_the_same_shape():
    kd = KnowledgeDistillation()
    with pytest.raises(ValueError, match="teacher_logits"):
        kd(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="differ in shape"):
        kd(torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 4))

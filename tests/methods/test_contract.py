"""One contract test over every registry family: each registered method is built through
``registry.build`` with a tiny context and run once on tiny inputs.

A new method is covered on arrival; a new family fails ``test_every_family_has_a_case``
until it gets a case here (its context and one call of its contract).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import registry
from bench.context import RunContext
from bench.tasks.base import get_task

torch.manual_seed(0)
N, D, K, B, T = 12, 8, 4, 2, 10
LABELS = torch.arange(N) % 3


def _calibrator(method) -> None:
    logits, labels = torch.randn(40, K), torch.arange(40) % K
    probs = method.fit(logits, labels)(logits)
    assert probs.shape == (40, K) and torch.allclose(probs.sum(1), torch.ones(40).double())


def _distill(method) -> None:
    student = torch.randn(N, K, requires_grad=True)
    loss = method(student, torch.arange(N) % K, torch.randn(N, K))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert student.grad is not None


def _classifier(method) -> None:
    assert method(torch.rand(3, 1, 8, 8)).shape == (3, K)


def _quantizer(method) -> None:
    out = method(torch.randn(B, T, D, requires_grad=True))
    assert out.q.shape == (B, T, 6) and torch.isfinite(out.loss)
    out.q.sum().backward()


def _objective(method) -> None:
    context, targets = torch.randn(N, D, requires_grad=True), torch.randn(N, D)
    negatives = torch.randn(N, 5, D)
    extra = {}
    if method.needs == "codebook":  # proxies: G=2 groups of V=7 entries of D/2 dims
        extra = {"target_codes": torch.randint(0, 7, (N, 2)), "proxies": torch.randn(2, 7, D // 2)}
    out = method(context, targets, negatives, **extra)
    loss = out.loss if hasattr(out, "loss") else out
    assert torch.isfinite(loss)
    loss.backward()
    assert context.grad is not None


def _loss(method) -> None:
    z = torch.randn(N, D, requires_grad=True)
    out = method(z, LABELS)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def _miner(method) -> None:
    tuples = method(torch.randn(N, D), LABELS)
    assert tuples is not None


def _enhancer(method) -> None:
    noisy = torch.randn(1, 16000) * 0.1
    assert method(noisy).shape == noisy.shape


def _enh_loss(method) -> None:
    estimate = torch.randn(1, 16000, requires_grad=True)
    loss = method(estimate, torch.randn(1, 16000))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()


def _augment(method) -> None:
    rng = np.random.default_rng(0)
    x = torch.randn(16000) * 0.1 if method.domain == "wave" else torch.randn(200, 40)
    y = method(x, rng)
    assert torch.isfinite(y).all() and y.ndim == x.ndim


def _image_augment(method) -> None:
    x = torch.rand(4, 1, 8, 8)
    y = method(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()


def _forcing(method) -> None:
    from bench.models.g2p import ModelConfig, Seq2Seq

    model = Seq2Seq(6, 7, ModelConfig(emb_dim=8, hidden=16))
    src = torch.randint(3, 6, (B, 5))
    tgt = torch.randint(3, 7, (B, 4))
    inputs = torch.cat([torch.full_like(tgt[:, :1], 1), tgt[:, :-1]], 1)
    out = method(model, src, inputs, tgt, step=0)
    assert torch.isfinite(out.loss)
    out.loss.backward()


def _tiny_teacher():
    """The ``teacher`` context of the distillation strategies: a wider model, no outputs."""
    from bench.models.g2p import ModelConfig, Seq2Seq
    from bench.models.g2p_teacher import Teacher

    return Teacher(Seq2Seq(6, 7, ModelConfig(emb_dim=8, hidden=32)).eval(), {}, [], [])


def _frontend(method) -> None:
    audio = [np.random.default_rng(k).normal(0, 0.1, 8000).astype(np.float32) for k in range(2)]
    feats = method.probe_features(audio)
    assert len(feats) == 2 and all(f.ndim in (2, 3) for f in feats)
    frames = {f.shape[-2] for f in feats}
    assert frames <= {24, 25}, frames  # 0.5 s at 20 ms frames, for every front end


@functools.cache
def _tiny_upstream() -> str:
    """The ``upstream`` context of ``frontend/hf``: a tiny random wav2vec2 saved once per
    process (its conv strides make 20 ms frames, like the real ones)."""
    transformers = pytest.importorskip("transformers")
    folder = tempfile.mkdtemp(prefix="contract_w2v2_")
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, conv_dim=(16, 16, 16),
        conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    return folder


def _task(task) -> None:
    for scale in task.rows:
        rows = task.grid(scale=scale)
        assert rows and all(tuple(r) == task.families for r in rows)
        assert any(task.baseline_of(r) is None for r in rows) or not task.baseline
    assert task.title and task.table_metrics


def _contexts(tmp: Path) -> dict[str, tuple[dict, Callable]]:
    from bench.models.pretraining import PretrainConfig

    ctx = RunContext(device=torch.device("cpu"), run_dir=tmp, quiet=True).for_cell(0)
    pretraining = PretrainConfig(model_size="tiny", steps=1, batch_size=2, crop_seconds=0.5)
    return {
        "calibrator": ({}, _calibrator),
        "classifier": ({"num_classes": K}, _classifier),
        "distill": ({}, _distill),
        "quantizer": ({"in_dim": D, "out_dim": 6, "tau_decay": 0.99}, _quantizer),
        "objective": (
            {
                "student": torch.nn.Identity(),
                "top_k": 1,
                "tau0": 0.9,
                "tau_end": 0.99,
                "tau_steps": 2,
                "code_dim": D,
                "code_groups": 2,
                "code_entries": 7,
            },
            _objective,
        ),
        "loss": ({"num_classes": 3, "embedding_dim": D}, _loss),
        "miner": ({"generator": torch.Generator().manual_seed(0)}, _miner),
        "enhancer": ({"sample_rate": 16000}, _enhancer),
        "enh_loss": ({}, _enh_loss),
        "augment": ({}, _augment),
        "image_augment": ({}, _image_augment),
        "forcing": (
            {
                "total_steps": 10,
                "hidden_dim": 16,
                "adversarial_weight": 1.0,
                "teacher": _tiny_teacher,
            },
            _forcing,
        ),
        "frontend": (
            {
                "quantizer": "vq",
                "objective": "contrastive",
                "pretraining": pretraining,
                "ctx": ctx,
                "upstream": _tiny_upstream() if "hf" in registry.names("frontend") else "",
            },
            _frontend,
        ),
        "task": ({}, _task),
    }


CASES = [(family, name) for family in registry.families() for name in registry.names(family)]


def test_every_family_has_a_case(tmp_path):
    assert set(registry.families()) <= set(_contexts(tmp_path))


@pytest.mark.parametrize(("family", "name"), CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_method_builds_from_its_declared_context_and_runs(family, name, tmp_path):
    context, run = _contexts(tmp_path)[family]
    if family == "task":
        run(get_task(name))
        return
    needed = registry.requirements(registry.get(family, name))
    assert set(needed) <= set(context), f"{family}/{name} declares context the case lacks"
    method = registry.build(
        family, name, **{k: v for k, v in context.items() if k in registry.family_context(family)}
    )
    if isinstance(method, torch.nn.Module):
        method.train()
    run(method)


def test_build_rejects_unknown_or_missing_context():
    with pytest.raises(registry.ContextError, match="unknown context"):
        registry.build("loss", "triplet", num_clases=3)  # a typo
    with pytest.raises(registry.ContextError, match="needs num_classes"):
        registry.build("loss", "proxy_nca", embedding_dim=4)
    with pytest.raises(registry.ContextError, match="no parameter"):
        registry.build("loss", "triplet", params={"margn": 0.1})
    with pytest.raises(registry.ContextError, match="is context, not a param"):
        registry.build(
            "loss", "proxy_nca", params={"num_classes": 3}, num_classes=3, embedding_dim=4
        )
    assert registry.build("loss", "triplet", params={"margin": 0.5}).margin == 0.5

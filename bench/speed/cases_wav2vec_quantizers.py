"""Speed cases: our wav2vec 2.0 quantizers against vector-quantize-pytorch and transformers.

Three training calls (forward, backward) on inputs made once per size: VQ with a learned
codebook, VQ with EMA codebook updates (both against vector-quantize-pytorch's
``VectorQuantize``), and the Gumbel quantizer with its diversity loss (against transformers'
``Wav2Vec2GumbelVectorQuantizer``, built from a ``Wav2Vec2Config`` with random init, nothing
downloaded). The peers are configured to the same dimensions and hyper-parameters, and get
our projection and codebook. :mod:`bench.speed.cases_wav2vec` imports this module, so these
cases register first in the wav2vec 2.0 group.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from bench.models.masking import compute_mask
from bench.speed.case import SpeedCase, Workload, close, import_peer, register_case
from bench.speed.wav2vec_common import (
    ENTRIES,
    GROUP,
    GROUPS,
    MASK_LENGTH,
    MASK_PROB,
    TAGS,
    TAU,
    _clear,
    _frames,
    _seeded,
    _sizes,
    _w2v,
)
from methods.quantizers import GumbelQuantizer, VectorQuantizer

BETA = 0.25  # VQ-VAE commitment weight β
EMA_DECAY = 0.99
VQ_DIM = 256  # wav2vec 2.0 BASE code dimension
VQ_BATCH, VQ_STEPS = 4, 200  # 4 utterances of 4 s at 20 ms frames
GUMBEL_IN, GUMBEL_OUT = 512, 256  # wav2vec 2.0 BASE quantizer input and code dimensions
DIVERSITY_WEIGHT = 0.1  # α


def _vq_agree(z_e: Callable[[], torch.Tensor], tol: float = 1e-4) -> Callable[[Any, Any], None]:
    """``agree`` for VQ outputs (codes, q, ||z_e - e||²): the same nearest codes, the same loss.

    Codes may differ only where the two picks are tied within float rounding (equal distance
    from z_e to the q each side returned): at large V the codebook rows are close together,
    and the two sides round ||z_e||² - 2 z_e·e + ||e||² differently.
    """
    near = close(tol)

    def check(ours: Any, peer: Any) -> None:
        (codes_a, q_a, value_a), (codes_b, q_b, value_b) = ours, peer
        codes_a, codes_b = codes_a.reshape(-1).cpu(), codes_b.reshape(-1).cpu()
        if codes_a.shape != codes_b.shape:
            raise AssertionError(f"code shapes differ: {codes_a.shape} vs {codes_b.shape}")
        differ = codes_a != codes_b
        if bool(differ.any()):
            with torch.no_grad():
                rows = z_e().reshape(len(codes_a), -1).cpu()[differ]
                dim = rows.shape[-1]
                d_a = (rows - q_a.reshape(-1, dim).cpu()[differ]).pow(2).sum(-1)
                d_b = (rows - q_b.reshape(-1, dim).cpu()[differ]).pow(2).sum(-1)
            if not torch.allclose(d_a, d_b, rtol=tol, atol=0.0):
                raise AssertionError(
                    f"{int(differ.sum())} of {codes_a.numel()} codes differ and are not tied"
                )
        near(value_a, value_b)

    return check


# ---- 1, 2: VQ-VAE (straight-through, EMA) ----------------------------------------------------
def _build_vq(device: torch.device, entries: int, ema: bool) -> Workload:
    vqp = import_peer("vector_quantize_pytorch", "vector-quantize-pytorch")
    with _seeded(0):
        ours = VectorQuantizer(
            VQ_DIM,
            VQ_DIM,
            entries=entries,
            beta=BETA,
            ema=ema,
            ema_decay=EMA_DECAY,
            dead_code_threshold=0.0,
        )
        peer = vqp.VectorQuantize(
            dim=VQ_DIM,
            codebook_size=entries,
            decay=EMA_DECAY,
            eps=ours.epsilon,
            commitment_weight=BETA,
            threshold_ema_dead_code=0,
            rotation_trick=False,  # plain straight-through, as ours
            ema_update=ema,
            learnable_codebook=not ema,
        )
    # ours projects z to z_e; the peer gets the same projection in front (it has none at
    # codebook_dim == dim), and our codebook, so both pick the same codes
    proj = copy.deepcopy(ours.proj)
    with torch.no_grad():
        peer._codebook.embed.copy_(ours.embed[None])
        peer._codebook.embed_avg.copy_(ours.embed[None])  # m_j = e_j, N_j = 1 on both sides
    ours.to(device).train()
    peer.to(device).train()
    proj.to(device)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(VQ_BATCH, VQ_STEPS, VQ_DIM, generator=g).to(device).requires_grad_()
    upstream = torch.randn(VQ_BATCH, VQ_STEPS, VQ_DIM, generator=g).to(device)
    ours_params = [z, *ours.parameters()]
    peer_params = [z, *proj.parameters(), *peer.parameters()]
    # returned: the codes, q, and the commitment term ||z_e - e||² (each side's loss divided
    # by its weight: ours is (1+β)·mse without EMA, β·mse with; the peer's is β·mse)
    ours_weight = BETA if ema else 1.0 + BETA

    def run_ours() -> tuple[torch.Tensor, ...]:
        _clear(ours_params)
        out = ours(z)
        ((out.q * upstream).sum() + out.loss).backward()
        return out.codes.detach(), out.q.detach(), out.loss.detach() / ours_weight

    def run_peer() -> tuple[torch.Tensor, ...]:
        _clear(peer_params)
        q, codes, loss = peer(proj(z))
        ((q * upstream).sum() + loss).backward()
        return codes.detach(), q.detach(), loss.detach() / BETA

    def z_e() -> torch.Tensor:  # for the agreement check only, not timed
        return proj(z)

    return Workload(
        ours=run_ours,
        peer=run_peer,
        shape=f"B={VQ_BATCH} T={VQ_STEPS} D={VQ_DIM} V={entries}",
        items=VQ_BATCH * VQ_STEPS,
        agree=_vq_agree(z_e),
    )


def build_vq(device: torch.device, entries: int) -> Workload:
    """Straight-through VQ with a learned codebook (no EMA, no dead-code resets)."""
    return _build_vq(device, entries, ema=False)


def build_vq_ema(device: torch.device, entries: int) -> Workload:
    """VQ whose codebook follows EMAs of counts and sums (decay 0.99, Laplace smoothing)."""
    return _build_vq(device, entries, ema=True)


# ---- 3: Gumbel quantizer + diversity loss ----------------------------------------------------
def build_gumbel(device: torch.device, batch: int, steps: int) -> Workload:
    """Straight-through Gumbel-softmax quantizer (G=2, V=320) with its diversity loss."""
    w2v = _w2v()
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config(
        conv_dim=(GUMBEL_IN,),
        conv_kernel=(10,),
        conv_stride=(5,),
        num_codevector_groups=GROUPS,
        num_codevectors_per_group=ENTRIES,
        codevector_dim=GUMBEL_OUT,
    )
    with _seeded(0):
        ours = GumbelQuantizer(GUMBEL_IN, GUMBEL_OUT, groups=GROUPS, entries=ENTRIES, tau_max=TAU)
        peer = w2v.Wav2Vec2GumbelVectorQuantizer(config)
    peer.temperature = TAU
    with torch.no_grad():  # the same projection and codebook
        peer.weight_proj.load_state_dict(ours.weight_proj.state_dict())
        peer.codevectors.copy_(ours.codevectors.reshape(1, GROUPS * ENTRIES, -1))
    ours.to(device).train()
    peer.to(device).train()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, steps, GUMBEL_IN, generator=g).to(device).requires_grad_()
    upstream = torch.randn(batch, steps, GUMBEL_OUT, generator=g).to(device)
    mask = compute_mask(batch, steps, MASK_PROB, MASK_LENGTH, g, device=device)
    codevectors = GROUPS * ENTRIES
    ours_params = [z, *ours.parameters()]
    peer_params = [z, *peer.parameters()]

    def run_ours() -> torch.Tensor:
        _clear(ours_params)
        out = ours(z, mask=mask)  # out.loss is diversity_loss(p̄, "implemented")
        ((out.q * upstream).sum() + DIVERSITY_WEIGHT * out.loss).backward()
        return out.loss.detach()

    def run_peer() -> torch.Tensor:
        _clear(peer_params)
        q, ppl = peer(z, mask_time_indices=mask)
        diversity = (codevectors - ppl) / codevectors  # Wav2Vec2ForPreTraining's L_d ...
        scaled = diversity * mask.sum()  # ... times the number of masked steps
        ((q * upstream).sum() + DIVERSITY_WEIGHT * scaled).backward()
        return diversity.detach()

    return Workload(
        ours=run_ours,
        peer=run_peer,
        shape=f"B={batch} T={steps} in={GUMBEL_IN} G={GROUPS} V={ENTRIES} out={GUMBEL_OUT}",
        items=batch * steps,
        agree=close(1e-4),
    )


VQ = register_case(
    SpeedCase(
        name="VQ-VAE quantizer, straight-through",
        peer="vector-quantize-pytorch VectorQuantize (learnable codebook, no EMA)",
        sizes=_sizes("entries", 64, 320, 1024, 4096),
        build=build_vq,
        trained=True,
        group=GROUP,
        notes=(
            "same codebook, so the codes agree; commitment β=0.25; dead-code resets off on both "
            "sides. The peer's loss is β·||z−e||² with gradient to z and e; ours is "
            "||sg z−e||² + β||z−sg e||²: the agreement compares ||z−e||²"
        ),
        tags=TAGS,
    )
)
VQ_EMA = register_case(
    SpeedCase(
        name="VQ-VAE quantizer, EMA codebook",
        peer="vector-quantize-pytorch VectorQuantize (ema_update=True, decay 0.99)",
        sizes=_sizes("entries", 64, 320, 1024, 4096),
        build=build_vq_ema,
        trained=True,
        group=GROUP,
        notes=(
            "same codebook and EMA state (N_j = 1, m_j = e_j); both update the codebook each "
            "call with the same rule, so codes and the β·||z−sg e||² loss agree"
        ),
        tags=TAGS,
    )
)
GUMBEL = register_case(
    SpeedCase(
        name="Gumbel quantizer + diversity loss",
        peer="transformers Wav2Vec2GumbelVectorQuantizer + Wav2Vec2ForPreTraining's L_d",
        sizes=_frames((1, 50), (2, 50), (4, 50), (4, 200)),
        build=build_gumbel,
        trained=True,
        group=GROUP,
        notes=(
            "same projection and codebook, τ=2; the Gumbel noise differs, so q does not "
            "agree, but the diversity loss (noise-free softmax at the masked steps) does. "
            "transformers picks codevectors by broadcasting the one-hot over the codebook, an "
            "(N, G·V, d) tensor; ours is one batched matmul per group"
        ),
        tags=TAGS,
    )
)

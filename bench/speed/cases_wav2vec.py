"""Speed cases: our wav2vec 2.0 pieces against vector-quantize-pytorch and transformers.

Five operations, each a training call (forward, backward; the SSL step also clips and
steps the optimizer) on inputs made once per size: VQ with a learned codebook, VQ with EMA
codebook updates, the Gumbel quantizer with its diversity loss, the contrastive loss with
K = 100 distractors, and one pre-training step of the whole model. The peers are configured
to the same dimensions and hyper-parameters; transformers models are built from a
``Wav2Vec2Config`` with random init, nothing is downloaded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from bench.models.masking import compute_mask
from bench.models.wav2vec import Wav2Vec, config_for
from bench.speed.case import SpeedCase, Workload, close, import_peer, register_case
from methods.quantizers import GumbelQuantizer, VectorQuantizer
from methods.ssl_objectives import Contrastive, sample_negatives

GROUP = "wav2vec 2.0"
TAGS = ("wav2vec2", "ssl")
LABELS = ("tiny", "small", "medium", "large")
BETA = 0.25  # VQ-VAE commitment weight β
EMA_DECAY = 0.99
VQ_DIM = 256  # wav2vec 2.0 BASE code dimension
VQ_BATCH, VQ_STEPS = 4, 200  # 4 utterances of 4 s at 20 ms frames
GUMBEL_IN, GUMBEL_OUT, GROUPS, ENTRIES = 512, 256, 2, 320  # wav2vec 2.0 BASE quantizer
TAU = 2.0  # Gumbel temperature at the start of training (both sides)
DIVERSITY_WEIGHT = 0.1  # α
KAPPA = 0.1
NEGATIVES = 100  # K, as the paper
CONTRASTIVE_DIM = 256
MASK_PROB, MASK_LENGTH = 0.065, 10
SAMPLE_RATE = 16000
SSL_BATCH = 4
SSL_SIZE = "small"  # our CPU model size (bench/models/wav2vec.py)


def _sizes(key: str, *values: Any, **fixed: Any) -> dict[str, dict[str, Any]]:
    return {label: {key: v, **fixed} for label, v in zip(LABELS, values, strict=True)}


def _frames(*shapes: tuple[int, int]) -> dict[str, dict[str, int]]:
    """(batch, steps) per size label; 50 steps are 1 s of audio at 20 ms frames."""
    return {label: {"batch": b, "steps": t} for label, (b, t) in zip(LABELS, shapes, strict=True)}


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Module init from a fixed seed without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _w2v() -> Any:
    """transformers' wav2vec 2.0 module, or PeerMissing."""
    import_peer("transformers")
    return import_peer("transformers.models.wav2vec2.modeling_wav2vec2", "transformers")


def _clear(params: list[torch.Tensor]) -> None:
    for p in params:
        p.grad = None


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


# ---- 4: contrastive loss with distractor sampling --------------------------------------------
def build_contrastive(device: torch.device, batch: int, steps: int) -> Workload:
    """InfoNCE (κ = 0.1) at the masked steps, K = 100 distractors from the same utterance."""
    w2v = _w2v()
    g = torch.Generator().manual_seed(1)
    context = torch.randn(batch, steps, CONTRASTIVE_DIM, generator=g).to(device).requires_grad_()
    targets = torch.randn(batch, steps, CONTRASTIVE_DIM, generator=g).to(device).requires_grad_()
    mask = compute_mask(batch, steps, MASK_PROB, MASK_LENGTH, g, device=device)
    mask_np = mask.cpu().numpy()
    flat_mask = mask.reshape(-1)
    labels = ((~mask).long() * -100).transpose(0, 1).reshape(-1)  # class 0 at masked steps
    objective = Contrastive(kappa=KAPPA)
    sampler = torch.Generator(device=device).manual_seed(2)
    params = [context, targets]

    def run_ours() -> torch.Tensor:
        _clear(params)
        idx, valid = sample_negatives(mask, NEGATIVES, sampler)
        flat_targets = targets.reshape(batch * steps, -1)
        negatives = flat_targets.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)
        out = objective(  # the rows and distractors as bench/models/wav2vec.py gathers them
            context.reshape(batch * steps, -1)[flat_mask],
            flat_targets[flat_mask],
            negatives,
            negative_mask=valid,
        )
        out.loss.backward()
        return out.loss.detach()

    def run_peer() -> torch.Tensor:
        _clear(params)
        idx = w2v._sample_negative_indices((batch, steps), NEGATIVES, mask_np)
        idx = torch.from_numpy(idx).to(device).long()
        # the steps of Wav2Vec2ForPreTraining.forward from the distractors to the loss
        negatives = targets.reshape(-1, CONTRASTIVE_DIM)[idx.view(-1)]
        negatives = negatives.view(batch, steps, NEGATIVES, -1).permute(2, 0, 1, 3)
        logits = w2v.Wav2Vec2ForPreTraining.compute_contrastive_logits(
            targets[None], negatives, context, KAPPA
        )
        neg_is_pos = (targets == negatives).all(-1)
        if neg_is_pos.any():
            logits[1:][neg_is_pos] = float("-inf")
        logits = logits.transpose(0, 2).reshape(-1, logits.size(0))
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        loss.backward()
        return loss.detach()

    masked = int(mask.sum())
    return Workload(
        ours=run_ours,
        peer=run_peer,
        shape=f"B={batch} T={steps} D={CONTRASTIVE_DIM} K={NEGATIVES} masked={masked}",
        items=masked,
        agree=None,
    )


# ---- 5: one pre-training step ----------------------------------------------------------------
def _peer_config(cfg: Any) -> Any:
    """A transformers Wav2Vec2Config with our model's dimensions and hyper-parameters."""
    from transformers import Wav2Vec2Config

    kernels, strides = zip(*cfg.conv_layers, strict=True)
    return Wav2Vec2Config(
        conv_dim=(cfg.conv_channels,) * len(kernels),
        conv_kernel=kernels,
        conv_stride=strides,
        conv_bias=False,
        feat_extract_norm="group",
        feat_extract_activation="gelu",
        hidden_size=cfg.dim,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.ffn_dim,
        hidden_act="gelu",
        num_conv_pos_embeddings=cfg.pos_conv_kernel,
        num_conv_pos_embedding_groups=cfg.pos_conv_groups,
        do_stable_layer_norm=True,  # pre-LN Transformer, as ours (norm_first)
        hidden_dropout=cfg.dropout,
        attention_dropout=cfg.dropout,
        activation_dropout=cfg.dropout,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        layerdrop=0.0,  # ours has no LayerDrop; the same layers run on both sides
        mask_time_prob=cfg.mask_prob,
        mask_time_length=cfg.mask_length,
        mask_time_min_masks=2,
        mask_feature_prob=0.0,
        num_codevector_groups=GROUPS,
        num_codevectors_per_group=ENTRIES,
        codevector_dim=cfg.code_dim,
        proj_codevector_dim=cfg.code_dim,
        num_negatives=cfg.num_negatives,
        contrastive_logits_temperature=KAPPA,
        diversity_loss_weight=cfg.diversity_weight,
    )


def ssl_models(seed: int = 0) -> tuple[Wav2Vec, Any]:
    """Our Wav2Vec (gumbel + contrastive) and transformers' Wav2Vec2ForPreTraining, same dims."""
    w2v = _w2v()
    cfg = config_for(SSL_SIZE)
    with _seeded(seed):
        ours = Wav2Vec(cfg, "gumbel", "contrastive", quantizer_kwargs={"groups": GROUPS})
        peer = w2v.Wav2Vec2ForPreTraining(_peer_config(cfg))
    return ours, peer


def build_ssl_step(device: torch.device, seconds: float) -> Workload:
    """Forward, loss, backward, gradient clipping and an AdamW step on a batch of 4 clips."""
    w2v = _w2v()
    ours, peer = ssl_models()
    ours.to(device).train()
    peer.to(device).train()
    samples = int(seconds * SAMPLE_RATE)
    g = torch.Generator().manual_seed(1)
    wav = torch.randn(SSL_BATCH, samples, generator=g).to(device)
    frames = int(peer._get_feat_extract_output_lengths(samples))
    if frames != ours.encoder.frames(samples):
        raise AssertionError("the two feature encoders give different frame counts")
    cfg = ours.config
    # lr and weight decay of ssl_phoneme; the same on both sides
    ours_opt = torch.optim.AdamW(ours.parameters(), lr=5e-4, weight_decay=0.01)
    peer_opt = torch.optim.AdamW(peer.parameters(), lr=5e-4, weight_decay=0.01)
    generator = torch.Generator().manual_seed(2)
    step = {"ours": 0, "peer": 0}

    def run_ours() -> torch.Tensor:
        out = ours(wav, generator)
        ours_opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(ours.parameters(), 10.0)
        ours_opt.step()
        step["ours"] += 1
        ours.anneal(step["ours"])
        return out.loss.detach()

    def run_peer() -> torch.Tensor:
        # masks and distractors are drawn per step, as a data collator does for this model
        mask = w2v._compute_mask_indices(
            (SSL_BATCH, frames), cfg.mask_prob, cfg.mask_length, min_masks=2
        )
        negatives = w2v._sample_negative_indices((SSL_BATCH, frames), cfg.num_negatives, mask)
        out = peer(
            wav,
            mask_time_indices=torch.from_numpy(mask).to(device),
            sampled_negative_indices=torch.from_numpy(negatives).to(device),
        )
        peer_opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(peer.parameters(), 10.0)
        peer_opt.step()
        step["peer"] += 1
        tau = max(TAU * ours.quantizer.tau_decay ** step["peer"], ours.quantizer.tau_min)
        peer.set_gumbel_temperature(tau)
        return out.loss.detach()

    return Workload(
        ours=run_ours,
        peer=run_peer,
        shape=f"B={SSL_BATCH} {seconds:g} s ({frames} frames), model {SSL_SIZE}",
        items=SSL_BATCH,
        agree=None,
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
CONTRASTIVE = register_case(
    SpeedCase(
        name="contrastive loss, K=100 distractors",
        peer="transformers _sample_negative_indices + compute_contrastive_logits + CE",
        sizes=_frames((2, 50), (4, 50), (4, 100), (4, 200)),
        build=build_contrastive,
        trained=True,
        group=GROUP,
        notes=(
            "no agreement check: the distractors are random draws (ours from a torch "
            "generator, transformers from numpy). transformers scores all B·T steps and "
            "drops the unmasked ones in the loss; ours scores only the masked ones"
        ),
        tags=TAGS,
    )
)
SSL_STEP = register_case(
    SpeedCase(
        name="wav2vec 2.0 pre-training step",
        peer="transformers Wav2Vec2ForPreTraining (random init, same dimensions)",
        sizes=_sizes("seconds", 0.5, 1.0, 2.0, 4.0),
        build=build_ssl_step,
        trained=True,
        group=GROUP,
        notes=(
            "our 'small' model (7 convs x 64 channels, width 128, 3 layers, 4 heads, FFN 256, "
            "G=2 x V=320, K=30, p=0.065, M=10) vs Wav2Vec2ForPreTraining at those dimensions, "
            "LayerDrop off; masks and distractors drawn in the step; AdamW + clipping. No "
            "agreement check: different random init, masks and draws. transformers also "
            "scores the unmasked steps, and takes a gradient w.r.t. the waveform"
        ),
        tags=TAGS,
    )
)

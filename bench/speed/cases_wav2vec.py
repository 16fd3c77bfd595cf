"""Speed cases: our wav2vec 2.0 pieces against vector-quantize-pytorch and transformers.

Five operations, each a training call (forward, backward; the SSL step also clips and
steps the optimizer) on inputs made once per size: VQ with a learned codebook, VQ with EMA
codebook updates, the Gumbel quantizer with its diversity loss, the contrastive loss with
K = 100 distractors, and one pre-training step of the whole model. The peers are configured
to the same dimensions and hyper-parameters; transformers models are built from a
``Wav2Vec2Config`` with random init, nothing is downloaded.

The three quantizer cases are in :mod:`bench.speed.cases_wav2vec_quantizers` (imported below,
so they register first, and re-exported); this module has the contrastive loss and the
pre-training step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.models.masking import compute_mask
from bench.models.wav2vec import Wav2Vec
from bench.models.wav2vec_config import config_for
from bench.speed.case import SpeedCase, Workload, register_case

# every public name of the quantizer cases and the shared settings stays importable from here
from bench.speed.cases_wav2vec_quantizers import (  # noqa: F401
    BETA,
    DIVERSITY_WEIGHT,
    EMA_DECAY,
    GUMBEL,
    GUMBEL_IN,
    GUMBEL_OUT,
    VQ,
    VQ_BATCH,
    VQ_DIM,
    VQ_EMA,
    VQ_STEPS,
    build_gumbel,
    build_vq,
    build_vq_ema,
)
from bench.speed.wav2vec_common import (
    ENTRIES,
    GROUP,
    GROUPS,
    LABELS,  # noqa: F401 (re-exported)
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
from methods.ssl_objectives import Contrastive, sample_negatives

KAPPA = 0.1
NEGATIVES = 100  # K, as the paper
CONTRASTIVE_DIM = 256
SAMPLE_RATE = 16000
SSL_BATCH = 4
SSL_SIZE = "small"  # our CPU model size (bench/models/wav2vec.py)


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
    quantizer = ours.quantizer  # its temperature schedule is replayed on the peer
    if quantizer is None:
        raise AssertionError("ssl_models builds our model with a Gumbel quantizer")
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
        tau = max(TAU * quantizer.tau_decay ** step["peer"], quantizer.tau_min)
        peer.set_gumbel_temperature(tau)
        return out.loss.detach()

    return Workload(
        ours=run_ours,
        peer=run_peer,
        shape=f"B={SSL_BATCH} {seconds:g} s ({frames} frames), model {SSL_SIZE}",
        items=SSL_BATCH,
        agree=None,
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

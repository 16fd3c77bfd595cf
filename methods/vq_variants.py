"""VQ-VAE codebook-learning variants as registered quantizers, each with its paper's defaults.

The three ways of learning a nearest-neighbour codebook that the ``vqvae`` task compares,
as thin configurations of :class:`methods.quantizers.VectorQuantizer` (whose ``"vq"``
stays as it is: straight-through with its own usage-fraction restarts):

- ``vq_st``: van den Oord et al. 2017 as published: the codebook is a parameter trained by
  the codebook loss ||sg[z_e] - e||², the encoder by β ||z_e - sg[e]||² (β = 0.25); no EMA,
  no restarts.
- ``vq_ema``: the codebook follows exponential moving averages of assignment counts and
  sums (van den Oord et al. 2017, App. A.1; Razavi et al. 2019), decay γ = 0.99, Laplace
  ε = 1e-5; the loss is the commitment term alone.
- ``vq_restart``: ``vq_ema`` plus dead-code restarts as SoundStream words them (Zeghidour
  et al. 2021, §3.3; Jukebox, Dhariwal et al. 2020, §3.3, restarts at a count of 1):
  after each EMA update, every entry whose EMA assignment count N_j is below 2 is replaced
  by an encoder output drawn from the current batch. The reset follows
  vector-quantize-pytorch's ``Codebook.replace`` (the public implementation, which the
  tests match bit for bit): N_j is set to the threshold and m_j to threshold · e_j, and
  when more entries are dead than the batch has vectors a random subset of them is
  replaced now and the rest later.

Unlike ``"vq"``'s threshold (a share of the batch's positions), the restart threshold is
a count per batch, as in the papers: with B positions per batch an entry must win about
2 of them per batch to survive, so at V ≈ B / 2 entries or more some churn is expected.
"""

from __future__ import annotations

import torch
from torch import Tensor

from bench.registry import register
from methods.quantizers import VectorQuantizer

__all__ = ["EMAVQ", "RestartVQ", "StraightThroughVQ"]


@register("quantizer", "vq_st", display="VQ-VAE (straight-through)")
class StraightThroughVQ(VectorQuantizer):
    """VQ-VAE (van den Oord et al. 2017, eq. 3): codebook loss + β commitment, no EMA, no
    restarts; gradients reach the encoder by the straight-through copy."""

    def __init__(self, in_dim: int, out_dim: int = 256, entries: int = 320, beta: float = 0.25):
        super().__init__(in_dim, out_dim, entries, beta=beta, ema=False, dead_code_threshold=0.0)


@register("quantizer", "vq_ema", display="VQ-VAE (EMA)")
class EMAVQ(VectorQuantizer):
    """VQ-VAE with EMA codebook updates (van den Oord et al. 2017 App. A.1; Razavi et al.
    2019): γ = 0.99, ε = 1e-5, loss = β ||z_e - sg[e]||²; no restarts."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 256,
        entries: int = 320,
        beta: float = 0.25,
        ema_decay: float = 0.99,
        epsilon: float = 1e-5,
    ):
        super().__init__(
            in_dim,
            out_dim,
            entries,
            beta=beta,
            ema=True,
            ema_decay=ema_decay,
            epsilon=epsilon,
            dead_code_threshold=0.0,
        )


@register("quantizer", "vq_restart", display="VQ-VAE (EMA + restarts)")
class RestartVQ(EMAVQ):
    """``vq_ema`` plus SoundStream's dead-code restarts: an entry whose EMA assignment
    count N_j falls below ``dead_code_count`` (2, Zeghidour et al. 2021 §3.3) is replaced
    by a random encoder output of the current batch (training only)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 256,
        entries: int = 320,
        beta: float = 0.25,
        ema_decay: float = 0.99,
        epsilon: float = 1e-5,
        dead_code_count: float = 2.0,
    ):
        super().__init__(in_dim, out_dim, entries, beta, ema_decay, epsilon)
        if dead_code_count <= 0:
            raise ValueError(
                f"dead_code_count must be > 0 (an EMA assignment count), got {dead_code_count}"
            )
        self.dead_code_count = float(dead_code_count)
        self.restarts = 0  # entries re-initialised so far (a diagnostic)

    @torch.no_grad()
    def _update(self, z_e: Tensor, codes: Tensor, counts: Tensor) -> None:
        super()._update(z_e, codes, counts)  # usage, N_j, m_j, e_j (no fraction restarts)
        dead = self.cluster_size < self.dead_code_count  # N_j < threshold
        n_dead, n_samples = int(dead.sum()), len(z_e)
        if n_dead == 0 or n_samples == 0:
            return
        if n_dead > n_samples:  # replace a random subset now, the rest at later steps
            index = dead.nonzero(as_tuple=True)[0]
            index = index[torch.randperm(n_dead, device=z_e.device)[:n_samples]]
            dead = torch.zeros_like(dead)
            dead[index] = True
            n_dead = n_samples
        pick = torch.randperm(n_samples, device=z_e.device)[:n_dead]  # without replacement
        fresh = z_e[pick].to(self.embed.dtype)
        self.embed[dead] = fresh
        self.cluster_size[dead] = self.dead_code_count
        self.embed_sum[dead] = fresh * self.dead_code_count
        self.usage[dead] = 1.0 / self.num_entries
        self.restarts += n_dead

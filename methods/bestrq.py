"""BEST-RQ: a frozen random-projection quantizer and the masked code-prediction objective.

Chiu, Qin, Zhang, Yu, Wu, "Self-supervised learning with random-projection quantizer for
speech recognition", ICML 2022, §3. The targets need no training: a random matrix A and a
random codebook C, both frozen, turn each input frame x into a label
y = argmin_v ||norm_l2(C_v) − norm_l2(A x)||. The network then learns to predict
the label of each masked frame with a softmax classifier on its context (cross-entropy).

``random_projection`` (family "quantizer") makes the labels; ``code_prediction`` (family
"objective", ``needs = "codebook"``) is the classifier and its loss. The paper normalises the
input to zero mean and unit variance before quantizing; here the network's input z is
already layer-normalised, so the quantizer applies no normalisation of its own.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.registry import register
from methods.quantizers import Quantizer, QuantizerOutput, marginal_probs, perplexity
from methods.ssl_objectives import ObjectiveOutput, SSLObjective, _mean, _rate

__all__ = ["CodePrediction", "RandomProjectionQuantizer"]


@register("quantizer", "random_projection", display="Random-projection quantizer")
class RandomProjectionQuantizer(Quantizer):
    """BEST-RQ's frozen random-projection quantizer (Chiu et al. 2022, §3).

    A (G·d, in_dim) has Xavier-uniform init and C (G, V, d) N(0, 1) entries, L2-normalised
    once at construction; both are buffers (frozen, no gradient, saved in the state dict),
    drawn from the global torch RNG. The codebook dim d is ``out_dim // groups``: the model
    passes ``out_dim`` as the target dimension and q must have it, so there is no separate d
    (paper: d = 16, V = 8192; here V = 256 by default for CPU scale). Group g projects z with
    its d rows of A and picks its own entry; q concatenates the G chosen (unit) entries.

    q is straight-through (value C_g[y_g], gradient of norm_l2(A_g z) to z through the frozen
    A), as the quantizer contract asks; BEST-RQ itself only uses the codes. ``loss`` is 0;
    ``perplexity`` is that of the hard codes (restricted to ``mask``).
    """

    fixed_targets = True  # frozen codes: the model feeds it unlearned-normalised features
    projection: Tensor  # A, (G·d, in_dim)
    codevectors: Tensor  # norm_l2(C), (G, V, d)

    def __init__(self, in_dim: int, out_dim: int = 16, groups: int = 1, entries: int = 256):
        super().__init__(in_dim, out_dim, groups, entries)
        if groups < 1 or entries < 2:
            raise ValueError(f"need groups >= 1 and entries >= 2, got {groups} and {entries}")
        if out_dim % groups:
            raise ValueError(
                f"out_dim {out_dim} must be divisible by groups {groups}: the codebook dim "
                f"of each group is out_dim // groups"
            )
        projection = torch.empty(out_dim, in_dim)
        nn.init.xavier_uniform_(projection)  # A: Xavier init (§3)
        codebook = torch.randn(groups, entries, out_dim // groups)  # C ~ N(0, 1) (§3)
        self.register_buffer("projection", projection)
        self.register_buffer("codevectors", F.normalize(codebook, dim=-1))  # norm_l2(C_v)

    @property
    def codebook(self) -> Tensor:
        return self.codevectors

    def _quantize(self, z: Tensor, mask: Tensor | None) -> QuantizerOutput:
        batch, steps, _ = z.shape
        groups, entries = self.num_groups, self.num_entries
        projected = z.reshape(batch * steps, -1).float() @ self.projection.t()  # A x
        u = F.normalize(projected.reshape(batch * steps, groups, -1), dim=-1)  # norm_l2(A_g x)
        # for unit vectors ||c − u||² = 2 − 2 c·u, so argmin_v distance = argmax_v c_v·u
        similarity = torch.einsum("ngd,gvd->ngv", u.detach(), self.codevectors)
        codes = similarity.argmax(dim=-1)  # (N, G)
        chosen = self.codevectors[torch.arange(groups, device=z.device), codes]  # (N, G, d)
        q = chosen + (u - u.detach())  # value C_g[y_g] exactly, gradient of norm_l2(A_g x)
        one_hot = F.one_hot(codes, entries).float()
        return QuantizerOutput(
            q=q.reshape(batch, steps, self.out_dim).to(z.dtype),
            codes=codes.reshape(batch, steps, groups),
            loss=z.new_zeros(()),
            perplexity=perplexity(marginal_probs(one_hot, mask)),
        )


@register("objective", "code_prediction")
class CodePrediction(SSLObjective):
    """BEST-RQ's loss: a linear softmax classifier predicts each masked step's code (§3).

    One linear layer maps the context (N, code_dim) to G·V logits, a softmax per group (the
    paper's multiple softmax layers for multiple codebooks); the loss is the cross-entropy
    against ``target_codes`` (N, G), a mean over groups and rows. ``targets`` and
    ``negatives`` are ignored; ``proxies`` only serves to check that the quantizer's (G, V)
    match the classifier's. Accuracy: argmax of the logits is the code, over groups and rows.
    """

    needs: ClassVar[str] = "codebook"
    requires = ("code_dim", "code_groups", "code_entries")

    def __init__(self, code_dim: int, code_groups: int, code_entries: int) -> None:
        super().__init__()
        if code_dim < 1 or code_groups < 1 or code_entries < 2:
            raise ValueError(
                f"need code_dim >= 1, code_groups >= 1, code_entries >= 2; got {code_dim}, "
                f"{code_groups}, {code_entries}"
            )
        self.code_dim, self.groups, self.entries = code_dim, code_groups, code_entries
        self.classifier = nn.Linear(code_dim, code_groups * code_entries)

    def forward(
        self,
        context: Tensor,
        targets: Tensor | None,
        negatives: Tensor | None,
        *,
        target_codes: Tensor,
        proxies: Tensor,
    ) -> ObjectiveOutput:
        n = context.shape[0]
        if context.dim() != 2 or context.shape[1] != self.code_dim:
            raise ValueError(f"context must be (N, {self.code_dim}), got {tuple(context.shape)}")
        if target_codes.shape != (n, self.groups):
            raise ValueError(
                f"target_codes must be ({n}, {self.groups}), got {tuple(target_codes.shape)}"
            )
        if proxies.dim() != 3 or proxies.shape[:2] != (self.groups, self.entries):
            raise ValueError(
                f"the quantizer's codebook is {tuple(proxies.shape)}, but the classifier "
                f"predicts (G, V) = ({self.groups}, {self.entries}) codes"
            )
        logits = self.classifier(context).reshape(n, self.groups, self.entries)
        loss = F.cross_entropy(  # −log softmax(W c + b)_{y_g}, per row and group
            logits.reshape(n * self.groups, self.entries),
            target_codes.reshape(-1),
            reduction="none",
        )
        with torch.no_grad():
            correct = logits.argmax(dim=-1) == target_codes
        return ObjectiveOutput(loss=_mean(loss), accuracy=_rate(correct))

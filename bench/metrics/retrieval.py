"""Retrieval and verification metrics of embeddings: Recall@1, MAP@R, NMI, EER.

Each query is one embedding, the references are all the *other* embeddings of the set
(leave-one-out), similarity is cosine. Pure functions on arrays; directions and units in
bench.metrics.METRICS.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score, roc_curve

__all__ = ["cosine_matrix", "eer", "map_at_r", "nmi", "recall_at_1", "retrieval_metrics", "trials"]


def cosine_matrix(embeddings) -> torch.Tensor:
    """(N, N) cosine similarities, the diagonal (self-matches) set to −inf."""
    x = F.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float64), dim=1)
    sim = x @ x.T
    sim.fill_diagonal_(float("-inf"))
    return sim


def _codes(labels) -> torch.Tensor:
    """Labels of any kind (ints, strings) as integer codes."""
    return torch.from_numpy(np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1))


def recall_at_1(embeddings, labels) -> float:
    """Share of queries whose nearest other embedding has the same label (= precision@1)."""
    labels = _codes(labels)
    nearest = cosine_matrix(embeddings).argmax(dim=1)
    return (labels[nearest] == labels).double().mean().item()


def map_at_r(embeddings, labels) -> float:
    """MAP@R (Musgrave, Belongie, Lim, "A Metric Learning Reality Check", ECCV 2020, eq. 3).

    For a query with R other items of its class: MAP@R = 1/R Σ_{i=1}^{R} P(i)·rel(i), where
    rel(i) = 1 when the i-th nearest neighbour is of the query's class and P(i) is the
    precision among the first i. Queries with R = 0 are left out; the mean over queries.
    """
    labels = _codes(labels)
    sim = cosine_matrix(embeddings)
    order = sim.argsort(dim=1, descending=True)  # self (−inf) is last
    rel = (labels[order] == labels.unsqueeze(1)).double()[:, :-1]  # drop self
    r = rel.sum(dim=1)  # R per query
    rank = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    within_r = rank.unsqueeze(0) <= r.unsqueeze(1)
    precision = rel.cumsum(dim=1) / rank  # P(i)
    ap = (precision * rel * within_r).sum(dim=1) / r.clamp(min=1)
    keep = r > 0
    return ap[keep].mean().item() if keep.any() else float("nan")


def nmi(embeddings, labels, seed: int = 0) -> float:
    """NMI between the labels and k-means clusters (k = number of labels) of unit vectors."""
    x = F.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float64), dim=1).numpy()
    k = len(np.unique(labels))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return float(normalized_mutual_info_score(labels, clusters))


def trials(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair as a verification trial: (cosine scores, 1 = same label)."""
    sim = cosine_matrix(embeddings).numpy()
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    return sim[i, j], (labels[i] == labels[j]).astype(int)


def eer(scores, targets) -> float:
    """Equal error rate: where the false-accept rate equals the false-reject rate.

    From scikit-learn's ROC curve; between the two ROC points where FRR − FAR changes
    sign, the rates are interpolated linearly.
    """
    targets = np.asarray(targets)
    if targets.min() == targets.max():
        raise ValueError("EER needs both target (same) and non-target (different) trials")
    far, tpr, _ = roc_curve(targets, scores)
    frr = 1 - tpr
    diff = frr - far  # decreasing from 1 to −1 along the curve
    k = int(np.argmax(diff <= 0))  # first point with FRR ≤ FAR
    if k == 0 or diff[k] == 0:
        return float((far[k] + frr[k]) / 2)
    t = diff[k - 1] / (diff[k - 1] - diff[k])  # linear crossing between k−1 and k
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def retrieval_metrics(embeddings, labels, seed: int = 0) -> dict[str, float]:
    """recall_at_1, map_at_r, nmi and eer (all pairs as trials) of one embedded set."""
    scores, targets = trials(embeddings, labels)
    return {
        "recall_at_1": recall_at_1(embeddings, labels),
        "map_at_r": map_at_r(embeddings, labels),
        "nmi": nmi(embeddings, labels, seed),
        "eer": eer(scores, targets),
    }

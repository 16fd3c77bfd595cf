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

__all__ = [
    "average_precisions_at_r",
    "cosine_matrix",
    "eer",
    "first_correct_ranks",
    "kmeans_clusters",
    "map_at_r",
    "map_at_r_from_items",
    "nmi",
    "recall_at_1",
    "recall_at_1_from_ranks",
    "retrieval_items",
    "retrieval_metrics",
    "retrieval_metrics_from_items",
    "trials",
]


def cosine_matrix(embeddings) -> torch.Tensor:
    """(N, N) cosine similarities, the diagonal (self-matches) set to −inf."""
    x = F.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float64), dim=1)
    sim = x @ x.T
    sim.fill_diagonal_(float("-inf"))
    return sim


def _codes(labels) -> torch.Tensor:
    """Labels of any kind (ints, strings) as integer codes."""
    return torch.from_numpy(np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1))


def ranked_relevance(embeddings, labels) -> torch.Tensor:
    """(N, N−1): 1.0 where the i-th nearest other item of query n has its label. Nearest
    first, ties in index order (a stable sort: the first is the argmax of the row)."""
    labels = _codes(labels)
    order = cosine_matrix(embeddings).argsort(dim=1, descending=True, stable=True)
    return (labels[order] == labels.unsqueeze(1)).double()[:, :-1]  # self (−inf) is last


def first_correct_ranks(embeddings, labels) -> np.ndarray:
    """Per query: the 1-based rank of its nearest other item of the same label (0: it has
    none). Recall@1 is the share of rank 1."""
    rel = ranked_relevance(embeddings, labels)
    rank = rel.argmax(dim=1) + 1  # the first 1.0 of the row
    return torch.where(rel.any(dim=1), rank, 0).numpy()


def recall_at_1_from_ranks(ranks) -> float:
    """Share of queries whose nearest other item has their label (rank 1)."""
    return (torch.as_tensor(np.asarray(ranks)) == 1).double().mean().item()


def recall_at_1(embeddings, labels) -> float:
    """Share of queries whose nearest other embedding has the same label (= precision@1)."""
    return recall_at_1_from_ranks(first_correct_ranks(embeddings, labels))


def average_precisions_at_r(embeddings, labels) -> np.ndarray:
    """Per query: AP@R (NaN for a query with no other item of its class); see map_at_r."""
    rel = ranked_relevance(embeddings, labels)
    r = rel.sum(dim=1)  # R per query
    rank = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    within_r = rank.unsqueeze(0) <= r.unsqueeze(1)
    precision = rel.cumsum(dim=1) / rank  # P(i)
    ap = (precision * rel * within_r).sum(dim=1) / r.clamp(min=1)
    return torch.where(r > 0, ap, float("nan")).numpy()


def map_at_r_from_items(ap) -> float:
    """The mean AP@R over the queries that have one (not NaN)."""
    ap = torch.as_tensor(np.asarray(ap, dtype=np.float64))
    keep = ~ap.isnan()
    return ap[keep].mean().item() if keep.any() else float("nan")


def map_at_r(embeddings, labels) -> float:
    """MAP@R (Musgrave, Belongie, Lim, "A Metric Learning Reality Check", ECCV 2020, eq. 3).

    For a query with R other items of its class: MAP@R = 1/R Σ_{i=1}^{R} P(i)·rel(i), where
    rel(i) = 1 when the i-th nearest neighbour is of the query's class and P(i) is the
    precision among the first i. Queries with R = 0 are left out; the mean over queries.
    """
    return map_at_r_from_items(average_precisions_at_r(embeddings, labels))


def kmeans_clusters(embeddings, k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster ids (``k`` clusters, ``n_init=10``) of the unit-normalised embeddings."""
    x = F.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float64), dim=1).numpy()
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


def nmi(embeddings, labels, seed: int = 0) -> float:
    """NMI between the labels and k-means clusters (k = number of labels) of unit vectors."""
    clusters = kmeans_clusters(embeddings, len(np.unique(labels)), seed)
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


def retrieval_items(embeddings, labels, ids, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Per-item results of one embedded set, with ``ids`` the items' stable ids: ``test``
    one row per query (label, rank of the first correct neighbour, AP@R, k-means cluster,
    and the embedding itself, from which the verification trials, every unordered pair,
    are rebuilt: storing the N(N−1)/2 trials would take ~5 MB per cell for 900 items)."""
    labels, ids = np.asarray(labels), np.asarray(ids).astype(str)
    queries = {
        "item_id": ids,
        "label": labels,
        "rank": first_correct_ranks(embeddings, labels),
        "ap_at_r": average_precisions_at_r(embeddings, labels),
        "cluster": kmeans_clusters(embeddings, len(np.unique(labels)), seed),
        "embedding": np.asarray(embeddings),
    }
    return {"test": queries}


def retrieval_metrics_from_items(items: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """recall_at_1, map_at_r, nmi and eer from ``retrieval_items``."""
    queries = items["test"]
    scores, targets = trials(queries["embedding"], queries["label"])
    return {
        "recall_at_1": recall_at_1_from_ranks(queries["rank"]),
        "map_at_r": map_at_r_from_items(queries["ap_at_r"]),
        "nmi": float(normalized_mutual_info_score(queries["label"], queries["cluster"])),
        "eer": eer(scores, targets),
    }


def retrieval_metrics(embeddings, labels, seed: int = 0) -> dict[str, float]:
    """recall_at_1, map_at_r, nmi and eer (all pairs as trials) of one embedded set."""
    ids = np.arange(len(labels)).astype(str)
    return retrieval_metrics_from_items(retrieval_items(embeddings, labels, ids, seed))

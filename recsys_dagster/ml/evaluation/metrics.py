"""Ranking metrics at K, defined once here.

For one user with a ranked list `recommended` and a set `relevant` (held-out items):
  precision@K = hits in the top K / K
  recall@K    = hits in the top K / |relevant|
  ndcg@K      = sum over hits at 0-based position i of 1/log2(i + 2), divided by the same sum
                for an ideal list of min(|relevant|, K) hits
  map@K       = sum of precision@(i+1) at every hit position i / min(|relevant|, K)
These match Spark's RankingEvaluator (precisionAtK, recallAtK, ndcgAtK, meanAveragePrecisionAtK)
for binary relevance. Means are over users with at least one held-out item; a user who got no
recommendation counts as zero. The other metrics (AUC, diversity, novelty) are in scoring.py,
the distributional ones (coverage, Gini, entropy) in stats.py.
"""

from __future__ import annotations

import numpy as np

RANKING_METRICS = ("precision", "recall", "ndcg", "map")
# What settings are chosen by on validation (tuning, EASE's lambda): NDCG@50 tells settings
# apart with about a quarter of the listeners precision@10 needs (benchmarks/tuning_noise.py).
SELECTION_METRIC, SELECTION_K = "ndcg", 50


def ranking_metrics_at_k(recommended, relevant, k: int) -> dict[str, float]:
    if k < 1:
        raise ValueError("k must be >= 1")
    rel = set(int(x) for x in relevant)
    if not rel:
        raise ValueError("a user with no relevant items has no ranking metrics")
    top = [int(x) for x in list(recommended)[:k]]
    hits = np.array([x in rel for x in top], dtype=bool)
    n_hits = int(hits.sum())
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(discounts[: len(top)][hits].sum())
    idcg = float(discounts[: min(len(rel), k)].sum())
    cum_hits = np.cumsum(hits)
    prec_at_hits = cum_hits[hits] / (np.flatnonzero(hits) + 1.0)
    return {
        "precision": n_hits / k,
        "recall": n_hits / len(rel),
        "ndcg": dcg / idcg,
        "map": float(prec_at_hits.sum()) / min(len(rel), k),
    }

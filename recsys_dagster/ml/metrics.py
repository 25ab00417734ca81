"""Ranking metrics at K, defined once here.

For one user with a ranked list `recommended` and a set `relevant` (held-out items):
  precision@K = hits in the top K / K
  recall@K    = hits in the top K / |relevant|
  ndcg@K      = sum over hits at 0-based position i of 1/log2(i + 2), divided by the same sum
                for an ideal list of min(|relevant|, K) hits
  map@K       = sum of precision@(i+1) at every hit position i / min(|relevant|, K)
These match Spark's RankingEvaluator (precisionAtK, recallAtK, ndcgAtK, meanAveragePrecisionAtK)
for binary relevance. Means are over users with at least one held-out item; a user who got no
recommendation counts as zero. coverage = distinct recommended items / catalogue size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

RANKING_METRICS = ("precision", "recall", "ndcg", "map")


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


def per_user_metrics(recs: DataFrame, holdout: DataFrame, k: int) -> DataFrame:
    """(user_idx, precision, recall, ndcg, map) for every user with held-out items."""
    ranked = (recs.where(F.col("rank") <= k)
              .groupBy("user_idx")
              .agg(F.array_sort(F.collect_list(F.struct("rank", "item_idx"))).alias("_r"))
              .select("user_idx", F.col("_r.item_idx").alias("recommended")))
    truth = holdout.groupBy("user_idx").agg(F.collect_set("item_idx").alias("relevant"))
    joined = truth.join(ranked, "user_idx", "left")
    schema = "user_idx int, " + ", ".join(f"{m} double" for m in RANKING_METRICS)

    def compute(batches):
        for pdf in batches:
            rows = [ranking_metrics_at_k([] if r is None else r, rel, k)
                    for r, rel in zip(pdf["recommended"], pdf["relevant"])]
            out = pd.DataFrame(rows, columns=list(RANKING_METRICS))
            out.insert(0, "user_idx", pdf["user_idx"].to_numpy(dtype=np.int32))
            yield out

    return joined.mapInPandas(compute, schema)


def summarize(recs: DataFrame, holdout: DataFrame, k: int, n_catalogue: int) -> dict[str, float]:
    """Mean ranking metrics at k, catalogue coverage and the number of users evaluated."""
    per_user = per_user_metrics(recs, holdout, k)
    row = per_user.agg(F.count("*").alias("users"),
                       *[F.avg(m).alias(m) for m in RANKING_METRICS]).first()
    n_rec = recs.where(F.col("rank") <= k).select("item_idx").distinct().count()
    out = {m: float(row[m] or 0.0) for m in RANKING_METRICS}
    out["coverage"] = n_rec / n_catalogue if n_catalogue else 0.0
    out["users"] = int(row["users"])
    return out

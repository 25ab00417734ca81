"""Holdout evaluation of a model configuration against the popularity baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .als import ALSParams, train_als
from .confidence import ConfidenceParams, confidence_matrix
from .metrics import RANKING_METRICS, summarize
from .recommend import popularity_recommendations, recommend_for_users
from .split import holdout_split


@dataclass
class EvaluationResult:
    table: pd.DataFrame  # model, metric, k, value
    split: str
    counts: dict = field(default_factory=dict)

    def value(self, model: str, metric: str) -> float:
        t = self.table
        return float(t[(t.model == model) & (t.metric == metric)].value.iloc[0])


def has_timestamps(interactions: DataFrame) -> bool:
    row = interactions.agg(F.count("*").alias("n"), F.count("first_ts").alias("ts")).first()
    return row["n"] > 0 and row["n"] == row["ts"]


def evaluate(interactions: DataFrame, confidence: ConfidenceParams, als: ALSParams, k: int,
             holdout_fraction: float, seed: int, split: str = "auto") -> EvaluationResult:
    """Fit the same configuration on a train split and score ALS and popularity on the holdout.

    Metrics only count held-out items: items a user played in training are never
    recommended. Users with no held-out items are not evaluated; held-out items that never
    occur in training cannot be recommended by either model and are counted.
    """
    temporal = split == "temporal" or (split == "auto" and has_timestamps(interactions))
    train, holdout = holdout_split(interactions, holdout_fraction, seed, temporal)
    train, holdout = train.persist(), holdout.persist()
    test_users = holdout.select("user_idx").distinct()
    factors = train_als(confidence_matrix(train, confidence), als)
    test_factors = factors.user_factors.join(
        test_users.withColumnRenamed("user_idx", "idx"), "idx")
    models = {
        "als": recommend_for_users(test_factors, factors.item_factors, k, seen=train),
        "popularity": popularity_recommendations(train, test_users, k, seen=train),
    }
    train_items = train.select("item_idx").distinct()
    n_catalogue = train_items.count()
    rows = []
    counts = {}
    for name, recs in models.items():
        summary = summarize(recs, holdout, k, n_catalogue)
        counts["evaluated_users"] = summary.pop("users")
        rows += [(name, metric, k, summary[metric]) for metric in (*RANKING_METRICS, "coverage")]
    train_users = train.select("user_idx").distinct()
    counts.update({
        "train_rows": train.count(),
        "holdout_rows": holdout.count(),
        "cold_users": test_users.join(train_users, "user_idx", "left_anti").count(),
        "holdout_rows_with_cold_items": holdout.join(train_items, "item_idx", "left_anti").count(),
        "catalogue_items": n_catalogue,
        "als_fit_seconds": float(factors.timings["fit_seconds"]),
    })
    train.unpersist()
    holdout.unpersist()
    table = pd.DataFrame(rows, columns=["model", "metric", "k", "value"])
    return EvaluationResult(table, "temporal" if temporal else "random", counts)

"""Confidence weighting c = 1 + alpha * f(plays) (Hu, Koren & Volinsky, "Collaborative Filtering
for Implicit Feedback Datasets", 2008)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from .. import setting

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

Weighting = Literal["linear", "log", "bm25"]
WEIGHTINGS = Weighting.__args__


@dataclass(frozen=True)
class ConfidenceParams:
    """c = 1 + alpha * f(plays)."""

    weighting: Weighting = setting(
        "log", "f: linear (plays), log (log1p(plays / eps)) or bm25 (as in `implicit`); "
        "log with alpha 1 won on lastfm-2k (benchmarks/confidence_weighting.py).")
    alpha: float = setting(1.0, "Confidence scale alpha.")
    eps: float = setting(1.0, "log weighting: plays are divided by eps.")
    bm25_k1: float = setting(100.0, "bm25 saturation K1.")
    bm25_b: float = setting(0.8, "bm25 length normalisation B.")

    def validate(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.alpha <= 0 or self.eps <= 0:
            raise ValueError("alpha and eps must be > 0")
        if not 0 <= self.bm25_b <= 1 or self.bm25_k1 <= 0:
            raise ValueError("bm25 needs k1 > 0 and 0 <= b <= 1")

    def as_dict(self) -> dict:
        return asdict(self)


# bm25 can give an item listened to by (almost) everyone idf <= 0; keep it a positive preference.
_MIN_WEIGHT = 1e-3


def confidence_matrix(interactions: DataFrame, params: ConfidenceParams) -> DataFrame:
    """user_idx, item_idx, plays, confidence (float, >= 1), with first/last play times kept."""
    from pyspark.sql import functions as F

    params.validate()
    plays = F.col("plays").cast("double")
    if params.weighting == "linear":
        f = plays
        df = interactions
    elif params.weighting == "log":
        f = F.log1p(plays / F.lit(params.eps))
        df = interactions
    else:
        # BM25 as in the `implicit` library: idf over users, length-normalised by user plays.
        n_users = interactions.select("user_idx").distinct().count()
        item_df = interactions.groupBy("item_idx").agg(F.count("*").alias("_df"))
        user_len = interactions.groupBy("user_idx").agg(F.sum("plays").alias("_len"))
        avg_len = user_len.agg(F.avg("_len")).first()[0] or 1.0
        df = interactions.join(item_df, "item_idx").join(user_len, "user_idx")
        idf = F.log(F.lit(float(n_users))) - F.log1p(F.col("_df").cast("double"))
        norm = F.lit(1.0 - params.bm25_b) + F.lit(params.bm25_b) * F.col("_len") / F.lit(avg_len)
        f = F.greatest(plays * (params.bm25_k1 + 1.0) / (F.lit(params.bm25_k1) * norm + plays)
                       * idf, F.lit(_MIN_WEIGHT))
    keep = [c for c in ("first_ts", "last_ts") if c in interactions.columns]
    return df.select(
        "user_idx", "item_idx", "plays",
        (F.lit(1.0) + F.lit(params.alpha) * f).cast("float").alias("confidence"),
        *keep,
    )


def confidence_values(user_idx: np.ndarray, item_idx: np.ndarray, plays: np.ndarray,
                      params: ConfidenceParams) -> np.ndarray:
    """confidence_matrix's values in NumPy (float32), row by row, for a whole interactions
    table held in memory (bm25's idf and lengths are over all of it): what the command line
    needs to explain a served recommendation without Spark."""
    params.validate()
    p = plays.astype(np.float64)
    if params.weighting == "linear":
        f = p
    elif params.weighting == "log":
        f = np.log1p(p / params.eps)
    else:
        _, user_pos = np.unique(user_idx, return_inverse=True)
        items, item_pos = np.unique(item_idx, return_inverse=True)
        n_users = int(user_pos.max()) + 1 if user_pos.size else 0
        df = np.bincount(item_pos, minlength=items.size).astype(np.float64)
        length = np.bincount(user_pos, weights=p, minlength=n_users)
        avg = length.mean() if n_users else 1.0
        idf = np.log(float(n_users)) - np.log1p(df[item_pos])
        norm = (1.0 - params.bm25_b) + params.bm25_b * length[user_pos] / avg
        f = np.maximum(p * (params.bm25_k1 + 1.0) / (params.bm25_k1 * norm + p) * idf,
                       _MIN_WEIGHT)
    return (1.0 + params.alpha * f).astype(np.float32)

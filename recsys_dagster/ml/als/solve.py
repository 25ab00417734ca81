"""The exact implicit-ALS row solve, and folding new users into fixed item factors.

For a user u with items I_u and confidences c_ui (preference 1 on every played item):

    x_u = (YᵀY + Σ_{i∈I_u} (c_ui − 1) y_i y_iᵀ + λ_u I)⁻¹ Σ_{i∈I_u} c_ui y_i

with λ_u = λ·|I_u| under MLlib's convention (ALS-WR, the default here) or λ otherwise. YᵀY is
shared by all rows, so a row costs O(|I_u| r² + r³). Given the same item factors this is
exactly the user half-step MLlib ends its training with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..topk import collect_matrix


def solve_row(y: np.ndarray, yty: np.ndarray, items: np.ndarray, confidence: np.ndarray,
              reg: float, scale_reg: bool = True) -> np.ndarray:
    """One row's factors (float64 Cholesky) from positions into y and their confidences."""
    rank = y.shape[1]
    yi = y[items].astype(np.float64)
    c = confidence.astype(np.float64)
    a = yty + (yi.T * (c - 1.0)) @ yi
    lam = reg * (items.size if scale_reg else 1.0)
    a[np.diag_indices(rank)] += lam
    b = yi.T @ c
    try:
        chol = np.linalg.cholesky(a)
        return np.linalg.solve(chol.T, np.linalg.solve(chol, b))
    except np.linalg.LinAlgError:  # singular only with reg = 0 and too few items
        return np.linalg.lstsq(a, b, rcond=None)[0]


def fold_in(confidence: DataFrame, item_factors: DataFrame, reg: float,
            scale_reg: bool = True) -> DataFrame:
    """(idx, features) for every user in `confidence` (user_idx, item_idx, confidence), solved
    against the fixed item factors; items without factors are ignored."""
    item_ids, y = collect_matrix(item_factors)
    y64 = y.astype(np.float64)
    yty = y64.T @ y64
    rows = (confidence.groupBy("user_idx")
            .agg(F.collect_list("item_idx").alias("items"),
                 F.collect_list("confidence").alias("conf")))

    def solve(batches):
        for pdf in batches:
            out = []
            for items, conf in zip(pdf["items"], pdf["conf"]):
                items = np.asarray(items, dtype=np.int64)
                pos = np.searchsorted(item_ids, items)
                ok = pos < item_ids.size
                ok[ok] = item_ids[pos[ok]] == items[ok]
                x = (solve_row(y64, yty, pos[ok], np.asarray(conf)[ok], reg, scale_reg)
                     if ok.any() else np.zeros(y.shape[1]))
                out.append(x.astype(np.float32))
            yield pd.DataFrame({"idx": pdf["user_idx"].astype(np.int32), "features": out})

    return rows.mapInPandas(solve, "idx int, features array<float>")

"""Folding new users into fixed item factors: the exact ALS user solve, without retraining.

For a user u with items I_u and confidences c_ui (preference 1 on every played item):

    x_u = (YᵀY + Σ_{i∈I_u} (c_ui − 1) y_i y_iᵀ + λ_u I)⁻¹ Σ_{i∈I_u} c_ui y_i

with λ_u = λ·|I_u| under MLlib's convention (the default here) or λ otherwise: the exact row
solve of every engine (kernels.solve_exact). Given the same item factors this is exactly the
user half-step MLlib ends its training with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ids import factor_matrix, positions
from .kernels import solve_exact


def fold_in(confidence: DataFrame, item_factors: DataFrame, reg: float,
            scale_reg: bool = True, reg_exponent: float = 1.0) -> DataFrame:
    """(idx, features) for every user in `confidence` (user_idx, item_idx, confidence), solved
    against the fixed item factors; items without factors are ignored."""
    item_ids, y = factor_matrix(item_factors)  # the catalogue's factors: bounded
    yty = y.astype(np.float64).T @ y.astype(np.float64)
    rows = (confidence.groupBy("user_idx")
            .agg(F.collect_list("item_idx").alias("items"),
                 F.collect_list("confidence").alias("conf")))

    def solve(batches):
        for pdf in batches:
            pos, conf, counts = [], [], []
            for items, c in zip(pdf["items"], pdf["conf"]):
                p, found = positions(item_ids, items)
                pos.append(p[found])
                conf.append(np.asarray(c, dtype=np.float32)[found])
                counts.append(int(found.sum()))
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            x = solve_exact(y, yty, indptr, np.concatenate(pos or [np.zeros(0, np.int64)]),
                            np.concatenate(conf or [np.zeros(0, np.float32)]), reg, scale_reg,
                            reg_exponent)
            yield pd.DataFrame({"idx": pdf["user_idx"].astype(np.int32), "features": list(x)})

    return rows.mapInPandas(solve, "idx int, features array<float>")

"""Why an item is recommended: the listener's plays that contributed most to its score.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (2008),
section 5: a user's exact ALS vector is x_u = W_u Yᵀ C_u p(u) with
W_u = (YᵀY + Yᵀ(C_u − I)Y + λ_u I)⁻¹, so the predicted preference for item i is a sum over the
items j the user played:

    ŷ_ui = y_iᵀ x_u = Σ_j (y_iᵀ W_u y_j) c_uj

Each term is the contribution of one play: how similar j is to i in the user's own metric
W_u, times the confidence of the play. The terms sum to the score of the exact solve; a model
trained with the cg solver serves vectors a few conjugate-gradient steps from it, so its
served score differs from that sum by the solver's residual (docs/products.md says how much).
No Dagster, no Spark.
"""

from __future__ import annotations

import numpy as np

from ..als.kernels import row_reg


def contributions(y: np.ndarray, yty: np.ndarray, played: np.ndarray, confidence: np.ndarray,
                  recommended: np.ndarray, reg: float, scale_reg: bool = True,
                  reg_exponent: float = 1.0) -> np.ndarray:
    """(len(recommended) × len(played)) contributions: row r, column j is item
    recommended[r]'s score share due to the play of played[j] (positions in y's rows; `yty`
    is y.T @ y in float64; the regularisation as the model was trained)."""
    yp = y[played].astype(np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    lam = float(row_reg(np.array([played.size]), reg, scale_reg, reg_exponent)[0])
    a = yty + (yp.T * (c - 1.0)) @ yp + lam * np.eye(yty.shape[0])
    weighted = np.linalg.solve(a, (yp * c[:, None]).T)  # W_u y_j c_uj, one column per play
    return y[recommended].astype(np.float64) @ weighted


def top_reasons(contrib: np.ndarray, n: int = 3) -> np.ndarray:
    """Per recommended item, the positions (in `played`) of its n largest contributions,
    largest first (ties: the earlier position)."""
    n = min(n, contrib.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")
    return order[:, :n]

"""Row solvers of implicit ALS inside one partition (NumPy, no Spark, no Dagster).

For a row u with items I_u, confidences c (preference 1 on each) and the other side's factors
Y (YᵀY precomputed once per half-step and shared by every row):

    A_u = YᵀY + Y_uᵀ diag(c − 1) Y_u + λ_u I,   b_u = Y_uᵀ c,   x_u = A_u⁻¹ b_u

λ_u = λ·|I_u| under MLlib's convention (scale_reg=True), else λ.
- exact: forms A_u (O(|I_u| r²)) and solves all rows of a block in one batched LAPACK
         solve (LU on the symmetric positive definite A_u: exact to rounding).
- cg:    a few conjugate-gradient steps from the previous x_u (Takács et al. 2011, as in
         `implicit`), never forming A_u: each step costs O(|I_u| r + r²).
"""

from __future__ import annotations

import numpy as np


def _row_reg(counts: np.ndarray, reg: float, scale_reg: bool) -> np.ndarray:
    return reg * (counts.astype(np.float64) if scale_reg else np.ones(counts.size))


def solve_exact(y: np.ndarray, yty: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                conf: np.ndarray, reg: float, scale_reg: bool = True) -> np.ndarray:
    """Exact solutions for every row of a CSR block (float64 arithmetic, float32 result)."""
    n_rows, rank = indptr.size - 1, y.shape[1]
    counts = np.diff(indptr)
    lam = _row_reg(counts, reg, scale_reg)
    a = np.broadcast_to(yty, (n_rows, rank, rank)).copy()
    b = np.zeros((n_rows, rank))
    for u in range(n_rows):
        lo, hi = indptr[u], indptr[u + 1]
        if lo == hi:
            continue
        yi = y[indices[lo:hi]].astype(np.float64)
        c = conf[lo:hi].astype(np.float64)
        a[u] += (yi.T * (c - 1.0)) @ yi
        b[u] = yi.T @ c
    a[:, np.arange(rank), np.arange(rank)] += lam[:, None]
    x = np.linalg.solve(a, b[..., None])[..., 0]
    x[counts == 0] = 0.0
    return x.astype(np.float32)


def solve_cg(y: np.ndarray, yty: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
             conf: np.ndarray, reg: float, x0: np.ndarray, steps: int = 3,
             scale_reg: bool = True) -> np.ndarray:
    """A few CG steps per row from x0 (the row's previous factors)."""
    n_rows = indptr.size - 1
    lam = _row_reg(np.diff(indptr), reg, scale_reg)
    out = np.zeros((n_rows, y.shape[1]), dtype=np.float32)
    for u in range(n_rows):
        lo, hi = indptr[u], indptr[u + 1]
        if lo == hi:
            continue
        yi = y[indices[lo:hi]].astype(np.float64)
        cm1 = conf[lo:hi].astype(np.float64) - 1.0
        x = x0[u].astype(np.float64)
        # r = b - A x with b = Y_uᵀ c = Y_uᵀ (c - 1) + Y_uᵀ 1
        r = yi.T @ (cm1 + 1.0) - (yty @ x + yi.T @ (cm1 * (yi @ x)) + lam[u] * x)
        p = r.copy()
        rs_old = r @ r
        for _ in range(steps):
            if rs_old < 1e-20:
                break
            ap = yty @ p + yi.T @ (cm1 * (yi @ p)) + lam[u] * p
            alpha = rs_old / (p @ ap)
            x += alpha * p
            r -= alpha * ap
            rs_new = r @ r
            p = r + (rs_new / rs_old) * p
            rs_old = rs_new
        out[u] = x
    return out

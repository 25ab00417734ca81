"""EASE, the linear item-item baseline of Steck (2019), "Embarrassingly Shallow Autoencoders
for Sparse Data".

With X the binary users x items matrix of the fit part and G = XᵀX, the closed form is
    P = (G + λI)⁻¹,   B = I − P · diag(1 / diag P)   (so diag B = 0),
and a user's scores are x_u B. The inverse is a float32 Cholesky factorisation and inversion
(LAPACK potrf/potri): n² floats for G, P and B each, and n³ flops, so it is computed only up to
a configured catalogue size. λ is chosen on validation by walking a half-decade grid from a
starting value while the validation score improves (`choose_lambda`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from ..ids import require_positions

# λ = 10^(j/2), j = 0..10: 1 to 100,000 in half decades; the walk starts at START.
LAMBDA_GRID = tuple(float(10 ** (j / 2)) for j in range(11))
START = 100.0
_BLOCK = 2048  # rows mirrored at a time: no second n x n array


def binary_matrix(user_pos: np.ndarray, item_pos: np.ndarray, n_users: int,
                  n_items: int) -> sparse.csr_matrix:
    """X: 1 where the user played the item (duplicates count once)."""
    x = sparse.csr_matrix((np.ones(user_pos.size, dtype=np.float32), (user_pos, item_pos)),
                          shape=(n_users, n_items))
    x.data[:] = 1.0
    return x


def gram(x: sparse.csr_matrix) -> np.ndarray:
    """G = XᵀX as a dense float32 matrix (co-listening counts, listeners on the diagonal)."""
    return np.asarray((x.T @ x).todense(), dtype=np.float32)


def ease_weights(g: np.ndarray, lam: float) -> np.ndarray:
    """B for the Gram matrix g and regularisation lam > 0 (float32, zero diagonal)."""
    if lam <= 0:
        raise ValueError("EASE needs lambda > 0")
    a = np.array(g, dtype=np.float32, order="F", copy=True)
    a[np.diag_indices_from(a)] += np.float32(lam)
    c, info = lapack.spotrf(a, lower=1, overwrite_a=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky factorisation failed (info {info})")
    p, info = lapack.spotri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed (info {info})")
    n = p.shape[0]
    for lo in range(0, n, _BLOCK):  # potri fills the lower triangle: mirror it, in place
        hi = min(lo + _BLOCK, n)
        p[lo:hi, hi:] = p[hi:, lo:hi].T
        p[lo:hi, lo:hi] = np.tril(p[lo:hi, lo:hi]) + np.tril(p[lo:hi, lo:hi], -1).T
    p = p.T  # P is symmetric: its transpose is the same values, C-ordered (no copy), so that
    # a sparse x dense product reads it without a per-batch reordering copy
    p /= -np.diag(p)[None, :].copy()
    p[np.diag_indices_from(p)] = 0.0
    return p


def gram_of(pdf, item_ids: np.ndarray) -> np.ndarray:
    """G of (user_idx, item_idx) pairs (pandas) whose items are all in item_ids (sorted)."""
    _, users = np.unique(pdf["user_idx"].to_numpy(), return_inverse=True)
    items = require_positions(item_ids, pdf["item_idx"].to_numpy(), "EASE items")
    return gram(binary_matrix(users, items, int(users.max(initial=-1)) + 1, item_ids.size))


class EaseScorer:
    """score(u, i) = sum of B[j, i] over the user's training items j (scoring.py's protocol)."""

    def __init__(self, weights: np.ndarray):
        self.weights = weights

    def needs_features(self) -> bool:
        return False

    def scores(self, features, train_pos: list[np.ndarray]) -> np.ndarray:
        n = self.weights.shape[0]
        rows = np.repeat(np.arange(len(train_pos)), [p.size for p in train_pos])
        cols = np.concatenate(train_pos) if train_pos else np.zeros(0, dtype=np.int64)
        x = sparse.csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)),
                              shape=(len(train_pos), n))
        return np.asarray(x @ self.weights, dtype=np.float32)


def choose_lambda(score: Callable[[float], float], grid=LAMBDA_GRID,
                  start: float = START) -> tuple[float, dict[float, float]]:
    """The grid value with the best validation score, found by walking from `start` towards
    the better neighbour until the score stops improving (one inversion per visited value;
    the score is assumed unimodal in log λ; ties keep the value visited first). Returns
    (λ, {λ: score} of the visited values)."""
    grid = sorted(grid)
    i = int(np.argmin([abs(np.log(v / start)) for v in grid]))
    seen = {grid[i]: score(grid[i])}
    for step in (1, -1):
        j = i
        while 0 <= j + step < len(grid):
            v = grid[j + step]
            seen[v] = score(v)
            if seen[v] <= seen[grid[j]]:
                break
            j += step
        if j != i:  # improved in this direction: the other one cannot be better (unimodal)
            break
    return max(seen, key=seen.get), seen  # ties: the first visited (the start first)

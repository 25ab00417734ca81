"""Row solvers of implicit ALS inside one partition (NumPy, no Spark, no Dagster).

For a row u with items I_u, confidences c (preference 1 on each) and the other side's factors
Y (YᵀY precomputed once per half-step and shared by every row):

    A_u = YᵀY + Y_uᵀ diag(c − 1) Y_u + λ_u I,   b_u = Y_uᵀ c,   x_u = A_u⁻¹ b_u

λ_u = λ·|I_u|^ν under MLlib's convention (scale_reg=True; ν = reg_exponent, 1 in MLlib, as in
Rendle, Krichene, Zhang & Koren, "Revisiting the Performance of iALS on Item Recommendation
Benchmarks", 2022), else λ.
- exact: forms A_u (O(|I_u| r²)) and solves all rows of a block in one batched LAPACK
         solve (LU on the symmetric positive definite A_u: exact to rounding). The same
         solve (solve_systems) finishes full gridify's summed partials and fold-in.
- cg:    a few conjugate-gradient steps from the previous x_u (Takács, Pilászy & Tikk,
         "Applications of the Conjugate Gradient Method for Implicit Feedback Collaborative
         Filtering", 2011; as `implicit` does), never forming A_u: each step costs
         O(|I_u| r + r²). Compiled with Numba, in float32: in NumPy the same loop spends most
         of its time in per-row call overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np


def row_reg(counts: np.ndarray, reg: float, scale_reg: bool,
            exponent: float = 1.0) -> np.ndarray:
    """λ_u per row: λ times the row's rating count to the power `exponent` (MLlib's
    convention: 1) or a plain λ."""
    if not scale_reg:
        return reg * np.ones(counts.size)
    counts = counts.astype(np.float64)
    return reg * (counts if exponent == 1.0 else counts ** exponent)


EXACT_CHUNK = 2048  # rows whose r x r systems are formed at once (bounded memory per task)


def solve_systems(a: np.ndarray, b: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """x_u = (A_u + λ_u I)⁻¹ b_u for a stack of r x r systems (float64; `a` is changed in
    place). The one exact solve of every engine and of fold-in. A singular system (only with
    λ = 0 and fewer ratings than the rank) gets its least-squares solution."""
    rank = a.shape[-1]
    diag = np.arange(rank)
    a[:, diag, diag] += lam[:, None]
    try:
        return np.linalg.solve(a, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.stack([np.linalg.lstsq(a_u, b_u, rcond=None)[0] for a_u, b_u in zip(a, b)])


def solve_exact(y: np.ndarray, yty: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                conf: np.ndarray, reg: float, scale_reg: bool = True,
                reg_exponent: float = 1.0) -> np.ndarray:
    """Exact solutions for every row of a CSR block (float64 arithmetic, float32 result),
    EXACT_CHUNK rows at a time so a block of any size needs a bounded r x r stack. Rows
    without ratings get zeros."""
    n_rows, rank = indptr.size - 1, y.shape[1]
    counts = np.diff(indptr)
    lam = row_reg(counts, reg, scale_reg, reg_exponent)
    out = np.zeros((n_rows, rank), dtype=np.float32)
    for start in range(0, n_rows, EXACT_CHUNK):
        stop = min(start + EXACT_CHUNK, n_rows)
        a = np.broadcast_to(yty, (stop - start, rank, rank)).copy()
        b = np.zeros((stop - start, rank))
        for u in range(start, stop):
            lo, hi = indptr[u], indptr[u + 1]
            if lo == hi:
                continue
            yi = y[indices[lo:hi]].astype(np.float64)
            c = conf[lo:hi].astype(np.float64)
            a[u - start] += (yi.T * (c - 1.0)) @ yi
            b[u - start] = yi.T @ c
        out[start:stop] = solve_systems(a, b, lam[start:stop])
    out[counts == 0] = 0.0
    return out


ALIGN = 64  # bytes: a cache line, and the widest SIMD register


def aligned(a: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous copy of `a` whose data starts on an ALIGN-byte boundary. fastmath lets
    LLVM vectorise the kernel's sums, and how it splits a vectorised sum depends on where the
    arrays lie in memory: unaligned, the same inputs gave factors an ulp apart from one
    process to the next. Aligned (and the rows of a matrix at fixed offsets from there), a
    fit is bit-identical whatever the process, on one machine (another processor's BLAS and
    vector units round otherwise)."""
    a = np.asarray(a, dtype=dtype)
    size = a.size * a.itemsize
    buf = np.empty(size + ALIGN, dtype=np.uint8)
    start = (-buf.ctypes.data) % ALIGN
    out = buf[start:start + size].view(dtype).reshape(a.shape)
    out[...] = a
    return out


# Over 60 lines on purpose: one compiled loop nest (residual, then CG steps) per row, the
# scratch rows reused across rows, with no call per rating; the steps mirror the formulas in
# the comments one for one.
@numba.njit(cache=True, fastmath=True, nogil=True)  # nogil: tuning's trials run in threads
def _cg_rows(y, yty, indptr, indices, conf, lam, x0, steps, out, scratch):  # pragma: no cover
    rank = y.shape[1]  # scratch: 4 aligned rows (x, r, p, ap) of at least rank floats
    x = scratch[0, :rank]
    r = scratch[1, :rank]
    p = scratch[2, :rank]
    ap = scratch[3, :rank]
    for u in range(indptr.size - 1):
        lo, hi = indptr[u], indptr[u + 1]
        if lo == hi:
            continue
        for k in range(rank):
            x[k] = x0[u, k]
        # r = b - A x = Σ_i (c_i - (c_i - 1) y_i·x) y_i - YᵀY x - λ_u x
        for k in range(rank):
            acc = np.float32(0.0)
            for j in range(rank):
                acc += yty[k, j] * x[j]
            r[k] = -acc - lam[u] * x[k]
        for t in range(lo, hi):
            i = indices[t]
            d = np.float32(0.0)
            for k in range(rank):
                d += y[i, k] * x[k]
            w = conf[t] - (conf[t] - np.float32(1.0)) * d
            for k in range(rank):
                r[k] += w * y[i, k]
        rs_old = np.float32(0.0)
        for k in range(rank):
            p[k] = r[k]
            rs_old += r[k] * r[k]
        for _ in range(steps):
            if rs_old < 1e-20:
                break
            for k in range(rank):  # ap = (YᵀY + λ_u I) p + Σ_i (c_i - 1)(y_i·p) y_i
                acc = np.float32(0.0)
                for j in range(rank):
                    acc += yty[k, j] * p[j]
                ap[k] = acc + lam[u] * p[k]
            for t in range(lo, hi):
                i = indices[t]
                d = np.float32(0.0)
                for k in range(rank):
                    d += y[i, k] * p[k]
                w = (conf[t] - np.float32(1.0)) * d
                for k in range(rank):
                    ap[k] += w * y[i, k]
            pap = np.float32(0.0)
            for k in range(rank):
                pap += p[k] * ap[k]
            alpha = rs_old / pap
            rs_new = np.float32(0.0)
            for k in range(rank):
                x[k] += alpha * p[k]
                r[k] -= alpha * ap[k]
                rs_new += r[k] * r[k]
            beta = rs_new / rs_old
            for k in range(rank):
                p[k] = r[k] + beta * p[k]
            rs_old = rs_new
        for k in range(rank):
            out[u, k] = x[k]


def solve_cg(y: np.ndarray, yty: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
             conf: np.ndarray, reg: float, x0: np.ndarray, steps: int = 3,
             scale_reg: bool = True, reg_exponent: float = 1.0) -> np.ndarray:
    """A few CG steps per row from x0 (the row's previous factors), in a Numba-compiled loop
    in float32 arithmetic, as `implicit` does: one pass over the row's ratings per step.
    float32 lets the compiled loops use twice the SIMD lanes (benchmarks/README.md), with
    results within rounding of the float64 loop."""
    n_rows = indptr.size - 1
    lam = row_reg(np.diff(indptr), reg, scale_reg, reg_exponent).astype(np.float32)
    rank = y.shape[1]
    out = aligned(np.zeros((n_rows, rank)), np.float32)
    lanes = ALIGN // 4
    scratch = aligned(np.zeros((4, -(-rank // lanes) * lanes)), np.float32)
    _cg_rows(aligned(y, np.float32), aligned(yty, np.float32),
             np.ascontiguousarray(indptr, np.int64), np.ascontiguousarray(indices, np.int64),
             aligned(conf, np.float32), aligned(lam, np.float32),
             aligned(x0, np.float32), int(steps), out, scratch)
    return out


@dataclass(frozen=True)
class ExactRows:
    """The exact row solver of a fit: x = solver(Y, YᵀY, indptr, others, conf, x0) for a CSR
    block of rows (x0, the previous factors, is not needed)."""

    reg: float
    scale_reg: bool
    reg_exponent: float = 1.0
    needs_start: ClassVar[bool] = False
    float64_gram: ClassVar[bool] = True  # Gram partials in float64, as the solve uses

    def __call__(self, y, yty, indptr, indices, conf, x0=None) -> np.ndarray:
        return solve_exact(y, yty, indptr, indices, conf, self.reg, self.scale_reg,
                           self.reg_exponent)


@dataclass(frozen=True)
class CGRows:
    """The conjugate-gradient row solver of a fit: a few steps from x0, the rows' previous
    factors."""

    reg: float
    scale_reg: bool
    steps: int
    reg_exponent: float = 1.0
    needs_start: ClassVar[bool] = True
    float64_gram: ClassVar[bool] = False  # the float32 kernel could not use more

    def __call__(self, y, yty, indptr, indices, conf, x0=None) -> np.ndarray:
        return solve_cg(y, yty, indptr, indices, conf, self.reg, x0, self.steps,
                        self.scale_reg, self.reg_exponent)


RowSolver = ExactRows | CGRows


def row_solver(params) -> RowSolver:
    """The row solver of an ALSParams, chosen once per fit and handed to every half-step."""
    if params.solver == "cg":
        return CGRows(params.reg_param, params.scale_reg, params.cg_steps, params.reg_exponent)
    return ExactRows(params.reg_param, params.scale_reg, params.reg_exponent)

"""Distributional metrics and bootstrap confidence intervals (NumPy only)."""

from __future__ import annotations

import numpy as np


def coverage(counts) -> float:
    """Share of catalogue items recommended at least once (counts: one entry per item)."""
    x = np.asarray(counts)
    return float((x > 0).mean()) if x.size else 0.0


def gini(counts) -> float:
    """Gini coefficient of how often each catalogue item is recommended (0 equal, 1 one item)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def entropy(counts) -> float:
    """Shannon entropy (bits) of the recommendation distribution over items."""
    x = np.asarray(counts, dtype=np.float64)
    p = x[x > 0] / x.sum() if x.sum() > 0 else np.zeros(0)
    return float(-(p * np.log2(p)).sum())


def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """(mean, low, high): percentile bootstrap interval of the mean over users."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    step = max(1, min(n_boot, 20_000_000 // v.size))  # bound the index matrix's memory
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        means[start:start + b] = v[rng.integers(0, v.size, size=(b, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))

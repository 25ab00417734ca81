"""Approximate top-k: a hierarchical navigable small-world graph over the candidate matrix
(Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs", 2018), from faiss-cpu (`IndexHNSWFlat`),
searched by inner product directly on the graph (Morozov & Babenko, "Non-metric Similarity
Graphs for Maximum Inner Product Search", 2018). Why faiss's HNSW rather than hnswlib, an IVF
index or the Euclidean reduction of inner product: benchmarks/README.md.

The index is built once, in the driver, and travels to the tasks serialised (a NumPy byte
array, so PySpark ships it like the exact path's candidate matrix); each task searches it on
one thread. A query that must skip candidates (already played, itself) asks the graph for k
plus that many, so the skipped ones never crowd out a result; the returned candidates are
scored again exactly (x . y in float32), ordered as the exact path orders them (score, then
the smaller id) and masked as it masks them. How close it comes to exact is measured, not
assumed: `recall` on a sample of queries, against `topk.top_k_rows`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .. import setting
from .topk import exclusions, no_rows

METHODS = ("exact", "approximate")


@dataclass(frozen=True)
class TopKParams:
    """How the k best candidates of a query are found."""

    method: str = setting("exact", "exact: every candidate scored (BLAS products, a partial "
                          "sort); approximate: an HNSW graph (faiss) searched by inner "
                          "product, its recall@N against exact measured on a sample.")
    ef_search: int = setting(128, "approximate: candidates the graph search keeps (faiss "
                             "efSearch), raised to what a query needs; higher is slower and "
                             "closer to exact.")
    graph_degree: int = setting(16, "approximate: links per node of the graph (faiss M).")
    ef_construction: int = setting(100, "approximate: search breadth while building.")
    recall_floor: float = setting(0.95, "approximate: the recall check fails when recall@N "
                                  "against exact, on the sample, is below this.")
    recall_sample: int = setting(2000, "approximate: queries (a seeded sample) on which "
                                 "recall@N against exact is measured.")
    seed: int = setting(7, "Seed of the recall sample.")

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"top_k.method must be one of {METHODS}, not {self.method!r}")
        if not 0.0 <= self.recall_floor <= 1.0:
            raise ValueError(f"top_k.recall_floor must be in [0, 1], not {self.recall_floor}")


class AnnIndex:
    """An HNSW inner-product index over `cands` (rows in the order of the caller's sorted
    candidate ids); picklable: the graph travels as bytes and is rebuilt on first use."""

    def __init__(self, cands: np.ndarray, params: TopKParams = TopKParams(),
                 threads: int | None = None):
        import faiss

        self.cands = np.ascontiguousarray(cands, dtype=np.float32)
        self.ef_search = params.ef_search
        dim = self.cands.shape[1] if self.cands.ndim == 2 else 0
        faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
        index = faiss.IndexHNSWFlat(max(dim, 1), params.graph_degree,
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.ef_construction
        if self.cands.shape[0] and dim:
            index.add(self.cands)
        self._bytes = faiss.serialize_index(index)
        self._index = index

    def __getstate__(self):
        # The serialised graph holds the vectors too: they travel once, and the receiving
        # side reads them back from the graph (_live).
        empty = not self.cands.size
        return {"cands": self.cands if empty else None, "shape": self.cands.shape,
                "ef_search": self.ef_search, "_bytes": self._bytes}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._index = None

    def _live(self):
        """The faiss index, deserialised on first use, and the vectors read back from it."""
        import faiss

        if self._index is None:
            self._index = faiss.deserialize_index(self._bytes)
        if self.cands is None:
            self.cands = self._index.reconstruct_n(0, self._index.ntotal).reshape(self.shape)
        return self._index

    @property
    def nbytes(self) -> int:
        """What travels to the tasks: the serialised graph, with its copy of the vectors."""
        return int(self._bytes.nbytes)

    def search(self, queries: np.ndarray, k: int, threads: int = 1) -> np.ndarray:
        """Positions (n_queries, k) of the graph's k best by inner product; -1 where it found
        fewer."""
        import faiss

        index = self._live()
        faiss.omp_set_num_threads(threads)
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        _, labels = index.search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                 params=params)
        return labels

    def top_k_rows(self, query_ids: np.ndarray, queries: np.ndarray, cand_ids: np.ndarray,
                   k: int, excludes=None, exclude_self: bool = False, threads: int = 1):
        """As topk.top_k_rows, from the graph: (query, rank, candidate, score) arrays."""
        n = cand_ids.size
        kk = min(k, n)
        if kk == 0 or query_ids.size == 0:
            return no_rows()
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        self._live()  # the vectors, for the exact scores below
        lengths = (np.array([0 if e is None else len(e) for e in excludes], dtype=np.int64)
                   if excludes is not None else np.zeros(query_ids.size, dtype=np.int64))
        need = np.minimum(kk + lengths + int(exclude_self), n)
        # Queries are searched in groups asking the same number of results (powers of two),
        # so one long exclusion list does not widen everyone's search.
        width = np.minimum(1 << np.ceil(np.log2(need)).astype(np.int64), n)
        labels = np.full((query_ids.size, int(width.max())), -1, dtype=np.int64)
        for w in np.unique(width):
            rows = np.flatnonzero(width == w)
            labels[rows, :w] = self.search(queries[rows], int(w), threads)
        found = labels >= 0
        safe = np.where(found, labels, 0)
        scores = np.einsum("qr,qkr->qk", queries, self.cands[safe]).astype(np.float32)
        scores[~found] = -np.inf
        ex_ptr, ex_pos = exclusions(cand_ids, query_ids, excludes, exclude_self)
        if ex_pos.size:
            banned = np.repeat(np.arange(query_ids.size), np.diff(ex_ptr)) * n + ex_pos
            scores[np.isin(np.arange(query_ids.size)[:, None] * n + safe, banned)] = -np.inf
        ids = cand_ids[safe]
        order = np.lexsort((ids, -scores), axis=1)[:, :kk]
        top = np.take_along_axis(scores, order, axis=1)
        best = np.take_along_axis(ids, order, axis=1)
        rank = np.broadcast_to(np.arange(1, kk + 1), best.shape)
        keep = np.isfinite(top)
        q = np.broadcast_to(query_ids[:, None], best.shape)
        return q[keep], rank[keep], best[keep], top[keep]


def recall(exact_rows: tuple, approximate_rows: tuple) -> float:
    """recall@k: the share of the exact (query, candidate) rows that the approximate rows
    also hold (1.0 when exact returned nothing)."""
    eq, _, ec, _ = exact_rows
    aq, _, ac, _ = approximate_rows
    if eq.size == 0:
        return 1.0
    span = int(max(ec.max(initial=0), ac.max(initial=0))) + 1
    return float(np.isin(eq.astype(np.int64) * span + ec,
                         aq.astype(np.int64) * span + ac).mean())

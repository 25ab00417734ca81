"""Score every user against the whole catalogue once, and derive all per-user metrics from it.

A *scorer* turns a batch of users into a dense (users x catalogue) score matrix:
  - DotScorer: user vectors . item matrix (ALS factors; popularity as a 1-d factor)
  - KnnScorer: the user's training items (a binary row) times a sparse item-item similarity

Per batch of users (in a Spark task, or in the driver when the scores are few: score_local)
we mask training items, take the top K, and compute the ranking metrics
(metrics.ranking_metrics_at_k), AUC, intra-list diversity and novelty. Catalogue-sized arrays
travel to the executors as broadcast closures; no users x items cross join is ever
materialised.

AUC here: over held-out items that are in the catalogue (positives) against every catalogue
item the user neither trained on nor held out (negatives), ties counted as one half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ids import positions
from ..serving.topk import QUERY_BATCH, Candidates, batch_size, best_positions, scratch
from .metrics import RANKING_METRICS, ranking_metrics_at_k

PER_USER_COLUMNS = (*RANKING_METRICS, "auc", "ild", "novelty")
BATCH = 256
# Score in this process, not on the executors, when (users scored) x (catalogue items) is at
# most this: below it, a Spark job per model (its Python workers, the scorer shipped to them)
# costs more than the scores, and the lists are collected once for every model.
LOCAL_SCORING_CELLS = 50_000_000


@dataclass
class Catalogue:
    """The items a model can recommend, with what diversity and novelty are measured by."""

    item_ids: np.ndarray  # sorted item idx
    unit_factors: np.ndarray | None  # rows aligned with item_ids, for intra-list diversity
    listeners: np.ndarray  # training listeners per item, for novelty
    n_users: int
    fit_rows: int = 0  # (user, item) rows of the fit part

    def positions(self, items) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the catalogue, whether each item is in it): ids.positions."""
        return positions(self.item_ids, items)


class DotScorer:
    def __init__(self, item_matrix: np.ndarray):
        self.item_matrix = np.ascontiguousarray(item_matrix, dtype=np.float32)

    def needs_features(self) -> bool:
        return True

    def scores(self, features: np.ndarray, train_pos: list[np.ndarray]) -> np.ndarray:
        out = scratch(features.shape[0], self.item_matrix.shape[0])
        return np.matmul(features, self.item_matrix.T, out=out)


class KnnScorer:
    """Item-based kNN: score(u, i) = sum of cosine(i, j) over the user's training items j."""

    def __init__(self, similarity):  # scipy.sparse CSR, catalogue x catalogue
        self.similarity = similarity

    def needs_features(self) -> bool:
        return False

    def scores(self, features, train_pos: list[np.ndarray]) -> np.ndarray:
        from scipy import sparse

        n = self.similarity.shape[0]
        rows = np.concatenate([np.full(p.size, r) for r, p in enumerate(train_pos)]
                              ) if train_pos else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(train_pos) if train_pos else np.zeros(0, dtype=np.int64)
        x = sparse.csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)),
                              shape=(len(train_pos), n))
        return (x @ self.similarity).toarray(out=scratch(len(train_pos), n))


def auc(scores: np.ndarray, positives: np.ndarray, excluded: np.ndarray | None = None) -> float:
    """P(score of a positive > score of a negative), ties one half; the negatives are every
    other entry of the row but `excluded` (e.g. the training items); nan without both.

    Counted over the whole row, then the removed entries' share taken back, so no negative
    index array is built: a few positives are compared with every entry in one compiled
    pass, many are ranked in the sorted row."""
    removed = np.union1d(positives, excluded if excluded is not None else positives)
    n_neg = scores.size - removed.size
    if positives.size == 0 or n_neg <= 0:
        return float("nan")
    pos = np.ascontiguousarray(scores[positives])
    if positives.size <= 16:
        below, ties = _below_and_ties(np.ascontiguousarray(scores), pos)
    else:
        ranked = np.sort(scores)
        below = np.searchsorted(ranked, pos, side="left")
        ties = np.searchsorted(ranked, pos, side="right") - below
    gone = scores[removed]
    below = below - (gone[None, :] < pos[:, None]).sum(axis=1)
    ties = ties - (gone[None, :] == pos[:, None]).sum(axis=1)
    return float((below + 0.5 * ties).sum() / (positives.size * n_neg))


@numba.njit(cache=True)
def _below_and_ties(row, pos):  # pragma: no cover (compiled; tested through auc)
    below = np.zeros(pos.size, dtype=np.int64)
    ties = np.zeros(pos.size, dtype=np.int64)
    for t in range(pos.size):  # branch-free sums, which the compiler vectorises
        p = pos[t]
        b = 0
        e = 0
        for j in range(row.size):
            b += row[j] < p
            e += row[j] == p
        below[t] = b
        ties[t] = e
    return below, ties


def intra_list_diversity(unit_rows: np.ndarray) -> float:
    """Mean pairwise (1 - cosine) among the recommended items; nan for fewer than two."""
    n = unit_rows.shape[0]
    if n < 2:
        return float("nan")
    sims = unit_rows @ unit_rows.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def score_batch(cat: Catalogue, scorer, user_ids, features, trains, tests, k: int) -> pd.DataFrame:
    """Per-user metrics and top-k lists for one batch of users (pure NumPy)."""
    train_pos = []
    for tr in trains:
        pos, ok = cat.positions(tr if tr is not None else [])
        train_pos.append(pos[ok])
    feats = (np.stack(features).astype(np.float32) if scorer.needs_features()
             else None)
    scores = scorer.scores(feats, train_pos)
    for r, pos in enumerate(train_pos):
        scores[r, pos] = -np.inf
    n = cat.item_ids.size
    best, best_scores = best_positions(scores, cat.item_ids, min(k, n))
    out = []
    for r, uid in enumerate(user_ids):
        s = scores[r]
        top = best[r][np.isfinite(best_scores[r])]
        recs = cat.item_ids[top]
        relevant = np.asarray(tests[r], dtype=np.int64)
        row = ranking_metrics_at_k(recs, relevant, k)
        tpos, tok = cat.positions(relevant)
        row["auc"] = auc(s, tpos[tok], train_pos[r])
        row["ild"] = (intra_list_diversity(cat.unit_factors[top])
                      if cat.unit_factors is not None else float("nan"))
        row["novelty"] = (float(np.mean(-np.log2(np.maximum(cat.listeners[top], 1) / cat.n_users)))
                          if top.size else float("nan"))
        row["user_idx"] = int(uid)
        row["n_train"] = int(train_pos[r].size)
        row["recs"] = recs.astype(np.int32)
        out.append(row)
    return pd.DataFrame(out, columns=["user_idx", "n_train", *PER_USER_COLUMNS, "recs"])


def user_lists(train: DataFrame, test: DataFrame) -> DataFrame:
    """(user_idx, test, train): each held-out user's held-out and training items as lists
    (train null for a user without training plays)."""
    tr = train.groupBy("user_idx").agg(F.collect_list("item_idx").alias("train"))
    te = test.groupBy("user_idx").agg(F.collect_list("item_idx").alias("test"))
    return te.join(tr, "user_idx", "left")


def score_local(lists: pd.DataFrame, cat: Catalogue, scorer, k: int,
                features: np.ndarray | None = None) -> pd.DataFrame:
    """score_users in this process: `lists` is user_lists collected (a bounded number of
    users), `features` the users' vectors as rows aligned with it (for a dot scorer). For a
    scorer too large to ship to the executors (EASE's dense items x items weights), and for
    every model when the scores are few (LOCAL_SCORING_CELLS)."""
    step = batch_size(cat.item_ids.size, BATCH)
    if features is None:
        features = [None] * len(lists)
    parts = [score_batch(cat, scorer, lists["user_idx"].to_numpy()[s:s + step],
                         features[s:s + step], list(lists["train"].iloc[s:s + step]),
                         list(lists["test"].iloc[s:s + step]), k)
             for s in range(0, len(lists), step)]
    return (pd.concat(parts, ignore_index=True) if parts else
            pd.DataFrame(columns=["user_idx", "n_train", *PER_USER_COLUMNS, "recs"]))


def feature_rows(vectors, dim: int) -> np.ndarray:
    """Users' vectors (arrays, None for a user without one) as float32 rows: zeros for None,
    so a test user without a vector is scored, not dropped."""
    rows = np.zeros((len(vectors), dim), dtype=np.float32)
    for r, v in enumerate(vectors):
        if v is not None:
            rows[r] = v
    return rows


def score_users(users: DataFrame, train: DataFrame, test: DataFrame, cat: Catalogue, scorer,
                k: int, lists: DataFrame | None = None) -> DataFrame:
    """Per-user metrics for every user with held-out items.

    users: (user_idx, features) for dot scorers, or just (user_idx) for kNN. A test user
    without a vector (e.g. no factors) is scored with zeros, not dropped. `lists`: user_lists
    of (train, test) when the caller made them already (to score several models).
    """
    joined = user_lists(train, test) if lists is None else lists
    if scorer.needs_features():
        joined = joined.join(users.select("user_idx", "features"), "user_idx", "left")
    else:
        joined = joined.withColumn("features", F.lit(None).cast("array<float>"))
    dim = scorer.item_matrix.shape[1] if scorer.needs_features() else 0
    schema = ("user_idx int, n_train int, " + ", ".join(f"{c} double" for c in PER_USER_COLUMNS)
              + ", recs array<int>")

    step = batch_size(cat.item_ids.size, BATCH)

    def run(batches):
        for pdf in batches:
            for start in range(0, len(pdf), step):
                part = pdf.iloc[start:start + step]
                feats = feature_rows(part["features"], dim)
                yield score_batch(cat, scorer, part["user_idx"].to_numpy(), feats,
                                  list(part["train"]), list(part["test"]), k)

    return joined.mapInPandas(run, schema)


class LocalRanker:
    """One ranking metric@k of any model's vectors for a fixed set of users, computed in this
    process: tuning's validation score at each checkpoint of each trial. `lists` is
    user_lists collected (one row per user with held-out items). The same top-k (by
    topk.Candidates: no whole score row kept) and metric definitions as score_batch,
    without its AUC, diversity and novelty."""

    def __init__(self, lists: pd.DataFrame, cat: Catalogue, k: int, metric: str):
        lists = lists.sort_values("user_idx")
        self.cat, self.k, self.metric = cat, min(k, cat.item_ids.size), metric
        self.user_ids = lists["user_idx"].to_numpy(dtype=np.int64)
        self.train = [np.asarray(tr if tr is not None else [], dtype=np.int64)
                      for tr in lists["train"]]
        self.relevant = [np.asarray(t, dtype=np.int64) for t in lists["test"]]

    def __call__(self, user_ids: np.ndarray, user_matrix: np.ndarray,
                 item_matrix: np.ndarray) -> np.ndarray:
        """Per-user metric, in user_idx order: users' vectors (rows of user_matrix, ids
        ascending in user_ids; a user without one scores as zeros) against item_matrix (rows
        following the catalogue)."""
        rows = np.zeros((self.user_ids.size, item_matrix.shape[1]), dtype=np.float32)
        pos, ok = positions(user_ids, self.user_ids)
        rows[ok] = user_matrix[pos[ok]]
        out = np.empty(self.user_ids.size, dtype=np.float64)
        items = Candidates(self.cat.item_ids, item_matrix)
        for start in range(0, self.user_ids.size, QUERY_BATCH):
            end = min(start + QUERY_BATCH, self.user_ids.size)
            batch = np.arange(start, end)  # the users' positions in the lists: their rows
            q, _, recs, _ = items.top_k_rows(batch, rows[start:end], self.k,
                                             self.train[start:end])
            cuts = np.searchsorted(q, batch[1:])  # rows come per query, in query order
            for r, user_recs in zip(batch, np.split(recs, cuts)):
                out[r] = ranking_metrics_at_k(user_recs, self.relevant[r], self.k)[self.metric]
        return out

"""Evaluation of a model configuration on held-out data, against baselines, with intervals.

The model is fitted on the fit part (train, or train + validation for the final test), and
ALS, popularity, item-kNN and EASE (ease.py, for a catalogue within ease_max_items) are all
scored by the same code (scoring.score_batch: on the executors, or in this process for
EASE's dense weights and for every model when the scores are few, LOCAL_SCORING_CELLS) on the
held-out part: items the user played in the fit part are never recommended, metrics count
only held-out items. Users are evaluated when they have held-out items; held-out items missing
from the fit part can be recommended by no model and are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..als import ALSParams, train_als
from ..als.confidence import ConfidenceParams, confidence_matrix
from ..ids import factor_matrix
from ..serving.topk import normalize_rows
from .baselines import item_cosine_neighbours, similarity_matrix
from .ease import EaseScorer, choose_lambda, ease_weights, gram_of
from .metrics import RANKING_METRICS, SELECTION_K, SELECTION_METRIC
from .scoring import (
    LOCAL_SCORING_CELLS,
    Catalogue,
    DotScorer,
    KnnScorer,
    feature_rows,
    score_local,
    score_users,
    user_lists,
)
from .stats import bootstrap_ci, coverage, entropy, gini

MODELS = ("als", "popularity", "item_knn", "ease")  # ease: when the catalogue is small enough
SEGMENTS = ("light", "medium", "heavy")
TABLE_COLUMNS = ["model", "metric", "k", "value", "segment", "ci_low", "ci_high"]


@dataclass
class EvaluationResult:
    table: pd.DataFrame  # TABLE_COLUMNS
    per_user: pd.DataFrame  # model, user_idx, n_train, segment, metrics...
    counts: dict = field(default_factory=dict)
    # The fit's item factors (ids ascending, matrix): what the other held-out scores reuse.
    item_ids: np.ndarray | None = None
    item_factors: np.ndarray | None = None

    def models(self) -> list[str]:
        """The models scored (MODELS' order; EASE only when it was computed)."""
        return [m for m in MODELS if (self.table.model == m).any()]

    def best(self, metric: str) -> str:
        """The scored model with the highest value of `metric` (ties: the earlier in MODELS)."""
        return max(self.models(), key=lambda m: (self.value(m, metric), -MODELS.index(m)))

    def value(self, model: str, metric: str, segment: str = "all") -> float:
        t = self.table
        row = t[(t.model == model) & (t.metric == metric) & (t.segment == segment)]
        return float(row.value.iloc[0])

    def interval(self, model: str, metric: str) -> tuple[float, float]:
        t = self.table
        row = t[(t.model == model) & (t.metric == metric) & (t.segment == "all")].iloc[0]
        return float(row.ci_low), float(row.ci_high)


def has_timestamps(interactions: DataFrame) -> bool:
    row = interactions.agg(F.count("*").alias("n"), F.count("first_ts").alias("ts")).first()
    return row["n"] > 0 and row["n"] == row["ts"]


def build_catalogue(fit: DataFrame, item_factors: DataFrame | None = None) -> Catalogue:
    """The fit part's items with their listeners; with item factors, their unit vectors.
    The (user, item) pairs are collected through Arrow and counted here (two Spark
    aggregations, one of them a distinct count, cost several times as much at volume)."""
    pairs = fit.select("user_idx", "item_idx").toArrow()
    users = pairs.column("user_idx").to_numpy().astype(np.int64)
    items = pairs.column("item_idx").to_numpy().astype(np.int64)
    distinct = np.unique((users << 32) | items)  # ids are non-negative int32
    listeners = np.bincount(distinct & 0xFFFFFFFF)  # dense ids: counted, not sorted again
    item_ids = np.flatnonzero(listeners)
    cat = Catalogue(item_ids, None, listeners[item_ids].astype(np.float64),
                    int(np.count_nonzero(np.bincount(distinct >> 32))), int(users.size))
    if item_factors is not None:
        cat.unit_factors = normalize_rows(factors_on_catalogue(cat, item_factors))
    return cat


def factors_on_catalogue(cat: Catalogue, item_factors: DataFrame) -> np.ndarray:
    """Item factors as a matrix whose rows follow the catalogue (zeros where an item has none)."""
    f_ids, f_mat = factor_matrix(item_factors)
    pos, ok = cat.positions(f_ids)
    mat = np.zeros((cat.item_ids.size, f_mat.shape[1]), dtype=np.float32)
    mat[pos[ok]] = f_mat[ok]
    return mat


def held_out_counts(fit: DataFrame, held: DataFrame) -> dict:
    """Held-out rows, held-out users without a play in the fit part, and held-out rows whose
    item has none: one Spark query."""
    users = fit.select("user_idx").distinct().withColumn("_user_seen", F.lit(True))
    items = fit.select("item_idx").distinct().withColumn("_item_seen", F.lit(True))
    row = (held.join(users, "user_idx", "left").join(items, "item_idx", "left")
           .agg(F.count("*").alias("rows"),
                F.countDistinct(F.when(F.col("_user_seen").isNull(), F.col("user_idx")))
                .alias("cold_users"),
                F.count(F.when(F.col("_item_seen").isNull(), 1)).alias("cold_items"))
           .first())
    return {"held_out_rows": int(row["rows"]), "cold_users": int(row["cold_users"]),
            "held_out_rows_with_cold_items": int(row["cold_items"])}


def fit_als(fit: DataFrame, confidence: ConfidenceParams, als: ALSParams,
            n_ratings: int | None = None, after_iteration=None):
    """ALS on the confidence matrix of `fit` (n_ratings: its rows, when already counted;
    after_iteration: train_als')."""
    return train_als(confidence_matrix(fit, confidence), als, n_ratings,
                     after_iteration=after_iteration)


def score_als(factors, fit: DataFrame, held: DataFrame, cat: Catalogue, k: int) -> DataFrame:
    """One model's per-user metrics as a Spark job (score_users) with ALS's vectors."""
    users = factors.user_factors.withColumnRenamed("idx", "user_idx")
    return score_users(users, fit, held, cat, DotScorer(factors_on_catalogue(
        cat, factors.item_factors)), k)


def _segments(n_train: pd.Series) -> pd.Series:
    lo, hi = np.quantile(n_train, [1 / 3, 2 / 3])
    return pd.Series(np.where(n_train <= lo, "light", np.where(n_train > hi, "heavy", "medium")),
                     index=n_train.index)


def sample_users(df: DataFrame, max_users: int, seed: int) -> DataFrame | None:
    """A seeded sample of at most max_users of df's users (user_idx), the same for the same
    data and seed whatever the partitioning; None when df has no more users than that (or
    max_users is 0: no sampling)."""
    return user_sample(df, max_users, seed)[0]


def user_sample(df: DataFrame, max_users: int, seed: int) -> tuple[DataFrame | None, int]:
    """sample_users, and how many users it keeps (every user's count when it keeps all)."""
    users = df.select("user_idx").distinct()
    n = users.count()
    if max_users <= 0 or n <= max_users:
        return None, n
    return (users.orderBy(F.xxhash64("user_idx", F.lit(seed)), "user_idx").limit(max_users)
            .persist()), max_users


def restrict(df: DataFrame, users: DataFrame | None) -> DataFrame:
    return df if users is None else df.join(F.broadcast(users), "user_idx")


@dataclass(frozen=True)
class EvaluationParams:
    """Test-set evaluation of the model's settings against popularity and item-kNN, and the
    publication gates."""

    k: int = setting(10, "Cut-off K of the ranking metrics.")
    primary_metric: Literal["precision", "recall", "ndcg", "map"] = setting(
        "precision", "Metric the publication gates compare.")
    min_lift: float = setting(
        0.0, "The gate also needs ALS >= popularity * (1 + min_lift) on the primary metric.")
    max_regression: float = setting(
        0.02, "Champion/challenger: the new model may be at most this share worse than the "
        "served one on the primary metric.")
    gate: bool = setting(
        True, "The two gates block publication. False only for toy data that cannot be judged "
        "(the seed's seven plays): the checks then report their numbers and never block.")
    n_bootstrap: int = setting(1000, "Bootstrap resamples over users.")
    seed: int = setting(0, "Seed of the bootstrap and of the user samples.")
    knn_neighbours: int = setting(100, "Neighbours per item for item-kNN.")
    max_users: int = setting(
        50_000, "Score a seeded sample of this many test users (the model is still fitted on "
        "all); 0 = every test user.")
    knn_max_users: int = setting(
        200_000, "item-kNN co-listening from a seeded sample of this many users; 0 = all.")
    knn_max_items_per_user: int = setting(
        1000, "item-kNN co-listening: at most this many items of one user (seeded sample); "
        "0 = all.")
    ease_max_items: int = setting(
        20_000, "EASE (Steck 2019) is computed when the catalogue has at most this many items "
        "(an items x items float32 inverse, one per lambda tried on validation); 0 = never.")


def ease_per_user(select: tuple[DataFrame, DataFrame] | None, scored,
                  cat: Catalogue, params: EvaluationParams) -> tuple[pd.DataFrame | None, dict]:
    """EASE's per-user test metrics, its lambda chosen on validation (fitted on train, scored
    on a sample of validation users by the selection metric), then refitted on `fit` and
    scored on `scored()` (user_lists of the scored users, collected); or None and the reason
    it was skipped."""
    n = cat.item_ids.size
    if params.ease_max_items <= 0 or n > params.ease_max_items:
        return None, {"ease/skipped": f"the catalogue has {n} items; ease_max_items is "
                      f"{params.ease_max_items}"}
    if select is None:
        return None, {"ease/skipped": "no validation part to choose lambda on"}
    train, validation = select
    val_users = sample_users(validation, params.max_users, params.seed)
    lists = user_lists(restrict(train, val_users), restrict(validation, val_users)).toPandas()
    if val_users is not None:
        val_users.unpersist()
    if lists.empty:
        return None, {"ease/skipped": "no validation users to choose lambda on"}

    def validation_score(lam: float) -> float:
        pu = score_local(lists, cat, EaseScorer(ease_weights(g, lam)), SELECTION_K)
        return float(pu[SELECTION_METRIC].mean())

    pairs = [df.select("user_idx", "item_idx").toPandas() for df in (train, validation)]
    g = gram_of(pairs[0], cat.item_ids)  # each part collected once; fit = train + validation
    lam, seen = choose_lambda(validation_score)
    g = None  # noqa: F841 (the train Gram matrix is not needed for the refit: free it first)
    weights = ease_weights(gram_of(pd.concat(pairs, ignore_index=True), cat.item_ids), lam)
    per_user = score_local(scored(), cat, EaseScorer(weights), params.k)
    tried = ", ".join(f"{v:g}: {seen[v]:.4f}" for v in sorted(seen))
    return per_user, {"ease/lambda": lam, "ease/lambdas_tried": len(seen),
                      f"ease/validation {SELECTION_METRIC}@{SELECTION_K} by lambda": tried}


def evaluate(fit: DataFrame, held: DataFrame, confidence: ConfidenceParams, als: ALSParams,
             params: EvaluationParams = EvaluationParams(),
             select: tuple[DataFrame, DataFrame] | None = None) -> EvaluationResult:
    """Fit on `fit`, score on `held`; `select` = (train, validation), whose union is `fit`,
    is where EASE's lambda is chosen (without it EASE is skipped). At volume, `max_users` > 0
    scores a seeded sample of that many held-out users (the model is still fitted on every
    user); item-kNN counts co-listening over a seeded sample of `knn_max_users` users, at most
    `knn_max_items_per_user` items each (0: no limit)."""
    seed, laps = params.seed, Laps()  # where the step's time goes, part by part
    fit, held = fit.persist(), held.persist()
    cat = build_catalogue(fit)
    factors = fit_als(fit, confidence, als, cat.fit_rows)
    item_matrix = factors_on_catalogue(cat, factors.item_factors)
    laps.lap("fit")
    cat.unit_factors = normalize_rows(item_matrix)  # diversity is measured in ALS's space
    knn_users = sample_users(fit, params.knn_max_users, seed)
    knn = KnnScorer(similarity_matrix(
        item_cosine_neighbours(restrict(fit, knn_users), params.knn_neighbours,
                               params.knn_max_items_per_user, seed), cat.item_ids))
    laps.lap("item_knn_neighbours")
    scored, n_scored = user_sample(held, params.max_users, seed)
    # Every model scores the same users: their plays are restricted and listed once.
    fit_s, held_s = restrict(fit, scored), restrict(held, scored)
    lists = user_lists(fit_s, held_s).persist()
    scorers = {"als": DotScorer(item_matrix),
               "popularity": DotScorer(cat.listeners.astype(np.float32)[:, None]),
               "item_knn": knn}
    local = n_scored * cat.item_ids.size <= LOCAL_SCORING_CELLS
    per_user, ease_info = per_user_metrics(factors, scorers, (fit_s, held_s, lists), cat,
                                           params, select, laps, local)
    models = [m for m in MODELS if m in set(per_user.model)]
    table = pd.DataFrame(metric_rows(per_user, models, cat, params), columns=TABLE_COLUMNS)
    held_counts = held_out_counts(fit, held)
    laps.lap("metrics_and_intervals")
    counts = {
        "fit_rows": int(cat.fit_rows), **held_counts,
        "evaluated_users": int((per_user.model == "als").sum()),
        "evaluated_users_sampled": int(scored is not None),
        "scored_in": "the driver" if local else "Spark",
        "knn_users_sampled": int(knn_users is not None),
        "catalogue_items": int(cat.item_ids.size),
        "als_fit_seconds": float(factors.timings["fit_seconds"]),
        **{f"seconds/{part}": float(v) for part, v in laps.seconds.items()},
        **ease_info,
    }
    for df in (fit, held, scored, knn_users, lists):
        if df is not None:
            df.unpersist()
    return EvaluationResult(table, per_user.drop(columns=["recs"]), counts, cat.item_ids,
                            item_matrix)


class Laps:
    """Seconds spent in each named part of a step, one part after the other."""

    def __init__(self):
        self.seconds, self._clock = {}, time.perf_counter()

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.seconds[part], self._clock = now - self._clock, now


def per_user_metrics(factors, scorers: dict, parts: tuple, cat: Catalogue,
                     params: EvaluationParams, select: tuple[DataFrame, DataFrame] | None,
                     laps: Laps, local: bool = False) -> tuple[pd.DataFrame, dict]:
    """One row of metrics per (model, scored user), users ascending: each of `scorers` (name
    -> scorer: ALS's vectors, then the baselines'), and EASE when the catalogue allows; each
    user's segment by its training plays; and what EASE reported. `parts` = (fit plays,
    held-out plays, user lists) of the scored users. `local`: the lists are collected once
    and every model scored in this process (score_local), not as a Spark job each."""
    fit_s, held_s, lists = parts
    users = factors.user_factors.withColumnRenamed("idx", "user_idx")
    ones = lists.select("user_idx").withColumn("features", F.array(F.lit(1.0).cast("float")))
    collected = None

    def collect() -> pd.DataFrame:  # the lists (with ALS's user vectors to score here), once
        nonlocal collected
        if collected is None:
            frame = (lists.join(users.select("user_idx", "features"), "user_idx", "left")
                     if local else lists)
            collected = frame.toPandas()
        return collected

    per_user = []
    for name, scorer in scorers.items():
        if local:
            dim = scorer.item_matrix.shape[1] if scorer.needs_features() else 0
            features = (feature_rows(collect()["features"], dim) if name == "als"
                        else np.ones((len(collect()), dim), dtype=np.float32))
            pdf = score_local(collect(), cat, scorer, params.k, features)
        else:  # one row of metrics per evaluated user: small by construction
            pdf = score_users(users if name == "als" else ones, fit_s, held_s, cat, scorer,
                              params.k, lists).toPandas()
        pdf.insert(0, "model", name)
        per_user.append(pdf.sort_values("user_idx", kind="stable"))
        laps.lap(f"score_{name}")
    ease, ease_info = ease_per_user(select, collect, cat, params)
    if ease is not None:
        ease.insert(0, "model", "ease")
        per_user.append(ease.sort_values("user_idx", kind="stable"))
        laps.lap("ease")
    per_user = pd.concat(per_user, ignore_index=True)
    segments = _segments(per_user[per_user.model == "als"].set_index("user_idx").n_train)
    per_user["segment"] = per_user.user_idx.map(segments)
    return per_user, ease_info


def metric_rows(per_user: pd.DataFrame, models: list[str], cat: Catalogue,
                params: EvaluationParams) -> list[tuple]:
    """The table's rows (TABLE_COLUMNS) from the per-user metrics: each model's mean of every
    metric (the primary one with its bootstrap interval over users), per segment for the
    ranking metrics, its catalogue coverage and concentration, and the paired bootstrap of
    ALS's difference from each other model on the primary metric."""
    k, primary, n_boot, seed = params.k, params.primary_metric, params.n_bootstrap, params.seed
    rows = []
    for name in models:
        pu = per_user[per_user.model == name]
        for metric in (*RANKING_METRICS, "auc", "ild", "novelty"):
            vals = pu[metric].dropna().to_numpy()
            mean, lo, hi = (bootstrap_ci(vals, n_boot, seed=seed) if metric == primary
                            else (float(vals.mean()) if vals.size else float("nan"), None, None))
            rows.append((name, metric, k, mean, "all", lo, hi))
            if metric in RANKING_METRICS:
                for seg in SEGMENTS:
                    sv = pu[pu.segment == seg][metric].dropna()
                    rows.append((name, metric, k, float(sv.mean()) if len(sv) else float("nan"),
                                 seg, None, None))
        counts = np.zeros(cat.item_ids.size)
        rec_pos, _ = cat.positions(np.concatenate(pu.recs.to_numpy()) if len(pu) else [])
        np.add.at(counts, rec_pos, 1)
        rows += [(name, "coverage", k, coverage(counts), "all", None, None),
                 (name, "gini", k, gini(counts), "all", None, None),
                 (name, "entropy", k, entropy(counts), "all", None, None)]
    wide = per_user.pivot(index="user_idx", columns="model", values=primary)
    for base in models[1:]:
        mean, lo, hi = bootstrap_ci((wide["als"] - wide[base]).to_numpy(), n_boot, seed=seed)
        rows.append((f"als-{base}", primary, k, mean, "all", lo, hi))
    return rows


def beats_popularity(result: EvaluationResult, params: EvaluationParams) -> dict:
    """The first publication gate: ALS's bootstrap interval lies above popularity's value,
    the paired difference's interval above zero, and ALS >= popularity * (1 + min_lift)."""
    primary = params.primary_metric
    als_v, pop_v = result.value("als", primary), result.value("popularity", primary)
    als_lo, _ = result.interval("als", primary)
    diff_lo, diff_hi = result.interval("als-popularity", primary)
    passed = als_lo > pop_v and diff_lo > 0 and als_v >= pop_v * (1.0 + params.min_lift)
    return {"passed": bool(passed), "metric": f"{primary}@{params.k}", "als": als_v,
            "popularity": pop_v, "als_ci_low": als_lo,
            "difference_ci": f"[{diff_lo:.4f}, {diff_hi:.4f}]",
            "lift": (als_v / pop_v - 1.0) if pop_v else 0.0, "min_lift": params.min_lift}

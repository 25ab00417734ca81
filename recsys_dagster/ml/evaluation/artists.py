"""Held-out evaluation of similar artists: do an artist's similar artists name the artists its
listeners go on to discover?

For a listener u, T(u) is the set of artists of u's held-out plays that u never played in the
fit part (new artists). For each artist a that u played in the fit part, a's top-k list scores
hits / min(k, |T(u)|), the share of u's new artists it names (1 when every one of its k names
is a new artist of u, or when it names them all). A listener's value is the mean over its fit
artists; listeners without a new artist are not scored. Lists are integer-coded: row a holds
a's similar artists' codes, best first, -1 where there are fewer than k.

The baselines: the most popular artists (most fit listeners, a itself left out), and
co-listening, item-kNN at artist level (cosine of the binary listener x artist matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..serving.artists import (
    artist_als_vectors,
    artist_songs,
    similar_artists_of,
    songs_with_plays,
)
from ..serving.radio import RadioCatalogue, RadioParams, seed_artists
from .baselines import item_cosine_neighbours
from .evaluate import restrict, sample_users
from .radio import evaluate_radio
from .stats import bootstrap_ci

TABLE_COLUMNS = ["model", "metric", "k", "value", "ci_low", "ci_high"]


@dataclass(frozen=True)
class ArtistEvaluationParams:
    """Held-out evaluation of similar artists and artist radio, and their publication gate
    (the bootstrap, user sample and co-listening bounds are the evaluation_metrics ones)."""

    k: int = setting(10, "Similar artists per artist that are scored.")
    gate: bool = setting(
        True, "The check blocks similar_artists and artist_radio when the similar artists do "
        "not beat the most popular artists. False only for data that cannot be judged: the "
        "check then reports.")
    vectors: Literal["songs", "artist_als"] = setting(
        "songs", "How artist vectors are made, for similar_artists as judged here: songs, the "
        "play-weighted mean of the songs' factors; or artist_als, ALS fitted on the listener x "
        "artist plays with the model's settings (docs/products.md measures both). Radio "
        "stations rank songs, so they always use the song-based vectors.")
    radio: RadioParams = setting(
        RadioParams(), "The artist radio stations: evaluated here, and artist_radio serves "
        "exactly these settings (it reads them from this asset's table).")


def popular_lists(listeners: np.ndarray, k: int) -> np.ndarray:
    """(n_artists, k): for every artist, the k artists with most listeners but itself."""
    n = listeners.size
    order = np.argsort(-np.asarray(listeners, dtype=np.float64), kind="stable")[:k + 1]
    lists = np.full((n, k), -1, dtype=np.int64)
    top = order[:k]
    lists[:, :top.size] = top
    for a in top:  # an artist among the most popular gets the next one instead of itself
        others = order[order != a][:k]
        lists[a] = -1
        lists[a, :others.size] = others
    return lists


def lists_from_pairs(query: np.ndarray, neighbour: np.ndarray, rank: np.ndarray,
                     n_artists: int, k: int) -> np.ndarray:
    """(n_artists, k) lists from (query, neighbour, rank 1..) rows; ranks above k are dropped."""
    lists = np.full((n_artists, k), -1, dtype=np.int64)
    keep = (rank >= 1) & (rank <= k)
    lists[query[keep], rank[keep] - 1] = neighbour[keep]
    return lists


def new_artist_recall(train_pairs: np.ndarray, test_pairs: np.ndarray, lists: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(users, values): each scored listener's mean over its fit artists of hits / min(k,
    |T(u)|). Pairs are (user, artist) int rows; lists as the module says."""
    n_artists, k = lists.shape
    code = np.int64(n_artists)
    train = np.unique(train_pairs[:, 0].astype(np.int64) * code + train_pairs[:, 1])
    new = np.setdiff1d(np.unique(test_pairs[:, 0].astype(np.int64) * code + test_pairs[:, 1]),
                       train, assume_unique=True)
    new_users, n_new = np.unique(new // code, return_counts=True)
    user, artist = train // code, train % code
    keep = np.isin(user, new_users)
    user, artist = user[keep], artist[keep]
    if user.size == 0 or k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    cand = lists[artist]
    hits = (np.isin(user[:, None] * code + cand, new) & (cand >= 0)).sum(axis=1)
    per_pair = hits / np.minimum(k, n_new[np.searchsorted(new_users, user)])
    users, pos = np.unique(user, return_inverse=True)
    return users, np.bincount(pos, weights=per_pair) / np.bincount(pos)


MODELS = ("als", "popular_artists", "co_listening")
METRIC = "new_artist_recall"


@dataclass
class ArtistEvaluation:
    table: pd.DataFrame  # model, metric, k, value, ci_low, ci_high
    counts: dict

    def _row(self, model: str):
        return self.table[(self.table.model == model) & (self.table.metric == METRIC)].iloc[0]

    def value(self, model: str) -> float:
        return float(self._row(model).value)

    def interval(self, model: str) -> tuple[float, float]:
        row = self._row(model)
        return float(row.ci_low), float(row.ci_high)


def evaluate_similar_artists(fit: DataFrame, held: DataFrame, item_artists: DataFrame,
                             fit_item_factors: DataFrame, k: int, n_boot: int, seed: int,
                             max_users: int, knn_max_items_per_user: int,
                             radio: RadioParams | None = None,
                             artist_als: tuple | None = None) -> ArtistEvaluation:
    """Score the similar artists of the factors fitted on `fit` (and both baselines) on
    `held`; with `radio`, the artist radio stations of those factors too (evaluation.radio).
    artist_als (ConfidenceParams, ALSParams): the lists come from ALS fitted on fit's
    listener x artist plays instead of the songs' factors (serving.artists).
    item_artists (item_idx, artist_id): the artist of every indexed song that has one (a
    held-out song new since the fit still names its artist). Listeners are the seeded sample
    of evaluation_metrics (max_users); the baselines count every fit listener."""
    spark = fit.sparkSession
    known = item_artists.where(F.col("artist_id").isNotNull()).toPandas()
    artist_ids = np.unique(known["artist_id"].to_numpy(dtype=str))
    if artist_ids.size < 2:
        return ArtistEvaluation(pd.DataFrame(columns=TABLE_COLUMNS),
                                {"artists": int(artist_ids.size)})
    codes = spark.createDataFrame(pd.DataFrame({
        "item_idx": known["item_idx"].to_numpy(dtype=np.int64),
        "artist_id": known["artist_id"].to_numpy(dtype=str).astype(object),
        "artist_idx": np.searchsorted(artist_ids, known["artist_id"].to_numpy(dtype=str))}),
        "item_idx long, artist_id string, artist_idx long")

    def artist_pairs(df: DataFrame) -> DataFrame:
        return (df.join(F.broadcast(codes.drop("artist_id")), "item_idx")
                .select("user_idx", "artist_idx").distinct())

    fit_pairs = artist_pairs(fit).persist()
    scored = sample_users(held, max_users, seed)
    held_scored = restrict(held, scored)
    train_ua, held_ua = (frame.select("user_idx", "artist_idx").toPandas().to_numpy(np.int64)
                         for frame in (restrict(fit_pairs, scored), artist_pairs(held_scored)))
    n = artist_ids.size

    songs = artist_songs(fit_item_factors, songs_with_plays(codes.drop("artist_idx"), fit),
                         artist_ids)
    vectors = (songs.vectors() if artist_als is None else
               artist_als_vectors(codes, fit, artist_ids, *artist_als))
    sims = similar_artists_of(spark, artist_ids, vectors, k).toPandas()
    lists = {"als": lists_from_pairs(
        np.searchsorted(artist_ids, sims["artist_id"].to_numpy(dtype=str)),
        np.searchsorted(artist_ids, sims["similar_artist_id"].to_numpy(dtype=str)),
        sims["rank"].to_numpy(dtype=np.int64), n, k)}
    listeners = fit_pairs.groupBy("artist_idx").count().toPandas()
    counts = np.zeros(n)
    counts[listeners["artist_idx"].to_numpy(dtype=np.int64)] = listeners["count"].to_numpy()
    lists["popular_artists"] = popular_lists(counts, k)
    co = item_cosine_neighbours(fit_pairs.withColumnRenamed("artist_idx", "item_idx"), k,
                                knn_max_items_per_user, seed)
    co = co.sort_values(["item_idx", "sim", "other_idx"], ascending=[True, False, True])
    co_rank = co.groupby("item_idx").cumcount().to_numpy() + 1
    lists["co_listening"] = lists_from_pairs(co["item_idx"].to_numpy(dtype=np.int64),
                                             co["other_idx"].to_numpy(dtype=np.int64),
                                             co_rank, n, k)
    fit_pairs.unpersist()
    held_us = (held_scored.select("user_idx", "item_idx").toPandas().to_numpy(np.int64)
               if radio is not None else None)
    if scored is not None:
        scored.unpersist()

    values = {}
    for model in MODELS:  # the scored users depend on the pairs only: the same for every list
        users, values[model] = new_artist_recall(train_ua, held_ua, lists[model])
    rows = [(m, METRIC, k, *bootstrap_ci(values[m], n_boot, seed=seed)) for m in MODELS]
    rows.append(("als-popular_artists", METRIC, k,
                 *bootstrap_ci(values["als"] - values["popular_artists"], n_boot, seed=seed)))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    result = {"artists": int(n), "scored_listeners": int(users.size),
              "artists_with_similar": int((lists["als"][:, 0] >= 0).sum())}
    if radio is not None:
        cat = RadioCatalogue.build(songs.song_ids, songs.song_vecs, songs.song_artist,
                                   songs.plays, n, songs.vectors())
        radio_rows, radio_counts = evaluate_radio(
            cat, seed_artists(counts, radio.n_seed_artists), radio, train_ua, held_us, n_boot,
            seed)
        table = pd.concat([table, radio_rows], ignore_index=True)
        result.update(radio_counts)
    return ArtistEvaluation(table, result)


def beats_popular_artists(result: ArtistEvaluation) -> dict:
    """The gate: the ALS lists' interval lies above the popular artists' value and the paired
    difference's interval above zero."""
    als, pop = result.value("als"), result.value("popular_artists")
    lo, _ = result.interval("als")
    diff_lo, diff_hi = result.interval("als-popular_artists")
    return {"passed": bool(lo > pop and diff_lo > 0), "metric": f"{METRIC}@{result.table.k[0]}",
            "als": als, "popular_artists": pop, "als_ci_low": lo,
            "difference_ci": f"[{diff_lo:.4f}, {diff_hi:.4f}]"}

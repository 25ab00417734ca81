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

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..als.artist_model import artist_model_vectors, artist_songs, songs_with_plays
from ..serving.similar_artists import similar_artists_of
from ..serving.stations import RadioCatalogue, RadioParams, seed_artists
from .baselines import item_cosine_neighbours
from .evaluate import restrict, sample_users
from .station_metrics import evaluate_radio
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


@dataclass(frozen=True)
class ArtistEvaluationInputs:
    """What evaluate_similar_artists scores: the fit and held-out plays (user_idx, item_idx,
    plays), every indexed song's artist (item_idx, artist_id: a held-out song new since the
    fit still names its artist) and the item factors fitted on `fit`."""

    fit: DataFrame
    held: DataFrame
    item_artists: DataFrame
    fit_item_factors: DataFrame


@dataclass(frozen=True)
class Sampling:
    """The bootstrap and the samples, as evaluation_metrics drew them (its params)."""

    n_bootstrap: int
    seed: int
    max_users: int
    knn_max_items_per_user: int


@dataclass(frozen=True)
class ArtistPlays:
    """The artists (sorted ids; codes index them) and who played them: (user, artist code)
    pairs of the fit part, of the scored listeners' fit part and of their held-out part."""

    artist_ids: np.ndarray
    codes: DataFrame  # item_idx, artist_id, artist_idx
    fit_pairs: DataFrame  # cached: unpersist when done
    train_ua: np.ndarray
    held_ua: np.ndarray
    held_scored: DataFrame
    scored: DataFrame | None  # the sampled listeners (cached), None when all are scored


def artist_plays(inputs: ArtistEvaluationInputs,
                 sampling: Sampling) -> tuple[ArtistPlays | None, int]:
    """(the artists and the pairs, or None when the songs name fewer than two artists; the
    number of artists)."""
    known = inputs.item_artists.where(F.col("artist_id").isNotNull()).toPandas()
    artist_ids = np.unique(known["artist_id"].to_numpy(dtype=str))
    if artist_ids.size < 2:
        return None, int(artist_ids.size)
    codes = inputs.fit.sparkSession.createDataFrame(pd.DataFrame({
        "item_idx": known["item_idx"].to_numpy(dtype=np.int64),
        "artist_id": known["artist_id"].to_numpy(dtype=str).astype(object),
        "artist_idx": np.searchsorted(artist_ids, known["artist_id"].to_numpy(dtype=str))}),
        "item_idx long, artist_id string, artist_idx long")

    def pairs(df: DataFrame) -> DataFrame:
        return (df.join(F.broadcast(codes.drop("artist_id")), "item_idx")
                .select("user_idx", "artist_idx").distinct())

    fit_pairs = pairs(inputs.fit).persist()
    scored = sample_users(inputs.held, sampling.max_users, sampling.seed)
    held_scored = restrict(inputs.held, scored)
    train_ua, held_ua = (frame.select("user_idx", "artist_idx").toPandas().to_numpy(np.int64)
                         for frame in (restrict(fit_pairs, scored), pairs(held_scored)))
    return (ArtistPlays(artist_ids, codes, fit_pairs, train_ua, held_ua, held_scored, scored),
            int(artist_ids.size))


def artist_lists(plays: ArtistPlays, vectors: np.ndarray, k: int,
                 sampling: Sampling) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({model: integer-coded top-k lists}, fit listeners per artist): the lists of the given
    artist vectors, of the most popular artists and of co-listening."""
    n, ids = plays.artist_ids.size, plays.artist_ids
    sims = similar_artists_of(plays.codes.sparkSession, ids, vectors, k).toPandas()
    lists = {"als": lists_from_pairs(
        np.searchsorted(ids, sims["artist_id"].to_numpy(dtype=str)),
        np.searchsorted(ids, sims["similar_artist_id"].to_numpy(dtype=str)),
        sims["rank"].to_numpy(dtype=np.int64), n, k)}
    listeners = plays.fit_pairs.groupBy("artist_idx").count().toPandas()
    counts = np.zeros(n)
    counts[listeners["artist_idx"].to_numpy(dtype=np.int64)] = listeners["count"].to_numpy()
    lists["popular_artists"] = popular_lists(counts, k)
    co = item_cosine_neighbours(plays.fit_pairs.withColumnRenamed("artist_idx", "item_idx"), k,
                                sampling.knn_max_items_per_user, sampling.seed)
    co = co.sort_values(["item_idx", "sim", "other_idx"], ascending=[True, False, True])
    co_rank = co.groupby("item_idx").cumcount().to_numpy() + 1
    lists["co_listening"] = lists_from_pairs(co["item_idx"].to_numpy(dtype=np.int64),
                                             co["other_idx"].to_numpy(dtype=np.int64),
                                             co_rank, n, k)
    return lists, counts


def recall_rows(plays: ArtistPlays, lists: dict, k: int, sampling: Sampling):
    """(table rows of new_artist_recall per model and ALS's paired difference from the
    popular artists, with bootstrap intervals; the number of scored listeners)."""
    values, n_boot, seed = {}, sampling.n_bootstrap, sampling.seed
    for model in MODELS:  # the scored users depend on the pairs only: the same for every list
        users, values[model] = new_artist_recall(plays.train_ua, plays.held_ua, lists[model])
    rows = [(m, METRIC, k, *bootstrap_ci(values[m], n_boot, seed=seed)) for m in MODELS]
    rows.append(("als-popular_artists", METRIC, k,
                 *bootstrap_ci(values["als"] - values["popular_artists"], n_boot, seed=seed)))
    return rows, int(users.size)


def evaluate_similar_artists(inputs: ArtistEvaluationInputs, k: int, sampling: Sampling,
                             radio: RadioParams | None = None, vectors: str = "songs",
                             artist_als: tuple | None = None) -> ArtistEvaluation:
    """Score the similar artists of the factors fitted on `inputs.fit` (and both baselines) on
    `inputs.held`; with `radio`, the artist radio stations of those factors too
    (evaluation.station_metrics). vectors: the artist model's kind (als.artist_model); for
    artist_als, `artist_als` = (ConfidenceParams, ALSParams) of its fit on the fit part's
    listener x artist plays. Listeners are the seeded sample of evaluation_metrics
    (max_users); the baselines count every fit listener."""
    plays, n = artist_plays(inputs, sampling)
    if plays is None:
        return ArtistEvaluation(pd.DataFrame(columns=TABLE_COLUMNS), {"artists": n})
    fit = inputs.fit
    songs = artist_songs(inputs.fit_item_factors,
                         songs_with_plays(plays.codes.drop("artist_idx"), fit), plays.artist_ids)
    vecs = artist_model_vectors(vectors, songs, plays.codes, fit, *(artist_als or (None, None)))
    lists, counts = artist_lists(plays, vecs, k, sampling)
    held_us = (plays.held_scored.select("user_idx", "item_idx").toPandas().to_numpy(np.int64)
               if radio is not None else None)
    plays.fit_pairs.unpersist()
    if plays.scored is not None:
        plays.scored.unpersist()
    rows, n_scored = recall_rows(plays, lists, k, sampling)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    result = {"artists": int(n), "scored_listeners": n_scored,
              "artists_with_similar": int((lists["als"][:, 0] >= 0).sum())}
    if radio is not None:
        cat = RadioCatalogue.build(songs.song_ids, songs.song_vecs, songs.song_artist,
                                   songs.plays, n, songs.vectors())
        radio_rows, radio_counts = evaluate_radio(
            cat, seed_artists(counts, radio.n_seed_artists), radio, plays.train_ua, held_us,
            sampling.n_bootstrap, sampling.seed)
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

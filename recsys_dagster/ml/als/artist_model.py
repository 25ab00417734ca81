"""The artist model: one vector per artist, in which similar artists are found.

Two ways, chosen by the artist_model asset's config `vectors`:
- songs (the default): an artist's vector is the play-weighted mean of its songs' ALS factor
  vectors, where the artist's listening lies in taste space, the songs people play most
  weighing most. Where items are artists (Last.fm), an artist's vector is its item's.
- artist_als: the item factors of implicit ALS (Hu, Koren & Volinsky, "Collaborative
  Filtering for Implicit Feedback Datasets", 2008) fitted on the listener x artist play
  counts, with the song model's settings (docs/products.md compares the two).
Radio stations rank songs, so they always use the song-based vectors (ml/serving/stations.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..ids import factor_matrix, positions

VECTOR_KINDS = {"songs": "play-weighted mean of the artist's song vectors",
                "artist_als": "ALS on the listener x artist plays"}


@dataclass(frozen=True)
class ArtistModelParams:
    """The artist vectors that similar_artists serves (artist_evaluation judges the same
    kind, refitted on its own split)."""

    vectors: Literal["songs", "artist_als"] = setting(
        "songs", "How artist vectors are made: songs, the play-weighted mean of the songs' "
        "factors; or artist_als, ALS fitted on the listener x artist plays with the song "
        "model's settings (docs/products.md measures both). Radio stations rank songs, so "
        "they always use the song-based vectors.")


def artist_vectors(item_mat: np.ndarray, item_artist: np.ndarray, weights: np.ndarray,
                   n_artists: int) -> np.ndarray:
    """(n_artists, rank) float32: row a is the weights-weighted mean of a's song vectors
    (item_artist[i] is song i's artist). An artist without a weighted song is a zero row."""
    rank = item_mat.shape[1] if item_mat.ndim == 2 else 0
    out = np.zeros((n_artists, rank), dtype=np.float64)
    if item_artist.size == 0:
        return out.astype(np.float32)
    w = weights.astype(np.float64)
    order = np.argsort(item_artist, kind="stable")
    by_artist = item_artist[order]
    starts = np.flatnonzero(np.r_[True, by_artist[1:] != by_artist[:-1]])
    sums = np.add.reduceat(item_mat[order].astype(np.float64) * w[order, None], starts, axis=0)
    totals = np.add.reduceat(w[order], starts)
    present = totals > 0
    out[by_artist[starts][present]] = sums[present] / totals[present, None]
    return out.astype(np.float32)


def songs_with_plays(item_artists: DataFrame, interactions: DataFrame) -> DataFrame:
    """(item_idx, artist_id, plays): the played songs that have an artist, with their plays."""
    plays = interactions.groupBy("item_idx").agg(F.sum("plays").alias("plays"))
    return (item_artists.where(F.col("artist_id").isNotNull()).join(plays, "item_idx")
            .select("item_idx", "artist_id", "plays"))


@dataclass(frozen=True)
class ArtistSongs:
    """The model's songs that have an artist, as arrays in one order: their item idx, factor
    vectors, artist (a code into `artist_ids`) and training plays."""

    artist_ids: np.ndarray
    song_ids: np.ndarray
    song_vecs: np.ndarray
    song_artist: np.ndarray
    plays: np.ndarray

    def vectors(self) -> np.ndarray:
        return artist_vectors(self.song_vecs, self.song_artist, self.plays, self.artist_ids.size)


def artist_songs(item_factors: DataFrame, song_artists: DataFrame,
                 artist_ids: np.ndarray | None = None) -> ArtistSongs:
    """Collect `song_artists` (item_idx, artist_id, plays) with the songs' factors. Songs
    without an artist, or not in the model, are left out. Artist codes index `artist_ids`
    (sorted; by default the artists of the songs kept)."""
    item_ids, item_mat = factor_matrix(item_factors)
    songs = (song_artists.where(F.col("artist_id").isNotNull())
             .select("item_idx", "artist_id", "plays").toPandas())
    pos, found = positions(item_ids, songs["item_idx"].to_numpy())
    songs, pos = songs[found], pos[found]
    names = songs["artist_id"].to_numpy(dtype=str)
    if artist_ids is None:
        artist_ids, codes = np.unique(names, return_inverse=True)
    else:
        codes = np.searchsorted(artist_ids, names)
    rank = item_mat.shape[1] if item_mat.ndim == 2 else 0
    return ArtistSongs(np.asarray(artist_ids), item_ids[pos],
                       item_mat[pos].reshape(pos.size, rank), codes.astype(np.int64),
                       songs["plays"].to_numpy(dtype=np.float64))


def artist_als_vectors(song_artists: DataFrame, interactions: DataFrame,
                       artist_ids: np.ndarray, confidence, als) -> np.ndarray:
    """(len(artist_ids), rank): the item factors of ALS fitted on the listener x artist play
    counts (a song's plays count for its artist; `song_artists`: item_idx, artist_id), with
    the given ConfidenceParams and ALSParams. The other way to make artist vectors; zero rows
    for artists nobody played."""
    from .confidence import confidence_matrix
    from .fit import train_als

    spark = interactions.sparkSession
    codes = spark.createDataFrame(
        pd.DataFrame({"artist_id": np.asarray(artist_ids).astype(object),
                      "artist_idx": np.arange(len(artist_ids), dtype=np.int64)}),
        "artist_id string, artist_idx long")
    by_artist = (interactions.join(song_artists.where(F.col("artist_id").isNotNull())
                                   .select("item_idx", "artist_id"), "item_idx")
                 .join(F.broadcast(codes), "artist_id")
                 .groupBy("user_idx", F.col("artist_idx").alias("item_idx"))
                 .agg(F.sum("plays").alias("plays")))
    fitted = train_als(confidence_matrix(by_artist, confidence), als)
    ids, mat = factor_matrix(fitted.item_factors)
    out = np.zeros((len(artist_ids), als.rank), dtype=np.float32)
    if ids.size:
        out[ids] = mat
    return out


def artist_model_vectors(kind: str, songs: ArtistSongs, song_artists: DataFrame,
                         interactions: DataFrame, confidence, als) -> np.ndarray:
    """(len(songs.artist_ids), rank) vectors of the given kind: songs' weighted means, or
    artist_als_vectors with the (ConfidenceParams, ALSParams) given."""
    if kind == "songs":
        return songs.vectors()
    if kind == "artist_als":
        return artist_als_vectors(song_artists, interactions, songs.artist_ids, confidence, als)
    raise ValueError(f"unknown artist vectors {kind!r}; one of {', '.join(VECTOR_KINDS)}")

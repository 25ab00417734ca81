"""Similar artists from artist vectors: the talk's similar-artist discovery (Christopher
Johnson, "Music Recommendations at Scale with Spark", Spotify, 2014) on song-level play logs.

The artist vectors come from the artist model (ml/als/artist_model.py: by default the
play-weighted mean of an artist's song vectors). Artist b is scored for
seed artist a by the seed's direction times b's vector, v_a/|v_a| . v_b = cos(a, b) |v_b|: how
much a listener whose taste is a's would play b, as ALS scores items for a user. Pure cosine
ignores how strongly b is liked; on held-out plays it named listeners' next artists less often
than the most popular artists did, this score more often (docs/products.md). Scoring is that of
similar items (a broadcast candidate matrix, no cross join, never the artist itself). Where
items are artists (Last.fm), an artist's vector is its item's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..als.artist_model import artist_songs
from ..ids import vectors_frame
from .topk import normalize_rows, top_k


@dataclass(frozen=True)
class SimilarArtistsParams:
    """The similar-artists table."""

    top_n: int = setting(20, "Similar artists per artist.")


def similar_artists_by_factors(item_factors: DataFrame, song_artists: DataFrame,
                               n: int) -> DataFrame:
    """(artist_id, rank, similar_artist_id, score): each artist's top-n other artists by
    v_a/|v_a| . v_b (the module says why), from artist_songs(item_factors, song_artists); an
    artist none of whose songs is in the model has no vector and no row."""
    songs = artist_songs(item_factors, song_artists)
    return similar_artists_of(item_factors.sparkSession, songs.artist_ids, songs.vectors(), n)


def similar_artists_of(spark, artists: np.ndarray, vecs: np.ndarray, n: int) -> DataFrame:
    """similar_artists_by_factors on given artist vectors (row a: artists[a]'s)."""
    keep = np.flatnonzero(np.linalg.norm(vecs, axis=1) > 0) if artists.size else np.zeros(0, int)
    queries = vectors_frame(spark, keep, normalize_rows(vecs[keep]), "long")
    sims = top_k(queries, keep.astype(np.int64), vecs[keep], n, "artist_idx",
                 "similar_artist_idx", exclude_self=True)
    ids = spark.createDataFrame(
        pd.DataFrame({"artist_idx": np.arange(artists.size, dtype=np.int64),
                      "artist_id": artists.astype(object)}),
        "artist_idx long, artist_id string")
    return (sims.join(F.broadcast(ids), "artist_idx")
            .join(F.broadcast(ids.toDF("similar_artist_idx", "similar_artist_id")),
                  "similar_artist_idx")
            .select("artist_id", "rank", "similar_artist_id", "score"))

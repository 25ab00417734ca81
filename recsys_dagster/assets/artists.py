"""Artist-level products on the served factors: similar artists.

The artist of each song comes from the item catalogue (the source's own artists: the synthetic
generator's, Last.fm's artists.dat, a file source's names file). A source without artists gives
an empty table that says so in its metadata, not a failed run.
"""

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import checks
from ..config import SimilarArtistsConfig
from ..ml.serving.artists import similar_artists_by_factors, songs_with_plays
from ..partitions import LATEST_DAY
from ..tables import TableSet
from .helpers import GATE, KINDS, OWNERS, item_artists, newest_catalogue, table_metadata


@dg.asset(
    group_name="serving", kinds=KINDS, owners=OWNERS, code_version="1",
    deps=[*GATE, "artist_evaluation"], ins={"interactions": LATEST_DAY},
    check_specs=[dg.AssetCheckSpec(
        checks.SIMILAR_ARTISTS_NO_SELF, asset="similar_artists",
        description="No artist is listed as similar to itself; no rank beyond top_n.")],
)
def similar_artists(context: dg.AssetExecutionContext, config: SimilarArtistsConfig,
                    als_model: TableSet, interactions: DataFrame, item_index: DataFrame,
                    item_catalog: DataFrame):
    """Top-N similar artists per artist ("similar-artist discovery"): artist vectors are the
    play-weighted mean of their songs' factors; a candidate is ranked by the seed's direction
    times its vector (docs/products.md says why not plain cosine)."""
    catalogue = newest_catalogue(item_catalog).where(F.col("artist_id").isNotNull()).persist()
    songs = songs_with_plays(item_artists(item_catalog, item_index), interactions)
    names = catalogue.groupBy("artist_id").agg(F.min("artist_name").alias("artist_name"))
    sims = similar_artists_by_factors(als_model["item_factors"], songs, config.top_n)
    table = (sims.join(F.broadcast(names), "artist_id", "left")
             .join(F.broadcast(names.toDF("similar_artist_id", "similar_artist_name")),
                   "similar_artist_id", "left")
             .select("artist_id", "artist_name", "rank", "similar_artist_id",
                     "similar_artist_name", "score")
             ).persist()
    summary = table.agg(
        F.count("*").alias("rows"), F.countDistinct("artist_id").alias("artists"),
        F.sum(F.when(F.col("artist_id") == F.col("similar_artist_id"), 1).otherwise(0))
        .alias("self"), F.max("rank").alias("max_rank")).first()
    n_rows = int(summary["rows"])
    has_artists = catalogue.limit(1).count() > 0
    if not has_artists:
        context.log.warning("the source names no artist for its items: similar_artists is empty")
    yield dg.Output(table, metadata={
        **table_metadata(table, n_rows, preview_rows=10, order_by=["artist_id", "rank"]),
        "artists": int(summary["artists"]), "top_n": config.top_n,
        "artist_vectors": "play-weighted mean of the artist's song vectors",
        "ranking": "seed direction . candidate vector",
        "source_has_artists": has_artists,
    })
    n_self = int(summary["self"] or 0)
    yield dg.AssetCheckResult(
        check_name=checks.SIMILAR_ARTISTS_NO_SELF,
        passed=n_self == 0 and int(summary["max_rank"] or 0) <= config.top_n,
        metadata={"self_matches": n_self, "max_rank": int(summary["max_rank"] or 0)},
    )
    table.unpersist()
    catalogue.unpersist()

"""Artist-level products on the served factors: similar artists and artist radio.

The artist of each song comes from the item catalogue (the source's own artists: the synthetic
generator's, Last.fm's artists.dat, a file source's names file or play rows). A source without
artists gives empty tables that say so in their metadata, not a failed run.
"""

import dataclasses

import dagster as dg
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import checks
from ..config import SimilarArtistsConfig
from ..ml.als.artist_model import VECTOR_KINDS, artist_songs, songs_with_plays
from ..ml.ids import with_vectors
from ..ml.serving.similar_artists import similar_artists_of
from ..ml.serving.stations import RadioCatalogue, RadioParams, seed_artists, stations
from ..partitions import LATEST_DAY
from ..resources import Warehouse
from ..tables import TableSet
from .helpers import (
    SERVED_FRESHNESS,
    artist_listeners,
    asset_with_optional_checks,
    column_schema,
    fails_for_good,
    item_artists,
    newest_catalogue,
    not_executed,
    table_metadata,
)
from .publishing import RECORD, record_to_publish, served_model, served_table


@asset_with_optional_checks(
    group_name="serving", code_version="3", ins={"interactions": LATEST_DAY},
    freshness_policy=SERVED_FRESHNESS,
    check_specs=[dg.AssetCheckSpec(
        checks.SIMILAR_ARTISTS_NO_SELF, asset="similar_artists",
        description="No artist is listed as similar to itself; no rank beyond top_n (not "
        "executed when the source names no artist: there is no list).")],
)
@fails_for_good
def similar_artists(context: dg.AssetExecutionContext, config: SimilarArtistsConfig,
                    als_model: TableSet, artist_model: TableSet, evaluation_metrics: TableSet,
                    artist_evaluation: TableSet, interactions: DataFrame,
                    item_index: DataFrame, item_catalog: DataFrame, warehouse: Warehouse):
    """Top-N similar artists per artist ("similar-artist discovery") from artist_model's
    vectors (the kind artist_evaluation judged); a candidate is ranked by the seed's direction
    times its vector (docs/products.md says why not plain cosine). The metadata's sample: the
    lists of the three most listened artists."""
    record = record_to_publish(context.run_id, als_model, evaluation_metrics,
                               served_model(warehouse.store(), "similar_artists"))
    kind = checked_vectors(artist_model, artist_evaluation, als_model)
    catalogue = newest_catalogue(item_catalog).where(F.col("artist_id").isNotNull()).persist()
    vectors = artist_model["artist_factors"].toPandas()  # one row per artist: small
    sims = similar_artists_of(
        interactions.sparkSession, vectors.artist_id.to_numpy(dtype=str),
        np.stack(vectors.features.to_numpy()).astype(np.float32) if len(vectors)
        else np.zeros((0, artist_model.params["settings"]["als"]["rank"]), np.float32),
        config.top_n)
    names = catalogue.groupBy("artist_id").agg(F.min("artist_name").alias("artist_name"))
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
    has_artists = n_rows > 0 or catalogue.limit(1).count() > 0  # a list needs an artist
    if not has_artists:
        context.log.warning("the source names no artist for its items: similar_artists is empty")
    top = (artist_listeners(item_artists(item_catalog, item_index), interactions)
           .orderBy(F.desc("listeners"), "artist_id").limit(3).toPandas().artist_id.tolist())
    sample = (table.where(F.col("artist_id").isin(top) & (F.col("rank") <= 10)).toPandas()
              .sort_values(["artist_id", "rank"]))
    yield dg.Output(served_table(table, record), output_name="similar_artists", metadata={
        **table_metadata(table, n_rows, preview_rows=10, order_by=["artist_id", "rank"]),
        "artists": int(summary["artists"]), "top_n": config.top_n,
        "artist_vectors": VECTOR_KINDS[kind],
        "ranking": "seed direction . candidate vector",
        "source_has_artists": has_artists,
        "sample": dg.MetadataValue.md(lists_sample(sample, top)),
    })
    n_self = int(summary["self"] or 0)
    if n_rows:
        yield dg.AssetCheckResult(
            check_name=checks.SIMILAR_ARTISTS_NO_SELF,
            passed=n_self == 0 and int(summary["max_rank"] or 0) <= config.top_n,
            metadata={"self_matches": n_self, "max_rank": int(summary["max_rank"] or 0)},
        )
    else:
        not_executed(context, checks.SIMILAR_ARTISTS_NO_SELF, "no similar-artist list")
    for frame in (table, catalogue):
        frame.unpersist()


def checked_vectors(artist_model: TableSet, artist_evaluation: TableSet,
                    als_model: TableSet) -> str:
    """artist_model's kind of vectors, when they were made from the als_model being published
    and artist_evaluation judged that kind (the gate is about those lists); a Failure
    otherwise."""
    made_from = artist_model.params.get("model_version")
    if made_from != als_model.version:
        raise dg.Failure(f"artist_model was made from als_model version {made_from}, not the "
                         f"current {als_model.version}: materialise artist_model first",
                         allow_retries=False)
    kind, judged = artist_model.params["vectors"], artist_evaluation.params.get("vectors")
    if judged != kind:
        raise dg.Failure(f"artist_model makes {kind} vectors but artist_evaluation judged "
                         f"{judged}: materialise artist_evaluation first", allow_retries=False)
    return kind


@asset_with_optional_checks(
    group_name="serving", code_version="3", ins={"interactions": LATEST_DAY},
    freshness_policy=SERVED_FRESHNESS,
    check_specs=[dg.AssetCheckSpec(
        checks.RADIO_RULES, asset="artist_radio",
        description="No song twice in a station, no station longer than its length, no artist "
        "with more songs than max_per_artist (the seed artist: seed_artist_max); not executed "
        "when there is no station.")],
)
@fails_for_good
def artist_radio(context: dg.AssetExecutionContext, als_model: TableSet,
                 evaluation_metrics: TableSet, artist_evaluation: TableSet,
                 interactions: DataFrame, item_index: DataFrame, item_catalog: DataFrame,
                 warehouse: Warehouse):
    """Artist radio: a station per most-listened artist, songs of the artist and of its most
    similar artists ranked by affinity to the artist, a few per artist, with a share of
    less-played songs (ml/serving/stations.py). The settings are the ones artist_evaluation
    judged (its config `radio`). Besides the stations, the radio's catalogue (frames songs
    and artists, with their vectors) is kept so that `cli radio` makes a listener's own
    station from the served tables alone."""
    record = record_to_publish(context.run_id, als_model, evaluation_metrics,
                               served_model(warehouse.store(), "artist_radio"))
    params = RadioParams(**artist_evaluation.params["radio"])
    artist_of = item_artists(item_catalog, item_index).persist()  # read twice below
    songs = artist_songs(als_model["item_factors"], songs_with_plays(artist_of, interactions))
    listeners = artist_listeners(artist_of, interactions).toPandas()
    artist_of.unpersist()
    n_listeners = (listeners.set_index("artist_id")["listeners"].reindex(songs.artist_ids)
                   .fillna(0).to_numpy())
    cat = RadioCatalogue.build(songs.song_ids, songs.song_vecs, songs.song_artist, songs.plays,
                               songs.artist_ids.size)
    built = stations(cat, seed_artists(n_listeners, params.n_seed_artists), params)
    table, song_frame, artist_frame = radio_frames(
        built, cat, songs.artist_ids, n_listeners, newest_catalogue(item_catalog).toPandas(),
        item_index.select("idx", "id").toPandas().set_index("idx")["id"])
    spark = interactions.sparkSession
    frames = {"stations": spark.createDataFrame(table, STATIONS_SCHEMA),
              "songs": spark.createDataFrame(with_vectors(song_frame, cat.song_vecs),
                                             SONGS_SCHEMA),
              "artists": spark.createDataFrame(with_vectors(artist_frame, cat.artist_vecs),
                                               ARTISTS_SCHEMA)}
    if songs.artist_ids.size == 0:
        context.log.warning("the source names no artist for its items: artist_radio is empty")
    rules = station_rules(table, params)
    # Where every song has an artist of its own (Last.fm: items are artists), a station is a
    # sequence of artists.
    items_are_artists = bool(len(song_frame) and song_frame.artist_id.nunique() == len(song_frame))
    yield dg.Output(
        output_name="artist_radio", value=TableSet(
            frames, {"radio": dataclasses.asdict(params), "items_are_artists":
                     items_are_artists, "model_version": record["model_version"],
                     RECORD: record}, pin=record["model_version"]),
        metadata={
            "dagster/row_count": len(table),
            "dagster/column_schema": column_schema(frames["stations"]),
            "stations": int(table.seed_artist_id.nunique()),
            "mean_length": float(table.groupby("seed_artist_id").size().mean())
            if len(table) else 0.0,
            "mean_distinct_artists": float(table.groupby("seed_artist_id").artist_id.nunique()
                                           .mean()) if len(table) else 0.0,
            "items_are_artists": items_are_artists,
            "sample": dg.MetadataValue.md(station_sample(table, n_stations=3, per_station=10)),
            **{f"radio/{name}": value for name, value in dataclasses.asdict(params).items()},
        })
    if len(table):
        yield dg.AssetCheckResult(check_name=checks.RADIO_RULES,
                                  passed=not any(rules.values()), metadata=rules)
    else:
        not_executed(context, checks.RADIO_RULES, "no station")


def radio_frames(built: tuple, cat: RadioCatalogue, artist_ids: np.ndarray,
                 n_listeners: np.ndarray, catalogue: pd.DataFrame, index: pd.Series):
    """(stations, songs, artists) tables of the served radio, with ids and names: the built
    stations (seed, position, song, score arrays), the catalogue's songs and artists (their
    vectors, the catalogue's song_vecs and artist_vecs, go beside: ids.with_vectors). `index`:
    item idx -> item id."""
    seed, position, song, score = built
    names = catalogue.set_index("item_id")["name"]
    artist_names = (catalogue.dropna(subset=["artist_id"]).groupby("artist_id")["artist_name"]
                    .min().reindex(artist_ids))
    song_ids = index.reindex(cat.song_ids).to_numpy()
    table = pd.DataFrame({
        "seed_artist_id": artist_ids[seed],
        "seed_artist_name": artist_names.iloc[seed].values,
        "position": position.astype(np.int32), "item_id": song_ids[song],
        "name": names.reindex(song_ids[song]).values,
        "artist_id": artist_ids[cat.song_artist[song]],
        "artist_name": artist_names.iloc[cat.song_artist[song]].values,
        "score": score.astype(np.float32)})
    song_frame = pd.DataFrame({
        "item_idx": cat.song_ids, "item_id": song_ids, "name": names.reindex(song_ids).values,
        "artist_id": artist_ids[cat.song_artist], "plays": cat.plays,
        "less_played": cat.less_played})
    artist_frame = pd.DataFrame({
        "artist_id": artist_ids, "artist_name": artist_names.values,
        "listeners": n_listeners.astype(np.int64)})
    return table, song_frame, artist_frame


STATIONS_SCHEMA = ("seed_artist_id string, seed_artist_name string, position int, "
                   "item_id string, name string, artist_id string, artist_name string, "
                   "score float")
SONGS_SCHEMA = ("item_idx long, item_id string, name string, artist_id string, plays double, "
                "less_played boolean, features array<float>")
ARTISTS_SCHEMA = "artist_id string, artist_name string, listeners long, features array<float>"


def station_rules(table: pd.DataFrame, params: RadioParams) -> dict:
    """Rows breaking each station rule (0 everywhere when the stations are sound)."""
    per_artist = table.groupby(["seed_artist_id", "artist_id"]).size().reset_index(name="n")
    cap = np.where(per_artist.artist_id == per_artist.seed_artist_id, params.seed_artist_max,
                   params.max_per_artist)
    return {"repeated_songs": int(table.duplicated(["seed_artist_id", "item_id"]).sum()),
            "over_length": int((table.position > params.length).sum()),
            "artists_over_cap": int((per_artist.n > cap).sum())}


def station_sample(table: pd.DataFrame, n_stations: int, per_station: int) -> str:
    """The first songs of the first stations (the most listened seed artists), by name."""
    if table.empty:
        return "_no stations_"
    parts = []
    for seed in table.seed_artist_id.unique()[:n_stations]:
        rows = table[table.seed_artist_id == seed].head(per_station)
        label = rows.seed_artist_name.iloc[0] if rows.seed_artist_name.notna().iloc[0] else seed
        parts.append(f"**{label}**\n\n" + rows[["position", "name", "artist_name", "score"]]
                     .to_markdown(index=False, floatfmt=".3f"))
    return "\n\n".join(parts)


def lists_sample(sample: pd.DataFrame, artists: list[str]) -> str:
    """The similar artists of a few artists, by name."""
    if sample.empty:
        return "_no similar artists_"
    parts = []
    for artist in artists:
        rows = sample[sample.artist_id == artist]
        if len(rows):
            label = rows.artist_name.iloc[0] if rows.artist_name.notna().iloc[0] else artist
            parts.append(f"**{label}**: " + ", ".join(
                f"{n} ({s:.2f})" for n, s in
                zip(rows.similar_artist_name.fillna(rows.similar_artist_id), rows.score)))
    return "\n\n".join(parts)

"""Readers for play logs. Each returns a *raw* DataFrame for validation:

    user_id, item_id, plays, ts : strings as found (plays/ts may be null when absent); a
                                  typed source keeps plays integral and ts a timestamp
    _raw                        : the original line (or a rendering of the row)
    _reason                     : null, or why the reader already rejected the line

Readers never drop a line: a line that cannot be split into the expected fields is kept with
a reason, so that validation can quarantine it. A missing file, or a header without the mapped
columns, raises SourceError naming the file and the expected columns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ...paths import SEED_EXAMPLE_CSV, data_dir, resolve_resource_path
from .. import setting
from . import datagen
from .lastfm import LASTFM_URL, lastfm_folder
from .validation import DEFAULT_MAX_ID_LENGTH, DEFAULT_MAX_PLAYS

RAW_COLUMNS = ["user_id", "item_id", "plays", "ts", "_raw", "_reason"]


class SourceError(ValueError):
    """The source cannot be read at all (missing file, wrong schema)."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each field. plays=None means an event log (one row per play);
    ts=None means the source has no timestamps."""

    user: str = "user_id"
    item: str = "item_id"
    plays: str | None = "plays"
    ts: str | None = None
    artist: str | None = None  # the item's artist, named in the play rows themselves

    def required(self) -> list[str]:
        return [c for c in (self.user, self.item, self.plays, self.ts, self.artist) if c]


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise SourceError(f"play log source not found: {path}")


def _first_line(path: str) -> str:
    target = path
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if not f.startswith((".", "_")))
        if not files:
            raise SourceError(f"play log folder is empty: {path}")
        target = os.path.join(path, files[0])
    with open(target, encoding="utf-8", errors="replace") as fh:
        return fh.readline().rstrip("\r\n")


def read_delimited(spark, path: str, mapping: ColumnMapping, delimiter: str = ",",
                   header: bool = True) -> DataFrame:
    """CSV/TSV (LF or CRLF) read line by line, so every malformed line is accounted for.

    With header=False the mapping's names are 0-based column positions ("0", "1", ...).
    Fields may be wrapped in double quotes; a delimiter inside quotes is not supported.
    """
    _require_file(path)
    if header:
        header_line = _first_line(path).lstrip("\ufeff")
        names = [_unquoted(n) for n in header_line.split(delimiter)]
        missing = [c for c in mapping.required() if c not in names]
        if missing:
            raise SourceError(
                f"{path}: header {names} lacks column(s) {missing}; expected columns "
                f"{mapping.required()} (user, item{', plays' if mapping.plays else ''}"
                f"{', timestamp' if mapping.ts else ''})"
            )
        positions = {c: names.index(c) for c in mapping.required()}
        width = len(names)
    else:
        try:
            positions = {c: int(c) for c in mapping.required()}
        except ValueError as exc:
            raise SourceError(f"{path}: without a header, columns are positions: {exc}") from exc
        width = max(positions.values()) + 1
        header_line = None

    lines = spark.read.text(path).select(
        F.regexp_replace("value", r"^\x{FEFF}|\r$", "").alias("_raw"))
    if header_line is not None:
        lines = lines.where(F.col("_raw") != header_line)
    fields = F.split(F.col("_raw"), re.escape(delimiter), -1)
    n_fields = F.size(fields)

    def field(name):
        if not name:
            return F.lit(None).cast("string")
        return F.regexp_replace(F.trim(F.get(fields, positions[name])), r'^"(.*)"$', "$1")

    bad_width = (n_fields != width) if header else (n_fields < width)
    blank = F.trim(F.col("_raw")) == ""
    return lines.select(
        field(mapping.user).alias("user_id"),
        field(mapping.item).alias("item_id"),
        field(mapping.plays).alias("plays"),
        field(mapping.ts).alias("ts"),
        *([field(mapping.artist).alias("artist")] if mapping.artist else []),
        "_raw",
        F.when(blank, F.lit("blank line"))
        .when(bad_width, F.concat(F.lit(f"malformed line: expected {width} fields, got "),
                                  n_fields.cast("string"))).alias("_reason"),
    )


def _unquoted(name: str) -> str:
    name = name.strip()
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def read_parquet(spark, path: str, mapping: ColumnMapping) -> DataFrame:
    _require_file(path)
    df = spark.read.parquet(path)
    missing = [c for c in mapping.required() if c not in df.columns]
    if missing:
        raise SourceError(
            f"{path}: Parquet columns {df.columns} lack {missing}; expected columns "
            f"{mapping.required()}"
        )

    def col(name):
        return F.col(name).cast("string") if name else F.lit(None).cast("string")

    return df.select(
        col(mapping.user).alias("user_id"),
        col(mapping.item).alias("item_id"),
        col(mapping.plays).alias("plays"),
        col(mapping.ts).alias("ts"),
        *([col(mapping.artist).alias("artist")] if mapping.artist else []),
        F.to_json(F.struct(*[F.col(c) for c in mapping.required()])).alias("_raw"),
        F.lit(None).cast("string").alias("_reason"),
    )


def read_lastfm_user_artists(spark, folder: str) -> DataFrame:
    """Last.fm HetRec 2011 user_artists.dat: tab-separated userID artistID weight, CRLF."""
    path = os.path.join(folder, "user_artists.dat") if os.path.isdir(folder) else folder
    return read_delimited(spark, path, ColumnMapping("userID", "artistID", "weight", None),
                          delimiter="\t", header=True)


def read_lastfm_artists(spark, folder: str) -> DataFrame | None:
    """item_id, name from artists.dat, or None when the file is absent."""
    path = os.path.join(folder, "artists.dat")
    if not os.path.exists(path):
        return None
    raw = read_delimited(spark, path, ColumnMapping("id", "name", None, None), delimiter="\t")
    # Last.fm's items are artists: each is its own artist.
    return (raw.where(F.col("_reason").isNull() & (F.col("user_id") != ""))
            .select(F.col("user_id").alias("item_id"), F.col("item_id").alias("name"),
                    F.col("user_id").alias("artist_id"), F.col("item_id").alias("artist_name"))
            .dropDuplicates(["item_id"]))


def typed_to_raw(df: DataFrame) -> DataFrame:
    """A typed play DataFrame (user_id, item_id, plays, ts) in the raw shape validation takes,
    plays and ts left typed (validation checks them as they are)."""
    return df.select(
        F.col("user_id").cast("string").alias("user_id"),
        F.col("item_id").cast("string").alias("item_id"),
        F.col("plays").cast("long").alias("plays"),
        F.col("ts").cast("timestamp").alias("ts"),
        F.lit(None).cast("string").alias("_raw"),
        F.lit(None).cast("string").alias("_reason"),
    )


@dataclass(frozen=True)
class FileSource:
    """A CSV/TSV/Parquet play log and how its columns map to ours."""

    path: str = setting("", "File or folder of files.")
    format: Literal["csv", "tsv", "parquet"] = setting("csv", "File format.")
    header: bool = setting(True, "CSV/TSV: first line names the columns.")
    user_column: str = setting(ColumnMapping.user, "Column with the user id.")
    item_column: str = setting(ColumnMapping.item, "Column with the item id.")
    plays_column: str | None = setting(
        ColumnMapping.plays, "Column with play counts (aggregated logs). Null: an event log, "
        "one row per play, aggregated by the pipeline.")
    timestamp_column: str | None = setting(
        ColumnMapping.ts, "Column with the play time (ISO-8601 or epoch s/ms).")
    item_names_path: str | None = setting(
        None, "Optional CSV/TSV with item names (same format).")
    item_names_id_column: str = setting("item_id", "Id column of the names file.")
    item_names_name_column: str = setting("name", "Name column of the names file.")
    item_names_artist_column: str | None = setting(
        None, "Optional column of the names file with each item's artist (its name is its "
        "id); without it (and without artist_column) the source has no artists and "
        "similar_artists is empty.")
    artist_column: str | None = setting(
        None, "Optional column of the play rows with the item's artist (its name is its id); "
        "where rows disagree the first in text order is kept, and the names file's artist, "
        "when it names one, wins.")

    def mapping(self) -> ColumnMapping:
        return ColumnMapping(self.user_column, self.item_column, self.plays_column,
                             self.timestamp_column, self.artist_column)


@dataclass(frozen=True)
class PlaySource:
    """Where the play logs come from, and what counts as bad input."""

    source: Literal["synthetic", "lastfm_hetrec", "file", "seed"] = setting(
        "synthetic", "synthetic (default), lastfm_hetrec (HetRec 2011 folder), file, or seed "
        "(the seed's seven plays, the known answer).")
    lastfm_dir: str = setting("../shared/data/lastfm-2k",
                              "Folder holding user_artists.dat and artists.dat; when it has "
                              "none, lastfm_url's archive is downloaded once into "
                              "$RECSYS_DATA_DIR/_downloads/lastfm-2k and checked.")
    lastfm_url: str = setting(LASTFM_URL, "Where the HetRec 2011 Last.fm archive is published.")
    synthetic: datagen.SyntheticSpec = setting(datagen.SyntheticSpec(),
                                               "The synthetic source's size and shape.")
    file: FileSource = setting(FileSource(), "The file source's path, format and columns.")
    max_plays: int = setting(DEFAULT_MAX_PLAYS, "Play counts above this in one row are absurd.")
    max_id_length: int = setting(
        DEFAULT_MAX_ID_LENGTH, "User or item ids longer than this (characters) are quarantined, "
        "as are ids with control characters.")
    max_quarantine_fraction: float = setting(
        0.05, "The quarantine check fails above this share of input rows.")


# artist_id / artist_name are null when the source does not say who made an item.
CATALOG_SCHEMA = "item_id string, name string, artist_id string, artist_name string"
# The seed's example names its columns as its PySpark DataFrame did.
SEED_COLUMNS = ColumnMapping("userId", "songId", "playCount", None)


def read_source(spark, params: PlaySource,
                days: tuple[str, str] | None = None) -> tuple[DataFrame, DataFrame, bool, str]:
    """(raw rows, item names, whether rows carry play counts, a description of the source).
    `days` (first, last) are the days being ingested: the synthetic source makes those days'
    plays only; the others read what they hold (rows of other days are counted by the
    caller)."""
    empty_names = spark.createDataFrame([], CATALOG_SCHEMA)
    if params.source == "synthetic":
        if days is None:
            raise SourceError("the synthetic source makes the plays of the days asked for: "
                              "pass the run's (first, last) day")
        spec = params.synthetic
        plays = datagen.synthetic_play_logs(spark, spec, *days)
        names = spark.createDataFrame(datagen.catalogue_frame(spec), CATALOG_SCHEMA)
        return typed_to_raw(plays), names, True, f"synthetic {spec}"
    if params.source == "seed":
        path = str(SEED_EXAMPLE_CSV)
        return read_delimited(spark, path, SEED_COLUMNS), empty_names, True, path
    if params.source == "lastfm_hetrec":
        folder = lastfm_folder(resolve_resource_path(params.lastfm_dir),
                               os.path.join(data_dir(), "_downloads", "lastfm-2k"),
                               params.lastfm_url)
        names = read_lastfm_artists(spark, folder)
        return (read_lastfm_user_artists(spark, folder),
                names if names is not None else empty_names, True, folder)
    fc = params.file
    if not fc.path:
        raise SourceError("source 'file' needs file.path")
    path = resolve_resource_path(fc.path)
    delimiter = "\t" if fc.format == "tsv" else ","
    if fc.format == "parquet":
        raw = read_parquet(spark, path, fc.mapping())
    else:
        raw = read_delimited(spark, path, fc.mapping(), delimiter, fc.header)
    names = empty_names
    if fc.artist_column:  # the play rows name each item's artist: the catalogue keeps them
        names = row_artists(raw)
        raw = raw.drop("artist")
    if fc.item_names_path:
        # The names file read with the play-log reader: id, name and artist in the slots of
        # user, item and plays.
        names_raw = read_delimited(
            spark, resolve_resource_path(fc.item_names_path),
            ColumnMapping(fc.item_names_id_column, fc.item_names_name_column,
                          fc.item_names_artist_column), delimiter, True)
        artist = F.when(F.col("plays") != "", F.col("plays"))
        named = (names_raw.where(F.col("_reason").isNull())
                 .select(F.col("user_id").alias("item_id"), F.col("item_id").alias("name"),
                         artist.alias("artist_id"), artist.alias("artist_name"))
                 .dropDuplicates(["item_id"]))
        names = named if not fc.artist_column else with_row_artists(named, names)
    return raw, names, fc.plays_column is not None, path


def row_artists(raw: DataFrame) -> DataFrame:
    """Catalogue rows (no name) of the items whose valid play rows name an artist."""
    artist = F.trim(F.col("artist"))
    return (raw.where(F.col("_reason").isNull() & (artist != "") & (F.col("item_id") != ""))
            .groupBy("item_id").agg(F.min(artist).alias("artist_id"))
            .select("item_id", F.lit(None).cast("string").alias("name"), "artist_id",
                    F.col("artist_id").alias("artist_name")))


def with_row_artists(named: DataFrame, from_rows: DataFrame) -> DataFrame:
    """The names file's rows, their missing artists taken from the play rows, and the items
    only the play rows name."""
    rows = from_rows.select("item_id", F.col("artist_id").alias("_row_artist"))
    return (named.join(rows, "item_id", "full_outer")
            .select("item_id", "name",
                    F.coalesce("artist_id", "_row_artist").alias("artist_id"),
                    F.coalesce("artist_name", "_row_artist").alias("artist_name")))

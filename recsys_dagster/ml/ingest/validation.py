"""Splits raw play rows into valid play events and quarantined rows, each with a reason.

Every input row ends up in exactly one of the two outputs: nothing is dropped silently.
A raw `plays` or `ts` column is text as a file gave it, or already typed (integral plays, a
timestamp) when the source is typed (the synthetic generator): a typed column is checked as
it is (its range; nothing to parse), instead of being written out as text and parsed back.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

QUARANTINE_COLUMNS = ["user_id", "item_id", "plays", "ts", "raw_line", "reason"]
DEFAULT_MAX_PLAYS = 1_000_000
DEFAULT_MAX_ID_LENGTH = 512
# ASCII control characters (NUL, tab, newline, ...) and DEL: never part of a real id.
_CONTROL = r"[\x{0000}-\x{001F}\x{007F}]"


def parse_timestamp(col: Column) -> Column:
    """ISO-8601 date or date-time (optional zone), or Unix epoch seconds / milliseconds."""
    s = F.trim(col)
    return (
        F.when(s.rlike(r"^\d{9,10}$"), F.timestamp_seconds(s.cast("long")))
        .when(s.rlike(r"^\d{12,13}$"), F.timestamp_millis(s.cast("long")))
        .otherwise(F.try_to_timestamp(s))
    )


def typed(raw: DataFrame, name: str) -> bool:
    """Whether raw column `name` ("plays" or "ts") is typed (integral plays, a timestamp ts)
    rather than text."""
    kind = raw.schema[name].dataType
    if name == "plays":
        return isinstance(kind, (T.LongType, T.IntegerType, T.ShortType, T.ByteType))
    return isinstance(kind, T.TimestampType)


def raw_timestamp(raw: DataFrame) -> Column:
    """The raw rows' `ts` as a timestamp: as it is when typed, else parsed (null when not)."""
    return F.col("ts") if typed(raw, "ts") else parse_timestamp(F.col("ts"))


def rejection_reason(max_plays: int, has_plays: bool,
                     max_id_length: int = DEFAULT_MAX_ID_LENGTH, typed_plays: bool = False,
                     typed_ts: bool = False) -> Column:
    """The first rule a raw row breaks, or null for a good row (typed_plays, typed_ts: those
    columns are typed, see `typed`)."""
    uid, iid, plays, ts = (F.trim(F.col(c)) for c in ("user_id", "item_id", "plays", "ts"))
    num = F.col("plays") if typed_plays else F.expr("try_cast(trim(plays) AS DOUBLE)")
    reason = F.when(F.col("_reason").isNotNull(), F.col("_reason"))
    for name, value in (("user_id", uid), ("item_id", iid)):
        reason = (
            reason.when(value.isNull() | (value == ""), F.lit(f"null or empty {name}"))
            .when(value.rlike(_CONTROL), F.lit(f"control character in {name}"))
            .when(F.length(value) > max_id_length,
                  F.lit(f"{name} longer than {max_id_length} characters"))
        )
    if has_plays:  # typed plays are a whole number already: only their range to check
        missing = num.isNull() if typed_plays else plays.isNull() | (plays == "")
        reason = reason.when(missing, F.lit("missing plays"))
        if not typed_plays:
            reason = reason.when(num.isNull() | F.isnan(num),
                                 F.concat(F.lit("non-numeric plays: "), plays))
        reason = (reason.when(num <= 0, F.lit("zero or negative plays"))
                  .when(num > F.lit(max_plays),
                        F.lit(f"absurd plays (more than {max_plays} in one row)")))
        if not typed_plays:
            reason = reason.when(num != F.floor(num), F.lit("non-integer plays"))
    if not typed_ts:  # a typed timestamp has nothing to parse (null: no time, as "")
        reason = reason.when(ts.isNotNull() & (ts != "") & parse_timestamp(ts).isNull(),
                             F.concat(F.lit("unparseable timestamp: "), ts))
    return reason


def tag_rows(raw: DataFrame, max_plays: int = DEFAULT_MAX_PLAYS, has_plays: bool = True,
             max_id_length: int = DEFAULT_MAX_ID_LENGTH) -> DataFrame:
    """The raw rows with `_why`: the first rule each breaks (rejection_reason), null for a good
    row. Cache it when both outputs of split_tagged are computed, so that the rules (regular
    expressions over every id) run once, not once per output."""
    if max_plays < 1 or max_id_length < 1:
        raise ValueError("max_plays and max_id_length must be >= 1")
    return raw.withColumn("_why", rejection_reason(max_plays, has_plays, max_id_length,
                                                   typed(raw, "plays"), typed(raw, "ts")))


def split_tagged(tagged: DataFrame, has_plays: bool = True) -> tuple[DataFrame, DataFrame]:
    """(play_events, quarantine) from tag_rows' rows.

    has_plays=False means an event log: each row is one play, and rows are aggregated to one
    row per (user, item, day) with plays = number of events and ts = the last one that day.
    """
    typed_plays = typed(tagged, "plays")
    quarantine = tagged.where(F.col("_why").isNotNull()).select(  # as found, as text
        "user_id", "item_id", F.col("plays").cast("string").alias("plays"),
        (F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss") if typed(tagged, "ts")
         else F.col("ts")).alias("ts"),
        F.col("_raw").alias("raw_line"), F.col("_why").alias("reason"),
    )
    # try_cast twice: Spark may evaluate this before the filter, on rejected rows too
    # (NaN, 1e30), and a plain cast of those raises under ANSI mode.
    plays = (F.col("plays").cast("long") if typed_plays
             else F.expr("try_cast(try_cast(trim(plays) AS DOUBLE) AS BIGINT)"))
    good = tagged.where(F.col("_why").isNull()).select(
        F.trim("user_id").alias("user_id"),
        F.trim("item_id").alias("item_id"),
        (plays if has_plays else F.lit(1).cast("long")).alias("plays"),
        raw_timestamp(tagged).alias("ts"),
    )
    if not has_plays:
        good = (good.groupBy("user_id", "item_id", F.to_date("ts").alias("_day"))
                .agg(F.sum("plays").alias("plays"), F.max("ts").alias("ts"))
                .drop("_day"))
    return good, quarantine


def validate_plays(raw: DataFrame, max_plays: int = DEFAULT_MAX_PLAYS,
                   has_plays: bool = True,
                   max_id_length: int = DEFAULT_MAX_ID_LENGTH) -> tuple[DataFrame, DataFrame]:
    """(play_events, quarantine) from a raw DataFrame (see sources.RAW_COLUMNS): tag_rows,
    then split_tagged."""
    return split_tagged(tag_rows(raw, max_plays, has_plays, max_id_length), has_plays)

"""Ingestion: play logs from the configured source, split into valid plays and quarantine."""

import warnings
from dataclasses import dataclass

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import checks
from ..config import PlaySourceConfig
from ..ml.ingest.days import DAY, day_of_play, day_of_raw, in_days
from ..ml.ingest.sources import read_source
from ..ml.ingest.validation import split_tagged, tag_rows
from ..partitions import PLAY_DAYS
from ..progress import Heartbeat
from ..resources import SparkResource
from .helpers import KINDS, OWNERS, POOL, fails_for_good, table_metadata

with warnings.catch_warnings():  # backfill_policy is "beta" in dagster 1.13
    warnings.simplefilter("ignore", dg.BetaWarning)
    SINGLE_RUN = dg.BackfillPolicy.single_run()


@dg.multi_asset(
    outs={
        "play_events": dg.AssetOut(
            description="Valid plays, one partition per UTC day: user_id, item_id, plays >= 1, "
            "ts (null in snapshot sources), day. Event logs are aggregated per user, item and "
            "day. Re-materialising a day replaces it (no duplicated plays).",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="2",
        ),
        "play_events_quarantine": dg.AssetOut(
            description="Rejected input rows, as found, with the reason they were rejected; "
            "by the day of their timestamp, or the delivery day when it is unreadable.",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="2",
        ),
        "item_catalog": dg.AssetOut(
            description="The source's item catalogue: item_id, name, artist_id, artist_name "
            "(null when the source does not name an item's artist), day delivered; empty when "
            "it has none. Readers keep the newest row per item.",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="3",
        ),
    },
    partitions_def=PLAY_DAYS, pool=POOL,
    # A backfill of many days is one run: the source is read once and split by day.
    backfill_policy=SINGLE_RUN,
    check_specs=[
        dg.AssetCheckSpec(
            checks.QUARANTINE_FRACTION, asset="play_events", blocking=True,
            description="The share of quarantined input rows is at most "
            "max_quarantine_fraction (a day that delivered nothing has nothing quarantined).",
        ),
        dg.AssetCheckSpec(
            checks.EVERY_DAY_DELIVERED, asset="play_events", blocking=False,
            description="Every day of the run delivered plays; an empty day is a warning with "
            "the count of empty days, not an error.",
        ),
    ],
)
@fails_for_good
def ingest_play_logs(context: dg.AssetExecutionContext, config: PlaySourceConfig,
                     spark: SparkResource):
    """Read play logs for the run's days, validate every row, quarantine the bad ones with a
    reason. Rows of days outside the run are counted, and land when those days are run."""
    days = context.partition_key_range
    first, last = days.start, days.end
    params = config.params()
    got = deliver(context, spark.spark_session, params, first, last)
    events, quarantine = got.events, got.quarantine
    n_bad, n_events, n_delivered = got.n_bad, got.n_events, got.n_delivered
    reasons = (quarantine.groupBy("reason").count().orderBy(F.desc("count"), "reason")
               .limit(20).toPandas())
    fraction = n_bad / n_delivered if n_delivered else 0.0
    per_day, empty = plays_per_day(context, events)

    yield dg.Output(events, "play_events", metadata={
        **table_metadata(events, n_events),
        "source": got.described,
        "days": f"{first}..{last}",
        "input_rows": got.n_input,
        "accepted_rows": n_delivered - n_bad,
        "rows_for_other_days": got.n_input - n_delivered,
        "total_plays": int(per_day.plays.sum()) if len(per_day) else 0,
        "days_with_plays": len(per_day),
        "empty_days": len(empty),
        "has_timestamps": bool(events.where(F.col("ts").isNull()).limit(1).count() == 0
                               and n_events > 0),
    })
    yield dg.Output(quarantine, "play_events_quarantine", metadata={
        **table_metadata(quarantine, n_bad),
        "quarantined_fraction": float(fraction),
        "reasons": dg.MetadataValue.md(reasons.to_markdown(index=False) if len(reasons)
                                       else "_no rejected rows_"),
    })
    names = got.names.withColumn(DAY, F.lit(last).cast("date")).persist()
    catalogue = names.agg(F.count("*").alias("items"),
                          F.count("artist_id").alias("with_artist")).first()
    yield dg.Output(names, "item_catalog", metadata={
        **table_metadata(names, catalogue["items"]),
        "items_with_artist": int(catalogue["with_artist"])})
    yield dg.AssetCheckResult(
        check_name=checks.QUARANTINE_FRACTION, asset_key="play_events",
        passed=fraction <= params.max_quarantine_fraction,
        metadata={"quarantined_fraction": float(fraction), "quarantined_rows": n_bad,
                  "delivered_rows": n_delivered, "threshold": params.max_quarantine_fraction},
    )
    yield dg.AssetCheckResult(
        check_name=checks.EVERY_DAY_DELIVERED, asset_key="play_events", passed=not empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"empty_days": len(empty), "days": len(context.partition_keys),
                  "first_empty_day": empty[0] if empty else "none"},
    )
    # Unpersist all: a cached plan of the same source path would otherwise serve a later,
    # re-delivered file's old rows to the next run in this session.
    for frame in (got.raw, events, quarantine, names):
        frame.unpersist()


def plays_per_day(context, events: DataFrame):
    """(plays per day with plays, the run's days without any), the latter also logged."""
    per_day = events.groupBy(DAY).agg(F.sum("plays").alias("plays")).orderBy(DAY).toPandas()
    with_plays = {str(day) for day in per_day[DAY]}
    empty = [day for day in context.partition_keys if day not in with_plays]
    if empty:
        context.log.warning(f"{len(empty)} of {len(context.partition_keys)} days delivered no "
                            f"plays: {empty[0]}..{empty[-1]}")
    return per_day, empty


@dataclass(frozen=True)
class Delivery:
    """The run's days of a source, validated: valid plays and quarantined rows of those days
    (both cached), the raw rows with the rule each breaks (cached), the item names, and the
    counts."""

    raw: DataFrame
    events: DataFrame
    quarantine: DataFrame
    names: DataFrame
    described: str
    n_input: int  # every row the source gave, whatever its day
    n_delivered: int  # rows of the run's days
    n_bad: int
    n_events: int


def deliver(context, session, params, first: str, last: str) -> Delivery:
    """Read the source, validate every row and keep the rows of days first..last; the source's
    passes under one heartbeat, and one log line of the counts."""
    raw, names, has_plays, described = read_source(session, params, (first, last))
    # The raw rows cached with the rule each breaks: the rules run once for both outputs.
    raw = tag_rows(raw, params.max_plays, has_plays, params.max_id_length).persist()
    with Heartbeat(context.log.info, "ingest_play_logs", session):  # the source's passes
        n_input = raw.count()
        events, quarantine = split_tagged(raw, has_plays)
        events = day_of_play(events, last).where(in_days(first, last)).persist()
        quarantine = day_of_raw(quarantine, last).where(in_days(first, last)).persist()
        n_delivered = day_of_raw(raw, last).where(in_days(first, last)).count()
        n_bad = quarantine.count()
        n_events = events.count()
    context.log.info(f"{described}: {n_input} input rows; days {first}..{last}: "
                     f"{n_delivered - n_bad} accepted, {n_bad} quarantined; "
                     f"{n_input - n_delivered} belong to other days")
    return Delivery(raw, events, quarantine, names, described, n_input, n_delivered, n_bad,
                    n_events)

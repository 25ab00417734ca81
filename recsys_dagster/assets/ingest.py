"""Ingestion: play logs from the configured source, split into valid plays and quarantine."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import checks
from ..config import PlayEventsConfig
from ..ml import datagen, sources
from ..ml.validation import validate_plays
from ..paths import SEED_EXAMPLE_CSV, resolve_resource_path
from ..resources import SparkResource
from .metadata import KINDS, OWNERS, table_metadata

CATALOG_SCHEMA = "item_id string, name string"


def read_source(spark, config: PlayEventsConfig) -> tuple[DataFrame, DataFrame, bool, str]:
    """(raw rows, item names, whether rows carry play counts, a description of the source)."""
    empty_names = spark.createDataFrame([], CATALOG_SCHEMA)
    if config.source == "synthetic":
        spec = config.synthetic.spec()
        plays = datagen.synthetic_play_logs(spark, spec)
        names = spark.createDataFrame(datagen.catalogue_frame(spec)[["item_id", "name"]])
        return sources.typed_to_raw(plays), names, True, f"synthetic {spec}"
    if config.source == "seed":
        path = str(SEED_EXAMPLE_CSV)
        return (sources.read_delimited(spark, path, sources.ColumnMapping()), empty_names,
                True, path)
    if config.source == "lastfm_hetrec":
        folder = resolve_resource_path(config.lastfm_dir)
        names = sources.read_lastfm_artists(spark, folder)
        return (sources.read_lastfm_user_artists(spark, folder),
                names if names is not None else empty_names, True, folder)
    fc = config.file
    if not fc.path:
        raise sources.SourceError("source 'file' needs file.path")
    path = resolve_resource_path(fc.path)
    mapping = sources.ColumnMapping(fc.user_column, fc.item_column, fc.plays_column,
                                    fc.timestamp_column)
    if fc.format == "parquet":
        raw = sources.read_parquet(spark, path, mapping)
    else:
        delimiter = "\t" if fc.format == "tsv" else ","
        raw = sources.read_delimited(spark, path, mapping, delimiter, fc.header)
    names = empty_names
    if fc.item_names_path:
        names_raw = sources.read_delimited(
            spark, resolve_resource_path(fc.item_names_path),
            sources.ColumnMapping(fc.item_names_id_column, fc.item_names_name_column, None),
            "\t" if fc.format == "tsv" else ",", True)
        names = (names_raw.where(F.col("_reason").isNull())
                 .select(F.col("user_id").alias("item_id"), F.col("item_id").alias("name"))
                 .dropDuplicates(["item_id"]))
    return raw, names, fc.plays_column is not None, path


@dg.multi_asset(
    outs={
        "play_events": dg.AssetOut(
            description="Valid plays: user_id, item_id, plays >= 1, ts (nullable); event logs "
            "aggregated per user, item and day.",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="1",
        ),
        "play_events_quarantine": dg.AssetOut(
            description="Rejected input rows, as found, with the reason they were rejected.",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="1",
        ),
        "item_catalog": dg.AssetOut(
            description="Item names from the source (item_id, name); empty when it has none.",
            group_name="ingestion", kinds=KINDS, owners=OWNERS, code_version="1",
        ),
    },
    check_specs=[dg.AssetCheckSpec(
        checks.QUARANTINE_FRACTION, asset="play_events", blocking=True,
        description="The share of quarantined input rows is at most max_quarantine_fraction.",
    )],
)
def ingest_play_logs(context: dg.AssetExecutionContext, config: PlayEventsConfig,
                     spark: SparkResource):
    """Read play logs, validate every row, quarantine the bad ones with a reason."""
    session = spark.spark_session
    raw, names, has_plays, described = read_source(session, config)
    raw = raw.persist()
    n_input = raw.count()
    events, quarantine = validate_plays(raw, config.max_plays, has_plays)
    events, quarantine = events.persist(), quarantine.persist()
    n_bad = quarantine.count()
    n_events = events.count()
    reasons = (quarantine.groupBy("reason").count().orderBy(F.desc("count"), "reason")
               .limit(20).toPandas())
    fraction = n_bad / n_input if n_input else 1.0
    context.log.info(f"{described}: {n_input} input rows, {n_bad} quarantined")

    yield dg.Output(events, "play_events", metadata={
        **table_metadata(events, n_events),
        "source": described,
        "input_rows": n_input,
        "accepted_rows": n_input - n_bad,
        "total_plays": int(events.agg(F.sum("plays")).first()[0] or 0),
        "has_timestamps": bool(events.where(F.col("ts").isNull()).limit(1).count() == 0
                               and n_events > 0),
    })
    yield dg.Output(quarantine, "play_events_quarantine", metadata={
        **table_metadata(quarantine, n_bad),
        "quarantined_fraction": float(fraction),
        "reasons": dg.MetadataValue.md(reasons.to_markdown(index=False) if len(reasons)
                                       else "_no rejected rows_"),
    })
    names = names.persist()
    yield dg.Output(names, "item_catalog", metadata=table_metadata(names, names.count()))
    yield dg.AssetCheckResult(
        check_name=checks.QUARANTINE_FRACTION, asset_key="play_events",
        passed=n_input > 0 and fraction <= config.max_quarantine_fraction,
        metadata={"quarantined_fraction": float(fraction), "quarantined_rows": n_bad,
                  "input_rows": n_input, "threshold": config.max_quarantine_fraction},
    )
    raw.unpersist()

"""Metadata helpers shared by the assets: schemas, previews, metric tables."""


import dagster as dg
from pyspark.sql import DataFrame

OWNERS = ["team:recsys"]
KINDS = {"spark", "parquet"}
# Recorded on user_recommendations: which model is being served (the champion) and its test
# metric. The IO manager also writes these into the served table's manifest (SERVED_RECORD):
# the warehouse, not the Dagster instance, says what a warehouse serves.
SERVED_PREFIX = "served_model/"
SERVED_METRIC = SERVED_PREFIX + "metric"
SERVED_VALUE = SERVED_PREFIX + "value"
MODEL_RUN = SERVED_PREFIX + "run_id"
MODEL_VERSION = SERVED_PREFIX + "model_version"
SERVED_RECORD = "served_model"


def served_record(output_metadata) -> dict:
    """The served_model/* entries of an output's metadata, as a plain dict for a manifest."""
    return {key[len(SERVED_PREFIX):]: getattr(value, "value", value)
            for key, value in output_metadata.items() if key.startswith(SERVED_PREFIX)}


def column_schema(df: DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    )


def table_metadata(df: DataFrame, rows: int, preview_rows: int = 5, order_by=None) -> dict:
    """Standard row count and column schema, plus a small markdown preview."""
    sample = df.orderBy(*order_by) if order_by else df
    preview = sample.limit(preview_rows).toPandas()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": column_schema(df),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview)
                                       else "_empty_"),
    }

"""Metadata helpers shared by the assets: schemas, previews, metric tables."""


import dagster as dg
from pyspark.sql import DataFrame

OWNERS = ["team:recsys"]
KINDS = {"spark", "parquet"}
# Recorded on user_recommendations: the test metric of the model being served (the champion).
SERVED_METRIC = "served_model/metric"
SERVED_VALUE = "served_model/value"
MODEL_RUN = "served_model/run_id"


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

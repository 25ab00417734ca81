"""What every asset module shares: owners and kinds, metadata (schemas, previews, plots) and
the tuned settings. Asset modules import this one and never each other."""

import base64

import dagster as dg
from pyspark.sql import DataFrame

from ..ml.evaluation.tuning import SEARCHED, apply
from ..tables import TableSet

OWNERS = ["team:recsys"]
KINDS = {"spark", "parquet"}


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


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG shown inline in the UI's metadata panel."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def tuned_params(context, config, als_tuning: TableSet) -> tuple:
    """(settings, whether tuned): the settings of `config` (a ConfidenceConfig or ALSConfig),
    with the best trial's values in place when it asks for them (use_tuned) and tuning ran."""
    params = config.params()
    trial = _best_trial(als_tuning) if config.use_tuned else {}
    if trial:
        params = apply(trial, params)
        context.log.info(f"using tuned settings: {params}")
    return params, bool(trial)


def _best_trial(als_tuning: TableSet) -> dict:
    best = als_tuning.params.get("best")
    if not best:
        return {}
    if "trial" in best:
        return dict(best["trial"])
    # a table written before trials were recorded as such: its values per section
    return {k: v for section in ("confidence", "als") for k, v in best[section].items()
            if k in SEARCHED}

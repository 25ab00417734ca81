"""Evaluation: holdout metrics for ALS and popularity, and the publication gate."""


import dagster as dg
from pyspark.sql import DataFrame

from .. import checks
from ..config import EvaluationConfig
from ..ml.als import ALSParams
from ..ml.confidence import ConfidenceParams
from ..ml.evaluate import evaluate
from ..resources import SparkResource
from ..tables import TableSet
from .metadata import KINDS, OWNERS, column_schema


@dg.asset(
    group_name="evaluation", kinds=KINDS, owners=OWNERS, code_version="1",
    check_specs=[dg.AssetCheckSpec(
        checks.ALS_BEATS_POPULARITY, asset="evaluation_metrics", blocking=True,
        description="ALS beats the popularity baseline on the primary metric; recommendations "
        "are only republished when it does.",
    )],
)
def evaluation_metrics(context: dg.AssetExecutionContext, config: EvaluationConfig,
                       interactions: DataFrame, als_model: TableSet, spark: SparkResource):
    """Holdout precision, recall, NDCG, MAP at K and coverage: ALS vs popularity."""
    result = evaluate(
        interactions,
        ConfidenceParams(**als_model.params["confidence"]),
        ALSParams(**als_model.params["als"]),
        k=config.k, holdout_fraction=config.holdout_fraction, seed=config.seed,
        split=config.split,
    )
    table = result.table
    metadata = {f"{r.model}/{r.metric}@{r.k}": dg.MetadataValue.float(float(r.value))
                for r in table.itertuples()}
    wide = table.pivot(index="metric", columns="model", values="value").reset_index()
    metadata.update({
        "metrics": dg.MetadataValue.md(wide.to_markdown(index=False, floatfmt=".4f")),
        "split": result.split,
        **{name: dg.MetadataValue.int(v) if isinstance(v, int) else dg.MetadataValue.float(v)
           for name, v in result.counts.items()},
        "dagster/row_count": len(table),
    })
    df = spark.spark_session.createDataFrame(table, "model string, metric string, k int, value double")
    metadata["dagster/column_schema"] = column_schema(df)
    yield dg.Output(df, metadata=metadata)

    als_v = result.value("als", config.primary_metric)
    pop_v = result.value("popularity", config.primary_metric)
    yield dg.AssetCheckResult(
        check_name=checks.ALS_BEATS_POPULARITY,
        passed=als_v > pop_v and als_v >= pop_v * (1.0 + config.min_lift),
        metadata={"metric": f"{config.primary_metric}@{config.k}", "als": als_v,
                  "popularity": pop_v, "lift": (als_v / pop_v - 1.0) if pop_v else 0.0,
                  "min_lift": config.min_lift},
    )

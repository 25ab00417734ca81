"""Evaluation: the train/validation/test split, test metrics with intervals, and the gate."""

import base64

import dagster as dg
from pyspark.sql import DataFrame

from .. import checks
from ..config import EvaluationConfig, SplitConfig
from ..ml.als import ALSParams
from ..ml.confidence import ConfidenceParams
from ..ml.evaluate import TABLE_COLUMNS, evaluate, has_timestamps
from ..ml.plots import segment_plot
from ..ml.split import three_way_split
from ..partitions import LATEST_DAY
from ..resources import SparkResource, Warehouse
from ..tables import TableSet
from .metadata import KINDS, OWNERS, column_schema
from .serving import served_model

TABLE_SCHEMA = ("model string, metric string, k int, value double, segment string, "
                "ci_low double, ci_high double")


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def champion_check(config: EvaluationConfig, served: dict,
                   challenger: float) -> dg.AssetCheckResult:
    """Compare with the model this warehouse serves (`served`, its manifest record); no served
    model yet, or one measured on another metric, means nothing to defend."""
    metric = f"{config.primary_metric}@{config.k}"
    champion = None
    if served.get("value") is not None and served.get("metric") == metric:
        champion = float(served["value"])
    floor = None if champion is None else champion * (1.0 - config.max_regression)
    return dg.AssetCheckResult(
        check_name=checks.CHALLENGER_NOT_WORSE,
        passed=bool(floor is None or challenger >= floor),
        metadata={"metric": metric, "challenger": challenger,
                  "champion": champion if champion is not None else "none served yet",
                  "max_regression": config.max_regression,
                  **({"floor": floor} if floor is not None else {})},
    )


@dg.asset(group_name="evaluation", kinds=KINDS, owners=OWNERS, code_version="1",
          ins={"interactions": LATEST_DAY})
def evaluation_split(config: SplitConfig, interactions: DataFrame):
    """Train / validation / test interactions per user (temporal when timestamps exist)."""
    temporal = config.split == "temporal" or (config.split == "auto"
                                              and has_timestamps(interactions))
    parts = three_way_split(interactions, config.validation_fraction, config.test_fraction,
                            config.seed, temporal)
    frames = dict(zip(("train", "validation", "test"), (p.persist() for p in parts)))
    counts = {name: df.count() for name, df in frames.items()}
    kind = "temporal" if temporal else "random"
    return dg.Output(
        TableSet(frames, {"split": kind, "validation_fraction": config.validation_fraction,
                          "test_fraction": config.test_fraction, "seed": config.seed}),
        metadata={"split": kind, **{f"{n}_rows": c for n, c in counts.items()},
                  "dagster/row_count": sum(counts.values()),
                  "dagster/column_schema": column_schema(frames["train"])},
    )


@dg.asset(
    group_name="evaluation", kinds=KINDS, owners=OWNERS, code_version="2",
    check_specs=[
        dg.AssetCheckSpec(
            checks.ALS_BEATS_POPULARITY, asset="evaluation_metrics", blocking=True,
            description="ALS beats popularity on the primary metric with the bootstrap interval "
            "clear of it; recommendations are only republished when it does.",
        ),
        dg.AssetCheckSpec(
            checks.CHALLENGER_NOT_WORSE, asset="evaluation_metrics", blocking=True,
            description="The new model is not worse than the served one (the metric kept in the "
            "served user_recommendations table's manifest) by more than max_regression.",
        ),
    ],
)
def evaluation_metrics(context: dg.AssetExecutionContext, config: EvaluationConfig,
                       evaluation_split: TableSet, als_model: TableSet, spark: SparkResource,
                       warehouse: Warehouse):
    """Test metrics with bootstrap intervals: ALS vs popularity and item-kNN, per segment."""
    fit = evaluation_split["train"].unionByName(evaluation_split["validation"])
    result = evaluate(
        fit, evaluation_split["test"],
        ConfidenceParams(**als_model.params["confidence"]), ALSParams(**als_model.params["als"]),
        k=config.k, primary=config.primary_metric, n_boot=config.n_bootstrap, seed=config.seed,
        knn_neighbours=config.knn_neighbours, max_users=config.max_users,
        knn_max_users=config.knn_max_users, knn_max_items_per_user=config.knn_max_items_per_user,
    )
    table = result.table
    overall = table[table.segment == "all"]
    metadata = {f"{r.model}/{r.metric}@{r.k}": dg.MetadataValue.float(float(r.value))
                for r in overall.itertuples() if r.value == r.value}
    primary = config.primary_metric
    for model in ("als", "popularity", "item_knn"):
        lo, hi = result.interval(model, primary)
        metadata[f"{model}/{primary}@{config.k} 95% CI"] = f"[{lo:.4f}, {hi:.4f}]"
    wide = overall[~overall.model.str.contains("-")].pivot(
        index="metric", columns="model", values="value").reset_index()
    seg = table[(table.segment != "all") & (table.metric == primary)].pivot(
        index="segment", columns="model", values="value").reset_index()
    png = segment_plot(table, primary)
    metadata.update({
        "metrics": dg.MetadataValue.md(wide.to_markdown(index=False, floatfmt=".4f")),
        "segments": dg.MetadataValue.md(seg.to_markdown(index=False, floatfmt=".4f")),
        "segment_plot": png_markdown(png, f"{primary} per segment"),
        "split": evaluation_split.params.get("split", "?"),
        "primary_metric": f"{primary}@{config.k}",
        **{name: dg.MetadataValue.int(v) if isinstance(v, int) else dg.MetadataValue.float(v)
           for name, v in result.counts.items()},
        "dagster/row_count": len(table),
    })
    df = spark.spark_session.createDataFrame(table[TABLE_COLUMNS], TABLE_SCHEMA)
    metadata["dagster/column_schema"] = column_schema(df)
    per_user = spark.spark_session.createDataFrame(result.per_user)
    yield dg.Output(TableSet({"metrics": df, "per_user": per_user},
                             {"primary_metric": primary, "k": config.k},
                             {"segments.png": png}), metadata=metadata)

    als_v, pop_v = result.value("als", primary), result.value("popularity", primary)
    als_lo, _ = result.interval("als", primary)
    diff_lo, diff_hi = result.interval("als-popularity", primary)
    passed = (als_lo > pop_v and diff_lo > 0 and als_v >= pop_v * (1.0 + config.min_lift))
    yield champion_check(config, served_model(warehouse.store()), als_v)
    yield dg.AssetCheckResult(
        check_name=checks.ALS_BEATS_POPULARITY, passed=bool(passed),
        metadata={"metric": f"{primary}@{config.k}", "als": als_v, "popularity": pop_v,
                  "als_ci_low": als_lo, "difference_ci": f"[{diff_lo:.4f}, {diff_hi:.4f}]",
                  "lift": (als_v / pop_v - 1.0) if pop_v else 0.0, "min_lift": config.min_lift},
    )

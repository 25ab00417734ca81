"""What every asset module shares: owners and kinds, metadata (schemas, previews, plots) and
the tuned settings. Asset modules import this one and never each other."""

import base64
import datetime as dt
import functools
import inspect
import os
import urllib.parse

import dagster as dg
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .. import checks, settings
from ..ml.evaluation.tuning import SEARCHED, apply
from ..ml.serving.ann import TopKParams
from ..ml.serving.recommend import Ranked
from ..paths import data_dir
from ..tables import TableSet

OWNERS = ["team:recsys"]
# The asset groups in the data's order: an asset reads only from its own group or earlier
# ones, so the UI's global lineage reads left to right.
GROUP_ORDER = ("ingestion", "features", "training", "evaluation", "serving")
KINDS = {"spark", "parquet"}


def warehouse_pool(base_dir: str) -> str:
    """The concurrency pool of the assets that write the warehouse under base_dir. An instance
    whose pools have run granularity and a limit of 1 (deploy/dagster.yaml) runs at most one run
    of a warehouse's assets at a time and queues the others, however they were launched."""
    return "warehouse:" + urllib.parse.quote(os.path.abspath(base_dir))


# The code location's warehouse (RECSYS_DATA_DIR when it loads).
POOL = warehouse_pool(data_dir())
# The served tables: stale (in the UI, and an alert) once older than
# RECSYS_SERVED_MAX_AGE_MINUTES; the daemon evaluates it (deploy/dagster.yaml: freshness).
SERVED_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(minutes=settings.read(settings.SERVED_MAX_AGE_MINUTES)))


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
    with the adopted trial's values in place when it asks for them (use_tuned) and tuning ran
    and adopted one (no trial beating the current settings keeps the config's)."""
    params = config.params()
    trial = _best_trial(als_tuning) if config.use_tuned else {}
    if trial:
        params = apply(trial, params)
        context.log.info(f"using tuned settings: {params}")
    return params, bool(trial)


def _best_trial(als_tuning: TableSet) -> dict:
    best = als_tuning.params.get("best")
    if not best or best.get("adopted") is False:  # no trial beat the current settings
        return {}
    if "trial" in best:
        return dict(best["trial"])
    # a table written before trials were recorded as such: its values per section
    return {k: v for section in ("confidence", "als") for k, v in best[section].items()
            if k in SEARCHED}


def newest_catalogue(item_catalog: DataFrame) -> DataFrame:
    """One catalogue row per item (item_id, name, artist_id, artist_name): the newest. A
    catalogue ingested before artists were kept has null artists."""
    for column in ("artist_id", "artist_name"):
        if column not in item_catalog.columns:
            item_catalog = item_catalog.withColumn(column, F.lit(None).cast("string"))
    newest = Window.partitionBy("item_id").orderBy(F.desc("day"))
    return (item_catalog.withColumn("_n", F.row_number().over(newest)).where(F.col("_n") == 1)
            .select("item_id", "name", "artist_id", "artist_name"))


def item_artists(item_catalog: DataFrame, item_index: DataFrame) -> DataFrame:
    """(item_idx, artist_id) of every indexed item whose catalogue row names an artist."""
    return (newest_catalogue(item_catalog).where(F.col("artist_id").isNotNull())
            .join(item_index.select(F.col("id").alias("item_id"), F.col("idx").alias("item_idx")),
                  "item_id")
            .select("item_idx", "artist_id"))


def artist_listeners(song_artists: DataFrame, interactions: DataFrame) -> DataFrame:
    """(artist_id, listeners): the distinct users who played each artist's songs."""
    return (interactions.join(song_artists, "item_idx").groupBy("artist_id")
            .agg(F.countDistinct("user_idx").alias("listeners")))


def recall_check_spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        checks.APPROXIMATE_RECALL, asset=asset,
        description="With top_k.method approximate: recall@N of the index against exact "
        "top-N, on a seeded sample of queries, is at least top_k.recall_floor (exact: 1).")


def ranking_metadata(result: Ranked) -> dict:
    """How the top-N was found (method; for approximate, recall and the index's cost)."""
    out = {"top_k_method": result.method}
    if result.recall is not None:
        out["approximate_recall"] = dg.MetadataValue.float(result.recall)
        out.update({k: dg.MetadataValue.float(float(v)) if isinstance(v, float)
                    else dg.MetadataValue.int(int(v)) for k, v in result.info.items()})
    return out


def recall_checks(context, result: Ranked, params: TopKParams) -> list[dg.AssetCheckResult]:
    """The recall check of an approximate top-N; none under exact top-N (not executed, with
    the reason in the step's log: there is no index whose recall could be measured)."""
    if result.recall is None:
        not_executed(context, checks.APPROXIMATE_RECALL, f"top-N was {result.method}")
        return []
    return [dg.AssetCheckResult(
        check_name=checks.APPROXIMATE_RECALL, passed=result.recall >= params.recall_floor,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"method": result.method, "recall_at_n": dg.MetadataValue.float(result.recall),
                  "recall_floor": params.recall_floor,
                  "queries": int(result.info.get("recall_queries", 0))})]


def not_executed(context, check_name: str, reason: str) -> None:
    """Says in the step's log why a check was left out: the UI shows it as not executed
    (skipped), never as passed."""
    context.log.info(f"check {check_name} not executed: {reason}")


def asset_with_optional_checks(*, group_name: str, code_version: str, check_specs: list,
                               ins: dict | None = None, freshness_policy=None):
    """@asset for an asset some of whose checks do not always apply (a check of excluded
    items when nothing is excluded): a check it does not yield shows as not executed. Dagster's
    @asset fails a step that leaves a declared check out; a subsettable multi_asset of this
    one asset does not. The asset is named after the function, described by its docstring."""

    def decorate(compute):
        out = dg.AssetOut(group_name=group_name, kinds=KINDS, owners=OWNERS,
                          code_version=code_version, freshness_policy=freshness_policy,
                          description=inspect.cleandoc(compute.__doc__))
        return dg.multi_asset(outs={compute.__name__: out}, ins=ins, check_specs=check_specs,
                              can_subset=True, pool=POOL)(compute)

    return decorate


# Errors that a retry cannot mend: bad input or settings (ValueError, SourceError and
# SettingError among them), a table or a day that was never written. A step that raises one
# fails at once, without the jobs' step retries; any other error (a lost executor, a busy file
# system) is retried.
DETERMINISTIC = (ValueError, FileNotFoundError)


def fails_for_good(compute):
    """Decorates an asset's function: a DETERMINISTIC error fails the step with no retry."""

    def failure(exc: Exception) -> dg.Failure:
        return dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False)

    if inspect.isgeneratorfunction(compute):
        @functools.wraps(compute)
        def wrapped_gen(*args, **kwargs):
            try:
                yield from compute(*args, **kwargs)
            except DETERMINISTIC as exc:
                raise failure(exc) from exc
        return wrapped_gen

    @functools.wraps(compute)
    def wrapped(*args, **kwargs):
        try:
            return compute(*args, **kwargs)
        except DETERMINISTIC as exc:
            raise failure(exc) from exc
    return wrapped

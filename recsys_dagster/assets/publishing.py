"""Publication: which model a warehouse serves (the champion) and what may replace it.

The record of the served model (its als_model table version, the run, its test metric) is
kept in the manifest of the served user_recommendations table (tables.Table), so it is swapped
in and out with the table itself: the warehouse, not the Dagster instance, says what a
warehouse serves, and two data dirs sharing one DAGSTER_HOME never gate each other. The same
entries are shown as `served_model/*` metadata in the UI.

The record is the warehouse's model registry: evaluation_metrics reads the champion from it
through the Warehouse resource, not as an input, because the champion is the output of the
publication that follows the evaluation (an input would be a cycle). Everything else flows
through the assets' inputs: evaluation_metrics records which als_model version it judged and
whether its gates passed, and each serving asset publishes by that record (record_to_publish).
"""

import dagster as dg

from .. import checks
from ..ml.evaluation.evaluate import EvaluationParams
from ..tables import Table, TableSet, TableStore

RECORD = "served_model"  # the manifest entry
PREFIX = RECORD + "/"  # its metadata entries in the UI
SERVED_TABLE = "user_recommendations"


def served_model(store: TableStore, table: str = SERVED_TABLE) -> dict:
    """What a served table serves now: the record in its current manifest (model_version,
    run_id, metric, value, settings), or {} when it was never served. user_recommendations'
    record is the warehouse's champion."""
    if not store.exists(table):
        return {}
    manifest = store.manifest(table)
    return manifest.get(RECORD) or manifest.get("params", {}).get(RECORD, {})


def as_metadata(record: dict) -> dict:
    return {PREFIX + key: dg.MetadataValue.json(value) if isinstance(value, dict) else value
            for key, value in record.items()}


def model_settings(als_model: TableSet) -> dict:
    """The settings a model was trained with (its confidence and ALS parameters): kept in the
    served record, so that the next tuning starts from the served model's settings."""
    return {key: als_model.params[key] for key in ("confidence", "als")}


def evaluated_record(run_id: str, als_model: TableSet, value: float, params: EvaluationParams,
                     publishable: bool) -> dict:
    """What evaluation_metrics keeps in its params about the model it judged: the record that
    publishing serves it under, and whether its gates let it be published."""
    return {"model_version": als_model.version, "run_id": run_id,
            "metric": f"{params.primary_metric}@{params.k}", "value": value,
            "settings": model_settings(als_model), "publishable": publishable}


def record_to_publish(run_id: str, als_model: TableSet, evaluation_metrics: TableSet,
                      served: dict) -> dict:
    """Which model the table being written comes from, and its test metric (the champion that
    the next evaluation compares its challenger with), from the step's own inputs.

    Serving may only use an als_model that passed the publication gates:
    - evaluation_metrics judged this very als_model version and its gates passed (in the run
      that evaluated it, a failed blocking gate stops serving anyway; in a later run, such as
      refresh_recommendations, the recorded outcome does);
    - or als_model was written by this run, which did not evaluate it: the operator selected
      it so (Dagster's blocking checks act within a run);
    - or it is the model this warehouse serves already (its record is kept).
    A model whose gates failed, or that was trained in an earlier run and never evaluated, is
    refused. The model is named by its table version, so two warehouses sharing one Dagster
    instance never vouch for each other's models.
    """
    version = als_model.version
    judged = evaluation_metrics.params.get("evaluated", {})
    if judged.get("model_version") == version and judged.get("publishable"):
        return {key: value for key, value in judged.items() if key != "publishable"}
    if judged.get("model_version") != version and als_model.run_id == run_id:
        return {"model_version": version, "run_id": run_id, "settings": model_settings(als_model)}
    if served.get("model_version") == version:
        return served
    raise dg.Failure(
        f"als_model version {version} has not been published (its evaluation gates failed or "
        "never ran); run retrain_and_publish before refreshing.", allow_retries=False)


def served_table(frame, record: dict) -> Table:
    """A served table: the record of the model it was made from in its manifest, and pinned
    under that model's version, so that a rollback finds it while that model is one of the
    last two served (tables.PINNED_TAGS)."""
    return Table(frame, {RECORD: record}, pin=record["model_version"])


def pin_served_model(store: TableStore, record: dict) -> None:
    """Keep the als_model version being published (and the one served before it) whatever
    the retention: the served model's files are never deleted while it is served."""
    store.pin("als_model", record["model_version"], record["model_version"])


def champion_check(params: EvaluationParams, served: dict,
                   challenger: float) -> dg.AssetCheckResult:
    """The second publication gate: the challenger is at most max_regression worse than the
    served model on the same metric. No served model yet, or one measured on another metric,
    means nothing to defend."""
    metric = f"{params.primary_metric}@{params.k}"
    champion = None
    if served.get("value") is not None and served.get("metric") == metric:
        champion = float(served["value"])
    floor = None if champion is None else champion * (1.0 - params.max_regression)
    return dg.AssetCheckResult(
        check_name=checks.CHALLENGER_NOT_WORSE,
        passed=bool(floor is None or challenger >= floor),
        metadata={"metric": metric, "challenger": challenger,
                  "champion": champion if champion is not None else "none served yet",
                  "max_regression": params.max_regression,
                  **({"floor": floor} if floor is not None else {})},
    )

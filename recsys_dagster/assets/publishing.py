"""Publication: which model a warehouse serves (the champion) and what may replace it.

The record of the served model (its als_model table version, the run, its test metric) is
kept in the manifest of the served user_recommendations table (tables.Table), so it is swapped
in and out with the table itself: the warehouse, not the Dagster instance, says what a
warehouse serves, and two data dirs sharing one DAGSTER_HOME never gate each other. The same
entries are shown as `served_model/*` metadata in the UI.
"""

import dagster as dg

from .. import checks
from ..ml.evaluation.evaluate import EvaluationParams
from ..tables import Table, TableStore

RECORD = "served_model"  # the manifest entry
PREFIX = RECORD + "/"  # its metadata entries in the UI
SERVED_TABLE = "user_recommendations"


def served_model(store: TableStore) -> dict:
    """What the warehouse serves now: the record in the current user_recommendations
    manifest (model_version, run_id, metric, value), or {} when nothing was served yet."""
    if not store.exists(SERVED_TABLE):
        return {}
    return store.manifest(SERVED_TABLE).get(RECORD, {})


def as_metadata(record: dict) -> dict:
    return {PREFIX + key: value for key, value in record.items()}


def _made_in_this_run(context, key: str) -> dg.EventLogEntry | None:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(key))
    return event if event is not None and event.run_id == context.run_id else None


def record_to_publish(context, store: TableStore) -> dict:
    """Which model the recommendations being written come from, and its test metric (the
    champion that the next evaluation compares its challenger with).

    Serving may only use an als_model that passed the publication gates. In a run that also
    evaluated it, reaching this step means the blocking gates passed. A model trained in this
    very run without its evaluation was selected so by the operator (Dagster's blocking checks
    act within a run). In a run that did neither (refresh_recommendations), the current
    als_model must be the one this warehouse's served recommendations were made from: a model
    whose gates failed in an earlier run is refused. The model is named by its table version,
    so two warehouses sharing one Dagster instance never vouch for each other's models.
    """
    version = store.version("als_model")
    if version is None:
        raise dg.Failure(f"no als_model under {store.base_dir}; run retrain_and_publish first",
                         allow_retries=False)
    record = {"model_version": version}
    evaluated = _made_in_this_run(context, "evaluation_metrics")
    if evaluated is not None:
        meta = evaluated.asset_materialization.metadata
        metric = meta["primary_metric"].value
        return {**record, "run_id": context.run_id, "metric": metric,
                "value": float(meta[f"als/{metric}"].value)}
    if _made_in_this_run(context, "als_model") is not None:
        return {**record, "run_id": context.run_id}
    served = served_model(store)
    if served.get("model_version") != version:
        raise dg.Failure(
            f"als_model version {version} under {store.base_dir} has not been published (its "
            "evaluation gates failed or never ran); run retrain_and_publish before refreshing.",
            allow_retries=False)
    return served


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

"""Champion / challenger: a new model clearly worse than the served one is not published."""

import copy
import shutil

from helpers import STANDARD_CONFIG, checks_by_name, copy_warehouse, materialize

from recsys_dagster.definitions import make_resources
from recsys_dagster.resources import Warehouse
from recsys_dagster.tables import TableStore

INGESTION = ["play_events", "play_events_quarantine", "item_catalog"]
RETRAIN = ["user_index", "item_index", "interactions", "evaluation_split", "als_tuning",
           "confidence_matrix", "als_model", "evaluation_metrics", "user_recommendations",
           "similar_items"]


def config(rank, max_iter, reg):
    """The standard run's data, with these ALS settings and a 2% regression allowance."""
    cfg = copy.deepcopy(STANDARD_CONFIG)
    cfg["ops"]["als_model"]["config"].update(rank=rank, max_iter=max_iter, reg_param=reg)
    cfg["ops"]["evaluation_metrics"]["config"]["max_regression"] = 0.02
    return cfg


def test_worse_challenger_is_blocked_and_champion_keeps_serving(standard_run, spark_resource,
                                                                tmp_path):
    # The champion: the standard run (rank 8, 6 iterations), the first model served in its
    # warehouse; this test changes a copy of it, recording in the same instance.
    instance, first = standard_run.instance, standard_run.result
    name = ("evaluation_metrics", "challenger_not_worse_than_served")
    assert checks_by_name(first)[name] is True  # nothing served yet
    store = copy_warehouse(standard_run.store, tmp_path / "data")
    resources = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    record = store.manifest("user_recommendations")["served_model"]
    champion = record["value"]
    assert record["metric"] == "precision@10" and champion > 0
    assert record["model_version"] == store.version("als_model")
    served_meta = [e for e in first.get_asset_materialization_events()
                   if e.asset_key.path == ["user_recommendations"]][0].materialization.metadata
    assert served_meta["served_model/value"].value == champion  # shown in the UI too
    served = store.current_path("user_recommendations")

    other_warehouse_is_not_gated_by_this_one(instance, spark_resource,
                                             str(tmp_path / "other-warehouse"), store, champion)

    # A crippled challenger: rank 1, one iteration, crushing regularisation, retrained on the
    # plays already ingested.
    second = materialize(RETRAIN, resources, config(1, 1, 50.0), instance=instance,
                         raise_on_error=False)
    evals = [e for e in second.get_asset_check_evaluations()
             if (e.asset_key.path[-1], e.check_name) == name]
    assert evals and evals[0].passed is False
    meta = evals[0].metadata
    assert meta["champion"].value == champion and meta["challenger"].value < champion * 0.98
    assert store.current_path("user_recommendations") == served

    # Between retrains, a refresh must not serve the rejected challenger's factors.
    refresh = [*INGESTION, "user_index", "item_index", "interactions", "user_recommendations"]
    ingest = {"ops": {"ingest_play_logs": config(8, 6, 0.1)["ops"]["ingest_play_logs"]}}
    third = materialize(refresh, resources, ingest, instance=instance, raise_on_error=False)
    assert not third.success
    failure = [e for e in third.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "has not been published" in str(failure[0].event_specific_data.error.message)
    assert store.current_path("user_recommendations") == served


def other_warehouse_is_not_gated_by_this_one(instance, spark_resource, other_dir, store,
                                             champion):
    """The champion is what *this* warehouse serves: a good model served from one data dir
    (sharing the Dagster instance) neither blocks a weaker one on a fresh data dir nor
    vouches for that warehouse's unpublished models."""
    other = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=other_dir))
    for table in INGESTION:  # the same plays, delivered to the other warehouse
        shutil.copytree(store.table_dir(table), TableStore(other_dir).table_dir(table),
                        symlinks=True)
    # Two iterations: clearly weaker than the champion (six), still above popularity.
    weak = materialize(RETRAIN, other, config(8, 2, 0.1), instance=instance,
                       raise_on_error=False)
    name = ("evaluation_metrics", "challenger_not_worse_than_served")
    evals = [e for e in weak.get_asset_check_evaluations()
             if (e.asset_key.path[-1], e.check_name) == name]
    assert evals and evals[0].passed is True
    assert evals[0].metadata["champion"].value == "none served yet"
    assert evals[0].metadata["challenger"].value < champion * 0.98
    other_store = TableStore(other_dir)
    published = other_store.manifest("user_recommendations")["served_model"]
    assert published["model_version"] == other_store.version("als_model")

    # A model trained (not evaluated) in the other warehouse is not published by the first.
    retrain = materialize(["confidence_matrix", "als_model"], other,
                          {"ops": {"als_model": config(8, 2, 0.1)["ops"]["als_model"]}},
                          instance=instance)
    assert retrain.success
    refresh = materialize(["user_recommendations"], other, instance=instance,
                          raise_on_error=False)
    assert not refresh.success
    assert other_store.manifest("user_recommendations")["served_model"] == published
    assert store.manifest("user_recommendations")["served_model"]["value"] == champion

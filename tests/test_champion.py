"""Champion / challenger: a new model clearly worse than the served one is not published."""

import dagster as dg
from helpers import checks_by_name, materialize

from recsys_dagster.definitions import make_resources
from recsys_dagster.resources import Warehouse
from recsys_dagster.tables import TableStore


def config(rank, max_iter, reg):
    return {"ops": {
        "ingest_play_logs": {"config": {"synthetic": {"n_users": 500, "n_items": 600,
                                                      "n_artists": 90, "seed": 5}}},
        "als_model": {"config": {"rank": rank, "max_iter": max_iter, "reg_param": reg}},
        "evaluation_metrics": {"config": {"max_regression": 0.02, "n_bootstrap": 200}},
    }}


def test_worse_challenger_is_blocked_and_champion_keeps_serving(resources, spark_resource,
                                                                data_dir, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    first = materialize(None, resources, config(16, 8, 0.1), instance=instance)
    assert first.success
    name = ("evaluation_metrics", "challenger_not_worse_than_served")
    assert checks_by_name(first)[name] is True  # nothing served yet
    store = TableStore(data_dir)
    record = store.manifest("user_recommendations")["served_model"]
    champion = record["value"]
    assert record["metric"] == "precision@10" and champion > 0
    assert record["model_version"] == store.version("als_model")
    served_meta = instance.get_latest_materialization_event(
        dg.AssetKey("user_recommendations")).asset_materialization.metadata
    assert served_meta["served_model/value"].value == champion  # shown in the UI too
    served = store.current_path("user_recommendations")

    other_warehouse_is_not_gated_by_this_one(instance, spark_resource,
                                             str(tmp_path / "other-warehouse"), store, champion)

    # A crippled challenger: rank 1, one iteration, crushing regularisation.
    second = materialize(None, resources, config(1, 1, 50.0), instance=instance,
                         raise_on_error=False)
    evals = [e for e in second.get_asset_check_evaluations()
             if (e.asset_key.path[-1], e.check_name) == name]
    assert evals and evals[0].passed is False
    meta = evals[0].metadata
    assert meta["champion"].value == champion and meta["challenger"].value < champion * 0.98
    assert store.current_path("user_recommendations") == served

    # Between retrains, a refresh must not serve the rejected challenger's factors.
    refresh = ["play_events", "play_events_quarantine", "item_catalog", "user_index",
               "item_index", "interactions", "user_recommendations"]
    ingest = {"ops": {"ingest_play_logs": config(16, 8, 0.1)["ops"]["ingest_play_logs"]}}
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
    # Rank 4, 2 iterations: p@10 ~0.059, about half the champion's, still above popularity.
    weak = materialize(None, other, config(4, 2, 0.1), instance=instance,
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

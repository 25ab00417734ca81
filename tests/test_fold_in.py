"""The exact row solver reproduces MLlib's user factors; folded-in users get recommendations."""

import numpy as np
from helpers import random_confidence

from recsys_dagster.ml.als import ALSParams, train_als
from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix
from recsys_dagster.ml.als.fold_in import fold_in


def test_exact_solver_matches_mllib_user_half_step(spark):
    conf = random_confidence(spark, 80, 60, 900)
    params = ALSParams(engine="mllib", reg_exponent=1.0, rank=6, max_iter=6, reg_param=0.05,
                       num_user_blocks=2, num_item_blocks=2)
    model = train_als(conf, params)
    ours = {r.idx: np.array(r.features) for r in
            fold_in(conf, model.item_factors, params.reg_param).collect()}
    theirs = {r.idx: np.array(r.features) for r in model.user_factors.collect()}
    items = {r.idx: np.array(r.features) for r in model.item_factors.collect()}
    y = np.stack([items[i] for i in sorted(items)])
    assert set(ours) == set(theirs)
    worst = max(np.abs(y @ ours[u] - y @ theirs[u]).max() for u in theirs)
    assert worst < 1e-3, worst  # predictions agree: MLlib solves in float, we in double


def test_fold_in_of_a_new_user_follows_their_plays(spark):
    # Two disjoint tastes; a newcomer who plays taste-A items must score taste-A items higher.
    rows = [(u, i, 5) for u in range(20) for i in range(10) if (u < 10) == (i < 5)]
    inter = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long")
    conf = confidence_matrix(inter, ConfidenceParams())
    model = train_als(conf, ALSParams(engine="mllib", reg_exponent=1.0, rank=4, max_iter=10,
                                      reg_param=0.05, num_user_blocks=1, num_item_blocks=1))
    newcomer = confidence_matrix(
        spark.createDataFrame([(99, 0, 3), (99, 1, 2)], "user_idx int, item_idx int, plays long"),
        ConfidenceParams())
    x = np.array(fold_in(newcomer, model.item_factors, 0.05).first().features)
    y = {r.idx: np.array(r.features) for r in model.item_factors.collect()}
    scores = {i: float(y[i] @ x) for i in y}
    assert min(scores[i] for i in range(2, 5)) > max(scores[i] for i in range(5, 10))


def test_refresh_between_retrains_folds_in_new_users(standard_run, spark_resource, tmp_path):
    import copy

    from helpers import STANDARD_CONFIG, copy_warehouse, materialize

    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(standard_run.store, tmp_path / "data")  # trained on 300 users
    resources = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    model_users = store.read_pandas("als_model", frame="user_factors").idx.nunique()
    # 60 listeners arrive (the generator draws another world for 360 listeners, so a few of
    # the first 300 may be new too); recommendations are refreshed without retraining.
    refresh = ["play_events", "play_events_quarantine", "item_catalog", "user_index",
               "item_index", "interactions", "user_recommendations"]
    ingest = copy.deepcopy(STANDARD_CONFIG["ops"]["ingest_play_logs"])
    ingest["config"]["synthetic"]["n_users"] = 360
    assert materialize(refresh, resources, {"ops": {"ingest_play_logs": ingest}}).success
    assert store.read_pandas("als_model", frame="user_factors").idx.nunique() == model_users
    recs = store.read_pandas("user_recommendations")
    index = store.read_pandas("user_index").set_index("id").idx
    trained = set(store.read_pandas("als_model", frame="user_factors").idx)
    new_ids = set(index[~index.isin(trained)].index)
    arrivals = {u for u in index.index if int(u.split("-")[1]) >= 300}  # those who played
    assert len(arrivals) >= 30 and arrivals <= new_ids and len(new_ids) < 100
    folded = recs[recs.folded_in]
    assert set(folded.user_id) == new_ids
    assert not recs[~recs.folded_in].user_id.isin(new_ids).any()
    played = store.read_pandas("play_events")
    seen = set(zip(played.user_id, played.item_id))
    assert not any((u, i) in seen for u, i in zip(folded.user_id, folded.item_id))

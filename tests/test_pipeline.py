"""The whole asset graph, materialised in-process on small synthetic data, every output checked."""

import copy
import os
import shutil

import dagster as dg
import pytest
from helpers import STANDARD_CONFIG, check_status, checks_by_name, copy_warehouse, materialize
from pyspark.sql import functions as F

from recsys_dagster.ml.evaluation.ease import LAMBDA_GRID
from recsys_dagster.tables import TableStore

TUNING = {"search": "grid", "weighting": ["log", "linear"], "alpha": [1.0], "rank": [8, 12],
          "reg_param": [0.1], "reg_exponent": [0.7], "max_iter": [5]}
N_USERS, N_ITEMS, RANK, TOP_N = 300, 400, 8, 20  # STANDARD_CONFIG's, and the default top_n


def config(n_users=N_USERS, min_lift=0.0, tuning=None):
    """The standard run's settings, with more users, a gate and tuning when asked."""
    cfg = copy.deepcopy(STANDARD_CONFIG)
    ops = cfg["ops"]
    ops["ingest_play_logs"]["config"]["synthetic"]["n_users"] = n_users
    ops["evaluation_metrics"]["config"]["min_lift"] = min_lift
    if tuning is not None:
        ops["als_tuning"] = {"config": tuning}
        ops["confidence_matrix"] = {"config": {"use_tuned": True}}
        ops["als_model"]["config"]["use_tuned"] = True
    return cfg


@pytest.fixture(scope="module")
def first_run(standard_run):
    return standard_run.result, standard_run.store


def test_run_succeeds_with_every_check_passing(first_run, standard_run):
    result, _ = first_run
    assert result.success
    checks = checks_by_name(result)
    # The synthetic plays start on 2024-03-24: the calendar's 83 days before are empty, a
    # warning (severity WARN), not an error.
    empty = checks.pop(("play_events", "every_day_delivered"))
    assert len(checks) == 12 and all(checks.values()) and not empty, checks
    # Exact top-N has no index whose recall could be measured: not executed, never "passed".
    for asset in ("user_recommendations", "similar_items"):
        assert (asset, "approximate_recall_above_floor") not in checks
        assert check_status(standard_run.instance, asset, "approximate_recall_above_floor") \
            == "PLANNED"  # the UI shows a planned check of a finished run as skipped
    warning = [e for e in result.get_asset_check_evaluations()
               if e.check_name == "every_day_delivered"][0]
    assert warning.severity == dg.AssetCheckSeverity.WARN
    assert warning.metadata["empty_days"].value == 83


def test_ingestion_outputs(first_run, spark):
    _, store = first_run
    events = store.read(spark, "play_events")
    assert dict(events.dtypes) == {"user_id": "string", "item_id": "string", "plays": "bigint",
                                   "ts": "timestamp", "day": "date"}
    row = events.agg(F.min("plays"), F.count("*"), F.count("ts")).first()
    assert row[0] >= 1 and row[1] == row[2] > 1000
    assert events.where(F.to_date("ts") != F.col("day")).count() == 0  # each play in its day
    assert len(store.partitions("play_events")) == 90  # every day of the synthetic calendar
    assert store.read(spark, "play_events_quarantine").count() == 0
    assert store.read(spark, "item_catalog").count() == N_ITEMS


def test_every_table_reads_as_inference_would_without_its_job(first_run, spark):
    """Every table the run wrote (day partitions and a model's frames too) carries the schema
    it was written with, and the store's read gives exactly the schema Spark infers from the
    files (tables.SCHEMA), so no step's read depends on which of the two made it."""
    from recsys_dagster.tables import SCHEMA

    _, store = first_run
    read = 0
    for name in sorted(os.listdir(store.base_dir)):
        if name.startswith(("_", ".")):
            continue
        days = store.partitions(name)  # the first and the last day: one write made them all
        for part in sorted({days[0], days[-1]}) if days else [None]:
            manifest, path = store.manifest(name, part), store.current_path(name, part)
            if manifest["kind"] == "tableset":
                table = store.read(spark, name, part)
                assert set(manifest[SCHEMA]) == set(manifest["frames"]), name
                pairs = [(table[f], os.path.join(path, f)) for f in manifest["frames"]]
            else:
                assert SCHEMA in manifest, (name, part)
                pairs = [(store.read(spark, name, part), path)]
            for frame, folder in pairs:
                assert frame.schema == spark.read.parquet(folder).schema, (name, part, folder)
                read += 1
    assert read > 25  # the ingested tables' days, every other asset, the models' frames


def test_indexes_and_interactions(first_run, spark):
    _, store = first_run
    for name, col in (("user_index", "user_id"), ("item_index", "item_id")):
        idx = store.read_pandas(name)
        assert idx.id.is_unique and sorted(idx.idx) == list(range(len(idx)))
        assert set(idx.id) == {r[0] for r in store.read(spark, "play_events").select(col)
                               .distinct().collect()}
    inter = store.read(spark, "interactions")
    assert inter.count() == inter.select("user_idx", "item_idx").distinct().count()
    total = store.read(spark, "play_events").agg(F.sum("plays")).first()[0]
    assert inter.agg(F.sum("plays")).first()[0] == total


def test_confidence_and_model(first_run, spark):
    result, store = first_run
    meta = [m for m in result.get_asset_materialization_events()
            if m.asset_key.path == ["als_model"]][0].materialization.metadata
    assert meta["data_first_play"].value.startswith("2024-03-2")  # the synthetic window
    assert meta["training_pairs"].value == store.read(spark, "interactions").count()
    assert meta["params"].value["als"]["rank"] == RANK
    # A few thousand ratings: automatic block counts give one block a side (one task).
    assert meta["params"].value["als"]["num_user_blocks"] == 0
    assert meta["blocks"].value == "1 user x 1 item"
    # ... and engine auto fits them in the driver.
    assert (meta["engine"].value, meta["params"].value["als"]["engine"]) == ("auto (local)",
                                                                            "auto")
    matrix = store.read(spark, "confidence_matrix")["matrix"]
    assert matrix.agg(F.min("confidence")).first()[0] >= 1.0
    model = store.read(spark, "als_model")
    n_users = store.read(spark, "user_index").count()
    assert model["user_factors"].count() == n_users
    assert model["item_factors"].select(F.size("features")).distinct().first()[0] == RANK
    assert model.params["als"]["rank"] == RANK and model.params["confidence"]["weighting"] == "log"


def test_evaluation_metrics_table_and_metadata(first_run):
    result, store = first_run
    metrics = store.read_pandas("evaluation_metrics", frame="metrics")
    overall = metrics[metrics.segment == "all"].set_index(["model", "metric"])
    # EASE too: the standard catalogue is within ease_max_items.
    assert set(metrics.model) >= {"als", "popularity", "item_knn", "ease"}
    for model in ("als", "popularity", "item_knn", "ease"):
        for metric in ("precision", "recall", "ndcg", "map", "auc", "coverage", "ild",
                       "novelty", "gini", "entropy"):
            assert (model, metric) in overall.index, (model, metric)
    bounded = overall.loc[[i for i in overall.index if "-" not in i[0] and i[1] in
                           ("precision", "recall", "ndcg", "map", "auc", "coverage", "ild",
                            "gini")]]  # paired differences (als-...) may be negative
    assert bounded.value.between(0, 1).all()
    assert (metrics.k == 10).all()
    v = overall.value
    assert v["als", "precision"] > v["popularity", "precision"]
    assert v["als", "auc"] > 0.5 and v["popularity", "auc"] > 0.5
    # The primary metric has an interval for every model and for the paired differences.
    ci = overall[overall.ci_low.notna()]
    assert {m for m, _ in ci.index} == {"als", "popularity", "item_knn", "ease",
                                         "als-popularity", "als-item_knn", "als-ease"}
    assert (ci.ci_low <= ci.value).all() and (ci.value <= ci.ci_high).all()
    segs = metrics[(metrics.segment != "all") & (metrics.model == "als")]
    assert set(segs.segment) == {"light", "medium", "heavy"}
    mats = [m for m in result.get_asset_materialization_events()
            if m.asset_key.path == ["evaluation_metrics"]]
    meta = mats[0].materialization.metadata
    assert meta["als/precision@10"].value == pytest.approx(v["als", "precision"])
    # EASE's lambda was chosen on validation from its grid, and the best model is named.
    assert meta["ease/lambda"].value in LAMBDA_GRID and meta["ease/lambdas_tried"].value >= 3
    best = max(("als", "popularity", "item_knn", "ease"), key=lambda m: v[m, "precision"])
    assert meta["best_model"].value == f"{best} (by precision@10)"
    assert "| metric" in meta["metrics"].value
    assert meta["segment_plot"].value.startswith("![")
    # Where the step's time went, part by part (fit, neighbours, each model's scoring, ...).
    parts = {k for k in meta if k.startswith("seconds/")}
    assert parts == {"seconds/fit", "seconds/item_knn_neighbours", "seconds/score_als",
                     "seconds/score_popularity", "seconds/score_item_knn", "seconds/ease",
                     "seconds/metrics_and_intervals"}
    assert all(meta[k].value >= 0 for k in parts) and meta["seconds/fit"].value > 0
    assert meta["scored_in"].value == "the driver"  # 300 listeners x 400 songs: few scores
    png = os.path.join(store.current_path("evaluation_metrics"), "segments.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_split_is_temporal_and_disjoint(first_run, spark):
    _, store = first_run
    split = store.read(spark, "evaluation_split")
    assert split.params["split"] == "temporal"  # synthetic plays carry timestamps
    parts = {n: {(r.user_idx, r.item_idx) for r in split[n].select("user_idx", "item_idx")
                 .collect()} for n in ("train", "validation", "test")}
    assert not parts["train"] & parts["test"] and not parts["validation"] & parts["test"]
    assert sum(map(len, parts.values())) == store.read(spark, "interactions").count()


def test_user_recommendations(first_run, spark):
    _, store = first_run
    recs = store.read_pandas("user_recommendations")
    assert list(recs.columns) == ["user_id", "rank", "item_id", "score", "folded_in"]
    assert not recs.folded_in.any()  # the model was trained on everybody
    per_user = recs.groupby("user_id")
    assert per_user.size().max() <= TOP_N
    assert all(sorted(g["rank"]) == list(range(1, len(g) + 1)) for _, g in per_user)
    assert all(g.sort_values("rank").score.is_monotonic_decreasing for _, g in per_user)
    played = {(r.user_id, r.item_id) for r in store.read(spark, "play_events")
              .select("user_id", "item_id").distinct().collect()}
    assert not {(u, i) for u, i in zip(recs.user_id, recs.item_id)} & played
    assert recs.user_id.nunique() == len({u for u, _ in played})  # every listener who played


def test_similar_items(first_run):
    _, store = first_run
    sims = store.read_pandas("similar_items")
    assert (sims.item_id != sims.similar_item_id).all()
    assert sims.groupby("item_id").size().max() <= TOP_N
    assert sims.name.notna().all() and sims.similar_name.notna().all()
    assert (sims.score <= 1.0 + 1e-5).all()


def test_similar_artists_group_artists_of_a_genre(first_run):
    """The synthetic artists' genres are known: an artist's similar artists share its genre
    far more often than chance (the standard run has 12 genres, about 5 artists each)."""
    import numpy as np

    from recsys_dagster.ml.ingest import datagen

    _, store = first_run
    sims = store.read_pandas("similar_artists")
    assert list(sims.columns) == ["artist_id", "artist_name", "rank", "similar_artist_id",
                                  "similar_artist_name", "score"]
    assert (sims.artist_id != sims.similar_artist_id).all()
    assert all(sorted(g["rank"]) == list(range(1, len(g) + 1))
               for _, g in sims.groupby("artist_id"))
    assert sims.groupby("artist_id").size().max() <= TOP_N
    assert all(g.sort_values("rank").score.is_monotonic_decreasing
               for _, g in sims.groupby("artist_id"))
    # Every artist with a played song has a row; names are the generator's.
    spec = datagen.SyntheticSpec(**STANDARD_CONFIG["ops"]["ingest_play_logs"]["config"]
                                 ["synthetic"])
    catalogue = datagen.catalogue_frame(spec)
    played = set(store.read_pandas("item_index").id)
    assert set(sims.artist_id) == set(catalogue[catalogue.item_id.isin(played)].artist_id)
    assert (sims.artist_name == sims.artist_id.str.replace("artist-", "Artist ")).all()
    genre = datagen.song_catalogue(spec).item_genre
    artist_genre = dict(zip(catalogue.artist_id, genre))
    top = sims[sims["rank"] <= 3]
    same = np.mean([artist_genre[a] == artist_genre[b]
                    for a, b in zip(top.artist_id, top.similar_artist_id)])
    assert same > 3 / spec.n_genres, same


def without_evaluation(config):
    return {"ops": {k: v for k, v in config["ops"].items() if k != "evaluation_metrics"}}


def test_same_config_gives_identical_outputs(first_run, spark_resource, tmp_path):
    """A second materialisation with the same seed and data, elsewhere, matches exactly: the
    promise holds on one machine (the same code path on the same processor), so the tables
    are compared bit for bit here and only here."""
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    _, store = first_run
    other = TableStore(str(tmp_path / "again"))
    res = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=other.base_dir))
    # Serving reads an evaluation's record (publishing.record_to_publish): the first run's,
    # of another model version, so the model trained here is served as the operator's choice
    # (the run trained it and did not evaluate it).
    shutil.copytree(store.table_dir("evaluation_metrics"), other.table_dir("evaluation_metrics"),
                    symlinks=True)
    assert materialize(["play_events", "play_events_quarantine", "item_catalog", "user_index",
                        "item_index", "interactions", "evaluation_split", "als_tuning",
                        "confidence_matrix", "als_model", "user_recommendations",
                        "similar_items"], res, without_evaluation(STANDARD_CONFIG)).success
    for name, key in (("user_recommendations", ["user_id", "rank"]),
                      ("similar_items", ["item_id", "rank"])):
        a = store.read_pandas(name).sort_values(key).reset_index(drop=True)
        b = other.read_pandas(name).sort_values(key).reset_index(drop=True)
        assert a.equals(b), name


@pytest.fixture(scope="module")
def rerun(standard_run, spark_resource, tmp_path_factory):
    """More users arrive in a copy of the standard warehouse; the settings are tuned; the
    gate is set so high that the new model cannot pass it."""
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(standard_run.store, tmp_path_factory.mktemp("rerun") / "data")
    before = {"users": store.read_pandas("user_index").set_index("id").idx,
              "served": store.current_path("user_recommendations")}
    res = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    result = materialize(None, res, config(n_users=700, min_lift=100.0, tuning=TUNING),
                         raise_on_error=False)
    return result, store, before


def test_rerun_keeps_ids_and_gate_protects_served_tables(rerun):
    result, store, before = rerun
    assert not result.success
    assert checks_by_name(result)[("evaluation_metrics", "als_beats_popularity")] is False
    old_users = before["users"]
    new_users = store.read_pandas("user_index").set_index("id").idx
    listeners = store.read_pandas("play_events").user_id.nunique()  # 700, less the silent
    assert len(new_users) >= listeners > len(old_users)
    assert (new_users[old_users.index] == old_users).all()  # existing ids keep their idx
    assert sorted(new_users) == list(range(len(new_users)))
    # The served table is the last good one, untouched and readable.
    served = before["served"]
    assert store.current_path("user_recommendations") == served
    assert os.path.exists(served) and len(store.read_pandas("user_recommendations")) > 0


def test_tuned_settings_reach_the_model(rerun, spark):
    """The re-run above tuned a 4-point grid after trial 0 (the served model's settings) and
    trained with the trial it adopted: the best one only if it beat trial 0 beyond the noise."""
    _, store, _ = rerun
    tuning = store.read(spark, "als_tuning")
    trials = tuning["trials"].toPandas().set_index("trial")
    assert len(trials) == 5 and trials.score.between(0, 1).all()
    decision = tuning.params["best"]
    assert decision["best_trial_number"] == trials.score.idxmax()
    model = store.read(spark, "als_model")
    chosen = trials.loc[decision["trial_number"]]
    assert model.params["tuned"] is decision["adopted"]
    assert model.params["als"]["rank"] == chosen["rank"]
    assert model.params["confidence"]["weighting"] == chosen.weighting
    assert trials.state.isin(["complete", "pruned"]).all()
    png = os.path.join(store.current_path("als_tuning"), "history.png")
    assert open(png, "rb").read(4) == b"\x89PNG"


def test_approximate_top_n_assets_measure_their_recall(first_run, spark_resource, tmp_path):
    """Both top-N assets with top_k.method approximate, in a copy of the standard warehouse:
    the recall check passes with its measured recall in the metadata, and the tables hold
    (nearly) the exact run's rows, still without played items or self-matches."""
    from recsys_dagster.checks import APPROXIMATE_RECALL
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    _, exact_store = first_run
    store = copy_warehouse(exact_store, tmp_path / "data")
    res = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    approximate = {"config": {"top_k": {"method": "approximate", "recall_sample": 100}}}
    result = materialize(["user_recommendations", "similar_items"], res,
                         {"ops": {"user_recommendations": approximate,
                                  "similar_items": approximate}})
    passed = checks_by_name(result)
    for asset, key in (("user_recommendations", ["user_id", "item_id"]),
                       ("similar_items", ["item_id", "similar_item_id"])):
        assert passed[asset, APPROXIMATE_RECALL]
        meta = next(m.materialization.metadata for m in result.get_asset_materialization_events()
                    if m.asset_key.path == [asset])
        assert meta["top_k_method"].value == "approximate"
        assert 0.95 <= meta["approximate_recall"].value <= 1.0
        assert meta["recall_queries"].value == 100
        exact = set(map(tuple, exact_store.read_pandas(asset)[key].to_numpy()))
        got = set(map(tuple, store.read_pandas(asset)[key].to_numpy()))
        assert len(got & exact) >= 0.95 * len(exact), asset
    assert passed["user_recommendations", "no_already_played_items"]
    assert passed["similar_items", "no_self_matches"]


def test_a_check_of_excluded_items_is_not_executed_when_nothing_is_excluded(
        first_run, spark_resource, tmp_path):
    """exclude_played: false recommends played items on purpose: the check that they are left
    out is not executed (never "passed"), and the step's log says why."""
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(first_run[1], tmp_path / "data")
    res = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(["user_recommendations"], res,
                         {"ops": {"user_recommendations": {"config": {"exclude_played": False}}}},
                         instance=instance)
    assert result.success
    ran = checks_by_name(result)
    assert ran == {("user_recommendations", "at_most_n_per_user"): True}
    assert check_status(instance, "user_recommendations", "no_already_played_items") == "PLANNED"
    logs = [entry.user_message for run in result.results
            for entry in instance.all_logs(run.run_id)]
    assert any("no_already_played_items not executed: exclude_played is false" in m
               for m in logs)
    # Played items are indeed recommended: the check would have failed had it run.
    inter = store.read_pandas("interactions", partition=store.partitions("interactions")[-1])
    users = store.read_pandas("user_index").set_index("idx").id
    items = store.read_pandas("item_index").set_index("idx").id
    played = set(zip(users[inter.user_idx].to_numpy(), items[inter.item_idx].to_numpy()))
    recs = store.read_pandas("user_recommendations")
    assert len(played & set(zip(recs.user_id, recs.item_id))) > 0

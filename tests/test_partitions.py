"""Daily partitions: backfills, re-delivered days, the training window and its lineage."""


import pytest
from helpers import STANDARD_CONFIG, materialize
from pyspark.sql import functions as F

from recsys_dagster import cli
from recsys_dagster.assets.features import interactions_asset
from recsys_dagster.partitions import PLAY_DAYS, window_mapping
from recsys_dagster.tables import TableStore

INGEST = ["play_events", "play_events_quarantine", "item_catalog"]
FEATURES = ["user_index", "item_index", "interactions"]
WEEK = ("2024-03-24", "2024-03-30")


def synthetic(n_users=300):
    return {"ops": {"ingest_play_logs": {"config": {"synthetic": {
        "n_users": n_users, "n_items": 400, "n_artists": 60, "seed": 3}}}}}


def event_log(path):
    return {"ops": {"ingest_play_logs": {"config": {
        "source": "file", "file": {"path": str(path), "format": "csv", "plays_column": None,
                                   "timestamp_column": "ts"}}}}}


def metadata(result, asset):
    return [m.materialization.metadata for m in result.get_asset_materialization_events()
            if m.asset_key.path[-1] == asset][-1]


def test_backfill_a_week_lands_each_day_in_its_partition(resources, data_dir, spark):
    result = materialize(INGEST, resources, synthetic(), days=WEEK)
    assert result.success
    store = TableStore(data_dir)
    days = [f"2024-03-{d}" for d in range(24, 31)]
    assert store.partitions("play_events") == days
    for day in days:
        part = store.read(spark, "play_events", day)
        row = part.agg(F.count("*").alias("n"), F.min(F.to_date("ts")).alias("a"),
                       F.max(F.to_date("ts")).alias("b"),
                       F.countDistinct("day").alias("d")).first()
        assert row["n"] > 0 and row["d"] == 1
        assert str(row["a"]) == day == str(row["b"])
    meta = metadata(result, "play_events")
    # Every generated row is accounted for: in this week, or belonging to another day.
    assert (meta["accepted_rows"].value + meta["rows_for_other_days"].value
            == meta["input_rows"].value)
    assert meta["dagster/row_count"].value == store.read(spark, "play_events").count()


def test_a_redelivered_day_replaces_it_without_duplicates(resources, data_dir, spark, tmp_path):
    log = tmp_path / "plays.csv"
    log.write_text("user_id,item_id,ts\n"
                   "u1,a,2024-03-10T08:00:00Z\nu1,a,2024-03-10T09:00:00Z\n"
                   "u2,b,2024-03-10T10:00:00Z\nu2,a,2024-03-11T10:00:00Z\n")
    day = ("2024-03-10", "2024-03-10")
    assert materialize(INGEST, resources, event_log(log), days=day).success
    store = TableStore(data_dir)
    first = store.read_pandas("play_events", partition="2024-03-10")
    assert first.plays.sum() == 3 and len(first) == 2  # u1/a twice that day, u2/b once
    assert store.partitions("play_events") == ["2024-03-10"]  # the 11th is not this run's day
    # The same delivery again: the day is replaced, not appended to.
    result = materialize(INGEST, resources, event_log(log), days=day)
    assert result.success
    assert store.read_pandas("play_events", partition="2024-03-10").plays.sum() == 3
    assert metadata(result, "play_events")["rows_for_other_days"].value == 1
    # A late play for the 10th arrives in a corrected file: re-running the day picks it up.
    log.write_text(log.read_text() + "u3,c,2024-03-10T23:59:00Z\n")
    assert materialize(INGEST, resources, event_log(log), days=day).success
    fixed = store.read_pandas("play_events", partition="2024-03-10")
    assert fixed.plays.sum() == 4 and set(fixed.user_id) == {"u1", "u2", "u3"}


def test_training_window_reads_only_its_days(resources, data_dir, spark):
    assert materialize(INGEST, resources, synthetic()).success
    store = TableStore(data_dir)
    all_plays = store.read(spark, "play_events").agg(F.sum("plays")).first()[0]
    everything = materialize(FEATURES, resources)
    assert everything.success
    assert store.read(spark, "interactions").agg(F.sum("plays")).first()[0] == all_plays
    week = materialize(FEATURES, resources, assets=[interactions_asset(7)])
    assert week.success
    meta = metadata(week, "interactions")
    assert meta["window_days"].value == "2024-03-24..2024-03-30"
    assert meta["days_with_plays"].value == 7
    inter = store.read(spark, "interactions", "2024-03-30")
    expected = (store.read(spark, "play_events").where(F.col("day") >= "2024-03-24")
                .agg(F.sum("plays")).first()[0])
    assert inter.agg(F.sum("plays")).first()[0] == expected < all_plays
    assert str(inter.agg(F.min("first_ts")).first()[0]) >= "2024-03-24"


def test_lineage_maps_each_as_of_day_to_its_window():
    mapping = window_mapping(7)
    got = mapping.get_upstream_mapped_partitions_result_for_partitions(
        PLAY_DAYS.subset_with_partition_keys(["2024-03-30"]), PLAY_DAYS, PLAY_DAYS)
    assert sorted(got.partitions_subset.get_partition_keys()) == [
        f"2024-03-{d}" for d in range(24, 31)]
    early = mapping.get_upstream_mapped_partitions_result_for_partitions(
        PLAY_DAYS.subset_with_partition_keys(["2024-01-02"]), PLAY_DAYS, PLAY_DAYS)
    assert sorted(early.partitions_subset.get_partition_keys()) == ["2024-01-01", "2024-01-02"]


def test_a_snapshot_delivered_twice_is_refused(resources, tmp_path):
    snap = tmp_path / "snapshot.csv"
    snap.write_text("user_id,item_id,plays\nu1,a,3\nu2,b,5\nu2,a,1\n")
    cfg = {"ops": {"ingest_play_logs": {"config": {"source": "file",
                                                   "file": {"path": str(snap)}}}}}
    for day in ("2024-03-01", "2024-03-02"):
        assert materialize(INGEST, resources, cfg, days=(day, day)).success
    with pytest.raises(Exception, match="delivered on 2 days"):
        materialize(FEATURES, resources, cfg)


def test_cli_backfill_ingests_the_range(spark, tmp_path, capsys):
    data = tmp_path / "data"
    config = tmp_path / "small.yaml"
    config.write_text("ops:\n  ingest_play_logs:\n    config:\n      synthetic:\n"
                      "        n_users: 200\n        n_items: 300\n        n_artists: 50\n")
    # In-process (this session's JVM): the same code as `python -m recsys_dagster.cli`,
    # whose own entry point the cluster tests run in a process of its own.
    code = cli.main(["backfill", "--from", "2024-03-28", "--to", "2024-03-30", "--config",
                     str(config), "--data-dir", str(data)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ingest 2024-03-28..2024-03-30" in out and "SUCCESS" in out
    assert TableStore(str(data)).partitions("play_events") == [
        "2024-03-28", "2024-03-29", "2024-03-30"]
    # A range outside the calendar is refused before anything runs.
    with pytest.raises(ValueError, match="not a day of the play-log calendar"):
        cli.main(["backfill", "--from", "2023-01-01", "--to", "2024-03-30"])


def test_listeners_new_in_a_later_day_are_folded_in(resources, data_dir, tmp_path):
    """Train on the days up to the 29th; the 30th brings two new listeners (a day delivered
    as an event log); refresh_recommendations folds them in without retraining."""
    from recsys_dagster.ml.ingest.datagen import item_id

    # The standard run's listeners (dense enough for every gate), its first six days.
    assert materialize(None, resources, STANDARD_CONFIG, days=("2024-03-24", "2024-03-29")).success
    store = TableStore(data_dir)
    trained = store.current_path("als_model")
    log = tmp_path / "day30.csv"
    log.write_text("user_id,item_id,ts\n" + "".join(
        f"{u},{item_id(i)},2024-03-30T12:00:00Z\n" for u in ("new1", "new2") for i in (0, 1, 2)))
    refresh = INGEST + FEATURES + ["user_recommendations"]
    assert materialize(refresh, resources, event_log(log), days=("2024-03-30",) * 2).success
    assert store.current_path("als_model") == trained  # no retrain
    recs = store.read_pandas("user_recommendations")
    assert set(recs[recs.folded_in].user_id) == {"new1", "new2"}
    assert recs[recs.user_id == "new1"].item_id.isin([item_id(i) for i in (0, 1, 2)]).sum() == 0
    trained_users = store.read_pandas("als_model", frame="user_factors").idx.nunique()
    assert recs[~recs.folded_in].user_id.nunique() == trained_users > 250  # as before

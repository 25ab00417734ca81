"""Indexes, interactions, confidence weighting and the holdout split."""

import math

import pytest
from pyspark.sql import functions as F

from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix, confidence_values
from recsys_dagster.ml.evaluation.split import holdout_split
from recsys_dagster.ml.ingest.indexing import build_interactions, extend_index


def ids(spark, values):
    return spark.createDataFrame([(v,) for v in values], "id string")


def test_index_is_dense_and_stable_across_runs(spark):
    first = extend_index(ids(spark, ["b", "a", "c", "a"]))
    assert sorted((r.id, r.idx) for r in first.collect()) == [("a", 0), ("b", 1), ("c", 2)]
    second = extend_index(ids(spark, ["d", "c", "0", "b"]), first)
    got = dict((r.id, r.idx) for r in second.collect())
    assert got == {"a": 0, "b": 1, "c": 2, "0": 3, "d": 4}  # old keep, new appended sorted


def test_interactions_sum_plays_and_keep_times(spark):
    events = spark.createDataFrame(
        [("u", "x", 2, "2024-01-01 00:00:00"), ("u", "x", 3, "2024-01-05 00:00:00"),
         ("v", "x", 1, None)], "user_id string, item_id string, plays long, ts string"
    ).withColumn("ts", F.to_timestamp("ts"))
    users = extend_index(events.select(F.col("user_id").alias("id")))
    items = extend_index(events.select(F.col("item_id").alias("id")))
    rows = sorted(build_interactions(events, users, items).collect())
    assert [(r.user_idx, r.item_idx, r.plays) for r in rows] == [(0, 0, 5), (1, 0, 1)]
    assert str(rows[0].first_ts) == "2024-01-01 00:00:00"
    assert str(rows[0].last_ts) == "2024-01-05 00:00:00"


@pytest.fixture
def inter(spark):
    return spark.createDataFrame([(0, 0, 1), (0, 1, 9), (1, 0, 4), (2, 1, 2)],
                                 "user_idx int, item_idx int, plays long")


def conf(df, **kw):
    return {(r.user_idx, r.item_idx): r.confidence
            for r in confidence_matrix(df, ConfidenceParams(**kw)).collect()}


def test_linear_and_log_weighting(inter):
    lin = conf(inter, weighting="linear", alpha=2.0)
    assert lin[(0, 1)] == pytest.approx(1 + 2 * 9)
    log = conf(inter, weighting="log", alpha=40.0, eps=1.0)
    assert log[(1, 0)] == pytest.approx(1 + 40 * math.log1p(4), rel=1e-6)


def test_bm25_matches_hand_computation(inter):
    got = conf(inter, weighting="bm25", alpha=1.0, bm25_k1=100.0, bm25_b=0.8)
    n_users, avg_len = 3, (10 + 4 + 2) / 3
    lens = {0: 10, 1: 4, 2: 2}
    dfs = {0: 2, 1: 2}
    for (u, i), plays in {(0, 0): 1, (0, 1): 9, (1, 0): 4, (2, 1): 2}.items():
        idf = math.log(n_users) - math.log1p(dfs[i])
        norm = 0.2 + 0.8 * lens[u] / avg_len
        w = max(plays * 101 / (100 * norm + plays) * idf, 1e-3)
        assert got[(u, i)] == pytest.approx(1 + w, rel=1e-5)
    assert min(got.values()) >= 1.0


@pytest.mark.parametrize("weighting", ["linear", "log", "bm25"])
def test_the_numpy_confidence_is_the_spark_one(spark, weighting):
    """The command line explains recommendations with confidence_values (NumPy, no Spark):
    it must give confidence_matrix's values, float32, for every weighting."""
    import numpy as np

    rows = [(u, i, (3 * u + 7 * i) % 11 + 1) for u in range(6) for i in range(9) if (u + i) % 3]
    inter = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long")
    params = ConfidenceParams(weighting=weighting, alpha=2.0)
    spark_rows = confidence_matrix(inter, params).orderBy("user_idx", "item_idx").toPandas()
    u, i, plays = (np.array(c) for c in zip(*sorted(rows)))
    ours = confidence_values(u, i, plays, params)
    np.testing.assert_allclose(ours, spark_rows.confidence.to_numpy(), rtol=1e-6)


def test_bad_confidence_params():
    with pytest.raises(ValueError, match="weighting"):
        ConfidenceParams(weighting="sqrt").validate()
    with pytest.raises(ValueError):
        ConfidenceParams(alpha=0).validate()


def _split_rows(spark, temporal, seed=1):
    rows = [(u, i, 1, f"2024-01-{i + 1:02d} 00:00:00") for u in range(30) for i in range(u % 7 + 1)]
    df = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long, first_ts string"
                               ).withColumn("first_ts", F.to_timestamp("first_ts"))
    train, hold = holdout_split(df, 0.3, seed, temporal)
    return df, train.collect(), hold.collect()


def test_split_fractions_and_every_user_keeps_training_items(spark):
    df, train, hold = _split_rows(spark, temporal=False)
    assert len(train) + len(hold) == df.count()
    assert not {(r.user_idx, r.item_idx) for r in train} & {(r.user_idx, r.item_idx) for r in hold}
    per_user = {}
    for r in df.collect():
        per_user[r.user_idx] = per_user.get(r.user_idx, 0) + 1
    held = {}
    for r in hold:
        held[r.user_idx] = held.get(r.user_idx, 0) + 1
    for u, n in per_user.items():
        assert held.get(u, 0) == min(round(n * 0.3), n - 1)
    assert {r.user_idx for r in train} == set(per_user)


def test_split_is_seeded_and_temporal_holds_out_latest(spark):
    _, _, a = _split_rows(spark, temporal=False, seed=1)
    _, _, b = _split_rows(spark, temporal=False, seed=1)
    _, _, c = _split_rows(spark, temporal=False, seed=2)
    key = lambda rows: sorted((r.user_idx, r.item_idx) for r in rows)  # noqa: E731
    assert key(a) == key(b) and key(a) != key(c)
    _, train, hold = _split_rows(spark, temporal=True)
    latest_train = {}
    for r in train:
        latest_train[r.user_idx] = max(latest_train.get(r.user_idx, r.first_ts), r.first_ts)
    assert all(r.first_ts > latest_train[r.user_idx] for r in hold)

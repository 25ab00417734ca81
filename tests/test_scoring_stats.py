"""AUC, diversity, novelty, Gini/entropy and bootstrap: hand-computed cases; scoring vs Spark."""

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.evaluation import RankingEvaluator
from scipy import sparse

from recsys_dagster.ml.evaluation.scoring import (
    PER_USER_COLUMNS,
    Catalogue,
    DotScorer,
    KnnScorer,
    auc,
    intra_list_diversity,
    score_batch,
    score_users,
)
from recsys_dagster.ml.evaluation.stats import bootstrap_ci, coverage, entropy, gini


def test_auc_hand_cases():
    s = np.array([0.9, 0.1, 0.5, 0.5, 0.3])
    # positives 0 and 2; negatives 1, 3, 4: pos 0.9 beats 3; pos 0.5 beats 0.1, 0.3, ties 0.5.
    assert auc(s, np.array([0, 2])) == pytest.approx((3 + 2.5) / 6)
    # entry 3 excluded (a training item): pos 0.9 beats 1, 4; pos 0.5 beats 1, 4.
    assert auc(s, np.array([0, 2]), np.array([3])) == pytest.approx(4 / 4)
    assert math.isnan(auc(s, np.array([], dtype=int)))
    assert math.isnan(auc(s, np.array([0, 2]), np.array([1, 3, 4])))  # no negative left


def test_auc_counting_and_sorting_paths_agree():
    """Few positives are counted against every entry, many are ranked by sorting; the
    excluded entries (some masked to -inf, as training items are) are taken back out: both
    give the pairwise definition over the negatives, ties included."""
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=500), 1).astype(np.float32)  # many ties
    for n_pos in (1, 5, 16, 17, 60):
        order = rng.permutation(500)
        pos, excluded, neg = order[:n_pos], order[n_pos:n_pos + 40], order[n_pos + 40:]
        row = s.copy()
        row[excluded[:20]] = -np.inf
        pairwise = ((row[pos][:, None] > row[neg][None, :]).sum()
                    + 0.5 * (row[pos][:, None] == row[neg][None, :]).sum()) / (n_pos * neg.size)
        assert auc(row, pos, excluded) == pytest.approx(pairwise, rel=1e-12), n_pos


def test_evaluation_user_sample_and_knn_item_cap(spark):
    from recsys_dagster.ml.evaluation.baselines import item_cosine_neighbours
    from recsys_dagster.ml.evaluation.evaluate import sample_users

    rows = [(u, i) for u in range(40) for i in range(u % 7 + 1)]
    df = spark.createDataFrame(rows, "user_idx int, item_idx int")
    a = {r.user_idx for r in sample_users(df, 10, seed=3).collect()}
    b = {r.user_idx for r in sample_users(df.repartition(5), 10, seed=3).collect()}
    assert len(a) == 10 and a == b  # seeded, independent of partitioning
    assert a != {r.user_idx for r in sample_users(df, 10, seed=4).collect()}
    assert sample_users(df, 40, seed=3) is None and sample_users(df, 0, seed=3) is None
    # One user with 6 items and a cap of 2: only one co-listened pair (both directions).
    one = spark.createDataFrame([(0, i) for i in range(6)], "user_idx int, item_idx int")
    capped = list(item_cosine_neighbours(one, 10, max_items_per_user=2, seed=1)
                  .itertuples())
    assert len(capped) == 2 and {(r.item_idx, r.other_idx) for r in capped} == \
        {(capped[0].item_idx, capped[0].other_idx), (capped[0].other_idx, capped[0].item_idx)}
    assert len(item_cosine_neighbours(one, 10)) == 30


def test_cosine_neighbours_equal_a_dense_computation_in_any_block_size():
    """Each item's n best others by co-listening cosine (ties by the smaller id), against the
    dense users x items product, whether the items are multiplied at once or in blocks."""
    from recsys_dagster.ml.evaluation.baselines import cosine_neighbours

    rng = np.random.default_rng(5)
    users = rng.integers(0, 60, 400)
    items = rng.choice(np.arange(0, 90, 3), 400)  # sparse ids, duplicates included
    ids = np.unique(items)
    x = np.zeros((60, ids.size))
    x[users, np.searchsorted(ids, items)] = 1.0
    co = x.T @ x
    n = np.diag(co).copy()
    sim = co / np.sqrt(np.outer(n, n))
    want = []
    for i in range(ids.size):
        others = [(-sim[i, j], ids[j]) for j in range(ids.size) if j != i and co[i, j] > 0]
        want += [(ids[i], o, -s) for s, o in sorted(others)[:4]]
    for block in (10**9, 50):
        got = cosine_neighbours(users, items, 4, block_entries=block)
        assert [(a, b) for a, b, _ in want] == list(zip(got[0].tolist(), got[1].tolist()))
        np.testing.assert_allclose([s for *_, s in want], got[2], rtol=1e-12)


def test_intra_list_diversity():
    orth = np.eye(3, dtype=np.float32)
    assert intra_list_diversity(orth) == pytest.approx(1.0)
    same = np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (3, 1))
    assert intra_list_diversity(same) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(intra_list_diversity(orth[:1]))


def test_coverage_gini_entropy():
    assert coverage([0, 2, 0, 1]) == pytest.approx(0.5)
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)  # (n-1)/n for one item out of n
    assert entropy([1, 1, 1, 1]) == pytest.approx(2.0)
    assert entropy([0, 3]) == pytest.approx(0.0)


def test_bootstrap_interval_contains_mean_and_narrows():
    rng = np.random.default_rng(1)
    small = rng.random(50)
    big = rng.random(5000)
    m, lo, hi = bootstrap_ci(small, 500, seed=3)
    assert lo < m < hi
    _, blo, bhi = bootstrap_ci(big, 500, seed=3)
    assert (bhi - blo) < (hi - lo)
    assert bootstrap_ci(small, 500, seed=3) == (m, lo, hi)  # seeded


def catalogue():
    ids = np.array([10, 11, 12, 13])
    unit = np.eye(4, dtype=np.float32)
    return Catalogue(ids, unit, np.array([4.0, 2.0, 1.0, 1.0]), n_users=4)


def test_score_batch_masks_training_and_computes_everything():
    cat = catalogue()
    scorer = DotScorer(np.array([[4.0], [3.0], [2.0], [1.0]]))
    out = score_batch(cat, scorer, np.array([7]), [np.array([1.0])], [[10]], [[12]], k=2)
    row = out.iloc[0]
    assert list(row.recs) == [11, 12]  # 10 was trained on
    assert row.precision == 0.5 and row.recall == 1.0
    assert row.auc == pytest.approx(0.5)  # positive 12 (2.0) below 11 (3.0), above 13 (1.0)
    assert row.ild == pytest.approx(1.0)
    assert row.novelty == pytest.approx(np.mean([-np.log2(2 / 4), -np.log2(1 / 4)]))
    assert row.n_train == 1


def test_knn_scorer_sums_similarities_of_training_items():
    sim = sparse.csr_matrix(np.array([[0, .5, .1, 0], [.5, 0, 0, .2], [.1, 0, 0, .9],
                                      [0, .2, .9, 0]], dtype=np.float32))
    scores = KnnScorer(sim).scores(None, [np.array([0, 2])])
    assert scores[0].tolist() == pytest.approx([0.1, 0.5, 0.1, 0.9])


def test_score_users_ranking_metrics_match_spark_ranking_evaluator(spark):
    rng = np.random.default_rng(5)
    n_items, n_users, k = 30, 12, 5
    item_mat = rng.normal(size=(n_items, 3)).astype(np.float32)
    ids = np.arange(n_items)
    cat = Catalogue(ids, None, np.ones(n_items), n_users)
    users = spark.createDataFrame([(u, rng.normal(size=3).astype(float).tolist())
                                   for u in range(n_users)], "user_idx int, features array<float>")
    train = spark.createDataFrame([(u, int(i)) for u in range(n_users)
                                   for i in rng.choice(n_items, 4, replace=False)],
                                  "user_idx int, item_idx int")
    train_sets = {}
    for r in train.collect():
        train_sets.setdefault(r.user_idx, set()).add(r.item_idx)
    test_rows = [(u, int(i)) for u in range(n_users) for i in
                 rng.choice([j for j in range(n_items) if j not in train_sets[u]], 3,
                            replace=False)]
    test = spark.createDataFrame(test_rows, "user_idx int, item_idx int")
    per_user = score_users(users, train, test, cat, DotScorer(item_mat), k).toPandas()
    truth = {}
    for u, i in test_rows:
        truth.setdefault(u, []).append(float(i))
    lists = spark.createDataFrame(
        [([float(x) for x in r.recs], truth[r.user_idx]) for r in per_user.itertuples()],
        "prediction array<double>, label array<double>")
    for ours, theirs in [("precision", "precisionAtK"), ("recall", "recallAtK"),
                         ("ndcg", "ndcgAtK"), ("map", "meanAveragePrecisionAtK")]:
        expected = RankingEvaluator(metricName=theirs, k=k).setPredictionCol(
            "prediction").setLabelCol("label").evaluate(lists)
        assert per_user[ours].mean() == pytest.approx(expected, abs=1e-9), ours
    assert per_user.auc.between(0, 1).all()


def test_held_out_counts_name_cold_users_and_items(spark):
    from recsys_dagster.ml.evaluation.evaluate import build_catalogue, held_out_counts

    schema = "user_idx int, item_idx int"
    fit = spark.createDataFrame([(0, 0), (0, 1), (1, 1), (1, 1), (3, 5)], schema)
    # user 2 never played in the fit part; items 2 and 7 were never played there (3 rows)
    held = spark.createDataFrame([(0, 2), (1, 7), (2, 0), (2, 7)], schema)
    assert held_out_counts(fit, held) == {"held_out_rows": 4, "cold_users": 1,
                                          "held_out_rows_with_cold_items": 3}
    cat = build_catalogue(fit)  # a pair twice is one listener; ids need not be contiguous
    assert cat.fit_rows == 5 and cat.n_users == 3
    assert list(cat.item_ids) == [0, 1, 5] and list(cat.listeners) == [1.0, 2.0, 1.0]


def test_every_model_scored_in_the_driver_as_on_spark(spark, monkeypatch):
    """Below LOCAL_SCORING_CELLS the lists are collected once and every model is scored in
    this process; above it each model is a Spark job. Both give each model the same users
    and metrics (the scores are float32 products from other BLAS shapes in each: 1e-6), so
    the same table; a user without plays in the fit part is scored (as zeros), not dropped."""
    from recsys_dagster.ml.als import ALSParams
    from recsys_dagster.ml.als.confidence import ConfidenceParams
    from recsys_dagster.ml.evaluation import evaluate as ev

    rng = np.random.default_rng(11)
    fit = [(u, int(i), float(rng.integers(1, 9))) for u in range(60)
           for i in rng.choice(40, 8, replace=False)]
    held = [(u, int(i), 1.0) for u in range(62) for i in rng.choice(40, 3, replace=False)]
    schema = "user_idx int, item_idx int, plays double"
    fit, held = spark.createDataFrame(fit, schema), spark.createDataFrame(held, schema)
    params = ev.EvaluationParams(n_bootstrap=50)
    args = (fit, held, ConfidenceParams(), ALSParams(rank=4, max_iter=3), params)
    local = ev.evaluate(*args)
    monkeypatch.setattr(ev, "LOCAL_SCORING_CELLS", 0)
    on_spark = ev.evaluate(*args)
    assert (local.counts["scored_in"], on_spark.counts["scored_in"]) == ("the driver", "Spark")
    a, b = (r.per_user.drop(columns="segment") for r in (local, on_spark))
    assert set(a.model) == {"als", "popularity", "item_knn"} and len(a) == 3 * 62
    assert a[["model", "user_idx", "n_train"]].values.tolist() == b[
        ["model", "user_idx", "n_train"]].values.tolist()  # the same rows, users ascending
    assert a.loc[a.user_idx >= 60, "n_train"].eq(0).all()  # no fit plays: scored all the same
    for column in PER_USER_COLUMNS:
        assert np.allclose(a[column], b[column], atol=1e-6, equal_nan=True), column
    pd.testing.assert_frame_equal(local.table, on_spark.table, atol=1e-6)

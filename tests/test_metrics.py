"""Ranking metrics: hand-computed cases and agreement with Spark's RankingEvaluator."""

import math

import pytest
from pyspark.ml.evaluation import RankingEvaluator

from recsys_dagster.ml.metrics import ranking_metrics_at_k, summarize


def test_hand_computed_case():
    # Hits at positions 0 and 2 of 4; three relevant items, K = 4.
    m = ranking_metrics_at_k([10, 20, 30, 40], {10, 30, 99}, k=4)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_perfect_and_empty_lists():
    perfect = ranking_metrics_at_k([1, 2], {1, 2}, k=2)
    assert perfect == {"precision": 1.0, "recall": 1.0, "ndcg": 1.0, "map": 1.0}
    none = ranking_metrics_at_k([], {1}, k=5)
    assert none == {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    with pytest.raises(ValueError):
        ranking_metrics_at_k([1], set(), k=3)


def test_only_top_k_counts():
    assert ranking_metrics_at_k([5, 6, 1], {1}, k=2)["precision"] == 0.0


CASES = [
    (0, [1, 2, 3, 4, 5], [1, 5, 9]),
    (1, [7, 8, 9, 10, 11], [11]),
    (2, [3, 1, 4, 15, 9], [2, 6]),
    (3, [2, 7, 1, 8, 2], [8, 2, 7, 1, 3, 9]),
]


def test_agrees_with_spark_ranking_evaluator(spark):
    k = 3
    recs = spark.createDataFrame(
        [(u, rank + 1, item) for u, items, _ in CASES for rank, item in enumerate(items)],
        "user_idx int, rank int, item_idx int")
    hold = spark.createDataFrame([(u, i) for u, _, rel in CASES for i in rel],
                                 "user_idx int, item_idx int")
    ours = summarize(recs, hold, k, n_catalogue=20)
    lists = spark.createDataFrame(
        [([float(x) for x in items], [float(x) for x in rel]) for _, items, rel in CASES],
        "prediction array<double>, label array<double>")
    for ours_name, spark_name in [("precision", "precisionAtK"), ("recall", "recallAtK"),
                                  ("ndcg", "ndcgAtK"), ("map", "meanAveragePrecisionAtK")]:
        ev = RankingEvaluator(metricName=spark_name, k=k, predictionCol="prediction",
                              labelCol="label")
        assert ours[ours_name] == pytest.approx(ev.evaluate(lists), abs=1e-9), ours_name
    assert ours["users"] == 4
    # Distinct items in the top 3 of each list.
    assert ours["coverage"] == pytest.approx(len({1, 2, 3, 7, 8, 9, 4}) / 20)
    for name in ("precision", "recall", "ndcg", "map", "coverage"):
        assert 0.0 <= ours[name] <= 1.0

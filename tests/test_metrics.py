"""Ranking metrics: hand-computed cases and agreement with Spark's RankingEvaluator."""

import math

import pytest
from pyspark.ml.evaluation import RankingEvaluator

from recsys_dagster.ml.evaluation.metrics import ranking_metrics_at_k


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
    lists = spark.createDataFrame(
        [([float(x) for x in items], [float(x) for x in rel]) for _, items, rel in CASES],
        "prediction array<double>, label array<double>")
    ours = [ranking_metrics_at_k(items, rel, k) for _, items, rel in CASES]
    for ours_name, spark_name in [("precision", "precisionAtK"), ("recall", "recallAtK"),
                                  ("ndcg", "ndcgAtK"), ("map", "meanAveragePrecisionAtK")]:
        ev = RankingEvaluator(metricName=spark_name, k=k, predictionCol="prediction",
                              labelCol="label")
        mean = sum(m[ours_name] for m in ours) / len(ours)
        assert mean == pytest.approx(ev.evaluate(lists), abs=1e-9), ours_name
        assert all(0.0 <= m[ours_name] <= 1.0 for m in ours)

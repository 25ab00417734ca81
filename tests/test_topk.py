"""Top-k scoring: exclusions, no self-matches, deterministic ties, no cross join."""

import numpy as np

from recsys_dagster.ml.evaluation.baselines import popularity_recommendations
from recsys_dagster.ml.serving.recommend import recommend_for_users, similar_by_factors
from recsys_dagster.ml.serving.topk import top_k_rows


def test_top_k_rows_orders_masks_and_breaks_ties():
    cand_ids = np.array([3, 5, 7, 9])
    cands = np.array([[1.0], [2.0], [2.0], [0.5]], dtype=np.float32)
    q, r, c, s = top_k_rows(np.array([0, 1]), np.array([[1.0], [1.0]], dtype=np.float32),
                            cand_ids, cands, k=3, excludes=[None, [5, 42]])
    got = [(int(a), int(b), int(x)) for a, b, x in zip(q, r, c)]
    # Query 0: tie between 5 and 7 broken by the smaller id. Query 1: 5 excluded.
    assert got == [(0, 1, 5), (0, 2, 7), (0, 3, 3), (1, 1, 7), (1, 2, 3), (1, 3, 9)]
    q, r, c, s = top_k_rows(np.array([3]), np.array([[1.0]], dtype=np.float32), cand_ids, cands,
                            k=10, excludes=[[5, 7, 9]], exclude_self=True)
    assert c.size == 0  # everything masked: nothing returned, never a masked item


def factors(spark, rows):
    return spark.createDataFrame([(i, [float(x) for x in v]) for i, v in rows],
                                 "idx int, features array<float>")


def test_recommendations_exclude_seen_items(spark):
    users = factors(spark, [(0, [1, 0]), (1, [0, 1])])
    items = factors(spark, [(10, [1, 0]), (11, [0.9, 0.1]), (12, [0, 1]), (13, [0.1, 0.9])])
    seen = spark.createDataFrame([(0, 10), (1, 12)], "user_idx int, item_idx int")
    recs = recommend_for_users(users, items, 2, seen=seen)
    got = sorted((r.user_idx, r.rank, r.item_idx) for r in recs.collect())
    assert got == [(0, 1, 11), (0, 2, 13), (1, 1, 13), (1, 2, 11)]
    plan = recs._jdf.queryExecution().executedPlan().toString()
    assert "CartesianProduct" not in plan and "BroadcastNestedLoopJoin" not in plan


def test_similar_items_cosine_without_self(spark):
    items = factors(spark, [(1, [1, 0]), (2, [2, 0.1]), (3, [0, 1]), (4, [0, 0])])
    sims = similar_by_factors(items, 2).collect()
    assert all(r.item_idx != r.similar_item_idx for r in sims)
    top = {r.item_idx: r.similar_item_idx for r in sims if r.rank == 1}
    assert top[1] == 2 and top[2] == 1
    best = max(r.score for r in sims)
    assert best <= 1.0 + 1e-6


def test_popularity_ranks_by_listeners(spark):
    train = spark.createDataFrame([(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 3)],
                                  "user_idx int, item_idx int")
    users = spark.createDataFrame([(0,), (2,)], "user_idx int")
    recs = popularity_recommendations(train, users, 2, seen=train)
    got = sorted((r.user_idx, r.rank, r.item_idx) for r in recs.collect())
    assert got == [(0, 1, 3), (2, 1, 2)]


def test_a_sharded_catalogue_gives_exactly_the_rows_of_one_pass(spark):
    """The candidate matrix cut into shards (forced here; automatic above MAX_SHARD_BYTES):
    the same rows, ranks and scores as one pass, with exclusions and without self-matches."""
    from recsys_dagster.ml.serving.topk import shard_count, top_k

    rng = np.random.default_rng(8)
    ids = np.sort(rng.choice(5000, 300, replace=False))
    mat = rng.standard_normal((300, 8)).astype(np.float32)
    mat[200] = mat[3]  # a tie across shards (0-127, 128-255): the smaller id first, in both
    queries = factors(spark, [(int(i), v) for i, v in zip(ids[:60], mat[:60])])
    seen = spark.createDataFrame([(int(ids[u]), int(ids[(u * 7) % 300])) for u in range(60)],
                                 "user_idx int, item_idx int")

    def rows(**kw):
        got = top_k(queries, ids, mat, 10, "user_idx", "item_idx", **kw).collect()
        return sorted((r.user_idx, r["rank"], r.item_idx, r.score) for r in got)

    for kw in ({"exclude": seen}, {"exclude_self": True}):
        one = rows(shards=1, block=64, **kw)
        assert len(one) == 600
        assert rows(shards=3, block=64, **kw) == one
        # The default block holds the whole small catalogue: same lists, scores within rounding.
        default = rows(**kw)
        assert [r[:3] for r in default] == [r[:3] for r in one]
        assert np.allclose([r[3] for r in default], [r[3] for r in one], rtol=1e-5)
    assert shard_count(200_000, 64) == 1 and shard_count(10_000_000, 64) == 2

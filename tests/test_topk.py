"""Top-k scoring: exclusions, no self-matches, deterministic ties, no cross join; the
approximate index against exact."""

import pickle

import numpy as np
import pytest
from helpers import assert_same_top_k, dot_tolerance
from pyspark.sql import functions as F

from recsys_dagster.assets.helpers import recall_checks
from recsys_dagster.ml.evaluation.baselines import popularity_recommendations
from recsys_dagster.ml.serving.ann import AnnIndex, TopKParams, recall
from recsys_dagster.ml.serving.recommend import Ranked, recommend_for_users, similar_by_factors
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
    q, r, c, s = top_k_rows(np.array([0, 1]), np.ones((2, 1), dtype=np.float32),
                            np.zeros(0, np.int64), np.zeros((0, 1), np.float32), k=3)
    assert q.size == c.size == 0  # no candidates at all


def factors(spark, rows):
    return spark.createDataFrame([(i, [float(x) for x in v]) for i, v in rows],
                                 "idx int, features array<float>")


def test_recommendations_exclude_seen_items(spark):
    users = factors(spark, [(0, [1, 0]), (1, [0, 1])])
    items = factors(spark, [(10, [1, 0]), (11, [0.9, 0.1]), (12, [0, 1]), (13, [0.1, 0.9])])
    seen = spark.createDataFrame([(0, 10), (1, 12)], "user_idx int, item_idx int")
    recs = recommend_for_users(users, items, 2, seen=seen).table
    got = sorted((r.user_idx, r.rank, r.item_idx) for r in recs.collect())
    assert got == [(0, 1, 11), (0, 2, 13), (1, 1, 13), (1, 2, 11)]
    plan = recs._jdf.queryExecution().executedPlan().toString()
    assert "CartesianProduct" not in plan and "BroadcastNestedLoopJoin" not in plan
    # Other query columns ride along onto each of the query's rows.
    named = users.withColumn("user_id", F.concat(F.lit("u"), F.col("idx").cast("string")))
    carried = recommend_for_users(named, items, 2, seen=seen).table.collect()
    assert sorted((r.user_id, r.rank, r.item_idx) for r in carried) == [
        (f"u{u}", rank, i) for u, rank, i in got]


def test_similar_items_cosine_without_self(spark):
    items = factors(spark, [(1, [1, 0]), (2, [2, 0.1]), (3, [0, 1]), (4, [0, 0])])
    sims = similar_by_factors(items, 2).table.collect()
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

    # Shards and tiles of other shapes go through other BLAS kernels: scores within rounding
    # (helpers.dot_tolerance), ids in the same order except where scores tie within it.
    tol = dot_tolerance(mat, mat)
    for kw in ({"exclude": seen}, {"exclude_self": True}):
        one, sharded = rows(shards=1, block=64, **kw), rows(shards=3, block=64, **kw)
        assert len(one) == 600
        assert_same_top_k(sharded, one, tol)
        assert_same_top_k(rows(**kw), one, tol)  # the default block: the whole catalogue
        # Rows 3 and 200 hold the same vector, in different shards: where their scores came
        # out equal (the same kernel for both tiles), the smaller id is listed first.
        both = 0
        for run in (one, sharded):
            listed = {(u, i): (r, s) for u, r, i, s in run}
            for u in {u for u, *_ in run}:
                a, b = listed.get((u, ids[3])), listed.get((u, ids[200]))
                both += bool(a and b)
                if a and b and a[1] == b[1]:
                    assert a[0] < b[0], (u, a, b)
        assert both > 0
    assert shard_count(200_000, 64) == 1 and shard_count(10_000_000, 64) == 2


def catalogue(n_items, rank, seed=0):
    """Seeded item factors with music-like spread norms (popular items are long vectors)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_items, rank))
            * rng.lognormal(0.0, 0.6, (n_items, 1))).astype(np.float32)


def random_excludes(rng, cand_ids, n_queries, most):
    out = np.empty(n_queries, dtype=object)
    for q in range(n_queries):
        out[q] = rng.choice(cand_ids, rng.integers(0, most), replace=False).tolist()
    out[0] = None
    return out


def test_recall_counts_the_exact_rows_the_approximate_rows_hold():
    exact = (np.array([0, 0, 1, 1]), None, np.array([5, 6, 5, 7]), None)
    approx = (np.array([0, 0, 1, 1]), None, np.array([6, 9, 5, 8]), None)
    assert recall(exact, approx) == 0.5
    assert recall(exact, exact) == 1.0
    empty = np.zeros(0, dtype=np.int64)
    assert recall((empty, None, empty, None), approx) == 1.0


def test_approximate_equals_exact_where_the_search_covers_the_catalogue():
    """300 candidates and a search breadth of 512: the graph search reaches every candidate,
    so the rows (masks, ranks, ties by id) are exactly the exact path's, scores too."""
    rng = np.random.default_rng(1)
    cands = catalogue(300, 8)
    cand_ids = np.arange(300, dtype=np.int64) * 2 + 1
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    query_ids = np.arange(40, dtype=np.int64)
    excludes = random_excludes(rng, cand_ids, 40, 30)
    index = AnnIndex(cands, TopKParams(method="approximate", ef_search=512))
    index = pickle.loads(pickle.dumps(index))  # as the tasks receive it
    for ex, self_ids in ((excludes, None), (None, cand_ids[:40])):
        ids = query_ids if self_ids is None else self_ids
        want = top_k_rows(ids, queries, cand_ids, cands, 10, ex, self_ids is not None)
        got = index.top_k_rows(ids, queries, cand_ids, 10, ex, self_ids is not None)
        assert got[0].size == want[0].size > 0
        # faiss's inner products against BLAS's: within rounding, ties in either order.
        assert_same_top_k(got, want, dot_tolerance(queries, cands))


def test_approximate_recall_on_a_larger_catalogue_and_nothing_masked_returned():
    rng = np.random.default_rng(2)
    cands = catalogue(20_000, 16)
    cand_ids = np.arange(20_000, dtype=np.int64)
    queries = rng.standard_normal((500, 16)).astype(np.float32)
    query_ids = np.arange(500, dtype=np.int64) + 100_000
    excludes = random_excludes(rng, cand_ids, 500, 80)
    index = AnnIndex(cands, TopKParams(method="approximate"))
    got = index.top_k_rows(query_ids, queries, cand_ids, 20, excludes)
    want = top_k_rows(query_ids, queries, cand_ids, cands, 20, excludes)
    assert 0.9 <= recall(want, got) < 1.0 + 1e-12
    banned = {(int(q), c) for q, ex in zip(query_ids, excludes) if ex for c in ex}
    assert not banned & set(zip(got[0].tolist(), got[2].tolist()))
    assert np.bincount(got[0] - 100_000).max() == 20  # k per query
    # A narrow graph searched narrowly misses more: recall is measured, not assumed.
    rough = AnnIndex(cands, TopKParams(method="approximate", ef_search=1, graph_degree=2,
                                       ef_construction=4))
    assert recall(want, rough.top_k_rows(query_ids, queries, cand_ids, 20, excludes)) < 0.9


def test_top_k_settings_are_validated():
    with pytest.raises(ValueError, match="top_k.method"):
        TopKParams(method="fast")
    with pytest.raises(ValueError, match="recall_floor"):
        TopKParams(recall_floor=1.5)


class StepLog:
    """A step context's log, kept: what the asset said."""

    def __init__(self):
        self.lines = []
        self.log = self

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_the_recall_check_fails_under_its_floor_and_is_not_executed_for_exact_top_n():
    params, context = TopKParams(method="approximate", recall_floor=0.95), StepLog()
    [low] = recall_checks(context, Ranked(None, "approximate", 0.94, {"recall_queries": 10}),
                          params)
    [high] = recall_checks(context, Ranked(None, "approximate", 0.96, {"recall_queries": 10}),
                           params)
    assert not low.passed and high.passed and context.lines == []
    # Exact top-N has no index whose recall could be measured: no result, and the reason.
    assert recall_checks(context, Ranked(None, "exact"), params) == []
    assert context.lines == ["check approximate_recall_above_floor not executed: top-N was "
                             "exact"]


def test_approximate_top_n_through_spark_with_its_recall(spark):
    rng = np.random.default_rng(3)
    items = factors(spark, list(enumerate(catalogue(200, 4).tolist())))
    users = factors(spark, [(u, rng.standard_normal(4).tolist()) for u in range(30)])
    seen = spark.createDataFrame([(u, int(i)) for u in range(30)
                                  for i in rng.choice(200, 5, replace=False)],
                                 "user_idx int, item_idx int")
    params = TopKParams(method="approximate", ef_search=256, recall_sample=20)
    exact = recommend_for_users(users, items, 5, seen=seen)
    approx = recommend_for_users(users, items, 5, seen=seen, params=params)
    assert exact.method == "exact" and exact.recall is None
    assert approx.method == "approximate" and approx.recall == 1.0
    assert approx.info["recall_queries"] == 20 and approx.info["index_bytes"] > 0
    rows = [sorted((r.user_idx, r.rank, r.item_idx) for r in x.table.collect())
            for x in (exact, approx)]
    assert rows[0] == rows[1]
    sims = similar_by_factors(items, 3, params)
    assert sims.recall == 1.0
    assert all(r.item_idx != r.similar_item_idx for r in sims.table.collect())


def test_best_positions_is_the_first_k_of_a_full_sort_by_score_then_id():
    """The selection kernel against sorting every row by (score descending, id ascending),
    on rows with many ties and masked entries, fewer than k left in some."""
    from recsys_dagster.ml.serving.topk import best_positions

    rng = np.random.default_rng(0)
    for _ in range(200):
        q, n = int(rng.integers(1, 6)), int(rng.integers(1, 60))
        k = min(int(rng.integers(1, 12)), n)
        scores = rng.integers(0, 5, (q, n)).astype(np.float32)
        scores[rng.random((q, n)) < 0.3] = -np.inf
        ids = np.sort(rng.choice(1000, n, replace=False))
        order = np.lexsort((np.broadcast_to(ids, scores.shape), -scores), axis=1)[:, :k]
        want = np.take_along_axis(scores, order, axis=1)
        pos, top = best_positions(scores, ids, k)
        kept = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(top), kept)
        np.testing.assert_array_equal(pos[kept], order[kept])
        np.testing.assert_array_equal(top[kept], want[kept])


def test_top_k_rows_in_tiles_is_a_full_sort_with_exclusions():
    """The tiled path (the buffer carried from tile to tile, chunks skipped under the k-th
    best) against sorting every whole row, with ties, excluded ids, the query itself and
    ids that are not candidates; tile widths that do and do not divide the catalogue."""
    rng = np.random.default_rng(1)
    for trial in range(60):
        n, q, k = int(rng.integers(1, 400)), int(rng.integers(1, 9)), int(rng.integers(1, 25))
        cand_ids = np.sort(rng.choice(5000, n, replace=False))
        cands = rng.integers(-3, 4, (n, 2)).astype(np.float32)  # many equal scores
        queries = rng.integers(-2, 3, (q, 2)).astype(np.float32)
        query_ids = rng.choice(cand_ids, q) if trial % 2 else rng.integers(5000, 6000, q)
        excludes = [np.concatenate([rng.choice(cand_ids, int(rng.integers(0, n + 1))),
                                    [99_999]]) if rng.random() < 0.7 else None
                    for _ in range(q)]
        scores = queries @ cands.T
        for r in range(q):
            banned = np.isin(cand_ids, excludes[r] if excludes[r] is not None else [])
            scores[r, banned | (cand_ids == query_ids[r])] = -np.inf
        kk = min(k, n)
        order = np.lexsort((np.broadcast_to(cand_ids, scores.shape), -scores), axis=1)[:, :kk]
        top = np.take_along_axis(scores, order, axis=1)
        keep = np.isfinite(top)
        want = (np.broadcast_to(query_ids[:, None], order.shape)[keep],
                cand_ids[order][keep], top[keep])
        for block in (7, 64, 8192):
            got_q, got_r, got_c, got_s = top_k_rows(query_ids, queries, cand_ids, cands, k,
                                                    excludes, exclude_self=True, block=block)
            np.testing.assert_array_equal(got_q, want[0])
            np.testing.assert_array_equal(got_c, want[1])
            np.testing.assert_array_equal(got_s, want[2])
            starts = np.r_[True, got_q[1:] != got_q[:-1]]  # ranks 1, 2, ... per query
            np.testing.assert_array_equal(got_r, np.arange(got_r.size) - np.maximum.accumulate(
                np.where(starts, np.arange(got_r.size), 0)) + 1)


def test_long_vectors_first_let_most_of_the_catalogue_go_unscored_and_the_top_k_stays_exact():
    """Candidates with power-law norms (as popular items have): the norm bound stops the scan
    after the first tiles for most queries; the rows equal a full sort's."""
    from recsys_dagster.ml.serving.topk import Candidates

    rng = np.random.default_rng(3)
    n, rank, k = 20_000, 8, 10
    cand_ids = np.sort(rng.choice(10 * n, n, replace=False))
    cands = (rng.standard_normal((n, rank)) / (1 + np.arange(n))[:, None] ** 0.7
             )[rng.permutation(n)].astype(np.float32)
    queries = rng.standard_normal((300, rank)).astype(np.float32)
    query_ids = np.arange(300)
    excludes = [rng.choice(cand_ids[:500], 5) for _ in range(300)]
    prepared = Candidates(cand_ids, cands, block=256)
    got = prepared.top_k_rows(query_ids, queries, k, excludes)
    assert prepared.scored < 0.2 * n * 300  # most of the catalogue never scored
    full = Candidates(cand_ids, cands, block=n)  # one tile: every candidate scored
    want = full.top_k_rows(query_ids, queries, k, excludes)
    assert full.scored == n * 300
    # One tile against tiles of 256: other BLAS shapes, so scores within rounding.
    assert_same_top_k(got, want, dot_tolerance(queries, cands))


def test_a_nan_score_is_never_chosen_and_hides_no_other():
    from recsys_dagster.ml.serving.topk import best_positions

    scores = np.full((2, 100), -1.0, dtype=np.float32)
    scores[:, 40] = np.nan  # in the same 32-wide chunk as the best value, before and after it
    scores[0, 45], scores[1, 33] = 5.0, 5.0
    scores[:, 70] = np.nan
    pos, top = best_positions(scores, np.arange(100), 3)
    assert pos[:, 0].tolist() == [45, 33] and (top[:, 0] == 5.0).all()
    assert np.isfinite(top).all() and not np.isin(pos, [40, 70]).any()


def test_each_thread_scores_into_its_own_scratch_buffer():
    """Tuning scores two trials at once in threads; a buffer shared by the process let one
    trial's scores overwrite the other's, and trial 0 scored below its own settings."""
    from concurrent.futures import ThreadPoolExecutor

    from recsys_dagster.ml.serving.topk import scratch

    mine = scratch(3, 4)
    mine[:] = 1.0
    with ThreadPoolExecutor(1) as pool:
        theirs = pool.submit(lambda: scratch(3, 4).fill(2.0) or scratch(3, 4).copy()).result()
    assert (theirs == 2.0).all() and (mine == 1.0).all()
    assert (scratch(3, 4) == 1.0).all()  # this thread's buffer, reused


def test_rows_from_two_paths_agree_within_rounding_and_ties_only():
    """The suite's comparison of top-k lists from two code paths (helpers.assert_same_top_k):
    rounding and tied ids in either order pass; another id, a lost row or a score beyond the
    tolerance fail."""
    from helpers import assert_same_top_k

    want = [("a", 1, 10, 0.9), ("a", 2, 11, 0.5), ("a", 3, 12, 0.5), ("a", 4, 13, 0.1),
            ("b", 1, 10, 0.7)]
    swapped = [("a", 1, 10, 0.9), ("a", 2, 12, 0.5000004), ("a", 3, 11, 0.4999998),
               ("a", 4, 13, 0.1), ("b", 1, 10, 0.7000001)]
    assert_same_top_k(swapped, want, 1e-6)
    tail = [*want[:3], ("a", 4, 14, 0.1000005), want[4]]  # ties the last one: may stand in
    assert_same_top_k(tail, want, 1e-6)
    for bad in ([("a", 1, 11, 0.9), *want[1:]],  # another id before the tie
                want[:4],  # query b lost
                [*want[:4], ("b", 1, 10, 0.71)],  # beyond the tolerance
                [("a", 1, 10, 0.9), ("a", 2, 13, 0.5), *want[2:]]):  # 13 does not tie 0.5
        with pytest.raises(AssertionError):
            assert_same_top_k(bad, want, 1e-6)


def test_vector_tables_go_to_spark_and_back_through_arrow(spark):
    """vectors_frame and factor_matrix: the rows keep their ids and exact float32 values
    whatever the order they are stored in; an empty table is an empty matrix; rows without a
    vector, or of other lengths, are an error, not a silently shifted matrix."""
    from recsys_dagster.ml.ids import factor_matrix, vectors_frame

    rng = np.random.default_rng(3)
    ids = rng.permutation(50)[:20]
    mat = rng.normal(size=(20, 6)).astype(np.float32)
    frame = vectors_frame(spark, ids, mat, "long")
    assert frame.schema.simpleString() == "struct<idx:bigint,features:array<float>>"
    back_ids, back = factor_matrix(frame.repartition(3))
    order = np.argsort(ids)
    assert back_ids.tolist() == sorted(ids.tolist())
    assert np.array_equal(back, mat[order])  # float32 in and out: bit for bit
    empty_ids, empty = factor_matrix(vectors_frame(spark, ids[:0], mat[:0]))
    assert empty_ids.size == 0 and empty.shape == (0, 0)
    ragged = spark.createDataFrame([(0, [1.0, 2.0]), (1, [3.0])], "idx int, features array<float>")
    with pytest.raises(ValueError, match="different lengths"):
        factor_matrix(ragged)
    missing = spark.createDataFrame([(0, [1.0]), (1, None)], "idx int, features array<float>")
    with pytest.raises(ValueError, match="1 of 2 rows have no vector"):
        factor_matrix(missing)

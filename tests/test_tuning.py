"""Search spaces, the three-way split, and that tuning picks its best trial on validation."""

import pytest

from recsys_dagster.ml.evaluation.split import three_way_split
from recsys_dagster.ml.evaluation.tuning import SearchSpace, random_candidates


def test_grid_is_the_full_product():
    space = SearchSpace(("log", "bm25"), (1.0, 3.0), (8,), (0.1, 1.0, 10.0), (5,))
    grid = space.grid()
    assert len(grid) == 2 * 2 * 1 * 3 * 1
    assert len({tuple(g.values()) for g in grid}) == len(grid)


def test_random_search_is_seeded_and_inside_the_space():
    space = SearchSpace()
    a = random_candidates(space, 20, seed=1)
    assert a == random_candidates(space, 20, seed=1)
    assert a != random_candidates(space, 20, seed=2)
    assert len(a) == 20
    for c in a:
        assert c["weighting"] in space.weighting and c["rank"] in space.rank
        assert min(space.alpha) <= c["alpha"] <= max(space.alpha)
        assert min(space.reg_param) <= c["reg_param"] <= max(space.reg_param)


def test_three_way_split_partitions_each_user(spark):
    rows = [(u, i, 1) for u in range(40) for i in range(u % 10 + 1)]
    df = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long")
    train, val, test = (p.collect() for p in three_way_split(df, 0.2, 0.3, 5, temporal=False))
    keys = [{(r.user_idx, r.item_idx) for r in part} for part in (train, val, test)]
    assert sum(len(k) for k in keys) == len(rows)
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert {u for u, _ in keys[0]} == set(range(40))  # everybody keeps a training item
    for u in range(40):
        n = u % 10 + 1
        n_test = min(round(n * 0.3), n - 1)
        assert sum(1 for x, _ in keys[2] if x == u) == n_test
        assert sum(1 for x, _ in keys[1] if x == u) == min(round(n * 0.2), n - 1 - n_test)
    with pytest.raises(ValueError):
        three_way_split(df, 0.5, 0.5, 1, False)

"""Search spaces, the three-way split, and that tuning picks its best trial on validation."""

import numpy as np
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


def test_a_trial_is_adopted_only_when_it_beats_the_current_settings_beyond_the_noise():
    from recsys_dagster.ml.evaluation.tuning import choose

    rng = np.random.default_rng(0)
    current = rng.uniform(0, 0.3, 400)
    better = current + 0.05  # every listener gains: the interval is far above zero
    noisy = current + rng.normal(0.002, 0.1, 400)  # higher on average, by less than the noise
    got = choose([current, noisy, better])
    assert got["adopted"] and got["trial_number"] == 2 and got["difference_ci"][0] > 0
    got = choose([current, noisy])
    assert noisy.mean() > current.mean()
    assert not got["adopted"] and got["trial_number"] == 0 and got["best_trial_number"] == 1
    assert got["difference_ci"][0] <= 0 <= got["difference_ci"][1]
    got = choose([current, current - 0.01])
    assert not got["adopted"] and got["trial_number"] == 0 and "no trial" in got["reason"]


def test_trial_0_is_the_current_settings_and_never_tried_twice():
    from recsys_dagster.ml.als import ALSParams
    from recsys_dagster.ml.als.confidence import ConfidenceParams
    from recsys_dagster.ml.evaluation.tuning import SEARCHED, settings_of, with_current

    current = settings_of(ConfidenceParams(), ALSParams())
    assert set(current) == set(SEARCHED)
    assert current["rank"] == ALSParams().rank and current["alpha"] == ConfidenceParams().alpha
    other = {**current, "rank": current["rank"] * 2}
    assert with_current(current, [other, dict(current)]) == [current, other]


def test_a_search_of_worse_settings_keeps_the_served_ones(standard_run, spark_resource, tmp_path):
    """Through the assets: trial 0 is the served model's settings; a search space holding only
    worse settings adopts nothing, and the retrained model keeps its config's settings."""
    from helpers import STANDARD_CONFIG, copy_warehouse, materialize

    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(standard_run.store, tmp_path / "data")
    served = store.manifest("als_model")["params"]
    worse = {"search": "grid", "weighting": ["linear"], "alpha": [50.0], "rank": [2],
             "reg_param": [300.0], "max_iter": [2]}
    run_config = {"ops": {"als_tuning": {"config": worse},
                          "confidence_matrix": {"config": {"use_tuned": True}},
                          "als_model": {"config": {**STANDARD_CONFIG["ops"]["als_model"]["config"],
                                                   "use_tuned": True}}}}
    resources = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    assert materialize(["als_tuning", "confidence_matrix", "als_model"], resources, run_config,
                       instance=standard_run.instance).success
    trials = store.read_pandas("als_tuning", frame="trials").sort_values("trial")
    assert trials.trial.tolist() == [0, 1]
    assert trials.iloc[0]["rank"] == served["als"]["rank"]  # trial 0: the served settings
    assert trials.iloc[0].weighting == served["confidence"]["weighting"]
    assert trials.iloc[1]["rank"] == 2 and trials.score.iloc[1] < trials.score.iloc[0]
    best = store.manifest("als_tuning")["params"]["best"]
    assert best["adopted"] is False and best["trial_number"] == 0
    assert best["current"].startswith("the served model's")
    model = store.manifest("als_model")["params"]
    assert model["tuned"] is False
    assert model["als"] == {**model["als"], "rank": served["als"]["rank"],
                            "max_iter": served["als"]["max_iter"]}
    assert model["confidence"] == served["confidence"]


def test_the_regularisation_exponent_is_searchable():
    """reg_exponent (nu): a single value draws nothing, so the other settings' seeded sequence
    is the one without it; a range is drawn uniformly, 0 included."""
    from dataclasses import replace

    space = SearchSpace()
    plain = random_candidates(space, 8, seed=13)
    fixed = random_candidates(replace(space, reg_exponent=[0.7]), 8, seed=13)
    assert [{**c, "reg_exponent": 0.7} for c in plain] == fixed
    wide = random_candidates(replace(space, reg_exponent=[0.0, 1.0]), 50, seed=3)
    nus = [c["reg_exponent"] for c in wide]
    assert all(0.0 <= v <= 1.0 for v in nus) and min(nus) < 0.2 and max(nus) > 0.8

"""Search spaces, the three-way split, and that tuning picks its best trial on validation."""

import dataclasses

import numpy as np
import pytest

from recsys_dagster.ml.evaluation.split import three_way_split
from recsys_dagster.ml.evaluation.tuning import SAMPLED, TuningParams


def test_grid_is_the_full_product_and_iterations_are_early_stoppings():
    params = TuningParams(search="grid", weighting=["log", "bm25"], alpha=[1.0, 3.0], rank=[8],
                          reg_param=[0.1, 1.0, 10.0], max_iter=[5], reg_exponent=[0.5, 1.0])
    grid = params.grid()
    assert len(grid) == 2 * 2 * 1 * 3 * 2
    assert len({tuple(g.values()) for g in grid}) == len(grid)
    assert set(grid[0]) == set(SAMPLED) and "max_iter" not in grid[0]
    assert params.checkpoints() == [5]
    assert TuningParams(max_iter=[5, 30]).checkpoints() == [5, 10, 15, 20, 25, 30]
    assert TuningParams(max_iter=[3, 12], eval_every=4).checkpoints() == [3, 7, 11, 12]


def test_the_space_as_optuna_distributions():
    """Floats are log-uniform over their range (reg_exponent uniform: it may hold 0), lists
    are choices, one value is fixed; a grid chooses among the listed values; ranks above 128
    only with the cg solver."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from recsys_dagster.ml.evaluation.study import distributions

    space = TuningParams(reg_exponent=[0.0, 1.0]).space()
    dists, fixed = distributions(space, grid=False)
    assert fixed == {} and set(dists) == set(SAMPLED)
    assert dists["alpha"] == FloatDistribution(0.03, 30.0, log=True)
    assert dists["reg_param"] == FloatDistribution(0.001, 10.0, log=True)
    assert dists["reg_exponent"] == FloatDistribution(0.0, 1.0, log=False)
    assert dists["rank"] == CategoricalDistribution([16, 32, 64, 128, 256])
    dists, fixed = distributions(TuningParams(reg_exponent=[0.7]).space(), grid=True)
    assert fixed == {"reg_exponent": 0.7}
    assert dists["alpha"] == CategoricalDistribution([0.03, 30.0])
    assert max(TuningParams(solver="exact").space()["rank"]) == 128


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
    from recsys_dagster.ml.evaluation.tuning import choose, halves

    rng = np.random.default_rng(0)
    current = rng.uniform(0, 0.3, 400)
    better = current + 0.05  # every listener gains: the interval is far above zero
    pick, judge = halves(400, 0)
    assert pick.size == judge.size == 200 and np.union1d(pick, judge).size == 400
    lucky = current.copy()  # higher where trials are chosen, only noise where judged
    lucky[pick] += 0.01
    lucky[judge] += rng.normal(0.0, 0.1, judge.size)
    got = choose([current, lucky, better])
    assert got["adopted"] and got["trial_number"] == 2 and got["difference_ci"][0] > 0
    got = choose([current, lucky])
    assert not got["adopted"] and got["trial_number"] == 0 and got["best_trial_number"] == 1
    assert got["difference_ci"][0] <= 0 <= got["difference_ci"][1]
    assert "within the noise" in got["reason"]
    got = choose([current, current - 0.01, None])  # None: a pruned trial
    assert not got["adopted"] and got["trial_number"] == 0 and "no trial" in got["reason"]


def test_the_best_of_many_trials_no_better_than_the_current_is_not_adopted():
    """48 trials that are trial 0 plus noise: on the listeners it was chosen on, the best one's
    interval lies above zero (the winner's curse); judged on the other half it does not."""
    from recsys_dagster.ml.evaluation.stats import bootstrap_ci
    from recsys_dagster.ml.evaluation.tuning import choose

    rng = np.random.default_rng(0)
    current = rng.uniform(0, 0.3, 400)
    trials = [current] + [current + rng.normal(0, 0.1, 400) for _ in range(48)]
    best = int(np.argmax([t.mean() for t in trials]))
    assert bootstrap_ci(trials[best] - current)[1] > 0  # chosen and judged on everyone
    got = choose(trials)
    assert not got["adopted"] and got["trial_number"] == 0


def test_trial_0_is_the_current_settings_and_never_tried_twice():
    from recsys_dagster.ml.als import ALSParams
    from recsys_dagster.ml.als.confidence import ConfidenceParams
    from recsys_dagster.ml.evaluation.tuning import (
        SEARCHED,
        grid_points,
        planned_trials,
        settings_of,
    )

    current = settings_of(ConfidenceParams(), ALSParams())
    assert set(current) == set(SEARCHED)
    assert current["rank"] == ALSParams().rank and current["alpha"] == ConfidenceParams().alpha
    params = TuningParams(search="grid", weighting=[current["weighting"]],
                          alpha=[current["alpha"]], rank=[current["rank"], 2 * current["rank"]],
                          reg_param=[current["reg_param"]], max_iter=[current["max_iter"]],
                          reg_exponent=[current["reg_exponent"]])
    assert [p["rank"] for p in grid_points(params, current)] == [2 * current["rank"]]
    assert planned_trials(params, current) == 2
    # Up to other iterations, the current values are a different trial: tried as well.
    other = dataclasses.replace(params, max_iter=[3])
    assert [p["rank"] for p in grid_points(other, current)] == [current["rank"],
                                                                2 * current["rank"]]
    assert planned_trials(TuningParams(search="tpe", n_trials=5), current) == 6


def test_a_search_of_worse_settings_keeps_the_served_ones(standard_run, spark_resource, tmp_path):
    """Through the assets: trial 0 is the served model's settings; a search space holding only
    worse settings adopts nothing, and the retrained model keeps its config's settings."""
    from helpers import STANDARD_CONFIG, copy_warehouse, materialize

    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(standard_run.store, tmp_path / "data")
    served = store.manifest("als_model")["params"]
    worse = {"search": "grid", "weighting": ["linear"], "alpha": [50.0], "rank": [2],
             "reg_param": [300.0], "max_iter": [2], "reg_exponent": [1.0]}
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


def test_pruning_stops_a_trial_below_the_median_and_early_stopping_a_falling_one():
    """At a checkpoint below the median of the earlier trials there, a trial is pruned (and
    the fit told to stop); a trial whose score falls stops with its best iterations; trial 0
    keeps its last score whatever came before."""
    import optuna

    from recsys_dagster.ml.evaluation.study import pruner
    from recsys_dagster.ml.evaluation.tuning import _Checkpoints

    study = optuna.create_study(direction="maximize", pruner=pruner(True, 1))
    study.add_trial(optuna.trial.create_trial(value=0.6, intermediate_values={5: 0.5, 10: 0.6}))
    scores = iter([np.array([0.1, 0.2])])
    check = _Checkpoints([5, 10, 15], lambda f: next(scores), study.ask(), 1, keep_last=False)
    assert check(4, None) is True  # not a checkpoint: nothing scored
    assert check(5, lambda: None) is False and check.state == "pruned"
    assert check.best == pytest.approx(0.15) and check.best_iter == 5
    scores = iter([np.array([0.6]), np.array([0.7]), np.array([0.65])])
    check = _Checkpoints([5, 10, 15], lambda f: next(scores), study.ask(), 1, keep_last=False)
    assert check(5, lambda: None) and check(10, lambda: None)
    assert check(15, lambda: None) is False and check.state == "complete"
    assert check.best_iter == 10 and check.best == pytest.approx(0.7)
    scores = iter([np.array([0.7]), np.array([0.65])])
    check = _Checkpoints([5, 10], lambda f: next(scores), None, 1, keep_last=True)
    assert check(5, lambda: None) and check(10, lambda: None)
    assert check.best_iter == 10 and check.best == pytest.approx(0.65)


def test_a_chosen_trial_engine_is_used_at_any_size():
    # engine auto's choice by size: test_config
    chosen = TuningParams(engine="half_gridify")
    assert chosen.trial_engine(10) == chosen.trial_engine(10 ** 9) == "half_gridify"


def test_a_false_from_after_iteration_ends_the_fit_there(spark):
    from recsys_dagster.ml.als import ALSParams, train_als

    rows = [(u, i, 1.0 + (u + i) % 3) for u in range(30) for i in range(20) if (u + i) % 4]
    matrix = spark.createDataFrame(rows, "user_idx int, item_idx int, confidence double")
    seen = []

    def after(done, current):
        seen.append(current().item_factors.count())
        return done < 3

    factors = train_als(matrix, ALSParams(rank=4, max_iter=30), after_iteration=after)
    assert seen == [20, 20, 20] and factors.timings["iterations"] == 3


def _music(spark, n_users=160, seed=0):
    """Four taste groups of 20 songs; each listener plays 8 of their group's, 2 others."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = rng.choice(20, 8, replace=False) + 20 * (u % 4)
        for i in [*own, *rng.choice(80, 2, replace=False)]:
            rows.append((u, int(i), int(rng.integers(1, 30))))
    df = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long").dropDuplicates(
        ["user_idx", "item_idx"])
    return three_way_split(df, 0.2, 0.2, seed, temporal=False)


def test_a_tpe_study_is_stored_and_continued_by_the_next_run(spark, tmp_path):
    from recsys_dagster.ml.als import ALSParams
    from recsys_dagster.ml.als.confidence import ConfidenceParams
    from recsys_dagster.ml.evaluation.tuning import settings_of, tune

    train, validation, _ = _music(spark)
    current = settings_of(ConfidenceParams(), ALSParams(rank=4, max_iter=4))
    params = TuningParams(search="tpe", n_trials=2, rank=[2, 4, 8], max_iter=[2, 6],
                          eval_every=4, parallelism=2)
    path = str(tmp_path / "studies" / "als.journal")
    first = tune(train, validation, params, current, study_path=path)
    t = first.trials
    assert t.trial.tolist() == [0, 1, 2] and t.score.between(0, 1).all()
    assert t.iloc[0]["rank"] == 4 and t.iloc[0].max_iter == 4  # trial 0: its own iterations
    assert t.state.isin(["complete", "pruned"]).all()
    assert t.max_iter.isin([2, 4, 6]).all() and (t.max_iter <= t.iterations_run).all()
    assert set(t.study_trial) == set(range(3))  # trial 0 lies in the space: recorded too
    best = first.best
    assert best["metric"] == "ndcg@50" and best["trial"]["rank"] in (2, 4, 8)
    assert best["adopted"] is (best["trial_number"] != 0)
    assert best["engine"] == "local"  # auto: a small training split is fitted in the driver
    second = tune(train, validation, params, current, study_path=path)
    assert second.best["study"] == best["study"] and len(second.study.trials) == 6
    assert set(second.trials.study_trial) == set(range(3, 6))
    drawn = [tuple(r[k] for k in SAMPLED) for r in (*first.trials.iloc[1:].to_dict("records"),
                                                    *second.trials.iloc[1:].to_dict("records"))]
    assert len(set(drawn)) == len(drawn)  # the continued study draws new settings


def test_the_local_validation_score_equals_the_evaluations(spark):
    """Tuning scores validation in the driver (LocalRanker); on the same factors it gives
    every user the metric evaluation_metrics' Spark scorer gives."""
    from recsys_dagster.ml.als import ALSParams
    from recsys_dagster.ml.als.confidence import ConfidenceParams
    from recsys_dagster.ml.evaluation.evaluate import (
        build_catalogue,
        factors_on_catalogue,
        fit_als,
        score_als,
    )
    from recsys_dagster.ml.evaluation.scoring import LocalRanker, user_lists
    from recsys_dagster.ml.ids import factor_matrix

    train, validation, _ = _music(spark, n_users=120, seed=4)
    cat = build_catalogue(train)
    factors = fit_als(train, ConfidenceParams(), ALSParams(rank=4, max_iter=3))
    spark_side = (score_als(factors, train, validation, cat, 10).toPandas()
                  .sort_values("user_idx"))
    lists = user_lists(train, validation).toPandas()
    ids, users = factor_matrix(factors.user_factors)
    items = factors_on_catalogue(cat, factors.item_factors)
    for metric in ("ndcg", "precision"):
        local = LocalRanker(lists, cat, 10, metric)(ids, users, items)
        np.testing.assert_allclose(local, spark_side[metric].to_numpy(), atol=1e-6)
    assert spark_side.ndcg.gt(0).mean() > 0.5  # a model that ranks, not all zeros

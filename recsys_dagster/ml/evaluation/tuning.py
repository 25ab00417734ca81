"""Hyperparameter search for implicit ALS: grid or random, scored on validation only.

The searched settings are the fields of SearchSpace, named as in ConfidenceParams and
ALSParams: a trial is a dict of them, and applying it replaces those fields (`apply`).

Tuning never makes the model worse on validation: trial 0 is always the current settings, and
the best trial replaces them only when its per-user validation scores beat trial 0's by more
than the noise, i.e. the paired bootstrap interval of the difference lies above zero (as the
publication gate judges ALS against popularity). The best of many noisy scores is otherwise
mostly noise.
"""

from __future__ import annotations

import itertools
import math
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from .. import setting
from ..als import ALSParams
from ..als.confidence import ConfidenceParams
from ..als.params import Engine, Solver
from .evaluate import build_catalogue, fit_als, score_als
from .metrics import SELECTION_K, SELECTION_METRIC
from .stats import bootstrap_ci


@dataclass(frozen=True)
class SearchSpace:
    """The values tried for each searched setting."""

    weighting: list[str] = setting(["log", "bm25", "linear"], "Confidence weightings to try.")
    alpha: list[float] = setting([0.1, 0.3, 1.0, 3.0, 10.0],
                                 "alpha values (random: log-uniform in their range).")
    rank: list[int] = setting([32, 64, 128], "Ranks to try.")
    reg_param: list[float] = setting([0.01, 0.03, 0.1, 0.3, 1.0],
                                     "lambda values (random: log-uniform in their range).")
    max_iter: list[int] = setting([10], "Iterations to try.")
    reg_exponent: list[float] = setting(
        [1.0], "Exponents nu of the rating count that scales lambda (random: uniform in their "
        "range; 1 is MLlib's convention, 0 a plain lambda; Rendle et al. 2022).")

    def grid(self) -> list[dict]:
        return [dict(zip(SEARCHED, values)) for values in
                itertools.product(*(getattr(self, key) for key in SEARCHED))]


SEARCHED = tuple(f.name for f in fields(SearchSpace))
_ELEMENT = {name: typing.get_args(hint)[0]
            for name, hint in typing.get_type_hints(SearchSpace).items()}
_SPARK = {str: "string", float: "double", int: "int"}
TRIAL_COLUMNS = ["trial", *SEARCHED, "score", "seconds"]
TRIALS_SCHEMA = ", ".join(["trial int", *(f"{n} {_SPARK[_ELEMENT[n]]}" for n in SEARCHED),
                           "score double", "seconds double"])


@dataclass(frozen=True)
class TuningParams(SearchSpace):
    """Search over confidence weighting, alpha, rank, regularisation and iterations."""

    search: Literal["none", "grid", "random"] = setting(
        "none", "none (skip), grid (every combination) or random.")
    n_trials: int = setting(16, "Random search: number of trials.")
    seed: int = setting(13, "Random search: seed.")
    k: int = setting(SELECTION_K, "Cut-off of the validation metric.")
    metric: Literal["precision", "recall", "ndcg", "map"] = setting(
        SELECTION_METRIC, "Validation metric to maximise. NDCG@50 tells settings apart with "
        "about a quarter of the listeners precision@10 needs (benchmarks/tuning_noise.py); the "
        "test metrics are reported at evaluation_metrics' own k.")
    parallelism: int = setting(2, "Trials run concurrently (Spark jobs).")
    engine: Engine = setting(ALSParams.engine, "ALS engine of the trials (as als_model's).")
    solver: Solver = setting(ALSParams.solver, "Row solver of the trials.")

    def candidates(self) -> list[dict]:
        if self.search == "grid":
            return self.grid()
        return random_candidates(self, self.n_trials, self.seed)


def apply(trial: dict, params):
    """Settings (a ConfidenceParams or ALSParams) with the trial's values for their fields."""
    own = {f.name for f in fields(params)}
    return replace(params, **{k: v for k, v in trial.items() if k in own})


UNIFORM = {"reg_exponent"}  # float settings drawn uniformly (their range may hold 0)


def random_candidates(space: SearchSpace, n: int, seed: int) -> list[dict]:
    """n distinct points: settings with float values log-uniform between the smallest and
    largest listed value (UNIFORM ones uniform), the others sampled from their lists. A float
    setting with one value is that value, drawn from nothing (the sequence of the others does
    not change with it)."""
    rng = np.random.default_rng(seed)
    out, seen = [], set()

    def draw(name):
        values = getattr(space, name)
        if _ELEMENT[name] is float:
            if len(set(values)) == 1:
                return float(values[0])
            if name in UNIFORM:
                return float(round(rng.uniform(min(values), max(values)), 4))
            lo, hi = math.log(min(values)), math.log(max(values))
            return float(round(math.exp(rng.uniform(lo, hi)), 4))
        return _ELEMENT[name](rng.choice(values))

    for _ in range(n * 20):
        if len(out) == n:
            break
        cand = {name: draw(name) for name in SEARCHED}
        key = tuple(cand.values())
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


def settings_of(confidence: ConfidenceParams, als: ALSParams) -> dict:
    """The searched fields of a model's settings: the trial that means "keep them"."""
    values = {**asdict(confidence), **asdict(als)}
    return {name: _ELEMENT[name](values[name]) for name in SEARCHED}


def with_current(current: dict, candidates: list[dict]) -> list[dict]:
    """Trial 0 is the current settings; a candidate equal to them is not tried twice."""
    return [current, *(c for c in candidates if c != current)]


@dataclass
class TuningResult:
    trials: pd.DataFrame
    best: dict = field(default_factory=dict)


def choose(per_user: list[np.ndarray], n_boot: int = 1000, seed: int = 0) -> dict:
    """Which trial to adopt, from each trial's per-user validation scores (the same users in
    the same order; trial 0 the current settings): the best-scoring one if the paired
    bootstrap interval of its difference from trial 0 lies above zero, else trial 0."""
    means = [float(v.mean()) if v.size else 0.0 for v in per_user]
    best = int(np.argmax(means))  # the first of equal scores
    out = {"best_trial_number": best, "best_score": means[best], "current_score": means[0]}
    if best == 0:
        return {**out, "trial_number": 0, "adopted": False,
                "reason": "no trial scored above the current settings on validation"}
    diff, lo, hi = bootstrap_ci(per_user[best] - per_user[0], n_boot, seed=seed)
    out.update(difference=diff, difference_ci=[lo, hi])
    if lo > 0:
        return {**out, "trial_number": best, "adopted": True,
                "reason": f"trial {best} beats the current settings: paired 95% interval of "
                          f"the difference [{lo:.4f}, {hi:.4f}] is above zero"}
    return {**out, "trial_number": 0, "adopted": False,
            "reason": f"trial {best} scored higher, but within the noise: paired 95% interval "
                      f"of the difference [{lo:.4f}, {hi:.4f}] includes zero"}


def tune(train: DataFrame, validation: DataFrame, candidates: list[dict], base_als: ALSParams,
         base_conf: ConfidenceParams, k: int, metric: str, parallelism: int = 2,
         on_trial=None, n_boot: int = 1000, seed: int = 0) -> TuningResult:
    """Fit each candidate on train, score `metric`@k on validation; trials run concurrently
    as separate Spark jobs (parallelism threads share the one SparkSession). candidates[0]
    is the current settings (with_current). The adopted trial is returned as {"trial": its
    values, "score", "metric", "trial_number", "adopted", "reason", ...} (choose)."""
    train, validation = train.persist(), validation.persist()
    cat = build_catalogue(train)

    def run(i_cand):
        i, cand = i_cand
        t0 = time.perf_counter()
        factors = fit_als(train, apply(cand, base_conf), apply(cand, base_als), cat.fit_rows)
        per_user = (score_als(factors, train, validation, cat, k).select("user_idx", metric)
                    .toPandas().sort_values("user_idx"))
        score = float(per_user[metric].mean()) if len(per_user) else 0.0
        row = {"trial": i, **cand, "score": score, "seconds": time.perf_counter() - t0}
        if on_trial is not None:
            on_trial(row)
        return row, per_user[metric].to_numpy(dtype=np.float64)

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        done = list(pool.map(run, enumerate(candidates)))
    train.unpersist()
    validation.unpersist()
    trials = pd.DataFrame([row for row, _ in done], columns=TRIAL_COLUMNS).sort_values("trial")
    decision = choose([values for _, values in done], n_boot, seed)
    chosen = trials.set_index("trial").loc[decision["trial_number"]]
    return TuningResult(trials, {
        "trial": {name: _ELEMENT[name](chosen[name]) for name in SEARCHED},
        "score": float(chosen.score), "metric": f"{metric}@{k}", **decision,
    })

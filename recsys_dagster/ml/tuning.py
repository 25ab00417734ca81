"""Hyperparameter search for implicit ALS: grid or random, scored on validation only."""

from __future__ import annotations

import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from .als import ALSParams
from .confidence import ConfidenceParams
from .evaluate import build_catalogue, fit_als, score_als

TRIAL_COLUMNS = ["trial", "weighting", "alpha", "rank", "reg_param", "max_iter", "score",
                 "seconds"]


@dataclass(frozen=True)
class SearchSpace:
    weighting: tuple = ("log", "bm25", "linear")
    alpha: tuple = (0.1, 0.3, 1.0, 3.0, 10.0)
    rank: tuple = (32, 64, 128)
    reg_param: tuple = (0.01, 0.03, 0.1, 0.3, 1.0)
    max_iter: tuple = (10,)

    def grid(self) -> list[dict]:
        keys = ("weighting", "alpha", "rank", "reg_param", "max_iter")
        return [dict(zip(keys, values)) for values in
                itertools.product(*(getattr(self, key) for key in keys))]


def random_candidates(space: SearchSpace, n: int, seed: int) -> list[dict]:
    """n distinct points: categorical values sampled from the lists, alpha and reg_param
    log-uniform between the smallest and largest listed value."""
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(n * 20):
        if len(out) == n:
            break

        def log_uniform(values):
            lo, hi = math.log(min(values)), math.log(max(values))
            return float(round(math.exp(rng.uniform(lo, hi)), 4))

        cand = {"weighting": str(rng.choice(space.weighting)),
                "alpha": log_uniform(space.alpha), "rank": int(rng.choice(space.rank)),
                "reg_param": log_uniform(space.reg_param),
                "max_iter": int(rng.choice(space.max_iter))}
        key = tuple(cand.values())
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


@dataclass
class TuningResult:
    trials: pd.DataFrame
    best: dict = field(default_factory=dict)


def tune(train: DataFrame, validation: DataFrame, candidates: list[dict], base_als: ALSParams,
         base_conf: ConfidenceParams, k: int, metric: str, parallelism: int = 2,
         on_trial=None) -> TuningResult:
    """Fit each candidate on train, score `metric`@k on validation; trials run concurrently
    as separate Spark jobs (parallelism threads share the one SparkSession)."""
    train, validation = train.persist(), validation.persist()
    cat = build_catalogue(train)

    def run(i_cand):
        i, cand = i_cand
        t0 = time.perf_counter()
        conf = ConfidenceParams(**{**base_conf.as_dict(), "weighting": cand["weighting"],
                                   "alpha": cand["alpha"]})
        als = ALSParams(**{**base_als.as_dict(), "rank": cand["rank"],
                           "reg_param": cand["reg_param"], "max_iter": cand["max_iter"]})
        factors = fit_als(train, conf, als)
        per_user = score_als(factors, train, validation, cat, k).select(metric).toPandas()
        score = float(per_user[metric].mean()) if len(per_user) else 0.0
        row = (i, cand["weighting"], cand["alpha"], cand["rank"], cand["reg_param"],
               cand["max_iter"], score, time.perf_counter() - t0)
        if on_trial is not None:
            on_trial(dict(zip(TRIAL_COLUMNS, row)))
        return row

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        rows = list(pool.map(run, enumerate(candidates)))
    train.unpersist()
    validation.unpersist()
    trials = pd.DataFrame(rows, columns=TRIAL_COLUMNS).sort_values("trial")
    best = trials.sort_values(["score", "trial"], ascending=[False, True]).iloc[0]
    return TuningResult(trials, {
        "confidence": {**base_conf.as_dict(), "weighting": str(best.weighting),
                       "alpha": float(best.alpha)},
        "als": {**base_als.as_dict(), "rank": int(best["rank"]),
                "reg_param": float(best.reg_param), "max_iter": int(best.max_iter)},
        "score": float(best.score), "metric": f"{metric}@{k}", "trial": int(best.trial),
    })

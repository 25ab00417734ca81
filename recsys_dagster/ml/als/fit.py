"""The one ALS loop: every engine of ours runs through `train_als`, which owns the sweep order,
the timing and the dropping of superseded half-steps; an engine only blocks the ratings and
solves one side given the other (as Spark's ALS.scala and `implicit` drive one loop that
calls one half-step twice). MLlib's ALS has a loop of its own and is called as a whole.

An engine is a class built from (params, row solver) with:
    prepare(confidence) -> (users, items)   blocked ratings and initial factors, as two
                                            `Side`s (blocking is part of the fit's time)
    half_step(solving, given) -> Side       the solving side's new factors, given the other
                                            side's (lazily checkpointed; computed here)
    factors(users, items) -> (DataFrame, DataFrame)   (idx, features) tables of the result
    close(users, items)                     drops what the returned tables do not read
"""

from __future__ import annotations

import time

from pyspark.sql import DataFrame

from .broadcast import BroadcastEngine
from .checkpoints import drop
from .full_gridify import FullGridifyEngine
from .half_gridify import HalfGridifyEngine
from .kernels import row_solver
from .local import LocalEngine
from .mllib import train_mllib
from .params import ALSParams, Factors, Side

ENGINES = {"broadcast": BroadcastEngine, "half_gridify": HalfGridifyEngine,
           "full_gridify": FullGridifyEngine, "local": LocalEngine}


def train_als(confidence: DataFrame, params: ALSParams, n_ratings: int | None = None,
              progress=None, after_iteration=None) -> Factors:
    """Factors of the confidence matrix (user_idx, item_idx, confidence) with params.engine;
    engine auto and automatic (0) block counts are resolved from the number of ratings first
    (`n_ratings` when the caller has counted them already, else counted here).
    `progress(done, total)` is called after each iteration; so is
    `after_iteration(done, current)`, where `current()` returns that iteration's Factors, and
    whose False ends the fit there (early stopping, pruning). Neither is called for MLlib,
    whose loop is its own."""
    params.validate()
    if params.engine == "auto" or not (params.num_user_blocks and params.num_item_blocks):
        params = params.blocked(confidence.count() if n_ratings is None else n_ratings)
    if params.engine == "mllib":
        return train_mllib(confidence, params)
    engine = ENGINES[params.engine](params, row_solver(params))
    t0 = time.perf_counter()  # blocking the ratings is part of the fit, as in MLlib's
    users, items = engine.prepare(confidence.select("user_idx", "item_idx", "confidence"))
    blocks = (params.num_user_blocks, params.num_item_blocks)
    done = 0
    while done < params.max_iter:  # items first, then users: MLlib's order
        done += 1
        items = _superseding(items, engine.half_step(items, given=users))
        users = _superseding(users, engine.half_step(users, given=items))
        if progress is not None:
            progress(done, params.max_iter)
        if after_iteration is not None:
            def current(u=users, i=items):
                return Factors(*engine.factors(u, i), blocks=blocks, engine=params.engine)
            if after_iteration(done, current) is False:
                break
    fit_s = time.perf_counter() - t0
    user_factors, item_factors = engine.factors(users, items)
    engine.close(users, items)
    return Factors(user_factors, item_factors,
                   {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / done,
                    "iterations": done}, blocks, params.engine)


def _superseding(old: Side, new: Side) -> Side:
    """`new` replaces `old`: the old side's frame is dropped at once (half_step has computed
    the new one), so what a fit keeps cached does not grow with its iterations."""
    if old.frame is not new.frame:
        drop(old.frame)
    return new

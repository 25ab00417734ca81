"""The Optuna side of tuning: the search space as Optuna distributions, the sampler and pruner,
and the study stored in a file so that the next retrain continues it (Akiba, Sano, Yanase,
Ohta & Koyama 2019, "Optuna: A Next-generation Hyperparameter Optimization Framework").

A stored study's name is derived from everything that makes its scores comparable (the
search, its space, the metric, engine and solver): a changed space starts a new study, in
the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
)

UNIFORM = {"reg_exponent"}  # float settings drawn uniformly (their range may hold 0)


def distributions(space: dict[str, list], grid: bool) -> tuple[dict[str, BaseDistribution],
                                                                 dict]:
    """(distributions of the searched settings, fixed settings): a setting with one value is
    fixed; otherwise a grid is a categorical choice among the listed values, and a random or
    TPE search draws a float setting log-uniformly (UNIFORM ones uniformly) between its
    smallest and largest value and chooses among the listed values of the others."""
    dists, fixed = {}, {}
    for name, values in space.items():
        values = list(dict.fromkeys(values))
        if len(values) == 1:
            fixed[name] = values[0]
        elif grid or not isinstance(values[0], float):
            dists[name] = CategoricalDistribution(values)
        else:
            dists[name] = FloatDistribution(min(values), max(values), log=name not in UNIFORM)
    return dists, fixed


def study_name(search: str, space: dict, details: dict) -> str:
    key = json.dumps({"search": search, "space": space, **details}, sort_keys=True)
    return f"als_tuning-{search}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def sampler(search: str, seed: int):
    """TPE (seeded) or random; a grid is enqueued point by point (tune), so its sampler only
    has to accept enqueued values."""
    if search == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    return optuna.samplers.RandomSampler(seed=seed)


def pruner(pruning: bool, startup_trials: int):
    """Median pruning: a trial stops at a validation checkpoint where its score is below the
    median of the earlier trials' at the same number of iterations (after startup_trials
    complete ones)."""
    if not pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)


def open_study(path: str | None, name: str, sampler, pruner) -> optuna.Study:
    """The study `name` in the journal file at `path` (created, or continued), or in memory
    when path is None."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                               direction="maximize", load_if_exists=True)


def record_trial(study: optuna.Study, params: dict, dists: dict, value: float,
                 intermediate: dict[int, float], attrs: dict) -> bool:
    """Add a trial run outside the sampler (trial 0, the current settings) to the study, so
    the sampler and the pruner learn from it; False when its values lie outside the space."""
    try:
        study.add_trial(optuna.trial.create_trial(
            params={k: params[k] for k in dists}, distributions=dists, value=value,
            intermediate_values=intermediate, user_attrs=attrs))
    except ValueError:
        return False
    return True


def importances(study: optuna.Study) -> dict[str, float]:
    """Each searched setting's share of the variation of the completed trials' scores
    (PED-ANOVA, Watanabe, Bansal & Hutter 2023, "PED-ANOVA: Efficiently Quantifying
    Hyperparameter Importance in Arbitrary Subspaces"); empty when too few trials finished."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
        except (ValueError, RuntimeError, ZeroDivisionError):
            return {}

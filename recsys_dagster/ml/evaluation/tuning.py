"""Hyperparameter search for implicit ALS with Optuna (grid, random or TPE), scored on
validation only.

The searched settings are the fields of SearchSpace, named as in ConfidenceParams and
ALSParams: a trial is a dict of them, and applying it replaces those fields (`apply`).

Tuning never makes the model worse on validation: trial 0 is always the current settings, and
the best trial replaces them only when its per-user validation scores beat trial 0's by more
than the noise, i.e. the paired bootstrap interval of the difference lies above zero (as the
publication gate judges ALS against popularity). The best of many noisy scores is otherwise
mostly noise, and so is its interval on the listeners it was chosen on (the winner's curse):
the best trial is chosen on one seeded half of the validation listeners and judged on the
other half (`choose`).

Iterations are chosen by early stopping: a trial trains up to the largest of `max_iter` and is
scored on validation every `eval_every` iterations from the smallest (its checkpoints); it
stops once its score has not improved for `patience` checkpoints, or when the pruner finds it
below the median of the earlier trials at a checkpoint, and keeps the iterations of its best
score. Trial 0 runs its own iterations and is never pruned. The study is stored (study.py), so
a retrain continues the search where the last one left it.
"""

import itertools
import math
import threading
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

import numpy as np
import optuna
import pandas as pd
from pyspark.sql import DataFrame

from .. import setting
from ..als import ALSParams
from ..als.confidence import ConfidenceParams
from ..als.params import LOCAL_MAX_RATINGS, Engine, Solver, resolve_engine
from ..ids import factor_matrix
from . import study as studies
from .evaluate import build_catalogue, factors_on_catalogue, fit_als
from .metrics import SELECTION_K, SELECTION_METRIC
from .scoring import LocalRanker, user_lists
from .stats import bootstrap_ci

MAX_EXACT_RANK = 128  # ranks above this are searched only with the cg solver


@dataclass(frozen=True)
class SearchSpace:
    """The values tried for each searched setting."""

    weighting: list[str] = setting(["log", "bm25", "linear"], "Confidence weightings to try.")
    alpha: list[float] = setting(
        [0.03, 30.0], "alpha values: a grid tries each; random and tpe draw log-uniformly "
        "between the smallest and the largest.")
    rank: list[int] = setting([16, 32, 64, 128, 256],
                              f"Ranks to try (above {MAX_EXACT_RANK} only with the cg solver).")
    reg_param: list[float] = setting(
        [0.001, 10.0], "lambda values (random, tpe: log-uniform between the smallest and the "
        "largest).")
    max_iter: list[int] = setting(
        [5, 30], "Iterations: every trial trains up to the largest, is scored on validation "
        "every eval_every iterations from the smallest, and keeps the iterations of its best "
        "score (early stopping).")
    reg_exponent: list[float] = setting(
        [0.5, 1.0], "Exponents nu of the rating count that scales lambda (random, tpe: uniform "
        "between the smallest and the largest; 1 is MLlib's convention, 0 a plain lambda; "
        "Rendle et al. 2022).")


SEARCHED = tuple(f.name for f in fields(SearchSpace))
SAMPLED = tuple(name for name in SEARCHED if name != "max_iter")  # max_iter: early stopping
_ELEMENT = {name: typing.get_args(hint)[0]
            for name, hint in typing.get_type_hints(SearchSpace).items()}
_SPARK = {str: "string", float: "double", int: "int"}
TRIAL_COLUMNS = ["trial", "study_trial", *SEARCHED, "score", "state", "iterations_run",
                 "seconds"]
TRIALS_SCHEMA = ", ".join(["trial int", "study_trial int",
                           *(f"{n} {_SPARK[_ELEMENT[n]]}" for n in SEARCHED),
                           "score double", "state string", "iterations_run int",
                           "seconds double"])


@dataclass(frozen=True)
class TuningParams(SearchSpace):
    """Search over confidence weighting, alpha, rank, regularisation and iterations."""

    search: Literal["none", "grid", "random", "tpe"] = setting(
        "none", "none (skip), grid (every combination), random, or tpe (Optuna's "
        "tree-structured Parzen estimator).")
    n_trials: int = setting(16, "random, tpe: trials per run after trial 0.")
    seed: int = setting(13, "random, tpe: seed of the sampler (offset by the number of "
                        "trials a continued study holds).")
    k: int = setting(SELECTION_K, "Cut-off of the validation metric.")
    metric: Literal["precision", "recall", "ndcg", "map"] = setting(
        SELECTION_METRIC, "Validation metric to maximise. NDCG@50 tells settings apart with "
        "about a quarter of the listeners precision@10 needs (benchmarks/tuning_noise.py); the "
        "test metrics are reported at evaluation_metrics' own k.")
    eval_every: int = setting(5, "Iterations between a trial's validation scores.")
    patience: int = setting(1, "Validation scores without improvement before a trial stops.")
    pruning: bool = setting(True, "Stop a trial whose validation score at a checkpoint is "
                            "below the median of the earlier trials' there.")
    prune_after: int = setting(4, "Completed trials before pruning starts.")
    parallelism: int = setting(2, "Trials run concurrently (threads; each a local fit or "
                               "Spark jobs).")
    engine: Engine = setting(
        ALSParams.engine, f"ALS engine of the trials, as als_model's: auto fits them in the "
        f"driver (local) when the training split has at most {LOCAL_MAX_RATINGS:,} ratings, "
        f"where Spark's fixed cost per task is most of a small fit's time, else on Spark.")
    solver: Solver = setting(ALSParams.solver, "Row solver of the trials.")

    def trial_engine(self, n_ratings: int) -> Engine:
        """The engine the trials use on a training split of n_ratings ratings."""
        return resolve_engine(self.engine, n_ratings)

    def space(self) -> dict[str, list]:
        """The sampled settings' values (max_iter is early stopping's), deduplicated."""
        out = {name: list(dict.fromkeys(_ELEMENT[name](v) for v in getattr(self, name)))
               for name in SAMPLED}
        if self.solver != "cg":
            out["rank"] = [r for r in out["rank"] if r <= MAX_EXACT_RANK] or [MAX_EXACT_RANK]
        return out

    def grid(self) -> list[dict]:
        space = self.space()
        return [dict(zip(space, values)) for values in itertools.product(*space.values())]

    def checkpoints(self) -> list[int]:
        """The iterations at which a trial is scored: every eval_every from the smallest of
        max_iter to the largest, the largest included."""
        lo, hi = min(self.max_iter), max(self.max_iter)
        return sorted({*range(lo, hi + 1, max(1, self.eval_every)), hi})


def apply(trial: dict, params):
    """Settings (a ConfidenceParams or ALSParams) with the trial's values for their fields."""
    own = {f.name for f in fields(params)}
    return replace(params, **{k: v for k, v in trial.items() if k in own})


def settings_of(confidence: ConfidenceParams, als: ALSParams) -> dict:
    """The searched fields of a model's settings: the trial that means "keep them"."""
    values = {**asdict(confidence), **asdict(als)}
    return {name: _ELEMENT[name](values[name]) for name in SEARCHED}


def grid_points(params: TuningParams, current: dict) -> list[dict]:
    """A grid search's points, the current settings' left out when trial 0 runs them as the
    point would (the same values, and early stopping with only trial 0's iterations to
    choose from); none for the other searches."""
    if params.search != "grid":
        return []
    if params.checkpoints() != [current["max_iter"]]:
        return params.grid()
    return [p for p in params.grid() if p != {k: current[k] for k in SAMPLED}]


def planned_trials(params: TuningParams, current: dict) -> int:
    """Trials a run of params' search makes, trial 0 included."""
    return 1 + (len(grid_points(params, current)) if params.search == "grid"
                else params.n_trials)


@dataclass
class TuningResult:
    trials: pd.DataFrame
    best: dict = field(default_factory=dict)
    study: optuna.Study | None = None


def halves(n_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the listeners a trial is chosen on, of those it is judged on): a seeded
    split of n_users in two, the judging half the larger when n_users is odd."""
    order = np.random.default_rng(seed).permutation(n_users)
    return np.sort(order[:n_users // 2]), np.sort(order[n_users // 2:])


def choose(per_user: list[np.ndarray | None], n_boot: int = 1000, seed: int = 0) -> dict:
    """Which trial to adopt, from each trial's per-user validation scores (the same users in
    the same order; trial 0 the current settings; None for a pruned trial). The best-scoring
    trial on one half of the users (`halves`) is adopted if the paired bootstrap interval of
    its difference from trial 0 on the other half lies above zero, else trial 0. Judged on
    the users it was chosen on, the best of many trials that are no better than trial 0
    would pass about as often as one of them is lucky there."""
    n = next(v.size for v in per_user if v is not None)  # trial 0 is never pruned
    pick, judge = halves(n, seed)
    means = [-math.inf if v is None else float(v[pick].mean()) if pick.size else 0.0
             for v in per_user]
    best = int(np.argmax(means))  # the first of equal scores
    whole = [None if v is None else float(v.mean()) if v.size else 0.0 for v in per_user]
    out = {"best_trial_number": best, "best_score": whole[best], "current_score": whole[0],
           "chosen_on": int(pick.size), "judged_on": int(judge.size)}
    if best == 0:
        return {**out, "trial_number": 0, "adopted": False,
                "reason": "no trial scored above the current settings on the validation "
                          "listeners trials are chosen on"}
    diff, lo, hi = bootstrap_ci(per_user[best][judge] - per_user[0][judge], n_boot, seed=seed)
    out.update(difference=diff, difference_ci=[lo, hi])
    where = f"on the {judge.size} validation listeners it was not chosen on"
    if lo > 0:
        return {**out, "trial_number": best, "adopted": True,
                "reason": f"trial {best} beats the current settings {where}: paired 95% "
                          f"interval of the difference [{lo:.4f}, {hi:.4f}] is above zero"}
    return {**out, "trial_number": 0, "adopted": False,
            "reason": f"trial {best} scored higher, but within the noise {where}: paired 95% "
                      f"interval of the difference [{lo:.4f}, {hi:.4f}] includes zero"}


class _Checkpoints:
    """One trial's validation scores at its checkpoints: the best so far (for trial 0, the
    last: its own iterations), and whether to go on."""

    def __init__(self, stops: list[int], score, trial, patience: int, keep_last: bool):
        self.stops, self.last, self.score, self.trial = set(stops), max(stops), score, trial
        self.patience, self.keep_last = patience, keep_last
        self.curve: dict[int, float] = {}
        self.best_iter, self.best_scores, self.state = 0, None, "complete"

    def __call__(self, done: int, current) -> bool:
        if done not in self.stops:
            return True
        scores = self.score(current())
        mean = float(scores.mean()) if scores.size else 0.0
        self.curve[done] = mean
        if self.keep_last or self.best_scores is None or mean > self.curve[self.best_iter]:
            self.best_iter, self.best_scores = done, scores
        if self.trial is None:
            return True
        self.trial.report(mean, done)
        if done < self.last and self.trial.should_prune():  # at the last, nothing to save
            self.state = "pruned"
            return False
        return sum(it > self.best_iter for it in self.curve) < self.patience

    @property
    def best(self) -> float:
        return self.curve[self.best_iter]


def open_tuning_study(params: TuningParams, current: dict, study_path: str | None):
    """(study, distributions, fixed values, study name): the study of this search space at
    `study_path` (in memory when None), with its sampler seeded by the trials it has, and the
    grid's points (current settings first) queued."""
    space = params.space()
    dists, fixed = studies.distributions(space, grid=params.search == "grid")
    name = studies.study_name(params.search, space, {
        "metric": params.metric, "k": params.k, "engine": params.engine,
        "solver": params.solver, "max_iter": params.checkpoints()})
    study = studies.open_study(study_path, name, None,
                               studies.pruner(params.pruning, params.prune_after))
    study.sampler = studies.sampler(params.search, params.seed + len(study.trials))
    for point in grid_points(params, current):
        study.enqueue_trial({k: point[k] for k in dists})
    return study, dists, fixed, name


class _TrialRunner:
    """Runs trial i: trial 0 the current settings, the others asked from the study; each
    fitted on train, scored at its checkpoints, told to the study. Callable from several
    threads (the study's ask and trial 0's record are under one lock)."""

    def __init__(self, study, dists: dict, fixed: dict, params: TuningParams, current: dict,
                 fit, on_trial):
        self.study, self.dists, self.fixed, self.params = study, dists, fixed, params
        self.current, self.fit, self.on_trial = current, fit, on_trial
        self.lock = threading.Lock()

    def __call__(self, i: int):
        t0 = time.perf_counter()
        trial, values, stops = self._settings(i)
        check = _Checkpoints(stops, self.fit.score, trial, self.params.patience,
                             keep_last=trial is None)
        try:
            factors = self.fit(values, check)
            if not check.curve:  # MLlib: its own loop, scored at its end only
                check(values["max_iter"], lambda: factors)
        except Exception:
            if trial is not None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        values["max_iter"] = check.best_iter
        number = self._record(trial, values, check)
        row = {"trial": i, "study_trial": number, **values, "score": check.best,
               "state": check.state, "iterations_run": max(check.curve),
               "seconds": time.perf_counter() - t0}
        if self.on_trial is not None:
            self.on_trial(row)
        return row, None if check.state == "pruned" else check.best_scores

    def _settings(self, i: int):
        """(optuna trial or None for trial 0, its values, its checkpoints)."""
        if i == 0:
            stops = [c for c in self.params.checkpoints() if c < self.current["max_iter"]]
            trial, values, stops = None, dict(self.current), [*stops, self.current["max_iter"]]
        else:
            with self.lock:  # see trial 0's record in _record
                trial = self.study.ask(self.dists)
            values = {**self.current, **self.fixed, **trial.params}
            stops = self.params.checkpoints()
        values["max_iter"] = stops[-1]
        return trial, values, stops

    def _record(self, trial, values: dict, check: _Checkpoints) -> int:
        """Tell the study how the trial went; its number there (-1: trial 0 not recorded,
        its settings being outside the space)."""
        attrs = {"iterations": check.best_iter, "current": trial is None}
        if trial is None:
            with self.lock:  # no trial is asked for between adding this one and reading it
                if all(values[k] == v for k, v in self.fixed.items()) and studies.record_trial(
                        self.study, values, self.dists, check.best, check.curve, attrs):
                    return self.study.trials[-1].number
            return -1
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if check.state == "pruned":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, check.best)
        return trial.number


class _TrialFit:
    """Fits a trial's values on train (after_iteration: its checkpoints) and scores factors on
    validation, in this process (LocalRanker)."""

    def __init__(self, train: DataFrame, validation: DataFrame, params: TuningParams,
                 base_conf: ConfidenceParams):
        self.train, self.cat = train, build_catalogue(train)
        self.base_conf = base_conf
        self.base_als = ALSParams(engine=params.trial_engine(self.cat.fit_rows),
                                  solver=params.solver)
        self.ranker = LocalRanker(user_lists(train, validation).toPandas(), self.cat, params.k,
                                  params.metric)

    def __call__(self, values: dict, after_iteration):
        return fit_als(self.train, apply(values, self.base_conf), apply(values, self.base_als),
                       self.cat.fit_rows, after_iteration=after_iteration)

    def score(self, factors) -> np.ndarray:
        user_ids, user_matrix = factor_matrix(factors.user_factors)
        return self.ranker(user_ids, user_matrix,
                           factors_on_catalogue(self.cat, factors.item_factors))


def tune(train: DataFrame, validation: DataFrame, params: TuningParams, current: dict,
         base_conf: ConfidenceParams | None = None, study_path: str | None = None,
         on_trial=None, n_boot: int = 1000) -> TuningResult:
    """Trial 0 (`current`, the settings in use) and params' search, each fitted on train and
    scored `metric`@k on validation at its checkpoints (in this process: LocalRanker); trials
    run concurrently as separate Spark jobs (parallelism threads share the one SparkSession)
    and are recorded in the study at `study_path` (in memory when None). The adopted trial is
    returned as {"trial": its values, "score", "metric", "trial_number", "adopted", "reason",
    ...} (choose)."""
    study, dists, fixed, name = open_tuning_study(params, current, study_path)
    n_sampled = planned_trials(params, current) - 1
    train, validation = train.persist(), validation.persist()
    fit = _TrialFit(train, validation, params, base_conf or ConfidenceParams())
    run = _TrialRunner(study, dists, fixed, params, current, fit, on_trial)
    try:
        with ThreadPoolExecutor(max_workers=max(1, params.parallelism)) as pool:
            done = list(pool.map(run, range(n_sampled + 1)))
    finally:
        train.unpersist()
        validation.unpersist()
    trials = pd.DataFrame([row for row, _ in done], columns=TRIAL_COLUMNS).sort_values("trial")
    decision = choose([values for _, values in done], n_boot, params.seed)
    chosen = trials.set_index("trial").loc[decision["trial_number"]]
    return TuningResult(trials, {
        "trial": {name: _ELEMENT[name](chosen[name]) for name in SEARCHED},
        "score": float(chosen.score), "metric": f"{params.metric}@{params.k}",
        "study": name, "engine": fit.base_als.engine, **decision,
    }, study)

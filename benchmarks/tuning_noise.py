"""How noisy is the validation score tuning selects on? Per metric, the signal-to-noise of the
paired difference between two settings on the validation split.

Reads a warehouse a tuned run left (default ./data, e.g. `make lastfm`): its evaluation_split
(train, validation) and als_tuning's trials. Fits trial 0 (the current settings) and the best
trial on train, scores both on validation at K = 10 and K = 50 with the pipeline's own scoring,
and prints for every ranking metric: each trial's mean, the paired difference with its 95%
bootstrap interval over validation users, its standard error and difference / standard error.
A metric with a larger |difference| / SE tells the two settings apart with fewer listeners:
it is the better one to select on (als_tuning's `metric` and `k`).

    .venv/bin/python benchmarks/tuning_noise.py [--data DIR]
"""

import numpy as np
from _common import run_warehouse

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, fit_als, score_als
from recsys_dagster.ml.evaluation.scoring import RANKING_METRICS
from recsys_dagster.ml.evaluation.stats import bootstrap_ci
from recsys_dagster.ml.evaluation.tuning import apply

KS = (10, 50)
N_BOOT = 2000


def main() -> None:
    store, spark, split = run_warehouse()
    train, validation = split["train"].persist(), split["validation"].persist()
    trials = store.read_pandas("als_tuning", frame="trials").set_index("trial")
    best = int(trials.score.idxmax())
    cat = build_catalogue(train)
    per_trial = {}
    for trial in (0, best):
        values = trials.loc[trial].drop(["score", "seconds"]).to_dict()
        factors = fit_als(train, apply(values, ConfidenceParams()), apply(values, ALSParams()),
                          cat.fit_rows)
        per_trial[trial] = {k: score_als(factors, train, validation, cat, k).toPandas()
                            .sort_values("user_idx").reset_index(drop=True) for k in KS}
    n_users = len(per_trial[0][KS[0]])
    print(f"{store.base_dir}: trial 0 {trials.loc[0].drop(['score', 'seconds']).to_dict()}\n"
          f"  against trial {best} {trials.loc[best].drop(['score', 'seconds']).to_dict()},"
          f" {n_users} validation users")
    print(f"  {'metric':14s} {'trial 0':>8s} {'best':>8s} {'difference (95% CI)':>28s} "
          f"{'SE':>8s} {'diff/SE':>8s}")
    for k in KS:
        for metric in RANKING_METRICS:
            a = per_trial[0][k][metric].to_numpy()
            b = per_trial[best][k][metric].to_numpy()
            diff, lo, hi = bootstrap_ci(b - a, N_BOOT)
            se = float((b - a).std(ddof=1) / np.sqrt(len(a)))
            print(f"  {metric + '@' + str(k):14s} {a.mean():8.4f} {b.mean():8.4f} "
                  f"{diff:10.4f} ({lo:.4f}, {hi:.4f}) {se:8.4f} {diff / se:8.2f}")


if __name__ == "__main__":
    main()

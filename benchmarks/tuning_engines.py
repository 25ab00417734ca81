"""How long a tuning trial's fit takes in the driver (engine local) against the broadcast
engine on Spark, on the same training split, and that both give the same validation score.

Reads the evaluation_split of a warehouse a run left (default ./data, e.g. `make lastfm`).
For each setting below, fits train with both engines (one block per side, the automatic
count on small data), scores validation NDCG@50 with tuning's own LocalRanker, and prints
the seconds of each fit, their ratio (median of --repeats), and both scores.

    .venv/bin/python benchmarks/tuning_engines.py [--data DIR] [--repeats 3]
"""

import argparse
import statistics
import time

from _common import run_warehouse

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, factors_on_catalogue, fit_als
from recsys_dagster.ml.evaluation.scoring import LocalRanker, user_lists
from recsys_dagster.ml.ids import factor_matrix

SETTINGS = [  # (confidence, ALS): the defaults, and a trial at the top of the rank range
    (ConfidenceParams(), {"rank": 32, "reg_param": 0.1, "max_iter": 10}),
    (ConfidenceParams(alpha=3.0), {"rank": 256, "reg_param": 1.0, "max_iter": 10}),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_known_args()[0].repeats  # --data: run_warehouse's
    _, _, split = run_warehouse()
    train, validation = split["train"].persist(), split["validation"].persist()
    cat = build_catalogue(train)
    ranker = LocalRanker(user_lists(train, validation).toPandas(), cat, 50, "ndcg")
    print(f"{cat.fit_rows} training ratings, {cat.item_ids.size} items; median of {repeats}")
    for confidence, als in SETTINGS:
        seconds, scores = {}, {}
        for engine in ("broadcast", "local"):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                factors = fit_als(train, confidence, ALSParams(engine=engine, **als),
                                  cat.fit_rows)
                times.append(time.perf_counter() - t0)
            ids, users = factor_matrix(factors.user_factors)
            scores[engine] = float(ranker(ids, users,
                                          factors_on_catalogue(cat, factors.item_factors)).mean())
            seconds[engine] = statistics.median(times)
        print(f"alpha {confidence.alpha}, {als}: broadcast {seconds['broadcast']:.2f} s, "
              f"local {seconds['local']:.2f} s ({seconds['broadcast'] / seconds['local']:.1f}x "
              f"faster); validation ndcg@50 {scores['broadcast']:.4f} / {scores['local']:.4f}")


if __name__ == "__main__":
    main()

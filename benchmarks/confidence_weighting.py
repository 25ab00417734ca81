"""Which confidence weighting and alpha? Holdout metrics on lastfm-2k with Spark MLlib ALS.

    python benchmarks/confidence_weighting.py [--rank 64] [--reg 0.1] [--iters 10]

Per-user 20% holdout (no timestamps in lastfm-2k), K = 10, already-played items filtered,
popularity measured in the same run as the baseline. Prints one row per (weighting, alpha)
with precision/ndcg/recall@10 and the ratio of precision@10 to popularity's.
"""

import argparse
import time

from _common import lastfm_interactions, spark_session

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.evaluate import EvaluationParams, evaluate
from recsys_dagster.ml.evaluation.split import holdout_split

GRID = {
    "linear": [0.1, 1.0, 10.0],
    "log": [1.0, 5.0, 40.0],
    "bm25": [1.0, 5.0, 40.0],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engine", default="mllib", help="ALS engine (the table in benchmarks/"
                    "README.md was measured with mllib)")
    ap.add_argument("--solver", default="exact")
    args = ap.parse_args()
    spark = spark_session()
    inter = lastfm_interactions(spark)
    fit, held = holdout_split(inter, 0.2, args.seed, temporal=False)
    als = ALSParams(rank=args.rank, max_iter=args.iters, reg_param=args.reg,
                    engine=args.engine, solver=args.solver)
    print(f"lastfm-2k: {inter.count()} interactions; rank {args.rank}, reg {args.reg}, "
          f"{args.iters} iterations, K=10, per-user 20% holdout")
    print(f"{'weighting':9s} {'alpha':>6s} {'prec@10':>8s} {'ndcg@10':>8s} {'recall@10':>9s} "
          f"{'pop p@10':>8s} {'ratio':>6s} {'secs':>5s}")
    for weighting, alphas in GRID.items():
        for alpha in alphas:
            t0 = time.perf_counter()
            res = evaluate(fit, held, ConfidenceParams(weighting=weighting, alpha=alpha), als,
                           EvaluationParams(k=10, n_bootstrap=200))
            p, pop = res.value("als", "precision"), res.value("popularity", "precision")
            print(f"{weighting:9s} {alpha:6.1f} {p:8.4f} {res.value('als', 'ndcg'):8.4f} "
                  f"{res.value('als', 'recall'):9.4f} {pop:8.4f} {p / pop:6.2f} "
                  f"{time.perf_counter() - t0:5.0f}", flush=True)


if __name__ == "__main__":
    main()

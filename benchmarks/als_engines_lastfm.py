"""Our ALS engines against Spark MLlib on lastfm-2k at equal settings: speed and quality.

    python benchmarks/als_engines_lastfm.py [--rank 64] [--reg 0.1] [--iters 10] [--repeats 3]

Per-user 20% holdout, default confidence (log, alpha 1), K = 10, played items filtered. Each
engine is fitted --repeats times in the same run (same Spark session, local profile); prints
the median seconds per iteration, its ratio to MLlib's, and precision@10 with its relative
difference to MLlib's (the issue's bar: within 2%).
"""

import argparse
import statistics

from _common import lastfm_interactions, spark_session

from recsys_dagster.ml.als import ALSParams, train_als
from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, score_als
from recsys_dagster.ml.evaluation.split import holdout_split

ENGINES = [("mllib", "exact"), ("broadcast", "exact"), ("broadcast", "cg"),
           ("half_gridify", "exact"), ("half_gridify", "cg"), ("full_gridify", "exact")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    spark = spark_session()
    inter = lastfm_interactions(spark)
    fit, held = holdout_split(inter, 0.2, 7, temporal=False)
    fit, held = fit.persist(), held.persist()
    conf = confidence_matrix(fit, ConfidenceParams()).persist()
    cat = build_catalogue(fit)
    print(f"lastfm-2k: {conf.count()} training pairs; rank {args.rank}, reg {args.reg} "
          f"(x ratings per row, as MLlib), {args.iters} iterations, {args.repeats} repeats")
    print(f"{'engine':12s} {'solver':6s} {'s/iter':>7s} {'vs mllib':>8s} {'prec@10':>8s} "
          f"{'vs mllib':>8s}")
    base = {}
    for engine, solver in ENGINES:
        params = ALSParams(rank=args.rank, reg_param=args.reg, max_iter=args.iters,
                           engine=engine, solver=solver)
        secs, precs = [], []
        for _ in range(args.repeats):
            factors = train_als(conf, params)
            secs.append(factors.timings["seconds_per_iteration"])
            per_user = score_als(factors, fit, held, cat, 10).toPandas()
            precs.append(float(per_user["precision"].mean()))
        s, p = statistics.median(secs), statistics.median(precs)
        base = base or {"s": s, "p": p}
        print(f"{engine:12s} {solver:6s} {s:7.2f} {base['s'] / s:7.2f}x {p:8.4f} "
              f"{(p - base['p']) / base['p']:+8.2%}", flush=True)


if __name__ == "__main__":
    main()

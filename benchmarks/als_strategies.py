"""The talk's comparison with our own numbers: Spark MLlib ALS, our three distributed
strategies (broadcast, full gridify, half gridify) and the single-machine `implicit` library,
on one seeded synthetic workload, in one run.

    pip install -e .[bench]                      # the `implicit` library (a wheel, no build)
    python benchmarks/als_strategies.py          # 200 k users, 50 k songs, 90 days
    python benchmarks/als_strategies.py --users 50000 --items 12500 --repeats 1   # smaller

Data: our synthetic generator (seed 42), aggregated to (user, song) pairs, 20% of each user's
songs held out (seeded), log confidence (alpha 1). Every engine trains on the same confidence
table at rank 64, lambda 0.1 (scaled by each row's rating count, MLlib's convention; for
`implicit`, whose lambda is not scaled, the same lambda times the mean count), 10 iterations,
on the local profile (local[*] = 2 cores here). Each fit runs in a fresh process, so its peak
memory (resident set of the process tree: Python, JVM, Python workers, sampled every 0.2 s)
and its shuffle bytes (Spark's own stage metrics, from the status REST API) are its own.

Fixed and marginal cost: every fit pays once-per-fit costs (blocking the ratings, starting
Spark's Python workers, compiling or loading kernels) that a longer fit spreads thinner. Each
repeat therefore also times a --short-iters fit (2 iterations, in its own fresh process) and
prints the marginal seconds of one more iteration, (T(iters) - T(short)) / (iters - short),
and the fixed seconds, T(iters) - iters x marginal, for every engine, MLlib and `implicit`
alike. The headline s/iter stays the whole fit divided by the iterations.

Broadcast moves no shuffle bytes; its network-equivalent bytes per iteration are the factor
matrices each executor receives (the other side's factors, once per executor and half-step:
PySpark ships a large closure as a Spark broadcast) plus the factors collected to the driver:
(|X| + |Y|) x (executors + 1). Local mode has one executor, so this is the smallest it can
be; it grows with the cluster while the gridified strategies' shuffles do not.
Printed: medians over --repeats runs.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from _common import spark_session, tree_rss

STAGE_HISTORY = {"spark.ui.enabled": "true", "spark.ui.retainedStages": "100000",
                 "spark.ui.retainedJobs": "100000"}
ENGINES = [("mllib", "exact"), ("broadcast", "cg"), ("full_gridify", "exact"),
           ("half_gridify", "exact"), ("half_gridify", "cg"), ("implicit", "cg")]


def prepare(args) -> None:
    """Generate, index, split and weigh once; the fits read these Parquet tables."""
    from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix
    from recsys_dagster.ml.evaluation.split import holdout_split
    from recsys_dagster.ml.ingest.datagen import SyntheticSpec, synthetic_play_logs
    from recsys_dagster.ml.ingest.indexing import index_and_build

    spark = spark_session()
    spec = SyntheticSpec(n_users=args.users, n_items=args.items, n_artists=args.items // 10,
                         seed=42)
    last = (dt.date.fromisoformat(spec.start_date) + dt.timedelta(days=args.days - 1)).isoformat()
    plays = synthetic_play_logs(spark, spec, spec.start_date, last).persist()
    inter = index_and_build(plays)
    fit, held = holdout_split(inter, 0.2, 7, temporal=False)
    confidence_matrix(fit, ConfidenceParams()).write.mode("overwrite").parquet(
        os.path.join(args.workdir, "confidence"))
    fit.write.mode("overwrite").parquet(os.path.join(args.workdir, "fit"))
    held.write.mode("overwrite").parquet(os.path.join(args.workdir, "held"))
    spark.stop()


def shuffle_bytes(spark) -> tuple[int, int]:
    """Total shuffle bytes written and read by every completed stage so far."""
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages?status=complete",
                                timeout=30) as fh:
        stages = json.load(fh)
    return (sum(s.get("shuffleWriteBytes", 0) for s in stages),
            sum(s.get("shuffleReadBytes", 0) for s in stages))


def precision_at_10(spark, args, user_mat, item_mat) -> float:
    """precision@10 on the holdout of a seeded sample of 20,000 users, played items filtered,
    with the pipeline's own scoring code."""
    import numpy as np
    import pandas as pd

    from recsys_dagster.ml.als import Factors
    from recsys_dagster.ml.evaluation.evaluate import (
        build_catalogue,
        restrict,
        sample_users,
        score_als,
    )

    fit = spark.read.parquet(os.path.join(args.workdir, "fit"))
    held = spark.read.parquet(os.path.join(args.workdir, "held"))
    sample = sample_users(held, 20_000, 0)
    fit_s, held_s = restrict(fit, sample), restrict(held, sample)
    cat = build_catalogue(fit)

    def frame(mat):
        ids = np.flatnonzero(np.abs(mat).sum(axis=1) > 0)
        return spark.createDataFrame(pd.DataFrame({"idx": ids.astype(np.int32),
                                                   "features": list(mat[ids])}),
                                     "idx int, features array<float>")

    factors = Factors(frame(user_mat), frame(item_mat))
    per_user = score_als(factors, fit_s, held_s, cat, 10).select("precision").toPandas()
    return float(per_user["precision"].mean())


def dense(df, n):
    import numpy as np

    from recsys_dagster.ml.ids import factor_matrix

    ids, mat = factor_matrix(df)
    out = np.zeros((n, mat.shape[1]), dtype=np.float32)
    out[ids] = mat
    return out


def executor_count(spark) -> int:
    """Executors a broadcast reaches: 1 in local mode (the driver's own), else the workers'."""
    sc = spark.sparkContext
    if sc.master.startswith("local"):
        return 1
    return max(1, sc._jsc.sc().getExecutorMemoryStatus().size() - 1)


def fit_spark(args, engine: str, solver: str) -> dict:
    from pyspark.sql import functions as F

    from recsys_dagster.ml.als import ALSParams, train_als

    spark = spark_session(overrides=STAGE_HISTORY)
    conf = spark.read.parquet(os.path.join(args.workdir, "confidence")).persist()
    sizes = conf.agg(F.max("user_idx").alias("u"), F.max("item_idx").alias("i"),
                     F.count("*").alias("n")).first()
    params = ALSParams(rank=args.rank, reg_param=args.reg, max_iter=args.iters, engine=engine,
                       solver=solver, num_user_blocks=args.blocks, num_item_blocks=args.blocks)
    w0, r0 = shuffle_bytes(spark)
    factors = train_als(conf, params)
    x = dense(factors.user_factors, sizes["u"] + 1)  # brings lazily kept factors to an end
    y = dense(factors.item_factors, sizes["i"] + 1)
    w1, r1 = shuffle_bytes(spark)
    out = {"seconds_per_iteration": factors.timings["seconds_per_iteration"],
           "shuffle_write_per_iteration": (w1 - w0) / args.iters,
           "shuffle_read_per_iteration": (r1 - r0) / args.iters,
           "pairs": int(sizes["n"])}
    if engine == "broadcast":  # each executor receives the other side; factors come back
        executors = executor_count(spark)
        shipped = (x.nbytes + y.nbytes) * executors + x.nbytes + y.nbytes
        out["network_equivalent_per_iteration"] = shipped
        out["executors"] = executors
        out["factor_bytes"] = x.nbytes + y.nbytes
    if not args.time_only:
        out["precision@10"] = precision_at_10(spark, args, x, y)
    spark.stop()
    return out


def fit_implicit(args) -> dict:
    import numpy as np
    import pandas as pd
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    pdf = pd.read_parquet(os.path.join(args.workdir, "confidence"))
    n_u, n_i = int(pdf.user_idx.max()) + 1, int(pdf.item_idx.max()) + 1
    # implicit weighs each pair by the value given (its c_ui), as our confidence table does.
    cui = sparse.csr_matrix((pdf.confidence.to_numpy(np.float32),
                             (pdf.user_idx.to_numpy(), pdf.item_idx.to_numpy())), (n_u, n_i))
    mean_count = cui.nnz / n_u
    model = AlternatingLeastSquares(factors=args.rank, regularization=args.reg * mean_count,
                                    alpha=1.0, iterations=args.iters, use_cg=True,  # 3 CG steps
                                    calculate_training_loss=False, random_state=42,
                                    num_threads=os.cpu_count() or 2)
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS single-threaded inside
        t0 = time.perf_counter()
        model.fit(cui, show_progress=False)
        secs = (time.perf_counter() - t0) / args.iters
    if args.time_only:
        return {"seconds_per_iteration": secs, "pairs": int(cui.nnz)}
    spark = spark_session()
    prec = precision_at_10(spark, args, np.asarray(model.user_factors),
                           np.asarray(model.item_factors))
    spark.stop()
    return {"seconds_per_iteration": secs, "shuffle_write_per_iteration": 0,
            "shuffle_read_per_iteration": 0, "precision@10": prec, "pairs": int(cui.nnz)}


def run_child(args, engine: str, solver: str, iters: int | None = None) -> dict:
    """One fit in a fresh process; its peak tree RSS is sampled from here. With `iters` (the
    short fit of the fixed/marginal split): that many iterations, timed only."""
    cmd = [sys.executable, os.path.abspath(__file__), "--fit", f"{engine}:{solver}",
           "--workdir", args.workdir, "--rank", str(args.rank), "--reg", str(args.reg),
           "--iters", str(iters or args.iters), "--blocks", str(args.blocks)]
    if iters:
        cmd.append("--time-only")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine}/{solver} failed (exit {proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss"] = peak[0]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=90,
                    help="days of the synthetic listeners' plays (more days, more pairs)")
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--blocks", type=int, default=4, help="user and item blocks")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", nargs="+", default=[f"{e}:{s}" for e, s in ENGINES])
    ap.add_argument("--workdir", default=None,
                    help="data folder; one holding an earlier run's prepared data is reused "
                         "(same --users/--items/--days assumed)")
    ap.add_argument("--short-iters", type=int, default=2,
                    help="iterations of the extra fit per repeat that splits fixed from "
                         "marginal cost (0: no split)")
    ap.add_argument("--fit", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--time-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fit:  # child: one fit, one JSON line
        engine, solver = args.fit.split(":")
        result = fit_implicit(args) if engine == "implicit" else fit_spark(args, engine, solver)
        print(json.dumps(result))
        return
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="recsys-als-")
    t0 = time.perf_counter()
    if os.path.exists(os.path.join(args.workdir, "held")):  # --workdir of an earlier run
        print(f"reusing the data prepared under {args.workdir}")
    else:
        prepare(args)
    print(f"data: {args.users} users x {args.items} songs, prepared in "
          f"{time.perf_counter() - t0:.0f} s under {args.workdir}; rank {args.rank}, "
          f"lambda {args.reg}, {args.iters} iterations, {args.blocks} blocks, "
          f"medians of {args.repeats}", flush=True)
    split = 0 < args.short_iters < args.iters
    print(f"{'engine':14s} {'solver':6s} {'s/iter':>7s} {'vs mllib':>8s} {'shuffle w MB/it':>15s} "
          f"{'shuffle r MB/it':>15s} {'net-eq MB/it':>12s} {'peak GiB':>8s} {'prec@10':>8s}"
          + (f" {'marginal s/it':>13s} {'vs mllib':>8s} {'fixed s':>7s}" if split else ""),
          flush=True)
    base, base_marginal, shuffles, factor_bytes = None, None, {}, None
    for spec in args.engines:
        engine, solver = spec.split(":")
        runs = []
        for _ in range(args.repeats):
            runs.append(run_child(args, engine, solver))
            if split:
                short = run_child(args, engine, solver, args.short_iters)
                runs[-1].update(marginal_fixed(runs[-1]["seconds_per_iteration"], args.iters,
                                               short["seconds_per_iteration"],
                                               args.short_iters))

        def med(key, runs=runs):
            return statistics.median(r.get(key, 0) for r in runs)

        s = med("seconds_per_iteration")
        base = base or (s if engine == "mllib" else None)
        ratio = f"{base / s:7.2f}x" if base else "      -"
        extra = ""
        if split:
            marginal = med("marginal")
            base_marginal = base_marginal or (marginal if engine == "mllib" else None)
            extra = (f" {marginal:13.2f} "
                     + (f"{base_marginal / marginal:7.2f}x" if base_marginal else "      -")
                     + f" {med('fixed'):7.1f}")
        net = med("network_equivalent_per_iteration")
        if engine == "broadcast":
            factor_bytes = med("factor_bytes")
        elif engine in ("half_gridify", "full_gridify"):
            shuffles[f"{engine} {solver}"] = med("shuffle_write_per_iteration")
        print(f"{engine:14s} {solver:6s} {s:7.2f} {ratio} "
              f"{med('shuffle_write_per_iteration') / 1e6:15.1f} "
              f"{med('shuffle_read_per_iteration') / 1e6:15.1f} "
              f"{net / 1e6 if net else 0:12.1f} {med('peak_rss') / 2**30:8.2f} "
              f"{med('precision@10'):8.4f}{extra}   pairs {runs[0]['pairs']}", flush=True)
    if factor_bytes:
        for line in crossovers(factor_bytes, shuffles):
            print(line)


def marginal_fixed(per_it: float, iters: int, short_per_it: float, short: int) -> dict:
    """Seconds of one more iteration and of everything paid once per fit, from the per-
    iteration times of a fit of `iters` and one of `short` iterations (fresh processes)."""
    marginal = (per_it * iters - short_per_it * short) / (iters - short)
    return {"marginal": marginal, "fixed": per_it * iters - marginal * iters}


def crossovers(factor_bytes: float, shuffles: dict) -> list[str]:
    """From how many executors E broadcast's network-equivalent bytes, (|X| + |Y|) x (E + 1)
    per iteration, exceed each gridified strategy's measured shuffle bytes per iteration (a
    model: the gridified shuffles are those measured here, at this block count)."""
    return [f"broadcast ships more than {name} ({sh / 1e6:.0f} MB/it) from "
            f"{int(sh // factor_bytes)} executors on: (|X|+|Y|) = {factor_bytes / 1e6:.1f} MB "
            f"x (E + 1)" for name, sh in shuffles.items()]


if __name__ == "__main__":
    main()

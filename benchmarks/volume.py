"""Volume: the whole pipeline (CLI `run`: ingest every day, then retrain_and_publish) on
synthetic play logs of 1 M, 5 M and 20 M rows, with wall time and peak memory per asset.

    python benchmarks/volume.py                      # 1, 5, 20 million rows
    python benchmarks/volume.py --millions 1 5       # a subset

Users grow with the rows (USERS_PER_MILLION: the default synthetic listener plays about 38
rows in the calendar's 90 days); the catalogue is 200,000 songs by 20,000 artists at every
size, of which the listeners reach more as they grow (about 110 k songs at 20 M rows). Each
size runs in its own process (the CLI, with its own DAGSTER_HOME and data dir); this script
samples the resident memory of that process tree (Python driver, Spark JVM, Python workers)
every 0.2 s from /proc, and reads each step's start and end from the run's event log. Per
asset it prints the wall time and the peak tree RSS during the step, and at the end the
log-log slope of time against rows (1.0 = linear).

The peer, in the same run: after each size's pipeline, the run's own confidence table (the
pairs and confidences the served model was fitted on) goes to the `implicit` library (the
`bench` extra: `pip install -e .[bench]`), in a fresh process whose memory is sampled the
same way: a fit at the same rank and iterations (conjugate gradient), the top-N for every
user with played items filtered, and the top-N similar items for every item. Printed per
product: our step, the peer's time and the ratio (ours / peer; below 1 is faster). Then the
steps before the factors against pandas/pyarrow doing the same work on the same rows
(`before_factors.py`, which checks that the peer's tables are the run's).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import before_factors
import yaml
from _common import tree_processes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The default synthetic listener makes about 38 play rows in the calendar's 90 days.
USERS_PER_MILLION = 26_500
RANK, ITERATIONS, TOP_N = 32, 5, 20
# Our step that makes each of the peer's products.
PRODUCTS = {"fit": "als_model", "recommend_all": "user_recommendations",
            "similar_all": "similar_items"}


def volume_config(millions: float) -> dict:
    """The run config of one size: the demo pipeline with a volume-sized catalogue; ALS at
    rank 32, 5 iterations; evaluation on a seeded sample of 20,000 test users."""
    return {"ops": {
        "ingest_play_logs": {"config": {"source": "synthetic", "synthetic": {
            "n_users": int(millions * USERS_PER_MILLION), "n_items": 200_000,
            "n_artists": 20_000, "seed": 42}}},
        "als_model": {"config": {"rank": RANK, "max_iter": ITERATIONS}},
        "evaluation_metrics": {"config": {"max_users": 20_000, "knn_max_users": 100_000,
                                          "knn_max_items_per_user": 200,
                                          "n_bootstrap": 200}},
        "user_recommendations": {"config": {"top_n": TOP_N}},
        "similar_items": {"config": {"top_n": TOP_N}},
    }}


PEAKS: dict[str, str] = {}  # log path -> what made up the peak sample, by process


def sampled(cmd: list[str], env: dict, log_path: str):
    """Run cmd, sampling its process tree's resident memory every 0.2 s; return (exit code,
    samples, wall seconds). Its output goes to log_path; what the peak sample was made of
    goes to PEAKS[log_path]."""
    t0 = time.time()
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    samples: list[tuple[float, int]] = []

    def sample():
        peak = 0
        while proc.poll() is None:
            procs = tree_processes(proc.pid)
            total = sum(rss for _, _, rss in procs)
            samples.append((time.time(), total))
            if total > peak:
                peak = total
                PEAKS[log_path] = ", ".join(f"{name} {rss / 2**30:.2f}" for _, name, rss in
                                            sorted(procs, key=lambda p: -p[2]) if rss > 2**26)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    sampler.join()
    log.close()
    return rc, samples, time.time() - t0


def run_size(millions: float, workdir: str, extra: dict | None = None):
    """Run the CLI on one size; return the memory samples, DAGSTER_HOME and the wall time."""
    home, data = os.path.join(workdir, "dagster_home"), os.path.join(workdir, "data")
    os.makedirs(home, exist_ok=True)
    config = os.path.join(workdir, "volume.yaml")
    run_config = volume_config(millions)
    for op, cfg in (extra or {}).items():
        run_config["ops"].setdefault(op, {"config": {}})["config"].update(cfg)
    with open(config, "w") as fh:
        yaml.safe_dump(run_config, fh)
    env = {**os.environ, "DAGSTER_HOME": home, "RECSYS_DATA_DIR": data}
    rc, samples, wall = sampled([sys.executable, "-m", "recsys_dagster.cli", "run", "--config",
                                 config, "--show-users", "1"], env,
                                os.path.join(workdir, "run.log"))
    if rc != 0:
        raise SystemExit(f"{millions} M rows: the pipeline failed (exit {rc}); see "
                         f"{os.path.join(workdir, 'run.log')}")
    return samples, home, wall


def peer(data: str) -> dict:
    """`implicit` on the run's confidence table: seconds of each product (run in a child)."""
    import numpy as np
    import pandas as pd
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, ROOT)
    from recsys_dagster.tables import TableStore

    pdf = pd.read_parquet(os.path.join(TableStore(data).current_path("confidence_matrix"),
                                       "matrix"), columns=["user_idx", "item_idx",
                                                           "confidence"])
    n_u, n_i = int(pdf.user_idx.max()) + 1, int(pdf.item_idx.max()) + 1
    # implicit weighs each pair by the value given: our confidence c_ui, as our fit sees it.
    cui = sparse.csr_matrix((pdf.confidence.to_numpy(np.float32),
                             (pdf.user_idx.to_numpy(), pdf.item_idx.to_numpy())), (n_u, n_i))
    del pdf
    model = AlternatingLeastSquares(factors=RANK, regularization=0.1 * cui.nnz / n_u,
                                    alpha=1.0, iterations=ITERATIONS, use_cg=True,
                                    calculate_training_loss=False, random_state=42,
                                    num_threads=os.cpu_count() or 2)
    out = {"pairs": int(cui.nnz), "users": n_u, "items": n_i}
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS single-threaded inside
        t0 = time.perf_counter()
        model.fit(cui, show_progress=False)
        out["fit"] = time.perf_counter() - t0
    users = np.flatnonzero(np.diff(cui.indptr))  # users with a played item
    t0 = time.perf_counter()
    ids, _ = model.recommend(users, cui[users], N=TOP_N, filter_already_liked_items=True)
    out["recommend_all"] = time.perf_counter() - t0
    items = np.flatnonzero(np.diff(cui.tocsc().indptr))  # items someone played
    t0 = time.perf_counter()
    sims, _ = model.similar_items(items, N=TOP_N + 1)  # the item itself comes back too
    out["similar_all"] = time.perf_counter() - t0
    out["rows"] = {"recommend_all": int(ids.size), "similar_all": int(sims.size)}
    return out


def run_peer(workdir: str) -> tuple[dict, int]:
    """The peer in a fresh process on this size's warehouse: (its seconds, peak tree RSS)."""
    rc, samples, _ = sampled([sys.executable, os.path.abspath(__file__), "--peer",
                              os.path.join(workdir, "data")], dict(os.environ),
                             os.path.join(workdir, "peer.log"))
    with open(os.path.join(workdir, "peer.log")) as fh:
        lines = fh.read().splitlines()
    if rc != 0 or not lines:
        raise SystemExit(f"the peer failed (exit {rc}); see {os.path.join(workdir, 'peer.log')}")
    return json.loads(lines[-1]), max((r for _, r in samples), default=0)


def steps(home: str) -> list[tuple[str, float, float]]:
    """(step, start, end) of every successful step of the runs in this DAGSTER_HOME."""
    os.environ["DAGSTER_HOME"] = home
    import dagster as dg

    instance = dg.DagsterInstance.get()
    out = []
    for run in sorted(instance.get_runs(), key=lambda r: instance.get_run_stats(r.run_id)
                      .start_time or 0):
        started = {}
        for event in instance.all_logs(run.run_id):
            kind = event.dagster_event.event_type_value if event.dagster_event else None
            if kind == "STEP_START":
                started[event.step_key] = event.timestamp
            elif kind == "STEP_SUCCESS" and event.step_key in started:
                out.append((event.step_key, started[event.step_key], event.timestamp))
    instance.dispose()
    return out


def count_rows(workdir: str) -> dict:
    sys.path.insert(0, ROOT)
    from recsys_dagster.tables import TableStore

    store = TableStore(os.path.join(workdir, "data"))
    import pyarrow.dataset as ds

    def rows(name):
        days = store.partitions(name)
        paths = [store.current_path(name, d) for d in days] if days else \
            [store.current_path(name)]
        return sum(ds.dataset(p, format="parquet").count_rows() for p in paths)

    return {"play_rows": rows("play_events"), "users": rows("user_index"),
            "items": rows("item_index"), "pairs": rows("interactions"),
            "recommendations": rows("user_recommendations")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--millions", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--workdir", default=None, help="default: a temporary folder")
    parser.add_argument("--no-peer", action="store_true", help="skip the implicit peer")
    parser.add_argument("--approximate", action="store_true",
                        help="top_k.method: approximate for both top-N assets")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # the child: a warehouse folder
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)), flush=True)
        return
    extra = ({op: {"top_k": {"method": "approximate"}} for op in PRODUCTS.values()
              if op != "als_model"} if args.approximate else None)
    base = args.workdir or tempfile.mkdtemp(prefix="recsys-volume-")
    results = {}
    for m in args.millions:
        workdir = os.path.join(base, f"{m:g}M")
        os.makedirs(workdir, exist_ok=True)
        samples, home, wall = run_size(m, workdir, extra)
        per_step = []
        for key, start, end in steps(home):
            peak = max((rss for t, rss in samples if start <= t <= end), default=0)
            per_step.append((key, end - start, peak))
        sizes = count_rows(workdir)
        results[m] = (wall, per_step, sizes, max(r for _, r in samples))
        print(f"\n== {m:g} M rows: {sizes} | whole run {wall:.0f} s, peak RSS "
              f"{results[m][3] / 2**30:.2f} GiB ({PEAKS.get(os.path.join(workdir, 'run.log'))})",
              flush=True)
        print(f"{'step':40s} {'seconds':>8s} {'peak GiB':>9s}")
        for key, secs, peak in per_step:
            if secs >= 0.5:
                print(f"{key:40s} {secs:8.1f} {peak / 2**30:9.2f}")
        if not args.no_peer:
            theirs, peer_peak = run_peer(workdir)
            ours = {key: secs for key, secs, _ in per_step}
            print(f"\n{'product':16s} {'our step':22s} {'ours s':>7s} {'implicit s':>10s} "
                  f"{'ratio':>6s}   (implicit 0.7 on the same {theirs['pairs']:,} pairs; "
                  f"peak {peer_peak / 2**30:.2f} GiB)")
            for product, step in PRODUCTS.items():
                mine = ours.get(step, float("nan"))
                print(f"{product:16s} {step:22s} {mine:7.1f} {theirs[product]:10.1f} "
                      f"{mine / theirs[product]:6.2f}")
            before_factors.compare(workdir, ours)

    sizes = sorted(results)
    if len(sizes) < 2:
        return
    print("\n== time per step by size, and the log-log slope of time against play rows")
    keys = [k for k, s, _ in results[sizes[-1]][1] if s >= 1.0]
    header = " ".join(f"{m:>7g}M" for m in sizes)
    print(f"{'step':40s} {header} {'slope':>6s}")
    rows = {m: results[m][2]["play_rows"] for m in sizes}

    def slope(times):
        xs = [math.log(rows[m]) for m in sizes]
        ys = [math.log(max(t, 1e-3)) for t in times]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        return (sum((x - mx) * (y - my) for x, y in zip(xs, ys))
                / sum((x - mx) ** 2 for x in xs))

    for key in keys:
        times = [next((s for k, s, _ in results[m][1] if k == key), float("nan"))
                 for m in sizes]
        print(f"{key:40s} {' '.join(f'{t:8.1f}' for t in times)} {slope(times):6.2f}")
    walls = [results[m][0] for m in sizes]
    print(f"{'whole run (incl. start-up)':40s} {' '.join(f'{t:8.1f}' for t in walls)} "
          f"{slope(walls):6.2f}")
    print(f"{'peak RSS GiB':40s} {' '.join(f'{results[m][3] / 2**30:8.2f}' for m in sizes)}")


if __name__ == "__main__":
    main()

"""Volume: the whole pipeline (CLI `run`: ingest every day, then retrain_and_publish) on
synthetic play logs of 1 M, 5 M and 20 M rows, with wall time and peak memory per asset.

    python benchmarks/volume.py                      # 1, 5, 20 million rows
    python benchmarks/volume.py --millions 1 5       # a subset

Users grow with the rows (50,000 users per million rows, about 20 rows each); the catalogue
is 200,000 songs by 20,000 artists at every size, so 20 M rows is the 1 M users x 200 k songs
workload. Each size runs in its own process (the CLI, with its own DAGSTER_HOME and data
dir); this script samples the resident memory of that process tree (Python driver, Spark
JVM, Python workers) every 0.2 s from /proc, and reads each step's start and end from the
run's event log. Per asset it prints the wall time and the peak tree RSS during the step,
and at the end the log-log slope of time against rows (1.0 = linear).
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import yaml
from _common import tree_rss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USERS_PER_MILLION = 50_000


def volume_config(millions: float) -> dict:
    """The run config of one size: the demo pipeline with a volume-sized catalogue; ALS at
    rank 32, 5 iterations; evaluation on a seeded sample of 20,000 test users."""
    return {"ops": {
        "ingest_play_logs": {"config": {"source": "synthetic", "synthetic": {
            "n_users": int(millions * USERS_PER_MILLION), "n_items": 200_000,
            "n_artists": 20_000, "mean_items_per_user": 17.0, "seed": 42}}},
        "als_model": {"config": {"rank": 32, "max_iter": 5}},
        "evaluation_metrics": {"config": {"max_users": 20_000, "knn_max_users": 100_000,
                                          "knn_max_items_per_user": 200,
                                          "n_bootstrap": 200}},
        "user_recommendations": {"config": {"top_n": 20}},
    }}


def run_size(millions: float, workdir: str) -> tuple[list[tuple[float, int]], str, float]:
    """Run the CLI on one size; return the memory samples, DAGSTER_HOME and the wall time."""
    home, data = os.path.join(workdir, "dagster_home"), os.path.join(workdir, "data")
    os.makedirs(home, exist_ok=True)
    config = os.path.join(workdir, "volume.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(volume_config(millions), fh)
    env = {**os.environ, "DAGSTER_HOME": home, "RECSYS_DATA_DIR": data}
    t0 = time.time()
    log = open(os.path.join(workdir, "run.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "recsys_dagster.cli", "run", "--config",
                             config, "--show-users", "1"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    samples: list[tuple[float, int]] = []

    def sample():
        while proc.poll() is None:
            samples.append((time.time(), tree_rss(proc.pid)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    sampler.join()
    log.close()
    if rc != 0:
        raise SystemExit(f"{millions} M rows: the pipeline failed (exit {rc}); see "
                         f"{os.path.join(workdir, 'run.log')}")
    return samples, home, time.time() - t0


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
    args = parser.parse_args()
    base = args.workdir or tempfile.mkdtemp(prefix="recsys-volume-")
    results = {}
    for m in args.millions:
        workdir = os.path.join(base, f"{m:g}M")
        os.makedirs(workdir, exist_ok=True)
        samples, home, wall = run_size(m, workdir)
        per_step = []
        for key, start, end in steps(home):
            peak = max((rss for t, rss in samples if start <= t <= end), default=0)
            per_step.append((key, end - start, peak))
        sizes = count_rows(workdir)
        results[m] = (wall, per_step, sizes, max(r for _, r in samples))
        print(f"\n== {m:g} M rows: {sizes} | whole run {wall:.0f} s, peak RSS "
              f"{results[m][3] / 2**30:.2f} GiB", flush=True)
        print(f"{'step':40s} {'seconds':>8s} {'peak GiB':>9s}")
        for key, secs, peak in per_step:
            if secs >= 0.5:
                print(f"{key:40s} {secs:8.1f} {peak / 2**30:9.2f}")

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

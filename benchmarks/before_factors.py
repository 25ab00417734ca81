"""The steps before the factors (ingest, the two indexes, interactions, the split, the
confidence matrix) against a single-machine peer doing the same work on the same rows: pandas
and pyarrow in one process (its chunks of synthetic listeners made by a pool of one process
per core, as Spark's tasks make them), writing Parquet as our steps do.

    .venv/bin/python benchmarks/before_factors.py --run W/5M

W/5M: a size's folder that `benchmarks/volume.py --workdir W` left (its volume.yaml, its
warehouse `data` and its `dagster_home`); volume.py also runs this after each size. Our
seconds are the run's step times (from its event log); the peer runs now, in a fresh process,
and must reproduce the run's tables (row counts, total plays, the split's sizes, the sum of
the confidences) or the script fails: the same work, not a shortcut. Per step: ours, the
peer's and the ratio (ours / peer).

The peer's work, step by step:
- ingest: the synthetic listeners' plays of every day (the pipeline's own generator, one
  chunk of listeners per task), every row checked against the quarantine rules (ids present,
  no control character, not too long; plays a whole number in 1..max_plays; a timestamp),
  written as one Parquet folder per day, with the catalogue;
- indexes: the distinct user and item ids of every day, sorted, numbered from 0;
- interactions: every day's plays with their two indexes, summed per (user, item) with the
  first and last play time;
- split: per user, most recently discovered first: round(0.2 n) test, round(0.1 n) validation
  (never every item), the rest train;
- confidence: 1 + alpha * log1p(plays / eps) of every pair.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recsys_dagster.ml.als.confidence import ConfidenceParams  # noqa: E402
from recsys_dagster.ml.evaluation.split import SplitParams  # noqa: E402
from recsys_dagster.ml.ingest import datagen  # noqa: E402
from recsys_dagster.ml.ingest.validation import (  # noqa: E402
    DEFAULT_MAX_ID_LENGTH,
    DEFAULT_MAX_PLAYS,
)
from recsys_dagster.tables import TableStore  # noqa: E402

# Our step(s) that do each peer step's work.
STEPS = {"ingest": ["ingest_play_logs"], "indexes": ["user_index", "item_index"],
         "interactions": ["interactions"], "split": ["evaluation_split"],
         "confidence": ["confidence_matrix"]}


def _chunk(spec, chunk: int, lo: int, hi: int) -> pa.Table:
    return pa.Table.from_pandas(datagen.generate(spec, chunk, lo, hi), preserve_index=False)


def ingest(spec, first: str, last: str, out: str) -> int:
    lo, hi = max(spec.day_number(first), 0), spec.day_number(last)
    with concurrent.futures.ProcessPoolExecutor(os.cpu_count()) as pool:
        parts = list(pool.map(_chunk, *zip(*[(spec, c, lo, hi)
                                             for c in range(datagen.n_chunks(spec))])))
    plays = pa.concat_tables(parts)
    bad = pc.or_(_bad_ids(plays), _bad_plays(plays["plays"]))
    bad = pc.or_(bad, pc.is_null(plays["ts"]))
    good = plays.filter(pc.invert(bad))
    good = good.append_column("day", pc.cast(good["ts"], pa.date32()))
    ds.write_dataset(good, os.path.join(out, "play_events"), format="parquet",
                     partitioning=ds.partitioning(pa.schema([("day", pa.date32())]),
                                                  flavor="hive"))
    pq.write_table(plays.filter(bad), os.path.join(out, "quarantine.parquet"))
    pq.write_table(pa.Table.from_pandas(datagen.catalogue_frame(spec), preserve_index=False),
                   os.path.join(out, "item_catalog.parquet"))
    return good.num_rows


def _bad_ids(t: pa.Table):
    bad = None
    for name in ("user_id", "item_id"):
        ids = pc.utf8_trim_whitespace(t[name])
        this = pc.or_kleene(pc.is_null(ids), pc.equal(pc.utf8_length(ids), 0))
        this = pc.or_kleene(this, pc.match_substring_regex(ids, r"[\x00-\x1f\x7f]"))
        this = pc.or_kleene(this, pc.greater(pc.utf8_length(ids), DEFAULT_MAX_ID_LENGTH))
        bad = this if bad is None else pc.or_kleene(bad, this)
    return pc.fill_null(bad, True)


def _bad_plays(plays):
    return pc.fill_null(pc.or_(pc.less(plays, 1), pc.greater(plays, DEFAULT_MAX_PLAYS)), True)


def indexes(out: str) -> tuple[pa.Array, pa.Array]:
    days = ds.dataset(os.path.join(out, "play_events"), format="parquet", partitioning="hive")
    made = []
    for name in ("user_id", "item_id"):
        ids = pc.unique(days.to_table(columns=[name])[name]).sort()
        pq.write_table(pa.table({"id": ids, "idx": pa.array(np.arange(len(ids), dtype=np.int32))}),
                       os.path.join(out, f"{name}_index.parquet"))
        made.append(ids)
    return made[0], made[1]


def interactions(out: str, users: pa.Array, items: pa.Array) -> pa.Table:
    days = ds.dataset(os.path.join(out, "play_events"), format="parquet", partitioning="hive")
    plays = days.to_table(columns=["user_id", "item_id", "plays", "ts"])
    indexed = pa.table({"user_idx": pc.index_in(plays["user_id"], value_set=users),
                        "item_idx": pc.index_in(plays["item_id"], value_set=items),
                        "plays": plays["plays"], "ts": plays["ts"]})
    pairs = indexed.group_by(["user_idx", "item_idx"]).aggregate(
        [("plays", "sum"), ("ts", "min"), ("ts", "max")])
    names = {"plays_sum": "plays", "ts_min": "first_ts", "ts_max": "last_ts"}
    pairs = pairs.rename_columns([names.get(c, c) for c in pairs.column_names])
    pq.write_table(pairs, os.path.join(out, "interactions.parquet"))
    return pairs


def split(out: str, pairs: pa.Table, params: SplitParams) -> dict:
    """The temporal split: per user, the most recently discovered items first (latest first
    play, ties by the larger item index)."""
    user = pairs["user_idx"].to_numpy()
    first = pc.cast(pairs["first_ts"], pa.int64()).to_numpy()
    item = pairs["item_idx"].to_numpy()
    order = np.lexsort((-item, -first, user))
    user = user[order]
    starts = np.searchsorted(user, user, side="left")
    pos = np.arange(user.size) - starts + 1  # 1-based, as row_number
    n = np.bincount(user)[user]
    n_test = np.minimum(np.floor(n * params.test_fraction + 0.5), n - 1)  # round half up
    n_val = np.minimum(np.floor(n * params.validation_fraction + 0.5), n - 1 - n_test)
    part = np.where(pos <= n_test, 0, np.where(pos <= n_test + n_val, 1, 2))
    rows = pairs.take(pa.array(order))
    sizes = {}
    for code, name in enumerate(("test", "validation", "train")):
        frame = rows.filter(pa.array(part == code))
        pq.write_table(frame, os.path.join(out, f"split_{name}.parquet"))
        sizes[name] = frame.num_rows
    return sizes


def confidence(out: str, pairs: pa.Table, params: ConfidenceParams) -> float:
    plays = pairs["plays"].to_numpy().astype(np.float64)
    conf = (1.0 + params.alpha * np.log1p(plays / params.eps)).astype(np.float32)
    pq.write_table(pairs.append_column("confidence", pa.array(conf)),
                   os.path.join(out, "confidence.parquet"))
    return float(conf.sum(dtype=np.float64))


def peer(run: str) -> dict:
    """Every peer step on the run's spec and days, timed; with what to check against."""
    with open(os.path.join(run, "volume.yaml")) as fh:
        synthetic = yaml.safe_load(fh)["ops"]["ingest_play_logs"]["config"]["synthetic"]
    spec = datagen.SyntheticSpec(**synthetic)
    days = TableStore(os.path.join(run, "data")).partitions("play_events")
    out = tempfile.mkdtemp(prefix="recsys-peer-")
    seconds, got = {}, {}
    t0 = time.perf_counter()
    got["play_rows"] = ingest(spec, days[0], days[-1], out)
    seconds["ingest"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    users, items = indexes(out)
    seconds["indexes"] = time.perf_counter() - t0
    got["users"], got["items"] = len(users), len(items)
    t0 = time.perf_counter()
    pairs = interactions(out, users, items)
    seconds["interactions"] = time.perf_counter() - t0
    got["pairs"], got["plays"] = pairs.num_rows, int(pc.sum(pairs["plays"]).as_py())
    t0 = time.perf_counter()
    got["split"] = split(out, pairs, SplitParams())
    seconds["split"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    got["confidence_sum"] = confidence(out, pairs, ConfidenceParams())
    seconds["confidence"] = time.perf_counter() - t0
    return {"seconds": seconds, "got": got}


def run_tables(run: str) -> dict:
    """The same quantities from the run's own tables."""
    store = TableStore(os.path.join(run, "data"))

    def table(name, frame=None, columns=None):
        path = store.current_path(name)
        return pq.read_table(os.path.join(path, frame) if frame else path, columns=columns)

    plays = sum(ds.dataset(store.current_path("play_events", d), format="parquet").count_rows()
                for d in store.partitions("play_events"))
    day = store.partitions("interactions")[-1]
    pairs = pq.read_table(store.current_path("interactions", day), columns=["plays"])
    conf = table("confidence_matrix", "matrix", ["confidence"])["confidence"]
    return {"play_rows": plays, "users": table("user_index", columns=["idx"]).num_rows,
            "items": table("item_index", columns=["idx"]).num_rows, "pairs": pairs.num_rows,
            "plays": int(pc.sum(pairs["plays"]).as_py()),
            "split": {name: table("evaluation_split", name, ["user_idx"]).num_rows
                      for name in ("test", "validation", "train")},
            "confidence_sum": float(pc.sum(pc.cast(conf, pa.float64())).as_py())}


def same_work(ours: dict, theirs: dict) -> None:
    """The peer's tables must be the run's: same counts, confidences summing the same."""
    wrong = [key for key in ours if key != "confidence_sum" and ours[key] != theirs[key]]
    if not np.isclose(ours["confidence_sum"], theirs["confidence_sum"], rtol=1e-6):
        wrong.append("confidence_sum")
    if wrong:
        raise SystemExit("the peer did other work than the run: " + ", ".join(
            f"{k}: run {ours[k]} peer {theirs[k]}" for k in wrong))


def compare(run: str, step_seconds: dict) -> None:
    """Run the peer in a fresh process on this size and print it beside our steps."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--peer", run],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the peer failed:\n{proc.stderr[-2000:]}")
    theirs = json.loads(proc.stdout.splitlines()[-1])
    same_work(run_tables(run), theirs["got"])
    print(f"\n{'step before the factors':24s} {'ours s':>7s} {'peer s':>7s} {'ratio':>6s}   "
          f"(pandas/pyarrow, {os.cpu_count()} processes for the generator; the same tables)")
    for name, ours in STEPS.items():
        mine = sum(step_seconds.get(step, float("nan")) for step in ours)
        peer_s = theirs["seconds"][name]
        print(f"{name:24s} {mine:7.1f} {peer_s:7.1f} {mine / peer_s:6.2f}   {' + '.join(ours)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a size's folder left by volume.py --workdir")
    parser.add_argument("--peer", help=argparse.SUPPRESS)  # the child: a size's folder
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(peer(args.peer)), flush=True)
        return
    if not args.run:
        parser.error("--run is required")
    from volume import steps

    compare(args.run, {key: end - start
                       for key, start, end in steps(os.path.join(args.run, "dagster_home"))})


if __name__ == "__main__":
    main()

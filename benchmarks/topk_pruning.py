"""How much of the catalogue exact top-N scores with the norm bound, on a run's own factors.

    python benchmarks/topk_pruning.py --data DIR [--users 5000]

Reads als_model's user and item factors from a warehouse (e.g. a volume run's), takes a
seeded sample of users and finds each one's top 20 with `topk.Candidates` twice on one core:
as the pipeline does (longest item vectors first, a user's scan stopping once the norm bound
says no later item can enter) and with the bound switched off (every tile scored). Prints
milliseconds per user and the share of user x item scores computed, and checks that both
give the same rows.
"""

import argparse
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recsys_dagster.ml.serving.topk import QUERY_BATCH, Candidates  # noqa: E402
from recsys_dagster.tables import TableStore  # noqa: E402


def factors(store: TableStore, frame: str) -> tuple[np.ndarray, np.ndarray]:
    table = pq.read_table(os.path.join(store.current_path("als_model"), frame))
    ids = table.column("idx").to_numpy().astype(np.int64)
    mat = np.stack(table.column("features").to_numpy(zero_copy_only=False)).astype(np.float32)
    order = np.argsort(ids)
    return ids[order], mat[order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a warehouse folder")
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    store = TableStore(os.path.abspath(args.data))
    item_ids, items = factors(store, "item_factors")
    user_ids, users = factors(store, "user_factors")
    pick = np.sort(np.random.default_rng(0).choice(user_ids.size, min(args.users,
                                                                      user_ids.size),
                                                   replace=False))
    rows = {}
    with threadpool_limits(1):
        for label, prune in (("norm bound (the pipeline)", True), ("every tile", False)):
            cands = Candidates(item_ids, items)
            if not prune:
                cands.bounds[:] = np.inf  # no k-th best is ever above it: nothing pruned
            start, out = time.perf_counter(), []
            for s in range(0, pick.size, QUERY_BATCH):
                batch = pick[s:s + QUERY_BATCH]
                out.append(cands.top_k_rows(user_ids[batch], users[batch], args.top))
            seconds = time.perf_counter() - start
            rows[label] = [np.concatenate(part) for part in zip(*out)]
            print(f"{label:28s} {seconds / pick.size * 1e3:7.3f} ms per user, "
                  f"{cands.scored / (pick.size * item_ids.size):.3f} of the catalogue scored")
    same = all(np.array_equal(a, b) for a, b in zip(*rows.values()))
    print(f"{pick.size} users x {item_ids.size} items, rank {items.shape[1]}, top "
          f"{args.top}: the same rows both ways: {same}")


if __name__ == "__main__":
    main()

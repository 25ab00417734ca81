"""How far a served score is from the sum of its "because you played" contributions.

The contributions (ml/serving/explain.py) sum to the score of the exact ALS solve of the
listener's vector; a model trained with the cg solver serves vectors a few conjugate-gradient
steps from it. For a sample of served listeners, this prints the absolute and relative gap
between each served score and that sum (median, 95th percentile, largest), and how often the
top reason of the served list's first item changes between the two.

    .venv/bin/python benchmarks/explain_gap.py [--data DIR] [--users 500]
"""

import argparse
import os
import time

import numpy as np
import pandas as pd

from recsys_dagster.ml.als.kernels import solve_exact
from recsys_dagster.ml.serving.explain import contributions
from recsys_dagster.served.model import ServedModel
from recsys_dagster.tables import TableStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("RECSYS_DATA_DIR", "data"))
    ap.add_argument("--users", type=int, default=500)
    args = ap.parse_args()
    store = TableStore(os.path.abspath(args.data))
    model = ServedModel.load(store)
    recs = store.read_pandas("user_recommendations")
    recs = recs[~recs.folded_in]
    index = store.read_pandas("user_index").set_index("id").idx
    item_ids, y, yty = model.items
    users = sorted(recs.user_id.unique())[:args.users]
    gaps, rel, t0 = [], [], time.perf_counter()
    for user in users:
        played, conf = model.plays_of(int(index[user]))
        pos = np.searchsorted(item_ids, played)
        mine = recs[recs.user_id == user].sort_values("rank")
        rec_pos = np.searchsorted(item_ids, model.item_index.reindex(mine.item_id).to_numpy())
        share = contributions(y, yty, pos, conf, rec_pos, *model.regularisation())
        exact = share.sum(axis=1)
        gaps.append(np.abs(mine.score.to_numpy() - exact))
        rel.append(gaps[-1] / np.maximum(np.abs(exact), 1e-9))
        check = solve_exact(y, yty, np.array([0, pos.size]), pos, conf, *model.regularisation())
        assert np.allclose(y[rec_pos].astype(np.float64) @ check[0], exact, atol=1e-4)
    seconds = time.perf_counter() - t0
    gaps, rel = np.concatenate(gaps), np.concatenate(rel)
    print(f"{store.base_dir}: model {model.version} (solver {model.params['als']['solver']}), "
          f"{len(users)} listeners, {gaps.size} served scores; explained in {seconds:.2f} s "
          f"({1000 * seconds / len(users):.1f} ms a listener)")
    print(pd.DataFrame({"absolute gap": gaps, "relative gap": rel}).describe(
        percentiles=[0.5, 0.95]).loc[["50%", "95%", "max"]].to_markdown(floatfmt=".4f"))


if __name__ == "__main__":
    main()

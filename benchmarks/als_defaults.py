"""Which ALS defaults earn ALS its place: settings scored on a warehouse's *validation* split
(fitted on train; the test split is never read), against EASE (its lambda chosen there too)
and popularity, by precision@10, AUC and NDCG@50, with the paired 95% interval of ALS minus
EASE over the validation listeners.

    .venv/bin/python benchmarks/als_defaults.py --data DIR [--grid NAME] [--iters 10 20]

DIR is a warehouse a pipeline run left (`make demo` writes ./data; `make lastfm` too); every
fit runs in the driver (engine local), a second or two each on the demo.
"""

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from _common import spark_session

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.ease import EaseScorer, choose_lambda, ease_weights, gram_of
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, factors_on_catalogue, fit_als
from recsys_dagster.ml.evaluation.scoring import DotScorer, score_batch, user_lists
from recsys_dagster.ml.evaluation.stats import bootstrap_ci
from recsys_dagster.ml.ids import factor_matrix
from recsys_dagster.tables import TableStore

K = 10
# The grids tried: each a list of (confidence, ALS) changes to the defaults.
GRIDS = {
    "reg": [dict(reg_param=r, reg_exponent=e) for r in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
            for e in (0.0, 0.5, 1.0)],
    "alpha": [dict(weighting=w, alpha=a) for w in ("log", "linear")
              for a in (0.3, 1.0, 3.0, 10.0, 30.0)],
    "rank": [dict(rank=r) for r in (16, 32, 64, 128)],
    "fine": [dict(reg_param=r, reg_exponent=e) for r in (0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
             for e in (0.75, 1.0)],
    "finer": [dict(reg_param=r, reg_exponent=e) for r in (1.5, 2.0, 2.5, 3.0, 4.0)
              for e in (0.6, 0.7, 0.8)],
}


class Popularity:
    def __init__(self, listeners):
        self.row = np.log1p(listeners).astype(np.float32)

    def needs_features(self) -> bool:
        return False

    def scores(self, features, train_pos):
        return np.tile(self.row, (len(train_pos), 1))


def per_user(cat, scorer, lists, features=None) -> pd.DataFrame:
    parts = []
    for start in range(0, len(lists), 512):
        part = lists.iloc[start:start + 512]
        feats = (list(features[start:start + 512]) if features is not None
                 else [None] * len(part))
        parts.append(score_batch(cat, scorer, part.user_idx.to_numpy(), feats,
                                 list(part.train), list(part.test), K))
    return pd.concat(parts, ignore_index=True).set_index("user_idx").sort_index()


def als_user_rows(factors, lists) -> np.ndarray:
    ids, mat = factor_matrix(factors.user_factors)
    rows = np.zeros((len(lists), mat.shape[1]), dtype=np.float32)
    pos = np.searchsorted(ids, lists.user_idx.to_numpy())
    ok = (pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == lists.user_idx.to_numpy())
    rows[ok] = mat[pos[ok]]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--grid", nargs="+", default=list(GRIDS))
    ap.add_argument("--base", nargs="*", default=[], help="key=value changes to the defaults "
                    "every setting starts from")
    ap.add_argument("--iters", type=int, nargs="+", default=[10])
    args = ap.parse_args()
    spark = spark_session("local")
    store = TableStore(os.path.abspath(args.data))
    split = store.read(spark, "evaluation_split")
    train, valid = split["train"].persist(), split["validation"].persist()
    cat = build_catalogue(train)
    lists = (user_lists(train, valid).toPandas().sort_values("user_idx")
             .reset_index(drop=True))
    print(f"{args.data}: {train.count()} train rows, {len(lists)} validation listeners, "
          f"{cat.item_ids.size} items")
    results = {"popularity": per_user(cat, Popularity(cat.listeners), lists)}
    pairs = train.select("user_idx", "item_idx").toPandas()
    gram = gram_of(pairs, cat.item_ids)
    lam, _ = choose_lambda(lambda v: float(per_user(cat, EaseScorer(ease_weights(gram, v)),
                                                    lists)["ndcg"].mean()))
    results[f"ease (lambda {lam:g})"] = per_user(cat, EaseScorer(ease_weights(gram, lam)), lists)
    ease = results[f"ease (lambda {lam:g})"]
    base = dict(kv.split("=", 1) for kv in args.base)
    conf0, als0 = ConfidenceParams(), ALSParams(engine="local")
    typed = {k: type(getattr(conf0 if hasattr(conf0, k) else als0, k))(v)
             for k, v in base.items()}
    settings = [dict(typed, **change, max_iter=it) for grid in args.grid
                for change in GRIDS[grid] for it in args.iters]
    settings = [dict(s) for s in {tuple(sorted(s.items())) for s in settings}]
    rows = []
    for name, res in results.items():
        rows.append({"model": name, "precision@10": res.precision.mean(),
                     "auc": res.auc.mean(), "ndcg@10": res.ndcg.mean()})
    for change in sorted(settings, key=lambda s: sorted(s.items())):
        conf = replace(conf0, **{k: v for k, v in change.items() if hasattr(conf0, k)})
        als = replace(als0, **{k: v for k, v in change.items() if hasattr(als0, k)})
        t0 = time.perf_counter()
        factors = fit_als(train, conf, als)
        item_matrix = factors_on_catalogue(cat, factors.item_factors)
        res = per_user(cat, DotScorer(item_matrix), lists, als_user_rows(factors, lists))
        diff, lo, hi = bootstrap_ci((res.precision - ease.precision).to_numpy(), 1000, seed=0)
        rows.append({"model": "als " + " ".join(f"{k}={v}" for k, v in sorted(change.items())),
                     "precision@10": res.precision.mean(), "auc": res.auc.mean(),
                     "ndcg@10": res.ndcg.mean(), "minus_ease": diff,
                     "interval": f"[{lo:.4f}, {hi:.4f}]",
                     "seconds": time.perf_counter() - t0})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()

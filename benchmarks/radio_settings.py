"""Which radio settings make stations its seed artist's listeners go on to play: the hit share
of stations built from factors fitted on *train*, scored on the *validation* split (the test
split is never read), against the seed's hits then the hits, with the paired 95% interval.

    .venv/bin/python benchmarks/radio_settings.py --data DIR [--set key=v1,v2 ...]

DIR is a warehouse a pipeline run left; the model's own settings (its als_model manifest) are
fitted in the driver. Each --set varies one RadioParams field over its values, the others at
their defaults (or at --base).
"""

import argparse
import json
import os
from dataclasses import fields, replace

import pandas as pd
from _common import spark_session

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.artist_evaluation import (
    ArtistEvaluationInputs,
    Sampling,
    evaluate_similar_artists,
)
from recsys_dagster.ml.evaluation.evaluate import fit_als
from recsys_dagster.ml.serving.stations import RadioParams
from recsys_dagster.tables import TableStore


def item_artists(spark, store: TableStore):
    """(item_idx, artist_id) of every indexed item whose newest catalogue row names one."""
    cat = (store.read_pandas("item_catalog").sort_values("day")
           .drop_duplicates("item_id", keep="last").dropna(subset=["artist_id"]))
    index = store.read_pandas("item_index").rename(columns={"id": "item_id", "idx": "item_idx"})
    joined = cat.merge(index, on="item_id")[["item_idx", "artist_id"]]
    return spark.createDataFrame(joined, "item_idx long, artist_id string")


def typed(name: str, value: str):
    kind = {f.name: f.type for f in fields(RadioParams)}[name]
    return float(value) if kind == "float" else int(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--set", nargs="*", default=[], help="field=v1,v2,...")
    ap.add_argument("--base", nargs="*", default=[], help="field=value")
    args = ap.parse_args()
    spark = spark_session("local")
    store = TableStore(os.path.abspath(args.data))
    with open(os.path.join(store.current_path("als_model"), "_manifest.json")) as fh:
        settings = json.load(fh)["params"]
    split = store.read(spark, "evaluation_split")
    train, valid = split["train"].persist(), split["validation"].persist()
    als = replace(ALSParams(**settings["als"]), engine="local")
    factors = fit_als(train, ConfidenceParams(**settings["confidence"]), als)
    artists = item_artists(spark, store).persist()
    base = replace(RadioParams(), **{k: typed(k, v) for k, v in
                                     (kv.split("=", 1) for kv in args.base)})
    variants = [("defaults", base)] + [
        (f"{name}={value}", replace(base, **{name: typed(name, value)}))
        for spec in args.set for name, values in [spec.split("=", 1)]
        for value in values.split(",")]
    rows = []
    for label, params in variants:
        result = evaluate_similar_artists(
            ArtistEvaluationInputs(train, valid, artists, factors.item_factors), 10,
            Sampling(n_bootstrap=500, seed=0, max_users=0, knn_max_items_per_user=0), params)
        t = result.table.set_index(["model", "metric"])
        share = "radio_hit_share"
        diff = t.loc[("als_radio-seed_then_popular", share)]
        rows.append({"radio": label, "als": t.loc[("als_radio", share), "value"],
                     "baseline": t.loc[("seed_then_popular", share), "value"],
                     "difference": diff.value,
                     "interval": f"[{diff.ci_low:.4f}, {diff.ci_high:.4f}]",
                     "distinct_artists": t.loc[("als_radio", "distinct_artists"), "value"]})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()

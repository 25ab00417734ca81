"""The synthetic demo data's shape beside Last.fm HetRec 2011's (docs/data.md): songs per
artist, listeners per artist and its Gini, plays per (listener, item) pair relative to the
median. No Spark: the generator's days are made in this process.

    .venv/bin/python benchmarks/data_shape.py [--lastfm DIR] [--days 90]
"""

import argparse
import os
import time

import pandas as pd
from _common import DEFAULT_LASTFM

from recsys_dagster.ml.ingest import datagen
from recsys_dagster.ml.ingest.data_shape import shape


def synthetic(days: int) -> tuple[dict, float]:
    spec = datagen.SyntheticSpec()
    t0 = time.perf_counter()
    plays = pd.concat([datagen.generate(spec, c, 0, days - 1)
                       for c in range(datagen.n_chunks(spec))])
    seconds = time.perf_counter() - t0
    pairs = plays.groupby(["user_id", "item_id"], as_index=False).plays.sum()
    cat = datagen.catalogue_frame(spec).set_index("item_id").artist_id
    return shape(pairs, cat), seconds


def lastfm(folder: str) -> dict:
    ua = pd.read_csv(os.path.join(folder, "user_artists.dat"), sep="\t")
    pairs = ua.rename(columns={"userID": "user_id", "artistID": "item_id", "weight": "plays"})
    items = pairs.item_id.drop_duplicates()
    return shape(pairs, pd.Series(items.values, index=items.values))  # items are artists


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lastfm", default=DEFAULT_LASTFM)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    ours, seconds = synthetic(args.days)
    theirs = lastfm(args.lastfm) if os.path.exists(args.lastfm) else {}
    print(f"synthetic default spec, {args.days} days, generated in {seconds:.2f} s")
    print("| measure | synthetic (make demo) | Last.fm HetRec 2011 |\n|---|---|---|")
    for key, value in ours.items():
        # Last.fm's items are artists: songs per artist says nothing there.
        other = theirs.get(key) if not key.startswith(("songs_per", "largest")) else None
        print(f"| {key} | {fmt(value)} | {fmt(other) if other is not None else 'n/a'} |")


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()

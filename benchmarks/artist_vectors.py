"""How to make similar artists from song-level factors, measured on held-out plays.

Reads a warehouse a pipeline run left (default ./data, e.g. after `make demo`) and scores, with
the pipeline's own held-out protocol (ml/evaluation/artist_evaluation.py: for listeners of an
artist in train + validation, the share of their new test artists its top-10 names), several
ways of making artist vectors and of ranking candidates:

    artist vectors: the play-weighted mean of the songs' unit vectors, or of the songs'
                    vectors (from evaluation_metrics' fit), or ALS fitted on the user x
                    artist matrix (summed plays, the model's own settings);
    ranking:        cosine, or affinity v_a/|v_a| . v_b (the seed's direction times the
                    candidate's vector, as ALS scores items for a user).

Each against the most popular artists, with 95% bootstrap intervals over listeners.

    .venv/bin/python benchmarks/artist_vectors.py [--data DIR]
"""

import numpy as np
from _common import run_warehouse

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.artist_model import artist_vectors
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.artist_evaluation import new_artist_recall, popular_lists
from recsys_dagster.ml.evaluation.evaluate import fit_als
from recsys_dagster.ml.evaluation.stats import bootstrap_ci
from recsys_dagster.ml.ids import factor_matrix
from recsys_dagster.ml.serving.topk import normalize_rows, top_k_rows

K = 10


def top_lists(queries: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """(n, K) best candidates of each query by dot product, itself left out, -1 padded."""
    n = queries.shape[0]
    lists = np.full((n, K), -1, dtype=np.int64)
    ids = np.arange(n, dtype=np.int64)
    for start in range(0, n, 1024):
        rows = ids[start:start + 1024]
        q, rank, c, _ = top_k_rows(rows, queries[rows], ids, cands, K, exclude_self=True)
        lists[q, rank - 1] = c
    return lists


def main() -> None:
    store, spark, split = run_warehouse()
    fit = split["train"].unionByName(split["validation"])
    fit_pd, held = fit.toPandas(), split["test"].toPandas()
    catalogue = (store.read_pandas("item_catalog").sort_values("day")
                 .drop_duplicates("item_id", keep="last").dropna(subset=["artist_id"]))
    index = store.read_pandas("item_index").merge(catalogue, left_on="id", right_on="item_id")
    artists = np.unique(index.artist_id.to_numpy(dtype=str))
    artist_of = np.full(int(store.read_pandas("item_index").idx.max()) + 1, -1)
    artist_of[index.idx.to_numpy()] = np.searchsorted(artists, index.artist_id.to_numpy(dtype=str))
    for frame in (fit_pd, held):
        frame["artist"] = artist_of[frame.item_idx.to_numpy()]
    fit_pd, held = fit_pd[fit_pd.artist >= 0], held[held.artist >= 0]
    train_ua = fit_pd[["user_idx", "artist"]].drop_duplicates().to_numpy(np.int64)
    held_ua = held[["user_idx", "artist"]].drop_duplicates().to_numpy(np.int64)

    item_ids, items = factor_matrix(store.read(spark, "evaluation_metrics")["fit_item_factors"])
    plays = fit_pd.groupby("item_idx").plays.sum()
    weights = np.zeros(item_ids.size)
    weights[np.searchsorted(item_ids, plays.index.to_numpy())] = plays.to_numpy()
    song_artist = artist_of[item_ids]
    has = song_artist >= 0
    n = artists.size
    unit_mean = artist_vectors(normalize_rows(items)[has], song_artist[has], weights[has], n)
    mean = artist_vectors(items[has], song_artist[has], weights[has], n)
    params = store.manifest("als_model")["params"]
    by_artist = (fit_pd.groupby(["user_idx", "artist"], as_index=False).plays.sum()
                 .rename(columns={"artist": "item_idx"}))
    fitted = fit_als(spark.createDataFrame(by_artist[["user_idx", "item_idx", "plays"]]),
                     ConfidenceParams(**params["confidence"]), ALSParams(**params["als"]))
    a_ids, a_mat = factor_matrix(fitted.item_factors)
    artist_als = np.zeros((n, a_mat.shape[1]), dtype=np.float32)
    artist_als[a_ids] = a_mat

    listeners = np.bincount(train_ua[:, 1], minlength=n)
    rows = [("most popular artists", popular_lists(listeners, K))]
    for name, vecs in (("mean of unit song vectors", unit_mean),
                       ("mean of song vectors", mean), ("ALS on user x artist", artist_als)):
        unit = normalize_rows(vecs)
        rows.append((f"{name}, cosine", top_lists(unit, unit)))
        rows.append((f"{name}, affinity", top_lists(unit, vecs)))
    print(f"{store.base_dir}: {n} artists, {train_ua.shape[0]} listener-artist pairs in fit, "
          f"new_artist_recall@{K} (95% CI):")
    for name, lists in rows:
        _, values = new_artist_recall(train_ua, held_ua, lists)
        mean_v, lo, hi = bootstrap_ci(values, 1000)
        print(f"  {name:42s} {mean_v:.4f} ({lo:.4f}-{hi:.4f})")


if __name__ == "__main__":
    main()

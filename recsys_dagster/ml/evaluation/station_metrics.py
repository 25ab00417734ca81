"""Held-out evaluation of artist radio: do a seed artist's listeners go on to play its station?

Stations are built from the factors fitted on train + validation (serving.stations). For a scored
listener u and every seed artist a that u played in the fit part, a's station S_a scores

- hit share: |S_a ∩ T(u)| / |S_a|, T(u) the songs of u's held-out plays;
- hit rate: whether S_a holds any song of T(u);

and u's value is the mean over those seeds (listeners who played no seed artist, or have no
held-out play, are not scored). Per station, over the seeds: distinct artists, intra-list
distance (mean 1 - cosine over its pairs of song vectors) and the share of popular songs (not
less played). The baseline station is the seed artist's most played songs, then the most
played songs overall (Johnson's talk: what a radio without a model plays).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..serving.stations import RadioCatalogue, RadioParams, station
from .stats import bootstrap_ci

MODELS = ("als_radio", "seed_then_popular")
HIT_SHARE = "radio_hit_share"
PER_USER = (HIT_SHARE, "radio_hit_rate")
PER_STATION = ("distinct_artists", "intra_list_distance", "popular_share")


def baseline_station(cat: RadioCatalogue, seed: int, length: int,
                     by_plays: np.ndarray) -> np.ndarray:
    """The seed artist's most played songs, then the most played others (`by_plays`: every
    song position, most played first)."""
    own = by_plays[cat.song_artist[by_plays] == seed][:length]
    rest = by_plays[cat.song_artist[by_plays] != seed][:max(0, length - own.size)]
    return np.concatenate([own, rest])


def station_matrix(lists: list[np.ndarray], length: int) -> np.ndarray:
    """(n_seeds, length) song positions, -1 where a station is shorter."""
    mat = np.full((len(lists), length), -1, dtype=np.int64)
    for row, songs in enumerate(lists):
        mat[row, :min(length, songs.size)] = songs[:length]
    return mat


def intra_list_distance(vecs: np.ndarray) -> float:
    """Mean 1 - cosine over the pairs of rows (0 for fewer than two rows)."""
    n = vecs.shape[0]
    if n < 2:
        return 0.0
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    u = np.divide(vecs, norms, out=np.zeros_like(vecs, dtype=np.float64), where=norms > 0)
    total = float(np.sum(u.sum(axis=0) ** 2)) - float(np.sum(u * u))
    return 1.0 - total / (n * (n - 1))


def per_station(cat: RadioCatalogue, mat: np.ndarray) -> dict[str, np.ndarray]:
    out = {name: np.zeros(mat.shape[0]) for name in PER_STATION}
    for row, songs in enumerate(mat):
        songs = songs[songs >= 0]
        if songs.size == 0:
            continue
        out["distinct_artists"][row] = np.unique(cat.song_artist[songs]).size
        out["intra_list_distance"][row] = intra_list_distance(cat.song_vecs[songs])
        out["popular_share"][row] = 1.0 - cat.less_played[songs].mean()
    return out


def per_user(cat: RadioCatalogue, mat: np.ndarray, seeds: np.ndarray, train_ua: np.ndarray,
             test_us: np.ndarray) -> dict[str, np.ndarray]:
    """Each scored listener's hit share and hit rate (the module's definitions). train_ua:
    (user, artist code) rows of the fit part; test_us: (user, song id) held-out rows."""
    row_of = np.full(cat.n_artists, -1, dtype=np.int64)
    row_of[seeds] = np.arange(seeds.size)
    code = np.int64(max(int(cat.song_ids.max(initial=0)), int(test_us[:, 1].max(initial=0))) + 1)
    test = np.unique(test_us[:, 0].astype(np.int64) * code + test_us[:, 1])
    pairs = np.unique(train_ua, axis=0) if train_ua.size else train_ua.reshape(0, 2)
    pairs = pairs[(row_of[pairs[:, 1]] >= 0) & np.isin(pairs[:, 0], np.unique(test // code))]
    if pairs.shape[0] == 0:
        return {name: np.zeros(0) for name in PER_USER}
    cand = mat[row_of[pairs[:, 1]]]
    ids = np.where(cand >= 0, cat.song_ids[np.maximum(cand, 0)], -1)
    hits = (np.isin(pairs[:, :1].astype(np.int64) * code + ids, test) & (cand >= 0)).sum(axis=1)
    sizes = np.maximum((cand >= 0).sum(axis=1), 1)
    users, pos = np.unique(pairs[:, 0], return_inverse=True)
    n = np.bincount(pos)
    return {HIT_SHARE: np.bincount(pos, weights=hits / sizes) / n,
            "radio_hit_rate": np.bincount(pos, weights=(hits > 0).astype(float)) / n}


def evaluate_radio(cat: RadioCatalogue, seeds: np.ndarray, params: RadioParams,
                   train_ua: np.ndarray, test_us: np.ndarray, n_boot: int, seed: int
                   ) -> tuple[pd.DataFrame, dict]:
    """Rows (model, metric, k = length, value, ci_low, ci_high) of both station kinds, plus
    the paired difference of the hit share; and counts."""
    by_plays = np.lexsort((cat.song_ids, -cat.plays))
    lists = {"als_radio": [station(cat, int(a), params)[0] for a in seeds],
             "seed_then_popular": [baseline_station(cat, int(a), params.length, by_plays)
                                   for a in seeds]}
    rows, hit_share = [], {}
    for model in MODELS:
        mat = station_matrix(lists[model], params.length)
        users = per_user(cat, mat, seeds, train_ua, test_us)
        hit_share[model] = users[HIT_SHARE]
        for name, values in {**users, **per_station(cat, mat)}.items():
            rows.append((model, name, params.length, *bootstrap_ci(values, n_boot, seed=seed)))
    rows.append(("als_radio-seed_then_popular", HIT_SHARE, params.length,
                 *bootstrap_ci(hit_share["als_radio"] - hit_share["seed_then_popular"], n_boot,
                               seed=seed)))
    counts = {"radio_stations": int(seeds.size),
              "radio_scored_listeners": int(hit_share["als_radio"].size)}
    return pd.DataFrame(rows, columns=["model", "metric", "k", "value", "ci_low", "ci_high"]), \
        counts

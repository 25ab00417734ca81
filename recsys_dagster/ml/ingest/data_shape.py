"""The shape of play data, measured the same way for the synthetic generator and for Last.fm
HetRec 2011: songs per artist, listeners per artist (and their Gini), plays per
(listener, item) pair relative to the median. docs/data.md puts them side by side;
tests/test_datagen.py keeps the generator's within stated bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd


def gini(values) -> float:
    """Gini coefficient of non-negative values (0: all equal, near 1: one holds everything)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def shape(pairs: pd.DataFrame, item_artist: pd.Series) -> dict:
    """pairs: user_id, item_id, plays (one row per pair); item_artist: item_id -> artist_id of
    the whole catalogue."""
    songs = item_artist.value_counts()
    played = pairs.assign(artist_id=pairs.item_id.map(item_artist))
    listeners = played.groupby("artist_id").user_id.nunique()
    plays = pairs.plays.to_numpy(dtype=float)
    median = float(np.median(plays))
    q = {p: float(np.quantile(plays, p / 100)) / median for p in (10, 25, 75, 90, 99)}
    return {
        "listeners": int(pairs.user_id.nunique()), "items": int(item_artist.size),
        "artists": int(songs.size), "pairs": int(len(pairs)),
        "items_per_listener_median": float(pairs.groupby("user_id").size().median()),
        "songs_per_artist_median": float(songs.median()),
        "songs_per_artist_p99": float(songs.quantile(0.99)),
        "largest_artist_share": float(songs.max() / item_artist.size),
        "listeners_per_artist_gini": gini(listeners),
        "listeners_per_artist_median": float(listeners.median()),
        "plays_per_pair_median": median,
        **{f"plays_per_pair_p{p}_over_median": v for p, v in q.items()},
    }

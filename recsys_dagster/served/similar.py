"""Similar artists and similar songs from the served tables (similar_artists, similar_items),
by name or id; unknown names get the closest ones. No Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import TableStore
from .model import ServedLookupError, closest, read_where, require


def _find(names: pd.Series, ids: pd.Series, wanted: str, what: str) -> str:
    """The id whose name is `wanted` (any case) or whose id is `wanted`."""
    hit = np.flatnonzero(names.fillna("").str.lower().to_numpy() == wanted.lower())
    if hit.size == 0:
        hit = np.flatnonzero(ids.astype(str).to_numpy() == wanted)
    if hit.size:
        return str(ids.iloc[hit[0]])
    raise ServedLookupError(f"no {what} {wanted!r}; closest: "
                            f"{closest(wanted, names.fillna(ids).unique())}")


def similar_artists(store: TableStore, artist: str, n: int) -> tuple[str, pd.DataFrame]:
    """(the artist's name, rank/similar_artist_name/score rows) of the served list."""
    path = require(store, "similar_artists")
    table = pd.read_parquet(path, columns=["artist_id", "artist_name"]).drop_duplicates()
    if table.empty:
        raise ServedLookupError("the served similar_artists is empty: the source names no "
                                "artist for its items")
    artist_id = _find(table.artist_name, table.artist_id, artist, "artist")
    rows = read_where(path, "artist_id", artist_id, ["artist_name", "rank", "similar_artist_id",
                                                     "similar_artist_name", "score"])
    rows = rows.sort_values("rank").head(n)
    name = rows.artist_name.iloc[0] if len(rows) and isinstance(rows.artist_name.iloc[0], str) \
        else artist_id
    rows = rows.assign(similar=rows.similar_artist_name.fillna(rows.similar_artist_id))
    return name, rows[["rank", "similar", "score"]].reset_index(drop=True)


def similar_songs(store: TableStore, song: str, n: int) -> tuple[str, pd.DataFrame]:
    """(the song's name, rank/similar/score rows) of the served similar_items list."""
    path = require(store, "similar_items")
    table = pd.read_parquet(path, columns=["item_id", "name"]).drop_duplicates("item_id")
    item_id = _find(table.name, table.item_id, song, "song")
    rows = read_where(path, "item_id", item_id, ["name", "rank", "similar_item_id",
                                                 "similar_name", "score"])
    rows = rows.sort_values("rank").head(n)
    name = rows.name.iloc[0] if len(rows) and isinstance(rows.name.iloc[0], str) else item_id
    rows = rows.assign(similar=rows.similar_name.fillna(rows.similar_item_id))
    return name, rows[["rank", "similar", "score"]].reset_index(drop=True)

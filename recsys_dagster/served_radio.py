"""A listener's own artist radio from the served tables alone: no retraining, no Spark.

artist_radio keeps the radio's catalogue next to its stations (frames songs and artists, with
their vectors, and the settings it was made with). A personalised station blends the
listener's vector from the served als_model with the seed artist's, leaves out every song the
listener played (the newest interactions) and follows the same rules (ml/serving/radio.py).
Names that match nothing get a clear message and the closest names.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ml.serving.radio import RadioCatalogue, RadioParams, station
from .tables import TableStore

RADIO_TABLE = "artist_radio"


class RadioLookupError(LookupError):
    """An artist or listener the served tables do not know; the message says what to try."""


def _closest(wanted: str, names, n: int = 5) -> str:
    names = [str(x) for x in names if isinstance(x, str) or pd.notna(x)]
    close = difflib.get_close_matches(wanted, names, n=n, cutoff=0.5)
    if not close:  # names that contain it, case-insensitively
        close = [x for x in names if wanted.lower() in x.lower()][:n]
    return ", ".join(close) if close else "none close"


def _read_where(path: str, column: str, value, columns: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns, filters=[(column, "=", value)]).to_pandas()


def _matrix(column: pd.Series) -> np.ndarray:
    if len(column) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(column.to_numpy()).astype(np.float32)


@dataclass
class ServedRadio:
    """The served radio catalogue of one warehouse."""

    store: TableStore
    songs: pd.DataFrame
    artists: pd.DataFrame
    params: RadioParams
    model_version: str | None
    items_are_artists: bool
    cat: RadioCatalogue

    @classmethod
    def load(cls, store: TableStore) -> ServedRadio:
        if not store.exists(RADIO_TABLE):
            raise RadioLookupError(
                f"no artist_radio under {store.base_dir}: run the pipeline first "
                "(make demo, or materialise artist_radio in the UI)")
        manifest = store.manifest(RADIO_TABLE)["params"]
        artists = (store.read_pandas(RADIO_TABLE, frame="artists").sort_values("artist_id")
                   .reset_index(drop=True))
        songs = store.read_pandas(RADIO_TABLE, frame="songs").sort_values("item_idx")
        codes = np.searchsorted(artists.artist_id.to_numpy(dtype=str),
                                songs.artist_id.to_numpy(dtype=str))
        cat = RadioCatalogue.build(songs.item_idx.to_numpy(), _matrix(songs.features), codes,
                                   songs.plays.to_numpy(), len(artists),
                                   _matrix(artists.features))
        return cls(store, songs.reset_index(drop=True), artists, RadioParams(**manifest["radio"]),
                   manifest.get("model_version"), bool(manifest.get("items_are_artists")), cat)

    def labels(self) -> pd.Series:
        """Every artist's name (its id where it has none), in code order."""
        return self.artists.artist_name.fillna(self.artists.artist_id)

    def artist(self, name: str) -> int:
        """The code of the artist called `name` (its name, in any case, or its id)."""
        labels = self.labels()
        hit = np.flatnonzero(labels.str.lower().to_numpy() == name.lower())
        if hit.size == 0:
            hit = np.flatnonzero(self.artists.artist_id.to_numpy() == name)
        if hit.size:
            return int(hit[0])
        if self.artists.empty:
            raise RadioLookupError("the served radio has no artists: the source names none")
        raise RadioLookupError(f"no artist {name!r} in the served radio; closest: "
                               f"{_closest(name, labels)}")

    def listener(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(vector, ids of the songs played) of a listener of the served model."""
        store = self.store
        if store.version("als_model") != self.model_version:
            raise RadioLookupError(
                "the current als_model is not the one artist_radio was made from (a retrain "
                "whose gates failed?): run retrain_and_publish, then ask again")
        index = store.current_path("user_index")
        row = _read_where(index, "id", str(user_id), ["id", "idx"])  # one row, not the index
        if row.empty:
            ids = store.read_pandas("user_index").id.astype(str).tolist()
            raise RadioLookupError(f"no listener {user_id!r}; closest ids: "
                                   f"{_closest(str(user_id), ids)}")
        idx = int(row.idx.iloc[0])
        vec = _read_where(os.path.join(store.current_path("als_model"), "user_factors"),
                          "idx", idx, ["idx", "features"])
        if vec.empty:
            raise RadioLookupError(
                f"listener {user_id!r} arrived after the served model was trained: the next "
                "retrain gives them a station of their own (an artist's station needs no --user)")
        days = store.partitions("interactions")
        played = (_read_where(store.current_path("interactions", days[-1]), "user_idx", idx,
                              ["user_idx", "item_idx"]).item_idx.to_numpy(dtype=np.int64)
                  if days else np.zeros(0, dtype=np.int64))
        return np.asarray(vec.features.iloc[0], dtype=np.float32), played

    def station(self, artist: str, user: str | None = None,
                length: int | None = None) -> pd.DataFrame:
        """(position, name, artist_name, score, item_id) of artist's station, or the
        listener's own one."""
        code = self.artist(artist)
        params = self.params if length is None else RadioParams(
            **{**self.params.__dict__, "length": length})
        user_vec, played = self.listener(user) if user is not None else (None, None)
        songs, scores = station(self.cat, code, params, user_vec=user_vec, exclude=played)
        rows = self.songs.iloc[songs]
        return pd.DataFrame({"position": np.arange(1, len(rows) + 1),
                             "name": rows.name.fillna(rows.item_id).to_numpy(),
                             "artist_name": self.labels().to_numpy()[self.cat.song_artist[songs]],
                             "score": scores, "item_id": rows.item_id.to_numpy()})


def _song(name: str, artist: str) -> str:
    """'artist - name', unless the song's name already says who it is by."""
    return str(name) if str(artist) in str(name) else f"{artist} - {name}"


def format_station(table: pd.DataFrame, title: str) -> str:
    lines = [f"{title} ({len(table)} songs, {table.artist_name.nunique()} artists):"]
    lines += [f"  {r.position:2d}. {_song(r.name, r.artist_name)} ({r.score:.2f})"
              for r in table.itertuples()]
    return "\n".join(lines)

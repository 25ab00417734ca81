"""A listener's own artist radio from the served tables alone: no retraining, no Spark.

artist_radio keeps the radio's catalogue next to its stations (frames songs and artists, with
their vectors, and the settings it was made with). A personalised station blends the
listener's vector from the served als_model (the version the stations were made from,
pinned while served) with the seed artist's, leaves out every song the
listener played (the newest interactions) and follows the same rules (ml/serving/stations.py).
Names that match nothing get a clear message and the closest names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ml.serving.stations import RadioCatalogue, RadioParams, station
from ..tables import TableStore
from .model import ServedLookupError, closest, matrix, read_where

RADIO_TABLE = "artist_radio"
RadioLookupError = ServedLookupError  # the name the radio's callers know


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
        cat = RadioCatalogue.build(songs.item_idx.to_numpy(), matrix(songs.features), codes,
                                   songs.plays.to_numpy(), len(artists),
                                   matrix(artists.features))
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
                               f"{closest(name, labels)}")

    def listener(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(vector, ids of the songs played) of a listener of the served model."""
        store = self.store
        model = os.path.join(store.table_dir("als_model"), str(self.model_version))
        if self.model_version not in store.versions("als_model"):
            raise RadioLookupError(
                f"the model artist_radio was made from ({self.model_version}) is no longer "
                "kept: run retrain_and_publish, then ask again")
        index = store.current_path("user_index")
        row = read_where(index, "id", str(user_id), ["id", "idx"])  # one row, not the index
        if row.empty:
            ids = store.read_pandas("user_index").id.astype(str).tolist()
            raise RadioLookupError(f"no listener {user_id!r}; closest ids: "
                                   f"{closest(str(user_id), ids)}")
        idx = int(row.idx.iloc[0])
        vec = read_where(os.path.join(model, "user_factors"), "idx", idx, ["idx", "features"])
        if vec.empty:
            raise RadioLookupError(
                f"listener {user_id!r} arrived after the served model was trained: the next "
                "retrain gives them a station of their own (an artist's station needs no --user)")
        days = store.partitions("interactions")
        played = (read_where(store.current_path("interactions", days[-1]), "user_idx", idx,
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

"""The model a warehouse serves, read without Spark: the als_model version the gates published
(the served_model record of user_recommendations, pinned so it is kept while served), not the
newest trained one; its item factors, settings, the listeners and plays it was trained on, and
the catalogue's names. What the command line's products read.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..ml.als.confidence import ConfidenceParams, confidence_values
from ..tables import TableStore
from .catalogue import newest_catalogue

SERVED_TABLE = "user_recommendations"
RECORD = "served_model"
MAKES = "make demo, or retrain_and_publish in the UI"


class ServedLookupError(LookupError):
    """What the served tables do not hold; the message says what to try instead."""


def closest(wanted: str, names, n: int = 5) -> str:
    """The names most like `wanted`, for a message."""
    names = [str(x) for x in names if isinstance(x, str) or pd.notna(x)]
    close = difflib.get_close_matches(wanted, names, n=n, cutoff=0.5)
    if not close:  # names that contain it, case-insensitively
        close = [x for x in names if wanted.lower() in x.lower()][:n]
    return ", ".join(close) if close else "none close"


def read_where(path: str, column: str, value, columns: list[str]) -> pd.DataFrame:
    """The rows of a Parquet table where column == value (a filter, not the whole table)."""
    return pq.read_table(path, columns=columns, filters=[(column, "=", value)]).to_pandas()


def matrix(column: pd.Series) -> np.ndarray:
    if len(column) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(column.to_numpy()).astype(np.float32)


def require(store: TableStore, table: str) -> str:
    """The current folder of a served table, or an error naming what makes it."""
    path = store.current_path(table)
    if path is None:
        raise ServedLookupError(f"no {table} under {store.base_dir}: run the pipeline first "
                                f"({MAKES})")
    return path


@dataclass
class ServedModel:
    store: TableStore
    version: str  # the als_model version folder being served

    @classmethod
    def load(cls, store: TableStore) -> ServedModel:
        require(store, SERVED_TABLE)
        version = store.manifest(SERVED_TABLE).get(RECORD, {}).get("model_version")
        if not version or version not in store.versions("als_model"):
            raise ServedLookupError(f"the served model's factors are not under {store.base_dir}"
                                    f" (als_model {version}): retrain ({MAKES})")
        return cls(store, version)

    @property
    def folder(self) -> str:
        return os.path.join(self.store.table_dir("als_model"), self.version)

    @cached_property
    def params(self) -> dict:
        import json

        with open(os.path.join(self.folder, "_manifest.json"), encoding="utf-8") as fh:
            return json.load(fh)["params"]

    @cached_property
    def items(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item_idx ascending, factors, YᵀY in float64)."""
        table = pq.read_table(os.path.join(self.folder, "item_factors")).to_pandas()
        table = table.sort_values("idx")
        y = matrix(table.features)
        return table.idx.to_numpy(dtype=np.int64), y, y.astype(np.float64).T @ y

    @cached_property
    def item_index(self) -> pd.Series:
        """item_id -> item_idx."""
        index = self.store.read_pandas("item_index")
        return index.set_index("id").idx

    @cached_property
    def item_ids(self) -> pd.Series:
        """item_idx -> item_id."""
        return pd.Series(self.item_index.index.to_numpy(), index=self.item_index.to_numpy())

    @cached_property
    def catalogue(self) -> pd.DataFrame:
        """item_id -> name, artist_name (the newest delivery of each), for every item."""
        return newest_catalogue(self.store, columns=("name", "artist_name")).set_index("item_id")

    def label(self, item_id: str) -> str:
        """A song's name ("Artist - Title" when the name does not say it), else its id."""
        if item_id not in self.catalogue.index:
            return str(item_id)
        name, artist = self.catalogue.loc[item_id, ["name", "artist_name"]]
        if not isinstance(name, str):
            return str(item_id)
        if isinstance(artist, str) and artist not in name:
            return f"{artist} - {name}"
        return name

    @property
    def as_of(self) -> str | None:
        return self.params.get("data", {}).get("as_of")

    def confidence(self) -> ConfidenceParams:
        return ConfidenceParams(**self.params["confidence"])

    def regularisation(self) -> tuple[float, bool, float]:
        als = self.params["als"]
        return als["reg_param"], als["scale_reg"], als.get("reg_exponent", 1.0)

    def plays_of(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """(item_idx, confidence) of a listener's plays as the model was trained on them (the
        interactions of its as-of day, weighted by its confidence settings)."""
        days = self.store.partitions("interactions")
        day = self.as_of if self.as_of in days else (days[-1] if days else None)
        if day is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        path = self.store.current_path("interactions", day)
        weighting = self.confidence()
        if weighting.weighting == "bm25":  # idf and lengths are over every listener
            table = pq.read_table(path, columns=["user_idx", "item_idx", "plays"]).to_pandas()
            conf = confidence_values(table.user_idx.to_numpy(), table.item_idx.to_numpy(),
                                     table.plays.to_numpy(), weighting)
            mine = table.user_idx.to_numpy() == user_idx
            return table.item_idx.to_numpy(dtype=np.int64)[mine], conf[mine]
        rows = read_where(path, "user_idx", user_idx, ["user_idx", "item_idx", "plays"])
        conf = confidence_values(rows.user_idx.to_numpy(), rows.item_idx.to_numpy(),
                                 rows.plays.to_numpy(), weighting)
        return rows.item_idx.to_numpy(dtype=np.int64), conf

"""The item catalogue and the play counts as the command line reads them, without Spark:
memory in proportion to what is asked (the items asked for, a day of the catalogue at a time,
one play total per item), never to the whole play log, which at volume is gigabytes in pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow.acero as ac
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..tables import TableStore

CATALOGUE = "item_catalog"
NAME_COLUMNS = ("item_id", "name", "artist_id", "artist_name")


def _days(store: TableStore, table: str) -> list[str | None]:
    """A table's stored days, oldest first ([None]: an unpartitioned table)."""
    days = store.partitions(table)
    return days or ([None] if store.exists(table) else [])


def newest_catalogue(store: TableStore, item_ids: Iterable | None = None,
                     columns: Sequence[str] = NAME_COLUMNS) -> pd.DataFrame:
    """The newest delivered row of each item (only those of `item_ids`, when given): item_id
    and `columns` (null where the catalogue lacks one). Read from the newest day back; with
    `item_ids`, only their rows, stopping once every one is found."""
    wanted = None if item_ids is None else {str(i) for i in item_ids}
    found, seen = [], set()
    for day in reversed(_days(store, CATALOGUE)):
        if wanted is not None and wanted <= seen:
            break
        data = ds.dataset(store.current_path(CATALOGUE, day), format="parquet")
        present = [c for c in ("item_id", *columns) if c in data.schema.names]
        if "item_id" not in present:
            continue
        todo = None if wanted is None else sorted(wanted - seen)
        rows = data.to_table(columns=list(dict.fromkeys(present)),
                             filter=None if todo is None else pc.field("item_id").isin(todo))
        frame = rows.to_pandas()
        frame = frame[~frame.item_id.isin(seen)].drop_duplicates("item_id")
        seen.update(frame.item_id)
        found.append(frame)
    out = (pd.concat(found, ignore_index=True) if found
           else pd.DataFrame({"item_id": pd.Series(dtype=object)}))
    for column in columns:
        if column not in out:
            out[column] = None
    return out[list(dict.fromkeys(("item_id", *columns)))]


def plays_per_item(store: TableStore) -> pd.Series:
    """item_id -> the sum of its plays over every stored day of play_events: one streaming
    aggregation over the days' two columns (Arrow's Acero), holding one total per item."""
    days = _days(store, "play_events")
    if not days:
        return pd.Series(dtype="int64")
    data = ds.dataset([ds.dataset(store.current_path("play_events", day), format="parquet")
                       for day in days])
    sums = ac.Declaration.from_sequence([
        ac.Declaration("scan", ac.ScanNodeOptions(data, columns=["item_id", "plays"])),
        ac.Declaration("aggregate", ac.AggregateNodeOptions(
            [("plays", "hash_sum", None, "plays")], keys=["item_id"])),
    ]).to_table().to_pandas()
    return sums.set_index("item_id").plays.astype("int64")

"""Day-one operations on a warehouse, without Spark: roll the served tables back to the model
served before the current one, and forget a listener. The command line (`cli rollback`,
`cli forget`) and the jobs of the same names (jobs.py, queued like every run that writes the
warehouse) call these. No Dagster import.

Rollback works from pins (tables.TableStore.pin): every served table version is pinned under
the model it was made from, and the als_model versions of the last two served models are
pinned, so the previous model and its tables are on disk whatever the retention.

Forgetting a listener rewrites, in every kept version of every table that holds listeners,
the Parquet files that hold their rows, without those rows (each file replaced atomically),
and appends a record of what was erased and when to _erasures/erasures.jsonl.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .tables import MANIFEST, TableStore

SERVED_TABLES = ("user_recommendations", "similar_items", "similar_artists", "artist_radio")
MODEL = "als_model"
RECORD = "served_model"
OPERATIONS_LOG = os.path.join("_operations", "operations.jsonl")
ERASURES_LOG = os.path.join("_erasures", "erasures.jsonl")
# Where a listener's rows are: table -> [(frame or None, column, key)]; key "id" matches the
# listener's id, "idx" their dense index.
LISTENER_COLUMNS = {
    "play_events": [(None, "user_id", "id")],
    "play_events_quarantine": [(None, "user_id", "id")],
    "user_index": [(None, "id", "id")],
    "interactions": [(None, "user_idx", "idx")],
    "confidence_matrix": [("matrix", "user_idx", "idx")],
    "evaluation_split": [(f, "user_idx", "idx") for f in ("train", "validation", "test")],
    "als_model": [("user_factors", "idx", "idx")],
    "evaluation_metrics": [("per_user", "user_idx", "idx")],
    "user_recommendations": [(None, "user_id", "id")],
}


class OperationError(RuntimeError):
    pass


def _log(store: TableStore, relative: str, record: dict) -> dict:
    record = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **record}
    path = os.path.join(store.base_dir, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    return record


def served_models(store: TableStore) -> list[str]:
    """The served model versions that are kept, oldest first (the last is being served)."""
    if not store.exists("user_recommendations"):
        return []
    current = store.manifest("user_recommendations").get(RECORD, {}).get("model_version")
    tags = [p["tag"] for p in store.pins("user_recommendations")]
    return [t for t in tags if t != current] + ([current] if current else [])


def rollback(store: TableStore) -> dict:
    """Serve the model served before the current one again: als_model and each served table
    swapped back to their pinned versions of that model. Returns what was done."""
    models = served_models(store)
    if len(models) < 2:
        raise OperationError(f"no earlier served model under {store.base_dir} to roll back to "
                             f"(served models kept: {models or 'none'})")
    current, previous = models[-1], models[-2]
    if previous not in store.versions(MODEL):
        raise OperationError(f"the previously served als_model {previous} is not on disk")
    swapped, missing = {}, []
    for table in SERVED_TABLES:
        version = next((p["version"] for p in store.pins(table) if p["tag"] == previous), None)
        if version is None or version not in store.versions(table):
            missing.append(table)
            continue
        store.swap_to(table, version)
        swapped[table] = version
    store.swap_to(MODEL, previous)
    return _log(store, OPERATIONS_LOG, {
        "operation": "rollback", "from_model": current, "to_model": previous,
        "tables": swapped, "not_rolled_back": missing})


def _frame_paths(version_dir: str, frame: str | None) -> list[str]:
    folder = os.path.join(version_dir, frame) if frame else version_dir
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.endswith(".parquet") and not f.startswith((".", "_")))


def _version_dirs(store: TableStore, table: str) -> list[str]:
    """Every kept version folder of a table, of every day partition too."""
    parts = [None, *store.partitions(table)]
    out = []
    for part in parts:
        tdir = store.table_dir(table, part)
        out += [os.path.join(tdir, v) for v in store.versions(table, part)]
    return out


def _without(path: str, column: str, value) -> int:
    """Rewrite one Parquet file without the rows where column == value; rows removed."""
    table = pq.read_table(path)
    if column not in table.column_names:
        return 0
    hit = pc.equal(table[column], value)
    n = int(pc.sum(hit).as_py() or 0)
    if n:
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".erase-{uuid.uuid4().hex[:8]}.parquet")
        # As Spark writes timestamps (INT96; pyarrow's own nanoseconds Spark cannot read), and
        # without the checksum Spark's writer left beside the file, which no longer matches it
        # (a reader with a stale one fails; without one it reads the file unchecked).
        pq.write_table(table.filter(pc.invert(hit)), tmp, use_deprecated_int96_timestamps=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, f".{name}.crc"))
        os.replace(tmp, path)
    return n


def listener_indexes(store: TableStore, user_id: str) -> set[int]:
    """Every dense index the listener has had in any kept version of user_index."""
    found = set()
    for vdir in _version_dirs(store, "user_index"):
        for path in _frame_paths(vdir, None):
            t = pq.read_table(path, columns=["id", "idx"])
            found |= {int(i) for i in t.filter(pc.equal(t["id"], user_id))["idx"].to_pylist()}
    return found


def forget_listener(store: TableStore, user_id: str) -> dict:
    """Remove the listener's plays, factors and served rows from every kept version of every
    table, and the Spark checkpoints (which may hold factors); record what was erased."""
    indexes = listener_indexes(store, user_id)
    removed: dict[str, int] = {}
    for table, places in LISTENER_COLUMNS.items():
        for vdir in _version_dirs(store, table):
            if not os.path.exists(os.path.join(vdir, MANIFEST)):
                continue
            for frame, column, key in places:
                values = [user_id] if key == "id" else sorted(indexes)
                for path in _frame_paths(vdir, frame):
                    for value in values:
                        n = _without(path, column, value)
                        if n:
                            removed[table] = removed.get(table, 0) + n
    checkpoints = os.path.join(store.base_dir, "_spark_checkpoints")
    if os.path.isdir(checkpoints):
        shutil.rmtree(checkpoints, ignore_errors=True)
    if not removed and not indexes:
        raise OperationError(f"no listener {user_id!r} under {store.base_dir}")
    return _log(store, ERASURES_LOG, {"operation": "forget_listener", "user_id": user_id,
                                      "user_idx": sorted(indexes), "rows_removed": removed,
                                      "checkpoints_removed": True})

"""Versioned Parquet tables on a local or shared file system, swapped in atomically.

Layout under the base directory, one folder per asset (and per partition):

    <base>/<asset>/[<partition>/]v-<utc stamp>-<token>/   a complete Parquet table (or a set)
    <base>/<asset>/[<partition>/]current -> v-...           symlink to the last good version

A table is written into a fresh version folder, together with a `_manifest.json`; only when
the write has finished is the `current` symlink replaced, with one atomic rename. A process
killed half-way leaves `current` pointing at the previous good table; the stray folder is
removed by the next successful write (a day-partitioned write's `.staging-*` folder, by the
next write of that table once its writer is gone). No Dagster import here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MANIFEST = "_manifest.json"
CURRENT = "current"
KEEP_VERSIONS = 2
RUN_ID = "run_id"  # the manifest entry naming the run that wrote a version
# The manifest entry with the Spark schema a version was written with (a TableSet's: one per
# frame). A read passes it to Spark, which otherwise runs a job to read the schema from the
# files' footers on every read; a version written without one is read by inference.
SCHEMA = "spark_schema"
PINS = "_pins.json"
PINNED_TAGS = 2  # the served model and the one served before it
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.=-]+$")


STAGING_PREFIX = ".staging-"
# A staging folder of another machine (a shared file system) is stale after this long.
FOREIGN_STAGING_MAX_AGE_S = 24 * 3600


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())


def staging_name() -> str:
    """.staging-<host>-<pid>-<token>: who is writing it, so that a later write can tell a
    folder left by a killed process from one being written right now."""
    return f"{STAGING_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_staging(tdir: str) -> list[str]:
    """Remove the staging folders under tdir whose writer is gone: on this host, a process
    that no longer runs; on another host (or an unnamed folder), older than
    FOREIGN_STAGING_MAX_AGE_S. Returns what was removed."""
    if not os.path.isdir(tdir):
        return []
    now, host, removed = time.time(), _host(), []
    for entry in os.listdir(tdir):
        if not entry.startswith(STAGING_PREFIX):
            continue
        path = os.path.join(tdir, entry)
        parts = entry[len(STAGING_PREFIX):].rsplit("-", 2)
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            stale = not _alive(int(parts[1]))
        else:
            try:
                stale = now - os.stat(path).st_mtime > FOREIGN_STAGING_MAX_AGE_S
            except FileNotFoundError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(entry)
    return removed


def _schema_of(frame) -> dict:
    """A Spark DataFrame's schema as JSON (for the manifest)."""
    return json.loads(frame.schema.json())


def _read_parquet(spark, paths: list[str], schema: dict | None):
    """Spark's reader of Parquet folders, given the schema they were written with when known
    (Spark makes a file source's columns nullable, given or inferred: the frame is the one
    inference would give, without its job)."""
    if schema is None:
        return spark.read.parquet(*paths)
    from pyspark.sql.types import StructType

    return spark.read.schema(StructType.fromJson(schema)).parquet(*paths)


class LazyFrames(Mapping):
    """The frames of a stored TableSet, each read when first asked for: a reader that needs
    only the params (or one frame) never makes Spark read the others' schemas."""

    def __init__(self, names: list[str], load: Callable[[str], Any]):
        self._names, self._load, self._loaded = list(names), load, {}

    def __getitem__(self, name: str):
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class TableSet:
    """Several named DataFrames stored (and loaded) together, plus the params that made them
    and small files (plots) kept next to the tables. A TableSet read from the store also says
    which version it is and which run wrote it."""

    frames: Mapping[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    pin: str | None = None  # as Table.pin
    version: str | None = None  # the version folder read (TableStore.version)
    run_id: str | None = None  # the run that wrote it, when the writer said (RUN_ID)

    def __getitem__(self, name: str):
        return self.frames[name]


@dataclass(frozen=True)
class Table:
    """One DataFrame stored with entries of its own in its manifest: they are swapped in (and
    out) with the table, so they always describe the version being read. With a `pin` tag the
    version is kept from pruning as the newest version of that tag (TableStore.pin)."""

    frame: Any
    manifest: dict[str, Any] = field(default_factory=dict)
    pin: str | None = None


class TableStore:
    """Reads and writes versioned tables below one base directory."""

    def __init__(self, base_dir: str):
        self.base_dir = os.path.abspath(base_dir)

    # ---- paths -------------------------------------------------------------------------
    def table_dir(self, name: str, partition: str | None = None) -> str:
        parts = [name] + ([partition] if partition else [])
        for part in parts:
            if not _SAFE_PART.match(part) or part in {".", ".."}:
                raise ValueError(f"unsafe table path component {part!r}")
        path = os.path.abspath(os.path.join(self.base_dir, *parts))
        if os.path.commonpath([path, self.base_dir]) != self.base_dir:
            raise ValueError(f"table path {path} escapes the base directory {self.base_dir}")
        return path

    def current_path(self, name: str, partition: str | None = None) -> str | None:
        """The folder of the current version, or None when the table was never written."""
        link = os.path.join(self.table_dir(name, partition), CURRENT)
        if not os.path.islink(link):
            return None
        target = os.path.realpath(link)
        return target if os.path.exists(os.path.join(target, MANIFEST)) else None

    def version(self, name: str, partition: str | None = None) -> str | None:
        """The name of the current version folder (unique per write), or None."""
        path = self.current_path(name, partition)
        return os.path.basename(path) if path else None

    def exists(self, name: str, partition: str | None = None) -> bool:
        return self.current_path(name, partition) is not None

    def manifest(self, name: str, partition: str | None = None) -> dict[str, Any]:
        path = self.current_path(name, partition)
        if path is None:
            raise FileNotFoundError(
                f"table {name!r}{f' partition {partition}' if partition else ''} has never "
                f"been written under {self.base_dir}"
            )
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as fh:
            return json.load(fh)

    # ---- writing -----------------------------------------------------------------------
    def write(self, name: str, value, partition: str | None = None,
              extra: dict[str, Any] | None = None) -> str:
        """Write a Spark DataFrame, a Table or a TableSet as a new version; return its folder.
        `extra` entries (and a Table's own) go into the manifest, so they are swapped in (and
        out) with the table."""
        pin = value.pin if isinstance(value, (Table, TableSet)) else None
        if isinstance(value, Table):
            value, extra = value.frame, {**value.manifest, **(extra or {})}
        tdir = self.table_dir(name, partition)
        os.makedirs(tdir, exist_ok=True)
        vdir = os.path.join(tdir, self._version_name())
        if isinstance(value, TableSet):
            schemas = {}
            for frame_name, frame in value.frames.items():
                frame.write.parquet(os.path.join(vdir, frame_name))
                schemas[frame_name] = _schema_of(frame)
            os.makedirs(vdir, exist_ok=True)
            for file_name, data in value.files.items():
                if not _SAFE_PART.match(file_name):
                    raise ValueError(f"unsafe file name {file_name!r}")
                with open(os.path.join(vdir, file_name), "wb") as fh:
                    fh.write(data)
            manifest = {"kind": "tableset", "frames": sorted(value.frames), "params": value.params,
                        "files": sorted(value.files), SCHEMA: schemas}
        else:
            value.write.parquet(vdir)
            manifest = {"kind": "dataframe", SCHEMA: _schema_of(value)}
        manifest.update(extra or {})
        if pin is not None:  # pinned before the swap: pruning never sees it unpinned
            self.pin(name, os.path.basename(vdir), pin, partition)
        self._finish(tdir, vdir, manifest)
        return vdir

    def write_days(self, name: str, frame, days: list[str], column: str = "day") -> list[str]:
        """Write one DataFrame that spans several day partitions as one version per day.

        One Spark job writes every day (partitionBy into a staging folder); each day's folder
        is then moved into place as a new version and swapped in on its own. A day without
        rows gets an empty table, so a re-delivered day that lost its plays is emptied too.
        Several days' rows are shuffled by day first, so that each day is one file written by
        one task: left as they came, every task writes a file into every day (16 generator
        tasks and 90 days: 1,440 small files), which costs more to write, and to read, than
        the shuffle (benchmarks/README.md, "Before the factors"). One day's rows are written
        as they came, by every task at once (a daily delivery is not funnelled into one task).
        """
        tdir = self.table_dir(name)
        for day in days:
            self.table_dir(name, day)  # validates every key before anything is written
        sweep_staging(tdir)
        staging = os.path.join(tdir, staging_name())
        part = "_partition_day"
        tagged = frame.withColumn(part, frame[column].cast("string"))
        if len(days) > 1:
            tagged = tagged.repartition(part)
        tagged.write.partitionBy(part).parquet(staging)
        written, schema = [], _schema_of(frame)
        try:
            extra = sorted(d.split("=", 1)[1] for d in os.listdir(staging)
                           if d.startswith(f"{part}=") and d.split("=", 1)[1] not in set(days))
            if extra:
                raise ValueError(f"{name}: rows for days outside the run's range: {extra[:5]}")
            empty = os.path.join(staging, "_empty")
            for day in days:
                src = os.path.join(staging, f"{part}={day}")
                if not os.path.isdir(src):  # no rows that day: a copy of one empty table
                    if not os.path.isdir(empty):
                        frame.limit(0).write.parquet(empty)
                    shutil.copytree(empty, src)
                written.append(self._adopt(name, day, src, schema))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return written

    def _adopt(self, name: str, partition: str, folder: str, schema: dict) -> str:
        """Move a finished Parquet folder in as the new version of a partition."""
        tdir = self.table_dir(name, partition)
        os.makedirs(tdir, exist_ok=True)
        vdir = os.path.join(tdir, self._version_name())
        os.replace(folder, vdir)
        self._finish(tdir, vdir, {"kind": "dataframe", SCHEMA: schema})
        return vdir

    @staticmethod
    def _version_name() -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        return f"v-{stamp}-{uuid.uuid4().hex[:8]}"

    def _finish(self, tdir: str, vdir: str, manifest: dict) -> None:
        manifest["written_at"] = os.path.basename(vdir).split("-")[1]
        with open(os.path.join(vdir, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        self._swap_current(tdir, vdir)
        self._prune(tdir, keep=os.path.basename(vdir))

    @staticmethod
    def _swap_current(tdir: str, vdir: str) -> None:
        tmp_link = os.path.join(tdir, f".current-{uuid.uuid4().hex[:8]}")
        os.symlink(os.path.basename(vdir), tmp_link)
        os.replace(tmp_link, os.path.join(tdir, CURRENT))  # atomic on POSIX

    # ---- pins: versions kept whatever the retention ---------------------------------------
    def pins(self, name: str, partition: str | None = None) -> list[dict[str, str]]:
        """The pinned versions of a table, oldest first: [{"version", "tag"}, ...]."""
        path = os.path.join(self.table_dir(name, partition), PINS)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def pin(self, name: str, version: str, tag: str, partition: str | None = None,
            keep: int = PINNED_TAGS) -> None:
        """Keep `version` from pruning as the newest version tagged `tag` (a served model's
        version: the served tables made from it). Only the newest `keep` tags stay pinned,
        so the served model and the one before it (what a rollback returns to) are kept."""
        tdir = self.table_dir(name, partition)
        os.makedirs(tdir, exist_ok=True)
        pins = [p for p in self.pins(name, partition) if p["tag"] != tag]
        pins = [*pins, {"version": version, "tag": tag}][-keep:]
        tmp = os.path.join(tdir, f".pins-{uuid.uuid4().hex[:8]}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(pins, fh, indent=2)
        os.replace(tmp, os.path.join(tdir, PINS))

    def swap_to(self, name: str, version: str, partition: str | None = None) -> None:
        """Make a kept version the current one again (atomically)."""
        tdir = self.table_dir(name, partition)
        if not os.path.exists(os.path.join(tdir, version, MANIFEST)):
            raise FileNotFoundError(f"{name} has no complete version {version} under {tdir}")
        self._swap_current(tdir, os.path.join(tdir, version))

    def versions(self, name: str, partition: str | None = None) -> list[str]:
        """The complete versions of a table that are kept, oldest first."""
        tdir = self.table_dir(name, partition)
        if not os.path.isdir(tdir):
            return []
        return sorted(v for v in os.listdir(tdir) if v.startswith("v-")
                      and os.path.exists(os.path.join(tdir, v, MANIFEST)))

    def _prune(self, tdir: str, keep: str) -> None:
        versions = sorted(d for d in os.listdir(tdir) if d.startswith("v-"))
        complete = [v for v in versions if os.path.exists(os.path.join(tdir, v, MANIFEST))]
        pinned = set()
        if os.path.exists(os.path.join(tdir, PINS)):
            with open(os.path.join(tdir, PINS), encoding="utf-8") as fh:
                pinned = {p["version"] for p in json.load(fh)}
        retained = set(complete[-KEEP_VERSIONS:]) | {keep} | pinned
        for version in versions:
            if version not in retained:
                shutil.rmtree(os.path.join(tdir, version), ignore_errors=True)
        for entry in os.listdir(tdir):
            if entry.startswith(".current-"):
                try:
                    os.unlink(os.path.join(tdir, entry))
                except FileNotFoundError:
                    pass

    # ---- reading -----------------------------------------------------------------------
    def read(self, spark, name: str, partition: str | None = None):
        """Load the current version as a Spark DataFrame (or a TableSet of them); for a
        day-partitioned table without a partition, the union of every stored day."""
        if partition is None and self.partitions(name):  # day partitions win over a table
            return self.read_days(spark, name, self.partitions(name))[0]  # of an older layout
        path = self.current_path(name, partition)
        manifest = self.manifest(name, partition)
        if manifest["kind"] == "tableset":
            schemas = manifest.get(SCHEMA, {})
            frames = LazyFrames(manifest["frames"], lambda frame: _read_parquet(
                spark, [os.path.join(path, frame)], schemas.get(frame)))
            return TableSet(frames=frames, params=manifest.get("params", {}),
                            version=os.path.basename(path), run_id=manifest.get(RUN_ID))
        return _read_parquet(spark, [path], manifest.get(SCHEMA))

    def read_days(self, spark, name: str, days: list[str]):
        """The union of the given day partitions that have been written, and the days that
        have not (callers decide whether a missing day is an error)."""
        present = [d for d in days if self.exists(name, d)]
        missing = [d for d in days if d not in set(present)]
        if not present:
            raise FileNotFoundError(
                f"table {name!r} has none of the {len(days)} requested day partitions "
                f"({days[0]}..{days[-1]}) under {self.base_dir}; materialise those days first"
                if days else f"no day partitions of {name!r} were requested")
        schemas = [self.manifest(name, d).get(SCHEMA) for d in present]
        same = schemas[0] if all(s == schemas[0] for s in schemas) else None
        return _read_parquet(spark, [self.current_path(name, d) for d in present], same), missing

    def partitions(self, name: str) -> list[str]:
        """The partitions of a table that have a current version, sorted."""
        base = self.table_dir(name)
        if not os.path.isdir(base):
            return []
        return sorted(p for p in os.listdir(base)
                      if not p.startswith((".", "v-")) and p != CURRENT and self.exists(name, p))

    def read_pandas(self, name: str, frame: str | None = None, partition: str | None = None,
                    columns: list[str] | None = None, filters: list | None = None):
        """Load the current version with pyarrow (no Spark), for the CLI and small tables;
        only `columns` and the rows `filters` keeps (pyarrow's filters), when given."""
        import pandas as pd
        import pyarrow.parquet as pq

        if partition is None and self.partitions(name):
            # A day-partitioned table: every stored day, one after the other (an unpartitioned
            # version left by an older layout is ignored).
            return pd.concat([self.read_pandas(name, frame, day, columns, filters) for day in
                              self.partitions(name)], ignore_index=True)
        path = self.current_path(name, partition)
        if path is None:
            self.manifest(name, partition)  # raises with a clear message
        if frame:
            path = os.path.join(path, frame)
        return pq.read_table(path, columns=columns, filters=filters).to_pandas()

"""The development instance's storage (deploy/dagster.dev.yaml): Dagster's SQLite storage, the
same files in $DAGSTER_HOME, with an event log that keeps its connections open.

Dagster's SqliteEventLogStorage makes a new engine and a new connection, and closes both, for
each of the one to three transactions of every event it stores (the run's database; the index
for asset, check and run events). Each new engine compiles every statement again (the
compiled-statement cache is the engine's), each commit waits for the disk (`synchronous=FULL`)
and each close of a database's last connection checkpoints its write-ahead log. A run reports
hundreds of events (an ingest of 90 days, 540 asset events): in a small run through the CLI,
that was most of the Python process's time outside Spark.

Here each database has one engine, kept, whose connection stays open, with
`synchronous=NORMAL` (SQLite's documented pairing with write-ahead logging, which Dagster
already turns on): a commit appends to the log without waiting for the disk, and readers in
other processes (`dagster dev`, its daemon) read while a run writes. A crash of the process
loses nothing committed; a power cut may lose the last commits, never the database's
consistency: what a development instance can afford (the deployment stores its runs in
PostgreSQL). The storage keeps the engines of the databases it used last (the index, and the
runs it wrote or read).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

KEPT_ENGINES = 16


def _write_ahead(dbapi_connection, _record) -> None:
    """Every new connection: write-ahead logging (as Dagster makes its databases), commits
    that do not wait for the disk."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class KeptConnectionSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose databases each keep one engine and its open connection."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        # Asked at every asset event, with a new engine each time; a table, once there, stays.
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            # One connection kept: _connect holds the storage's lock while it is in use (the
            # database's creation opens a second one for a moment).
            engine = create_engine(
                self.conn_string_for_shard(shard), poolclass=QueuePool, pool_size=1,
                max_overflow=2, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                              "check_same_thread": False})
            event.listen(engine, "connect", _write_ahead)
        self._engines[shard] = engine  # the most recent last
        while len(self._engines) > KEPT_ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's _connect (its lock; the database made on first use) with the kept engine.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
        super().dispose()


class DevelopmentSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, event logs and schedules under base_dir, the default
    layout) with the event log above."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = KeptConnectionSqliteEventLogStorage(
            _event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> DevelopmentSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)

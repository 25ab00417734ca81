"""The development instance's storage (deploy/dagster.dev.yaml,
recsys_dagster/deployment/sqlite_storage.py): Dagster's SQLite files, written through kept
connections, read by other processes while the writer's connections are open."""

import os
import sqlite3
import subprocess
import sys

import dagster as dg

from recsys_dagster.deployment.instance import ensure_home
from recsys_dagster.deployment.sqlite_storage import (
    KEPT_ENGINES,
    KeptConnectionSqliteEventLogStorage,
)

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")


@dg.asset(partitions_def=DAYS)
def plays(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"day {context.partition_key}")


# Another process (as `dagster dev` would be) reading the home with Dagster's own SQLite event
# log, not ours: the number of runs, and the materialisations of `plays` in the index.
READER = """
import sys
import dagster as dg
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
with dg.DagsterInstance.get() as instance:
    runs = instance.get_runs()
own = SqliteEventLogStorage(sys.argv[1])
done = own.fetch_materializations(dg.AssetKey("plays"), limit=1000).records
print(len(runs), len(done), len({r.partition_key for r in done}))
"""


def test_a_development_home_is_written_through_kept_connections_and_read_by_others(
        tmp_path, monkeypatch):
    home = ensure_home(str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DAGSTER_HOME", home)
    runs = KEPT_ENGINES + 4
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, KeptConnectionSqliteEventLogStorage)
        for n in range(runs):
            day = DAYS.get_partition_keys()[n % 10]
            assert dg.materialize([plays], instance=instance, partition_key=day).success
        # Its engines are bounded (the index and the runs it used last), and it still holds
        # connections while another process reads everything it committed.
        assert len(storage._engines) == KEPT_ENGINES
        read = subprocess.run([sys.executable, "-c", READER,
                               os.path.join(home, "history", "runs")],
                              capture_output=True, text=True, timeout=120)
        assert read.returncode == 0, read.stderr[-3000:]
        assert read.stdout.split() == [str(runs), str(runs), "10"]
        logs = instance.all_logs(instance.get_runs(limit=1)[0].run_id)
        assert any(e.user_message.startswith("day 2024-01-") for e in logs)
    # Dagster's files, in write-ahead-log mode.
    index = sqlite3.connect(os.path.join(home, "history", "runs", "index.db"))
    assert index.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    index.close()

"""The deployment's storage (deploy/dagster.yaml, recsys_dagster/deployment/pg_storage.py)
against a PostgreSQL server of its own: each part keeps one connection, and a server restarted
under the process costs it a new connection, not a failed query."""

import tempfile
from pathlib import Path

import dagster as dg
import pytest
from helpers import database_sessions
from spark_cluster import free_port

from recsys_dagster.deployment.pg_storage import KeptConnectionPostgresStorage
from recsys_dagster.deployment.postgres import LocalPostgres

pytestmark = pytest.mark.slow


@pytest.fixture
def server():
    folder = Path(tempfile.mkdtemp(prefix="recsys-pg-storage-"))
    folder.chmod(0o755)  # the server's user must reach its folder below this one
    pg = LocalPostgres(folder / "postgres", free_port(), "recsys", "dagster")
    pg.init()
    pg.start()
    pg.create_database()
    try:
        yield pg
    finally:
        pg.stop()


def sessions(pg: LocalPostgres) -> int:
    conn = pg.connect()
    try:
        return database_sessions(conn)
    finally:
        conn.close()


def test_each_part_keeps_its_connection_and_survives_a_restarted_server(server):
    url = (f"postgresql+psycopg2://recsys:{server.password()}@127.0.0.1:{server.port}/"
           "dagster")
    storage = KeptConnectionPostgresStorage(url)
    runs, events = storage.run_storage, storage.event_log_storage
    run = dg.DagsterRun(job_name="plays", run_id="0" * 32)
    runs.add_run(run)
    assert [r.job_name for r in runs.get_runs()] == ["plays"]  # connections made
    assert events.get_logs_for_run(run.run_id) == []
    before = sessions(server)
    for _ in range(50):  # 100 queries on the kept connections, none opened
        assert runs.has_run(run.run_id)
        assert events.get_logs_for_run(run.run_id) == []
    # Opened meanwhile: the counts' own (a server reports a session when its statistics
    # reach shared memory, so one of them may or may not be in); one per query was 100.
    assert sessions(server) - before <= 2
    server.stop()
    server.start()
    # The kept connections died with the server: each part finds out before its next query
    # and opens a new one.
    assert [r.job_name for r in runs.get_runs()] == ["plays"]
    assert events.get_logs_for_run(run.run_id) == []
    for part in (runs, events, storage.schedule_storage):
        part.dispose()

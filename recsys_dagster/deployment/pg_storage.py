"""The deployment's storage (deploy/dagster.yaml): Dagster's PostgreSQL storage, whose run,
event log and schedule parts each keep an open connection in every process.

dagster-postgres opens a new connection for every query, except in the webserver, which it
gives a pool of one kept connection (`optimize_for_webserver`). Each new connection costs a
server process forked for it and a SCRAM password exchange, many times a query on a kept
connection (measured in benchmarks/README.md, "The deployment's PostgreSQL connections kept").
The daemon queries every second (the queue, run monitoring, sensors, freshness) and a run
worker stores hundreds of events, so the deployment spent much of its Dagster processes' CPU
opening connections. Here every process holds one connection per part, as the webserver does,
but with no statement timeout (a run's writes are not the webserver's reads) and checked before
each use (a round trip on the open connection), so that a server restarted under running
processes costs them a new connection, not a failed query; connections are renewed hourly, and
a thread that finds the kept one in use opens another for the moment.
"""

from __future__ import annotations

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10  # connections a process may open beyond its kept one, for the moment


def keep_connection(part) -> None:
    """Give a dagster-postgres storage part the engine its optimize_for_webserver makes (one
    kept connection, its connection options), checked before each use, without a timeout."""
    kwargs = {"isolation_level": "AUTOCOMMIT", "pool_size": 1, "max_overflow": MAX_OVERFLOW,
              "pool_recycle": RECYCLE_SECONDS, "pool_pre_ping": True}
    options = part._engine.url.query.get("options")
    if options:
        kwargs["connect_args"] = {"options": options}
    before, part._engine = part._engine, create_pg_engine(part.postgres_url,
                                                           part._token_provider, **kwargs)
    before.dispose()


class KeptConnectionPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage with the webserver's connection pooling in every process."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, **kwargs):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, **kwargs)
        for part in (self._run_storage, self._event_log_storage, self._schedule_storage):
            keep_connection(part)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> KeptConnectionPostgresStorage:
        return cls(postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data,
                   token_provider=get_token_provider_from_config(config_value))

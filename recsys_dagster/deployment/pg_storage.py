"""The deployment's storage (deploy/dagster.yaml): Dagster's PostgreSQL storage, whose run,
event log and schedule parts each keep an open connection in every process.

dagster-postgres opens a new connection for every query, except in the webserver, which it
gives a pool of one kept connection (`optimize_for_webserver`). Each new connection costs a
server process forked for it and a SCRAM password exchange: about 5.5 ms and 3 ms of the
client's CPU on this machine (an ad hoc loop; a query on a kept connection, 0.1 ms). The
daemon queries every second (the queue, run monitoring, sensors, freshness) and a run worker
stores hundreds of events, so the deployment spent much of its Dagster processes' CPU opening
connections. Here every process holds one connection per part, as the webserver does, with
no statement timeout (a run's writes are not the webserver's reads) and connections renewed
hourly; a thread that finds it in use opens one more for the moment.
"""

from __future__ import annotations

from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

NO_STATEMENT_TIMEOUT = 0
RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10  # connections a process may open beyond its kept one, for the moment


class KeptConnectionPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage with the webserver's connection pooling in every process."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data=None, **kwargs):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, **kwargs)
        for part in (self._run_storage, self._event_log_storage, self._schedule_storage):
            part.optimize_for_webserver(NO_STATEMENT_TIMEOUT, RECYCLE_SECONDS, MAX_OVERFLOW)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> KeptConnectionPostgresStorage:
        return cls(postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data,
                   token_provider=get_token_provider_from_config(config_value))

"""How one pipeline run is cut into Dagster runs: ingest a range of days, then the rest as of
the newest day. Used by the CLI and the tests; the UI does the same with a backfill of
play_events followed by a run of retrain_and_publish for the last day.
"""

import yaml

from . import settings
from .partitions import PLAY_DAYS, first_day, last_day

INGESTION_ASSETS = ("play_events", "play_events_quarantine", "item_catalog")
INGEST_OP = "ingest_play_logs"


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run materialise every day from first to last."""
    for day in (first, last):
        if not PLAY_DAYS.has_partition_key(day):
            raise ValueError(f"{day} is not a day of the play-log calendar "
                             f"({first_day()}..{last_day()})")
    if first > last:
        raise ValueError(f"range start {first} is after its end {last}")
    return {"dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last}


def config_for(run_config: dict | None, ingestion: bool) -> dict:
    """The part of a whole-pipeline run config that one of the two runs accepts."""
    run_config = dict(run_config or {})
    ops = run_config.pop("ops", {}) or {}
    keep = {k: v for k, v in ops.items() if (k == INGEST_OP) == ingestion}
    return {**run_config, **({"ops": keep} if keep else {})}


def calendar() -> tuple[str, str]:
    return first_day(), last_day()


def automation_config(ingestion: bool) -> dict:
    """The part of $RECSYS_RUN_CONFIG (a whole-pipeline run config) that the runs the schedule
    (ingestion) or the sensors (the rest) ask for take; {} without it."""
    path = settings.read(settings.RUN_CONFIG)
    if not path:
        return {}
    with open(path, encoding="utf-8") as fh:
        return config_for(yaml.safe_load(fh) or {}, ingestion)

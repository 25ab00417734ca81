"""The play-log calendar: daily partitions, and the training window as a partition mapping.

`play_events` is partitioned by the day a play happened (UTC). Plays without a timestamp (a
snapshot such as Last.fm HetRec or the seed example) belong to the day they were delivered
as. `interactions` is partitioned "as of" a day: partition D reads play_events for the
training window ending on D (the last N days, or all history), so the lineage of every
interactions partition names the days it was built from. Everything downstream of
interactions reads its latest partition (the calendar's last day).

The calendar and the window are set by the environment when the code location loads
(RECSYS_CALENDAR_START, RECSYS_CALENDAR_END, RECSYS_TRAINING_WINDOW_DAYS: settings.py).
"""

import datetime as dt
import warnings

import dagster as dg

from . import settings

WINDOW_ENV = settings.TRAINING_WINDOW_DAYS.name
OPEN_END = "open"
# Offsets are counted in days; this reaches back past any calendar start (clipped to it).
_ALL_DAYS = 100_000


def play_days(start: str | None = None, end: str | None = None) -> dg.DailyPartitionsDefinition:
    """Daily partitions from start (inclusive) to end (exclusive; "open" = up to yesterday);
    by default the calendar of the environment (settings.CALENDAR_START, CALENDAR_END)."""
    start = start or settings.read(settings.CALENDAR_START)
    end = end or settings.read(settings.CALENDAR_END)
    if end == OPEN_END:
        return dg.DailyPartitionsDefinition(start_date=start, timezone="UTC")
    if end <= start:
        raise ValueError(f"calendar end {end} must be after its start {start}")
    return dg.DailyPartitionsDefinition(start_date=start, end_date=end, timezone="UTC")


def window_days() -> int | None:
    """The training window in days, or None for all history."""
    return settings.read(settings.TRAINING_WINDOW_DAYS)


def window_mapping(days: int | None) -> dg.TimeWindowPartitionMapping:
    """interactions[D] <- play_events[D - days + 1 .. D] (or every day up to D)."""
    with warnings.catch_warnings():  # allow_nonexistent_upstream_partitions is "beta"
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.TimeWindowPartitionMapping(
            start_offset=-((days or _ALL_DAYS) - 1), end_offset=0,
            allow_nonexistent_upstream_partitions=True,
        )


def describe_window(days: int | None) -> str:
    return "all history" if days is None else f"the last {days} days"


PLAY_DAYS = play_days()
TRAINING_WINDOW_DAYS = window_days()


def last_day(partitions: dg.DailyPartitionsDefinition = PLAY_DAYS) -> str:
    key = partitions.get_last_partition_key()
    if key is None:
        raise ValueError("the play-log calendar has no complete day yet")
    return key


def first_day(partitions: dg.DailyPartitionsDefinition = PLAY_DAYS) -> str:
    return partitions.get_first_partition_key()


# Downstream of interactions (unpartitioned: one current model and its tables), interactions
# are read as of the run's day: a retrain run for day D reads interactions[D]
# (resources.ParquetIOManager honours AS_OF; the mapping below draws the edge in the lineage).
# A run without a day reads the newest stored day.
AS_OF = "recsys/as_of"
RUN_DAY = "the run's day, else the newest stored"
LATEST_DAY = dg.AssetIn(partition_mapping=dg.LastPartitionMapping(), metadata={AS_OF: RUN_DAY})
PARTITION_TAG = "dagster/partition"


def as_of_day(run_tags: dict, stored_days: list[str]) -> str:
    """The as-of day of a run: its partition, else the newest stored day of interactions."""
    if run_tags.get(PARTITION_TAG):
        return run_tags[PARTITION_TAG]
    if not stored_days:
        raise FileNotFoundError("no day of interactions is stored yet: run retrain_and_publish "
                                "for a day first")
    return stored_days[-1]


def window_range(as_of: str, days: int | None = TRAINING_WINDOW_DAYS,
                 partitions: dg.DailyPartitionsDefinition = PLAY_DAYS) -> tuple[str, str]:
    """(first day, last day) of the training window of interactions[as_of]."""
    start = first_day(partitions)
    if days is not None:
        begin = (dt.date.fromisoformat(as_of) - dt.timedelta(days=days - 1)).isoformat()
        start = max(start, begin)
    return start, as_of

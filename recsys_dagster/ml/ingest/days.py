"""Which day partition a play (or a rejected row) belongs to. No Dagster import here.

A play belongs to the UTC day it happened. A row without a usable timestamp (snapshot data
such as Last.fm HetRec, or a rejected row whose time is unreadable) belongs to the day the
delivery was ingested as: the last day of the run's range.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from .validation import raw_timestamp

DAY = "day"


def _day_of(ts: Column, delivery_day: str) -> Column:
    return F.coalesce(F.to_date(ts), F.lit(dt.date.fromisoformat(delivery_day)))


def day_of_play(events: DataFrame, delivery_day: str) -> DataFrame:
    """Valid plays (parsed `ts`) with their `day`."""
    return events.withColumn(DAY, _day_of(F.col("ts"), delivery_day))


def day_of_raw(rows: DataFrame, delivery_day: str) -> DataFrame:
    """Raw or rejected rows (`ts` as found: text, or a typed source's timestamp) with their
    `day`."""
    return rows.withColumn(DAY, _day_of(raw_timestamp(rows), delivery_day))


def in_days(first: str, last: str) -> Column:
    """Rows whose day lies in [first, last]."""
    return F.col(DAY).between(F.lit(dt.date.fromisoformat(first)),
                              F.lit(dt.date.fromisoformat(last)))

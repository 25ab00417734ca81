"""Shared set-up for the benchmark scripts: a Spark session from a profile, lastfm interactions."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recsys_dagster.ml import sources  # noqa: E402
from recsys_dagster.ml.indexing import build_interactions, extend_index  # noqa: E402
from recsys_dagster.ml.validation import validate_plays  # noqa: E402
from recsys_dagster.spark_session import build_session, resolve_settings  # noqa: E402

DEFAULT_LASTFM = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                              "lastfm-2k")


def spark_session(profile: str = "local"):
    return build_session(resolve_settings(profile=profile))


def lastfm_interactions(spark, folder: str = DEFAULT_LASTFM):
    raw = sources.read_lastfm_user_artists(spark, folder)
    events, _ = validate_plays(raw)
    users = extend_index(events.select(events.user_id.alias("id")))
    items = extend_index(events.select(events.item_id.alias("id")))
    return build_interactions(events, users, items).persist()

"""The synthetic generator: deterministic for any day of an open calendar, whatever the tasks,
and shaped like music listening within the bounds docs/data.md states."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from recsys_dagster.ml.ingest import datagen
from recsys_dagster.ml.ingest.data_shape import gini, shape
from recsys_dagster.ml.ingest.datagen import SyntheticSpec

SPEC = SyntheticSpec(n_users=1500, n_items=2000, n_artists=200, seed=3)
KEY = ["user_id", "item_id", "ts"]


def rows(df):
    return df.sort_values(KEY).reset_index(drop=True)


def test_same_rows_whatever_the_tasks_and_the_days_asked(spark):
    first, last = "2024-01-01", "2024-01-20"
    a = rows(datagen.synthetic_play_logs(spark, SPEC, first, last).toPandas())
    b = rows(datagen.generate(SPEC, 0, 0, 19))  # one task, in this process
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    # The last five days asked on their own are the same rows as within the whole range.
    tail = rows(datagen.synthetic_play_logs(spark, SPEC, "2024-01-16", last).toPandas())
    pd.testing.assert_frame_equal(tail, rows(a[a.ts >= pd.Timestamp("2024-01-16")]),
                                  check_dtype=False)
    other = datagen.generate(SyntheticSpec(n_users=1500, n_items=2000, n_artists=200, seed=4),
                             0, 0, 19)
    assert not rows(other).equals(b)


def test_any_day_of_an_open_calendar_and_none_before_the_start():
    spec = SyntheticSpec(n_users=300, n_items=500, n_artists=50, seed=1,
                         start_date="2026-11-01")
    day = spec.day_number("2026-12-04")
    plays = datagen.generate(spec, 0, day, day)
    assert len(plays) > 0
    assert (plays.ts.dt.date == dt.date(2026, 12, 4)).all()  # every play inside its day
    assert len(datagen.generate(spec, 0, -5, -1)) == 0  # before start_date: nothing


def test_the_demo_data_is_shaped_like_music():
    """The default spec over the demo's 90 days, against docs/data.md's bounds: Last.fm HetRec
    2011 gives a Gini of listeners per artist of 0.73 and plays per pair of 5.3x (p90) and
    28x (p99) the median; catalogues have a few songs for most artists and many for a few."""
    spec = SyntheticSpec()
    plays = pd.concat([datagen.generate(spec, c, 0, 89) for c in range(datagen.n_chunks(spec))])
    pairs = plays.groupby(["user_id", "item_id"], as_index=False).plays.sum()
    got = shape(pairs, datagen.catalogue_frame(spec).set_index("item_id").artist_id)
    assert got["largest_artist_share"] <= 0.02
    assert 4 <= got["songs_per_artist_median"] <= 10
    assert 30 <= got["songs_per_artist_p99"] <= 60
    assert 0.65 <= got["listeners_per_artist_gini"] <= 0.80
    assert 4 <= got["plays_per_pair_p90_over_median"] <= 8
    assert 18 <= got["plays_per_pair_p99_over_median"] <= 40
    assert got["listeners"] >= 0.95 * spec.n_users and 8 <= got["items_per_listener_median"]
    # Listeners dig into artists: many play several songs of one artist.
    cat = datagen.catalogue_frame(spec)
    per_artist = pairs.merge(cat, on="item_id").groupby(["user_id", "artist_id"]).size()
    assert (per_artist > 1).mean() > 0.15
    assert plays.plays.min() >= 1


def test_no_artist_above_its_share_and_sizes_add_up():
    rng = np.random.default_rng(0)
    for n_items, n_artists, share in ((3000, 300, 0.02), (400, 60, 0.02), (10, 10, 0.02),
                                      (100_000, 5000, 0.001)):
        sizes = datagen.artist_sizes(rng, n_items, n_artists, 1.5, share)
        assert sizes.sum() == n_items and sizes.min() >= 1
        assert sizes.max() <= max(1, int(share * n_items))
    with pytest.raises(ValueError, match="cannot hold"):
        datagen.artist_sizes(rng, 1000, 10, 1.0, 0.02)


def test_gini():
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 8]) == pytest.approx(0.75)


def test_catalogue_names_every_song():
    cat = datagen.catalogue_frame(SPEC)
    assert len(cat) == SPEC.n_items and cat.item_id.is_unique
    assert cat.name.str.match(r"Artist \d{5} - Track \d{2}").all()
    assert (cat.name.str.split(" - ").str[0] == cat.artist_name).all()
    assert cat.groupby("artist_id").artist_name.nunique().max() == 1
    assert cat.artist_id.nunique() == SPEC.n_artists


def test_invalid_spec_rejected():
    with pytest.raises(ValueError):
        SyntheticSpec(n_users=0).validate()
    with pytest.raises(ValueError):
        SyntheticSpec(n_items=10, n_artists=20).validate()
    with pytest.raises(ValueError, match="active_day_share"):
        SyntheticSpec(active_day_share=0).validate()

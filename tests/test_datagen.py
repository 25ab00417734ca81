"""The synthetic generator is deterministic and looks like music listening."""

import numpy as np
import pandas as pd

from recsys_dagster.ml.ingest import datagen
from recsys_dagster.ml.ingest.datagen import SyntheticSpec

SPEC = SyntheticSpec(n_users=1500, n_items=2000, n_artists=250, seed=3)


def test_same_seed_same_rows_whatever_the_partitioning(spark):
    a = datagen.synthetic_play_logs(spark, SPEC).toPandas()
    b = datagen.synthetic_play_logs(spark, SPEC).repartition(5).toPandas()
    key = ["user_id", "item_id", "ts"]
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                  b.sort_values(key).reset_index(drop=True))
    other = datagen.generate_chunk(SyntheticSpec(n_users=1500, n_items=2000, n_artists=250,
                                                 seed=4), 0)
    assert not other.equals(datagen.generate_chunk(SPEC, 0))


def test_looks_like_music_listening():
    df = datagen.generate_chunk(SPEC, 0)
    pairs = df.groupby(["user_id", "item_id"]).plays.sum()
    # Power-law popularity: the top 5% of songs get a large share of the listeners.
    listeners = pairs.groupby(level="item_id").size().sort_values(ascending=False)
    top = listeners.iloc[: SPEC.n_items // 20].sum() / listeners.sum()
    assert top > 0.25, top
    # Heavy-tailed play counts: median small, max orders of magnitude larger.
    assert pairs.median() <= 3 and pairs.max() > 100 * pairs.median()
    # Artists with several songs, and users who play several songs by one artist.
    cat = datagen.catalogue_frame(SPEC)
    per_artist = cat.groupby("artist_id").size()
    assert per_artist.max() >= 10 and (per_artist > 1).sum() > SPEC.n_artists // 3
    played = pairs.reset_index().merge(cat, on="item_id")
    same_artist = played.groupby(["user_id", "artist_id"]).size()
    assert (same_artist > 1).mean() > 0.1
    # Timestamps inside the configured window.
    start = pd.Timestamp(SPEC.start_date)
    assert df.ts.min() >= start and df.ts.max() < start + pd.Timedelta(days=SPEC.n_days)
    assert df.plays.min() >= 1


def test_catalogue_names_every_song():
    cat = datagen.catalogue_frame(SPEC)
    assert len(cat) == SPEC.n_items and cat.item_id.is_unique
    assert cat.name.str.match(r"Artist \d{5} - Track \d{2}").all()
    # Each song's artist: the name's prefix, one id per name.
    assert (cat.name.str.split(" - ").str[0] == cat.artist_name).all()
    assert cat.groupby("artist_id").artist_name.nunique().max() == 1
    assert cat.artist_id.nunique() == SPEC.n_artists


def test_invalid_spec_rejected():
    import pytest

    with pytest.raises(ValueError):
        SyntheticSpec(n_users=0).validate()
    with pytest.raises(ValueError):
        SyntheticSpec(n_items=10, n_artists=20).validate()
    assert np.isfinite(SPEC.zipf_exponent)

"""Artist radio stations and their held-out evaluation on cases whose answer is known by hand."""

import numpy as np
import pytest

from recsys_dagster.ml.evaluation.station_metrics import (
    baseline_station,
    intra_list_distance,
    per_station,
    per_user,
)
from recsys_dagster.ml.serving.stations import (
    RadioCatalogue,
    RadioParams,
    best_first,
    candidate_artists,
    fill,
    flow,
    seed_artists,
    station,
    stations,
)


def catalogue(n_per_artist=6, rank=3, seed=0, plays=None):
    """Artists 0..3, n_per_artist songs each: artists 0 and 1 point along x (1 a little
    off it), 2 along y, 3 along -x; song ids 10 * artist + j."""
    rng = np.random.default_rng(seed)
    directions = np.array([[1.0, 0.0, 0.0], [1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    vecs, artist, ids = [], [], []
    for a, d in enumerate(directions):
        for j in range(n_per_artist):
            vecs.append(d + 0.05 * rng.standard_normal(rank))
            artist.append(a)
            ids.append(10 * a + j)
    plays = np.arange(len(ids), 0, -1.0) if plays is None else plays
    return RadioCatalogue.build(np.array(ids), np.array(vecs, np.float32), np.array(artist),
                                plays, 4)


def test_fill_keeps_the_caps_and_never_repeats():
    artist = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    less = np.zeros(9, dtype=bool)
    params = RadioParams(length=6, max_per_artist=2, seed_artist_max=3, less_played_share=0.0)
    got = fill(artist, less, seed=0, params=params)
    # Best first: three of the seed artist (0), then two of artist 1, then the one of 2.
    assert got.tolist() == [0, 1, 2, 4, 5, 8]


def test_fill_puts_less_played_songs_in_at_their_share():
    artist = np.arange(10)  # one song per artist: no cap binds
    less = np.array([False] * 6 + [True] * 4)
    params = RadioParams(length=10, max_per_artist=1, seed_artist_max=1, less_played_share=0.3)
    got = fill(artist, less, seed=0, params=params)
    assert len(set(got.tolist())) == 10
    for p in range(1, 11):  # at every position at least floor(0.3 p) less-played songs so far
        assert less[got[:p]].sum() >= int(0.3 * p + 1e-9)
    # Without the knob the order is the affinity order.
    assert fill(artist, less, 0, RadioParams(length=10, max_per_artist=1, seed_artist_max=1,
                                             less_played_share=0.0)).tolist() == list(range(10))


def test_station_draws_on_the_seed_and_its_similar_artists():
    cat = catalogue()
    assert candidate_artists(cat, 0, RadioParams(candidate_artists=2)).tolist() == [0, 1]
    params = RadioParams(length=8, max_per_artist=4, seed_artist_max=5, candidate_artists=2,
                         less_played_share=0.0)
    songs, scores = station(cat, 0, params)
    artists = cat.song_artist[songs]
    assert set(artists.tolist()) == {0, 1}  # never y (2) or -x (3) with two candidates
    assert (artists == 0).sum() == 4 and (artists == 1).sum() == 4  # at most half the seed's
    assert len(set(cat.song_ids[songs].tolist())) == songs.size == 8
    assert artists[0] == 0  # the seed opens its station
    # The opposite artist comes after every other artist's songs.
    wide = RadioParams(length=24, max_per_artist=6, seed_artist_max=6, candidate_artists=4,
                       less_played_share=0.0)
    songs, _ = station(cat, 0, wide)
    artists = cat.song_artist[songs]
    where = {a: np.flatnonzero(artists == a).mean() for a in (1, 2, 3)}
    assert where[1] < where[2] < where[3]


def test_as_many_candidate_artists_as_fill_the_station_the_popular_first():
    """candidate_artists 0: the closest artists until their songs (at the caps) fill the
    station; among artists as close, the more played one first."""
    cat = catalogue()  # 6 songs each
    fill_12 = RadioParams(length=12, max_per_artist=4, seed_artist_max=6)
    assert candidate_artists(cat, 0, fill_12).tolist() == [0, 1, 2]  # 6 + 4 + 4 >= 12
    twins = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    seed_ish = np.array([[0.7, 0.7]], dtype=np.float32)
    cat = RadioCatalogue.build(np.arange(4), np.vstack([seed_ish, twins]), np.array([0, 1, 2, 3]),
                               np.array([5.0, 1.0, 1.0, 50.0]), 4)
    order = candidate_artists(cat, 0, RadioParams(length=3, max_per_artist=1)).tolist()
    assert order[0] == 0 and order[1] == 3  # 2 and 3 are as close as 1: 3 is played most


def sorted_candidates(cat, seed, params, allowed=None):
    """candidate_artists by its definition: every artist scored and sorted, then cut."""
    seed_dir = cat.artist_vecs[seed].astype(np.float64)
    seed_dir = seed_dir / np.linalg.norm(seed_dir)
    plays = np.bincount(cat.song_artist, weights=cat.plays, minlength=cat.n_artists)
    scores = np.maximum(cat.artist_vecs.astype(np.float64) @ seed_dir, 0.0) * np.sqrt(plays)
    scores[~np.any(cat.artist_vecs != 0, axis=1)] = -np.inf
    scores[seed] = np.inf
    order = [int(a) for a in sorted(range(scores.size), key=lambda a: (-scores[a], a))
             if scores[a] > -np.inf]
    if params.candidate_artists > 0:
        return order[:params.candidate_artists]
    songs = np.bincount(cat.song_artist[allowed] if allowed is not None else cat.song_artist,
                        minlength=cat.n_artists)
    total = 0
    for n, a in enumerate(order):
        total += min(songs[a], params.seed_cap if a == seed else params.artist_cap)
        if total >= params.length:
            return order[:n + 1]
    return order


def test_candidates_are_the_first_of_every_artist_sorted_without_sorting_them_all():
    """candidate_artists sorts only the best artists it needs (best_first); on random
    catalogues with tied scores, artists without a vector and songs left out, it gives what
    scoring and sorting every artist gives."""
    rng = np.random.default_rng(7)
    scores = np.array([3.0, 1.0, 3.0, -np.inf, np.inf, 1.0, 2.0])
    assert best_first(scores, 3).tolist() == [4, 0, 2]  # ties by position
    assert best_first(scores, 5).tolist() == [4, 0, 2, 6, 1]
    assert best_first(scores, 99).tolist() == [4, 0, 2, 6, 1, 5, 3]
    for trial in range(40):
        n_artists, n_songs = int(rng.integers(2, 300)), int(rng.integers(1, 1500))
        vecs = np.round(rng.standard_normal((n_artists, 3)), 1).astype(np.float32)  # ties
        vecs[rng.random(n_artists) < 0.2] = 0.0
        song_artist = rng.integers(0, n_artists, n_songs)
        cat = RadioCatalogue.build(np.arange(n_songs), rng.standard_normal((n_songs, 3)),
                                   song_artist, rng.integers(1, 5, n_songs).astype(float),
                                   n_artists, vecs)
        allowed = rng.random(n_songs) < 0.5 if trial % 2 else None
        seed = int(rng.choice(np.flatnonzero(vecs.any(axis=1))))
        for k, length in ((0, 1), (0, 10), (0, 50), (0, 2000), (3, 50), (40, 50)):
            params = RadioParams(candidate_artists=k, length=length)
            assert candidate_artists(cat, seed, params, allowed).tolist() == \
                sorted_candidates(cat, seed, params, allowed), (trial, k, length)


def test_songs_left_out_do_not_count_towards_filling_the_station():
    """A listener's station leaves out the songs they played: the candidate artists are as
    many as fill it with the songs that are left, so it is still full."""
    cat = catalogue()  # 6 songs each
    short = RadioParams(length=6, max_per_artist=3, seed_artist_max=3, less_played_share=0.0)
    assert candidate_artists(cat, 0, short).tolist() == [0, 1]  # 3 + 3 fill 6
    played = cat.song_ids[cat.song_artist == 0][:4]
    songs, _ = station(cat, 0, short, exclude=played)
    assert len(songs) == 6 and not np.isin(cat.song_ids[songs], played).any()
    assert np.bincount(cat.song_artist[songs], minlength=4).tolist() == [2, 3, 1, 0]


def test_no_artist_holds_more_than_half_a_short_station():
    """Whatever the caps, an artist plays at most half a station (rounded up), so a short
    station still alternates."""
    cat = catalogue()
    params = RadioParams(length=5, max_per_artist=5, seed_artist_max=10, less_played_share=0.0)
    assert (params.seed_cap, params.artist_cap) == (3, 3)
    songs, _ = station(cat, 0, params)
    artists = cat.song_artist[songs].tolist()
    assert len(artists) == 5 and max(np.bincount(artists)) <= 3
    assert all(not a == b == 0 for a, b in zip(artists, artists[1:]))  # the seed never twice
    odd = flow(np.array([0, 0, 0, 1, 2]), seed=0)  # the seed holds the most it may: 3 of 5
    assert np.array([0, 0, 0, 1, 2])[odd].tolist() == [0, 1, 0, 2, 0]
    assert RadioParams().seed_cap == 10 and RadioParams().artist_cap == 5  # the defaults


def test_a_station_flows():
    """The seed's songs spread through the station, the first opening it; no artist twice in
    a row while another one is left; the songs otherwise in their order."""
    artist = np.array([7, 7, 7, 1, 1, 1, 2, 3, 7])
    order = flow(artist, seed=7)
    two = flow(np.array([1, 1, 2, 2, 3]), seed=9)  # no seed songs: alternate while possible
    assert np.array([1, 1, 2, 2, 3])[two].tolist() == [1, 2, 1, 2, 3]
    played = artist[order]
    assert sorted(order.tolist()) == list(range(9))
    assert played[0] == 7 and np.flatnonzero(played == 7).tolist() == [0, 2, 4, 6]
    assert all(a != b for a, b in zip(played[:-1], played[1:]))
    assert [i for i in order if artist[i] != 7] == [3, 4, 5, 6, 7]  # the seed between
    same = flow(np.array([1, 1, 1]), seed=9)  # nothing else to play: the repeats stay
    assert same.tolist() == [0, 1, 2]


def test_personalised_station_drops_played_songs_and_leans_to_the_listener():
    cat = catalogue()
    params = RadioParams(length=6, max_per_artist=6, seed_artist_max=6, candidate_artists=3,
                         less_played_share=0.0, user_weight=0.9)
    played = [0, 1, 2]
    listener = np.array([0.0, 1.0, 0.0])  # likes artist 2's direction
    songs, _ = station(cat, 0, params, user_vec=listener, exclude=played)
    ids = cat.song_ids[songs]
    assert not set(ids.tolist()) & set(played)
    others = cat.song_artist[songs][cat.song_artist[songs] != 0]
    assert others[0] == 2  # after the seed, the listener's side first
    plain, _ = station(cat, 0, params)
    plain_others = cat.song_artist[plain][cat.song_artist[plain] != 0]
    assert plain_others[0] == 1  # without the listener: along x


def test_items_that_are_artists_make_a_sequence_of_artists():
    vecs = np.array([[1, 0], [0.9, 0.1], [0.7, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
    cat = RadioCatalogue.build(np.arange(5), vecs, np.arange(5), np.ones(5), 5)
    songs, _ = station(cat, 0, RadioParams(length=10, less_played_share=0.0))
    assert cat.song_artist[songs].tolist()[0] == 0 and len(songs) == 5
    assert len(set(cat.song_artist[songs].tolist())) == 5


def test_seeds_are_the_most_listened_artists():
    assert seed_artists(np.array([3, 0, 7, 3]), 2).tolist() == [2, 0]
    assert seed_artists(np.array([3, 0, 7, 3]), 0).tolist() == [2, 0, 3]  # 1 has no listener


def test_every_station_follows_the_rules():
    cat = catalogue(n_per_artist=8, seed=3)
    # 4 songs of the seed and 2 of each of the 3 others fill 10 places; 12 are asked for.
    params = RadioParams(length=12, max_per_artist=2, seed_artist_max=4, candidate_artists=4)
    seed, position, song, _ = stations(cat, np.arange(4), params)
    for s in range(4):
        mine = song[seed == s]
        assert position[seed == s].tolist() == list(range(1, mine.size + 1))
        assert mine.size == 10 and np.unique(mine).size == mine.size
        counts = np.bincount(cat.song_artist[mine], minlength=4)
        assert counts[s] <= 4 and np.delete(counts, s).max() <= 2


def test_baseline_is_the_seed_artists_hits_then_the_hits():
    cat = catalogue(n_per_artist=3)  # plays fall with the song's position: artist 0 most
    by_plays = np.lexsort((cat.song_ids, -cat.plays))
    got = cat.song_ids[baseline_station(cat, 2, 5, by_plays)]
    assert got.tolist() == [20, 21, 22, 0, 1]


def test_intra_list_distance_of_known_lists():
    assert intra_list_distance(np.eye(3)) == pytest.approx(1.0)
    assert intra_list_distance(np.ones((4, 2))) == pytest.approx(0.0)
    assert intra_list_distance(np.array([[1.0, 0.0], [-2.0, 0.0]])) == pytest.approx(2.0)


def test_hit_share_and_hit_rate_by_hand():
    cat = catalogue(n_per_artist=2)
    mat = np.array([[0, 1, 2], [4, 5, -1]])  # station of artist 0: ids 0, 1, 10; of 2: 20, 21
    seeds = np.array([0, 2])
    train_ua = np.array([[7, 0], [7, 2], [8, 2], [9, 3]])
    test_us = np.array([[7, 1], [7, 10], [8, 0], [9, 0]])
    got = per_user(cat, mat, seeds, train_ua, test_us)
    # user 7: station 0 has 2 of 3 in test, station 2 none; user 8: none of station 2's;
    # user 9 played no seed artist: not scored.
    np.testing.assert_allclose(got["radio_hit_share"], [(2 / 3 + 0) / 2, 0.0])
    np.testing.assert_allclose(got["radio_hit_rate"], [0.5, 0.0])
    stats = per_station(cat, mat)
    assert stats["distinct_artists"].tolist() == [2, 1]


def test_the_served_stations_follow_the_rules_and_stay_in_genre(standard_run):
    """On the standard run: every station keeps its rules, draws on the seed and its similar
    artists, mostly in the seed's genre (known from the generator), and is evaluated."""
    from helpers import STANDARD_CONFIG, checks_by_name

    from recsys_dagster.ml.ingest import datagen

    store = standard_run.store
    assert checks_by_name(standard_run.result)[("artist_radio", "stations_follow_the_rules")]
    table = store.read_pandas("artist_radio", frame="stations")
    params = RadioParams(**store.manifest("artist_radio")["params"]["radio"])
    artists = store.read_pandas("artist_radio", frame="artists")
    assert table.seed_artist_id.nunique() == min(params.n_seed_artists,
                                                 (artists.listeners > 0).sum())
    for seed, rows in table.groupby("seed_artist_id"):
        assert rows.position.sort_values().tolist() == list(range(1, len(rows) + 1))
        assert len(rows) <= params.length and rows.item_id.is_unique
        per_artist = rows.artist_id.value_counts()
        assert per_artist.drop(seed, errors="ignore").max() <= params.max_per_artist
        assert per_artist.get(seed, 0) <= params.seed_artist_max
    assert table.name.notna().all() and table.artist_name.notna().all()
    spec = datagen.SyntheticSpec(**STANDARD_CONFIG["ops"]["ingest_play_logs"]["config"]
                                 ["synthetic"])
    catalogue = datagen.catalogue_frame(spec)
    genre = dict(zip(catalogue.artist_id, datagen.song_catalogue(spec).item_genre))
    same = np.mean([genre[a] == genre[b] for a, b in zip(table.seed_artist_id, table.artist_id)])
    assert same > 3 / spec.n_genres, same

    metrics = store.read_pandas("artist_evaluation", frame="metrics")
    radio = metrics[metrics.model.isin(["als_radio", "seed_then_popular"])]
    assert set(radio.metric) == {"radio_hit_share", "radio_hit_rate", "distinct_artists",
                                 "intra_list_distance", "popular_share"}
    shares = radio[radio.metric.isin(["radio_hit_share", "radio_hit_rate", "popular_share"])]
    assert shares.value.between(0, 1).all()
    assert (radio.ci_low <= radio.value + 1e-12).all()
    assert (radio.value <= radio.ci_high + 1e-12).all()


def test_a_listeners_own_station_from_the_served_tables(standard_run, capsys):
    """cli radio: no Spark, no played song, the clear message for unknown names."""
    from recsys_dagster import cli
    from recsys_dagster.served.station_lookup import RadioLookupError, ServedRadio

    store = standard_run.store
    served = ServedRadio.load(store)
    recs = store.read_pandas("user_recommendations")
    events = store.read_pandas("play_events")
    artists = served.artists.sort_values("listeners", ascending=False)
    artist = artists.artist_name.iloc[0]
    for user in recs.user_id.unique()[:5]:
        station_ = served.station(artist, user)
        played = set(events[events.user_id == user].item_id)
        assert len(station_) == served.params.length
        assert not set(station_.item_id) & played
    plain = served.station(artist.upper(), length=7)  # any case, any length
    assert len(plain) == 7 and plain.item_id.is_unique

    with pytest.raises(RadioLookupError, match="closest: .*" + artist[:-1]):
        served.station(artist[:-1] + "#")
    with pytest.raises(RadioLookupError, match="no listener 'nobody'"):
        served.station(artist, "nobody")

    assert cli.main(["radio", "--artist", artist, "--user", str(recs.user_id.iloc[0]),
                     "--length", "5", "--data-dir", store.base_dir]) == 0
    out = capsys.readouterr().out
    assert f"radio of {artist} for listener" in out and out.count(" - Track ") == 5
    assert cli.main(["radio", "--artist", "No Such Band", "--data-dir", store.base_dir]) == 2
    assert "no artist 'No Such Band'" in capsys.readouterr().err

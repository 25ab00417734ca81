"""Seeded synthetic play logs that look like music listening, for any day of an open calendar.

The world (seeded by `seed` alone):
- a catalogue of artists in genres; songs per artist are log-normal (most artists have a few
  songs, a few have many; the largest holds at most `max_artist_share` of the catalogue),
  and an artist's songs have Zipf-distributed appeal (its hits);
- artist popularity is log-normal (`artist_popularity_sigma`): it makes listeners per artist
  as unequal as on Last.fm;
- listeners, each with a taste (a Dirichlet mixture over a few genres), a handful of favourite
  artists, how often they listen (the share of days they play anything) and how many songs a
  listening day holds, and a library of songs they know on the first day, each with an
  affinity (log-normal: a listener plays a few songs over and over).

Each day (seeded by `seed` and the day): every listener discovers a few new songs (of a
favourite artist with probability `same_artist_share`, else by taste and popularity), which
join their library; listeners who listen that day play some of their library's songs, chosen
by affinity (new discoveries get a boost for a week), a few plays each, at random times of the
day. A day's plays depend only on the spec and the day: any day from `start_date` on can be
delivered, in any order, by any number of Spark tasks, and it is always the same.

docs/data.md compares the generated data's shape with Last.fm HetRec 2011 and with published
catalogue statistics; tests/test_datagen.py keeps the stated properties.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .. import setting

USERS_PER_CHUNK = 5000
SECONDS_PER_DAY = 86_400
NOVELTY_DAYS = 7  # a discovery is played more during its first week in the library
NOVELTY_BOOST = 3.0
HIT_EXPONENT = 1.0  # Zipf exponent of a song's appeal within its artist
FAVOURITE_ARTISTS = 6
CHOICE_SHARPNESS = 0.4  # a day's songs are chosen with probability ∝ affinity ** this


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and shape of the seeded synthetic play logs."""

    n_users: int = setting(2000, "Number of listeners.")
    n_items: int = setting(3000, "Number of songs.")
    n_artists: int = setting(300, "Artists; songs per artist are log-normal.")
    n_genres: int = setting(12, "Genres; each listener likes a few.")
    songs_per_artist_sigma: float = setting(
        1.0, "Log-normal spread of the songs per artist (0: every artist the same size).")
    max_artist_share: float = setting(
        0.02, "No artist holds more than this share of the songs (or one song, if more).")
    artist_popularity_sigma: float = setting(
        2.5, "Log-normal spread of artist popularity: how unequal listeners per artist are.")
    genre_concentration: float = setting(
        0.15, "Dirichlet concentration of a listener's genre mixture (small: few genres).")
    library_start: float = setting(20.0, "Mean songs a listener knows on the first day.")
    discoveries_per_day: float = setting(0.25, "Mean new songs a listener finds per day.")
    same_artist_share: float = setting(
        0.4, "Share of discoveries that are songs of the listener's favourite artists.")
    active_day_share: float = setting(
        0.12, "Mean share of days on which a listener plays anything.")
    songs_per_active_day: float = setting(3.5, "Mean distinct songs of a listening day.")
    plays_per_song_day: float = setting(1.6, "Mean plays of a song on a day it is played.")
    affinity_sigma: float = setting(
        2.5, "Log-normal spread of a listener's affinity for the songs they know: how much "
        "more a favourite song is played.")
    start_date: str = setting("2024-01-01", "First day (UTC) with plays, ISO date.")
    seed: int = setting(42, "RNG seed; same seed, same data.")

    def validate(self) -> None:
        if self.n_users < 1 or self.n_items < 2 or self.n_artists < 1 or self.n_genres < 1:
            raise ValueError(f"synthetic sizes must be positive: {asdict(self)}")
        if self.n_artists > self.n_items:
            raise ValueError("n_artists cannot exceed n_items")
        if not 0 < self.max_artist_share <= 1:
            raise ValueError("max_artist_share must be in (0, 1]")
        if not 0 < self.active_day_share <= 1:
            raise ValueError("active_day_share must be in (0, 1]")
        if not 0 <= self.same_artist_share <= 1:
            raise ValueError("same_artist_share must be in [0, 1]")
        for name in ("songs_per_active_day", "plays_per_song_day"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        dt.date.fromisoformat(self.start_date)

    def day_number(self, day: str) -> int:
        """Days since start_date (negative before it)."""
        return (dt.date.fromisoformat(day) - dt.date.fromisoformat(self.start_date)).days


@dataclass(frozen=True)
class Catalogue:
    item_artist: np.ndarray  # artist of each song; an artist's songs are contiguous
    artist_genre: np.ndarray
    artist_first: np.ndarray  # first song of each artist
    artist_size: np.ndarray  # songs of each artist
    song_cdf: np.ndarray  # cumulative appeal of the songs, artist by artist (one global CDF)
    genre_artists: list[np.ndarray]  # artists of each genre
    genre_cdf: list[np.ndarray]  # popularity CDF of the artists within each genre
    artist_popularity: np.ndarray

    @property
    def item_genre(self) -> np.ndarray:
        return self.artist_genre[self.item_artist]


def item_id(i) -> str:
    return f"song-{int(i):07d}"


def user_ids(first: int, n: int) -> np.ndarray:
    return np.array([f"user-{u:07d}" for u in range(first, first + n)], dtype=object)


@functools.lru_cache(maxsize=2)
def item_ids(n_items: int) -> np.ndarray:
    return np.array([item_id(i) for i in range(n_items)], dtype=object)


def artist_id(a) -> str:
    return f"artist-{int(a):05d}"


def artist_name(a) -> str:
    return f"Artist {int(a):05d}"


def artist_sizes(rng, n_items: int, n_artists: int, sigma: float, max_share: float) -> np.ndarray:
    """Songs per artist: log-normal shares of the catalogue, at least one song each, none above
    max_share of the songs (the excess goes to the others in proportion), summing to n_items."""
    cap = max(1, int(np.floor(max_share * n_items)))
    if cap * n_artists < n_items:
        raise ValueError(f"{n_artists} artists of at most {cap} songs cannot hold {n_items}")
    weights = rng.lognormal(0.0, sigma, n_artists)
    sizes = np.ones(n_artists, dtype=np.int64)
    left = n_items - n_artists
    while left > 0:
        room = cap - sizes
        w = np.where(room > 0, weights, 0.0)
        want = np.floor(left * w / w.sum()).astype(np.int64)
        want[np.argmax(w)] += left - want.sum() if want.sum() == 0 else 0
        add = np.minimum(want, room)
        sizes += add
        left -= int(add.sum())
    return sizes


@functools.lru_cache(maxsize=4)
def song_catalogue(spec: SyntheticSpec) -> Catalogue:
    """The catalogue is small (songs × a few numbers) and built identically on every worker."""
    rng = np.random.default_rng([spec.seed, 0xCA7A])
    sizes = artist_sizes(rng, spec.n_items, spec.n_artists, spec.songs_per_artist_sigma,
                         spec.max_artist_share)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    item_artist = np.repeat(np.arange(spec.n_artists), sizes)
    track = np.arange(spec.n_items) - first[item_artist]  # 0 = the artist's biggest hit
    appeal = 1.0 / (1.0 + track) ** HIT_EXPONENT
    appeal /= np.bincount(item_artist, appeal)[item_artist]  # each artist's songs sum to 1
    artist_genre = rng.integers(0, spec.n_genres, spec.n_artists)
    popularity = rng.lognormal(0.0, spec.artist_popularity_sigma, spec.n_artists)
    genre_artists, genre_cdf = [], []
    for g in range(spec.n_genres):
        members = np.flatnonzero(artist_genre == g)
        genre_artists.append(members)
        c = np.cumsum(popularity[members])
        genre_cdf.append(c / c[-1] if members.size else c)
    return Catalogue(item_artist, artist_genre, first, sizes, np.cumsum(appeal), genre_artists,
                     genre_cdf, popularity)


def catalogue_frame(spec: SyntheticSpec) -> pd.DataFrame:
    """item_id, name, artist_id, artist_name for every song (the catalogue table)."""
    cat = song_catalogue(spec)
    idx = np.arange(spec.n_items)
    track = idx - cat.artist_first[cat.item_artist]
    return pd.DataFrame({
        "item_id": item_ids(spec.n_items),
        "name": [f"{artist_name(a)} - Track {w + 1:02d}" for a, w in zip(cat.item_artist, track)],
        "artist_id": [artist_id(a) for a in cat.item_artist],
        "artist_name": [artist_name(a) for a in cat.item_artist],
    })


def _songs_of(rng, cat: Catalogue, artists: np.ndarray) -> np.ndarray:
    """One song of each given artist, by appeal (the artist's songs are contiguous)."""
    lo = cat.artist_first[artists]
    hi = lo + cat.artist_size[artists]
    base = np.where(lo > 0, cat.song_cdf[lo - 1], 0.0)
    target = base + rng.random(artists.size) * (cat.song_cdf[hi - 1] - base)
    return np.clip(np.searchsorted(cat.song_cdf, target, side="right"), lo, hi - 1)


def _artists_by_taste(rng, cat: Catalogue, taste: np.ndarray, users: np.ndarray) -> np.ndarray:
    """An artist for each entry of `users`: a genre from the user's taste, then an artist of
    that genre by popularity."""
    cum = np.cumsum(taste[users], axis=1)
    genres = np.minimum((cum < rng.random((users.size, 1)) * cum[:, -1:]).sum(axis=1),
                        taste.shape[1] - 1)
    out = np.empty(users.size, dtype=np.int64)
    for g in np.unique(genres):
        at = np.flatnonzero(genres == g)
        members, cdf = cat.genre_artists[g], cat.genre_cdf[g]
        pos = np.searchsorted(cdf, rng.random(at.size), side="right")
        out[at] = members[np.minimum(pos, members.size - 1)]
    return out


@dataclass
class Listeners:
    """The listeners of one chunk and their libraries (entries of user, song, affinity, day
    found; a song a listener found twice keeps its first entry)."""

    first_user: int
    taste: np.ndarray  # users × genres
    favourites: np.ndarray  # users × FAVOURITE_ARTISTS
    active: np.ndarray  # probability of listening on a day
    songs_a_day: np.ndarray  # mean distinct songs of a listening day
    discover: np.ndarray  # mean discoveries a day
    user: np.ndarray
    song: np.ndarray
    affinity: np.ndarray
    found: np.ndarray
    known: set = field(default_factory=set)  # user * n_items + song of every entry

    @property
    def n(self) -> int:
        return self.taste.shape[0]

    @functools.cached_property
    def ids(self) -> np.ndarray:
        return user_ids(self.first_user, self.n)

    def add(self, user, song, affinity, day: int, n_items: int) -> None:
        keep = []
        for i, key in enumerate((user * n_items + song).tolist()):
            if key not in self.known:
                self.known.add(key)
                keep.append(i)
        keep = np.asarray(keep, dtype=np.int64)
        self.user = np.concatenate([self.user, user[keep]])
        self.song = np.concatenate([self.song, song[keep]])
        self.affinity = np.concatenate([self.affinity, affinity[keep]])
        self.found = np.concatenate([self.found, np.full(keep.size, day, dtype=np.int64)])


def chunk_users(spec: SyntheticSpec, chunk: int) -> tuple[int, int]:
    first = chunk * USERS_PER_CHUNK
    return first, min(spec.n_users, first + USERS_PER_CHUNK) - first


def new_songs(rng, spec: SyntheticSpec, cat: Catalogue, who: Listeners,
              counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, song, affinity) of counts[u] songs found by each listener u."""
    users = np.repeat(np.arange(who.n), counts)
    favourite = rng.random(users.size) < spec.same_artist_share
    artists = np.empty(users.size, dtype=np.int64)
    pick = rng.integers(0, FAVOURITE_ARTISTS, users.size)
    artists[favourite] = who.favourites[users[favourite], pick[favourite]]
    artists[~favourite] = _artists_by_taste(rng, cat, who.taste, users[~favourite])
    songs = _songs_of(rng, cat, artists)
    affinity = rng.lognormal(0.0, spec.affinity_sigma, users.size)
    return users, songs, affinity


def listeners(spec: SyntheticSpec, cat: Catalogue, chunk: int) -> Listeners:
    """The chunk's listeners as they are on the first day (day 0)."""
    rng = np.random.default_rng([spec.seed, 0x115, chunk])
    first, n = chunk_users(spec, chunk)
    taste = rng.dirichlet(np.full(spec.n_genres, spec.genre_concentration), n)
    present = np.array([a.size > 0 for a in cat.genre_artists], dtype=float)
    taste = taste * present
    taste /= np.where(taste.sum(axis=1, keepdims=True) > 0, taste.sum(axis=1, keepdims=True), 1)
    empty = taste.sum(axis=1) == 0
    taste[empty] = present / present.sum()
    favourites = _artists_by_taste(rng, cat, taste, np.repeat(np.arange(n), FAVOURITE_ARTISTS))
    active = np.minimum(spec.active_day_share * rng.lognormal(-0.245, 0.7, n), 1.0)
    who = Listeners(
        first, taste, favourites.reshape(n, FAVOURITE_ARTISTS), active,
        spec.songs_per_active_day * rng.lognormal(-0.125, 0.5, n),
        spec.discoveries_per_day * rng.lognormal(-0.18, 0.6, n),
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    start = rng.poisson(spec.library_start * rng.lognormal(-0.125, 0.5, n))
    who.add(*new_songs(rng, spec, cat, who, np.maximum(start, 1)), day=-1, n_items=spec.n_items)
    return who


def discover(spec: SyntheticSpec, cat: Catalogue, who: Listeners, chunk: int, day: int) -> None:
    """The songs the chunk's listeners find on day `day` join their libraries."""
    rng = np.random.default_rng([spec.seed, 0xD15C, day, chunk])
    counts = rng.poisson(who.discover)
    if counts.any():
        who.add(*new_songs(rng, spec, cat, who, counts), day=day, n_items=spec.n_items)


def plays_of_day(spec: SyntheticSpec, who: Listeners, chunk: int, day: int) -> pd.DataFrame:
    """The play rows of one day: listeners who listen play some of their library's songs,
    chosen by affinity without repeats (Gumbel top-k), a few plays each."""
    rng = np.random.default_rng([spec.seed, 0x91A7, day, chunk])
    listening = rng.random(who.n) < who.active
    wanted = np.where(listening, 1 + rng.poisson(np.maximum(who.songs_a_day - 1, 0)), 0)
    entries = np.flatnonzero(listening[who.user] & (who.found <= day))
    boost = np.where(day - who.found[entries] < NOVELTY_DAYS, NOVELTY_BOOST, 1.0)
    key = CHOICE_SHARPNESS * np.log(who.affinity[entries] * boost) + rng.gumbel(
        size=entries.size)
    owner = who.user[entries]
    order = np.lexsort((-key, owner))
    entries, owner = entries[order], owner[order]
    starts = np.searchsorted(owner, owner, side="left")
    chosen = entries[(np.arange(entries.size) - starts) < wanted[owner]]
    users, songs = who.user[chosen], who.song[chosen]
    # A favourite song is played more times on a day, as well as on more days.
    plays = 1 + rng.poisson((spec.plays_per_song_day - 1) * np.sqrt(who.affinity[chosen]))
    start_s = int(dt.datetime.fromisoformat(spec.start_date).replace(tzinfo=dt.UTC).timestamp())
    secs = start_s + day * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, chosen.size)
    return pd.DataFrame({
        "user_id": who.ids[users],
        "item_id": item_ids(spec.n_items)[songs],
        "plays": plays.astype(np.int64),
        "ts": pd.to_datetime(secs, unit="s"),
    })


def generate(spec: SyntheticSpec, chunk: int, first_day: int, last_day: int) -> pd.DataFrame:
    """Every play row of one chunk of listeners on days first_day..last_day (numbers since
    start_date; days before it have no plays). The libraries are grown from day 0, so any
    range gives the same rows for its days as any other range that covers them."""
    cat = song_catalogue(spec)
    who = listeners(spec, cat, chunk)
    frames = []
    for day in range(0, last_day + 1):
        discover(spec, cat, who, chunk, day)
        if day >= first_day:
            frames.append(plays_of_day(spec, who, chunk, day))
    if not frames:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str),
                             "plays": pd.Series(dtype=np.int64),
                             "ts": pd.Series(dtype="datetime64[ns]")})
    return pd.concat(frames, ignore_index=True)


def n_chunks(spec: SyntheticSpec) -> int:
    return -(-spec.n_users // USERS_PER_CHUNK)


def synthetic_play_logs(spark, spec: SyntheticSpec, first: str, last: str):
    """A Spark DataFrame of the synthetic plays (user_id, item_id, plays, ts) of the days
    first..last (ISO dates), deterministic: the same rows whatever the tasks."""
    spec.validate()
    lo, hi = max(spec.day_number(first), 0), spec.day_number(last)
    schema = "user_id string, item_id string, plays long, ts timestamp"
    if hi < lo:
        return spark.createDataFrame([], schema)
    chunks = n_chunks(spec)
    # Tasks: every chunk, its days cut into blocks when there are fewer chunks than twice the
    # parallelism (each block grows the libraries from day 0 again: cheap next to the plays).
    parallel = 2 * int(spark.conf.get("spark.sql.shuffle.partitions", "8"))
    blocks = max(1, min(hi - lo + 1, -(-parallel // chunks)))
    edges = np.linspace(lo, hi + 1, blocks + 1).astype(int)
    tasks = [(c, int(a), int(b) - 1) for c in range(chunks) for a, b in zip(edges, edges[1:])
             if b > a]

    def gen(batches):
        for batch in batches:
            for c, a, b in zip(batch["chunk"], batch["first"], batch["last"]):
                yield generate(spec, int(c), int(a), int(b))

    plan = spark.createDataFrame(pd.DataFrame(tasks, columns=["chunk", "first", "last"]))
    return plan.repartition(min(len(tasks), parallel)).mapInPandas(gen, schema)

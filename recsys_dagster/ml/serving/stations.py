"""Artist radio: the talk's third product (Christopher Johnson, "Music Recommendations at Scale
with Spark", Spotify, 2014), a station of songs that sound like a seed artist.

A station draws on the seed artist and the artists closest to it (the similar-artists score,
als.artist_model, weighted by the square root of each artist's plays), as many as fill it.
Their songs are ranked by affinity to the
station's direction, the seed artist's unit vector (for a personalised station, blended with
the listener's unit vector), and chosen best first while

- no song comes twice and no artist has more than `max_per_artist` songs (the seed artist
  `seed_artist_max`), nor more than half the station;
- after every choice p, at least floor(less_played_share * p) of the songs chosen are
  less-played ones (below the catalogue's median plays), as long as candidates have them: a
  station is not only the hits.

Then the chosen songs are put in the order they play (`flow`): the seed artist's songs spread
evenly through the station (the first opens it) instead of leading it, the others by affinity
but never an artist twice in a row while another is left. Where items are artists (Last.fm),
every artist is one "song": a station is a sequence of artists, the seed first. Pure NumPy,
no Spark: one station is a few matrix-vector products, and the CLI builds personalised
stations from the served tables alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import setting
from ..als.artist_model import artist_vectors


@dataclass(frozen=True)
class RadioParams:
    """Artist radio stations (artist_radio) and personalised ones (cli radio)."""

    n_seed_artists: int = setting(
        1000, "Stations made: one per most-listened artist (most distinct listeners); 0 = one "
        "for every artist.")
    length: int = setting(50, "Songs per station.")
    max_per_artist: int = setting(5, "Songs of one artist per station (not the seed artist).")
    seed_artist_max: int = setting(10, "Songs of the seed artist per station.")
    candidate_artists: int = setting(
        0, "Artists a station draws on: the seed artist and the most similar others; 0 = as "
        "many as it takes to fill the station (each artist counted for the songs it may "
        "give: max_per_artist, the seed seed_artist_max), so the station stays close to its "
        "seed.")
    less_played_share: float = setting(
        0.2, "At least this share of a station's songs are less-played ones (below the "
        "median plays), while the candidates have them; 0 = by affinity alone.")
    user_weight: float = setting(
        0.5, "Personalised stations: the weight of the listener's direction against the seed "
        "artist's (0 = the artist's station without the songs the listener played).")

    @property
    def seed_cap(self) -> int:
        """Songs of the seed artist: seed_artist_max, and never more than half the station
        (rounded up), so that no artist need play twice in a row."""
        return min(self.seed_artist_max, (self.length + 1) // 2)

    @property
    def artist_cap(self) -> int:
        """Songs of any other artist: max_per_artist, and never more than half the station."""
        return min(self.max_per_artist, (self.length + 1) // 2)


def unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.zeros_like(v)


@dataclass(frozen=True)
class RadioCatalogue:
    """The songs a station can play, as arrays in one order: `song_ids` (the model's item
    idx), their factor vectors, their artist (a code into the artist arrays), plays and
    whether they are less played; and every artist's vector (als.artist_model)."""

    song_ids: np.ndarray
    song_vecs: np.ndarray
    song_artist: np.ndarray
    plays: np.ndarray
    less_played: np.ndarray
    artist_vecs: np.ndarray
    by_artist: np.ndarray  # song positions grouped by artist
    starts: np.ndarray  # artist a's songs are by_artist[starts[a]:starts[a + 1]]

    @classmethod
    def build(cls, song_ids, song_vecs, song_artist, plays, n_artists: int,
              artist_vecs: np.ndarray | None = None) -> RadioCatalogue:
        song_ids = np.asarray(song_ids, dtype=np.int64)
        song_artist = np.asarray(song_artist, dtype=np.int64)
        plays = np.asarray(plays, dtype=np.float64)
        song_vecs = np.asarray(song_vecs, dtype=np.float32)
        if song_vecs.ndim != 2:  # no songs
            song_vecs = np.zeros((song_ids.size, 0), dtype=np.float32)
        if artist_vecs is None:
            artist_vecs = artist_vectors(song_vecs, song_artist, plays, n_artists)
        median = float(np.median(plays)) if plays.size else 0.0
        order = np.argsort(song_artist, kind="stable")
        starts = np.searchsorted(song_artist[order], np.arange(n_artists + 1))
        return cls(song_ids, song_vecs, song_artist, plays, plays < median,
                   np.asarray(artist_vecs, dtype=np.float32), order, starts)

    @property
    def n_artists(self) -> int:
        return self.artist_vecs.shape[0]

    @cached_property
    def artist_vecs64(self) -> np.ndarray:
        """The artist vectors in float64 (every station scores all of them)."""
        return self.artist_vecs.astype(np.float64)

    @cached_property
    def artist_has_vector(self) -> np.ndarray:
        return np.any(self.artist_vecs != 0, axis=1)

    @cached_property
    def artist_weight(self) -> np.ndarray:
        """The square root of each artist's plays (of its songs in the catalogue)."""
        return np.sqrt(np.bincount(self.song_artist, weights=self.plays,
                                   minlength=self.n_artists))

    def songs_of(self, artists: np.ndarray) -> np.ndarray:
        if len(artists) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self.by_artist[self.starts[a]:self.starts[a + 1]]
                               for a in artists])

    def direction(self, seed: int, user_vec: np.ndarray | None = None,
                  user_weight: float = 0.0) -> np.ndarray:
        """The station's direction: the seed artist's unit vector, or its blend with a
        listener's unit vector."""
        seed_dir = unit(self.artist_vecs[seed].astype(np.float64))
        if user_vec is None:
            return seed_dir
        return unit((1 - user_weight) * seed_dir
                    + user_weight * unit(np.asarray(user_vec, dtype=np.float64)))


def candidate_artists(cat: RadioCatalogue, seed: int, params: RadioParams,
                      allowed: np.ndarray | None = None) -> np.ndarray:
    """The seed and the artists closest to it, best first by affinity weighted by popularity
    (seed direction . artist vector, times the square root of the artist's plays: among
    artists as close, the ones more people play); params.candidate_artists of them, or (0) as
    many as fill params.length songs at the per-artist caps, counting only the `allowed`
    songs (a mask over the catalogue; default all). Artists without a vector are never
    candidates."""
    seed_dir = unit(cat.artist_vecs[seed].astype(np.float64))
    if not seed_dir.any():
        return np.zeros(0, dtype=np.int64)
    scores = np.maximum(cat.artist_vecs64 @ seed_dir, 0.0) * cat.artist_weight
    scores[~cat.artist_has_vector] = -np.inf
    scores[seed] = np.inf
    if params.candidate_artists > 0:
        return _finite(best_first(scores, params.candidate_artists), scores)
    if allowed is None:
        all_sizes = np.diff(cat.starts)
    else:
        all_sizes = np.bincount(cat.song_artist[allowed], minlength=cat.n_artists)
    m = max(1, 2 * params.length)  # the best m artists usually fill it: else 4 times as many, ...
    while True:
        order = _finite(best_first(scores, m), scores)
        caps = np.where(order == seed, params.seed_cap, params.artist_cap)
        filled = np.cumsum(np.minimum(all_sizes[order], caps))
        if m >= scores.size or (filled.size and filled[-1] >= params.length):
            break
        m *= 4
    enough = np.searchsorted(filled, params.length) + 1
    return order[:enough]


def best_first(scores: np.ndarray, m: int) -> np.ndarray:
    """The positions of the m highest scores, highest first, ties by position: the first m of
    a stable sort of -scores (all of it when m >= its size), without sorting the rest."""
    n = scores.size
    if m >= n:
        return np.lexsort((np.arange(n), -scores))
    kth = np.partition(scores, n - m)[n - m]  # the m-th highest
    top = np.flatnonzero(scores >= kth)
    return top[np.lexsort((top, -scores[top]))][:m]


def _finite(order: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Without the artists that have no vector (scored -inf); the seed (+inf) stays."""
    return order[scores[order] > -np.inf]


def fill(artist: np.ndarray, less: np.ndarray, seed: int, params: RadioParams) -> np.ndarray:
    """Positions (into candidates sorted best first) of the station's songs, in order: the
    module's rules. An artist that is full stays full, so each pointer only moves forward."""
    n = artist.size
    counts: dict[int, int] = {}
    used = np.zeros(n, dtype=bool)
    pool = np.flatnonzero(less)
    taken: list[int] = []
    n_less = ptr_any = ptr_less = 0

    def admissible(i: int) -> bool:
        cap = params.seed_cap if artist[i] == seed else params.artist_cap
        return not used[i] and counts.get(int(artist[i]), 0) < cap

    while len(taken) < params.length:
        pick = -1
        if n_less < int(params.less_played_share * (len(taken) + 1) + 1e-9):
            while ptr_less < pool.size and not admissible(pool[ptr_less]):
                ptr_less += 1
            if ptr_less < pool.size:
                pick = int(pool[ptr_less])
        if pick < 0:
            while ptr_any < n and not admissible(ptr_any):
                ptr_any += 1
            if ptr_any == n:
                break
            pick = ptr_any
        used[pick] = True
        counts[int(artist[pick])] = counts.get(int(artist[pick]), 0) + 1
        n_less += bool(less[pick])
        taken.append(pick)
    return np.asarray(taken, dtype=np.int64)


def flow(artist: np.ndarray, seed: int) -> np.ndarray:
    """The order a station plays its songs in (given best first, `artist` of each): the seed
    artist's songs at evenly spread positions, the first of them first; the others in their
    order, but never an artist twice in a row while another one is left to play."""
    n = artist.size
    own = np.flatnonzero(artist == seed)
    others = [int(i) for i in np.flatnonzero(artist != seed)]
    k = np.arange(own.size)
    # floor(k n / own) keeps two apart while n >= 2 own; ceil(k n / own) still does when own
    # is half a station of odd length (the most the caps allow).
    at = k * n // max(own.size, 1) if n >= 2 * own.size else -(-k * n // max(own.size, 1))
    slots = set(at.tolist())
    order, mine, previous = [], iter(own.tolist()), None
    for position in range(n):
        if position in slots:
            pick = next(mine)
        else:
            at = next((k for k, o in enumerate(others) if artist[o] != previous), 0)
            pick = others.pop(at)
        order.append(pick)
        previous = artist[pick]
    return np.asarray(order, dtype=np.int64)


def station(cat: RadioCatalogue, seed: int, params: RadioParams,
            user_vec: np.ndarray | None = None, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """(song positions in the catalogue, scores) of seed's station, best first. With
    `user_vec`, the listener's personalised station; `exclude`: song ids never played."""
    allowed = None
    if exclude is not None and len(exclude):
        allowed = ~np.isin(cat.song_ids, np.asarray(exclude, dtype=np.int64))
    songs = cat.songs_of(candidate_artists(cat, seed, params, allowed))
    if allowed is not None:
        songs = songs[allowed[songs]]
    if songs.size == 0:
        return songs, np.zeros(0, dtype=np.float32)
    direction = cat.direction(seed, user_vec, params.user_weight).astype(np.float32)
    scores = cat.song_vecs[songs] @ direction
    order = np.lexsort((cat.song_ids[songs], -scores))
    songs, scores = songs[order], scores[order]
    picked = fill(cat.song_artist[songs], cat.less_played[songs], seed, params)
    songs, scores = songs[picked], scores[picked]
    order = flow(cat.song_artist[songs], seed)
    return songs[order], scores[order]


def seed_artists(listeners: np.ndarray, n: int) -> np.ndarray:
    """The n artists with most listeners (ties: the smaller code), 0 = all with a listener."""
    order = np.lexsort((np.arange(listeners.size), -np.asarray(listeners, dtype=np.float64)))
    order = order[np.asarray(listeners)[order] > 0]
    return order if n <= 0 else order[:n]


def stations(cat: RadioCatalogue, seeds: np.ndarray, params: RadioParams
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrays (seed artist, position 1.., song position in the catalogue, score) of every
    seed's station."""
    parts = []
    for seed in seeds:
        songs, scores = station(cat, int(seed), params)
        parts.append((np.full(songs.size, seed, dtype=np.int64),
                      np.arange(1, songs.size + 1, dtype=np.int64), songs, scores))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    return tuple(np.concatenate(column) for column in zip(*parts))

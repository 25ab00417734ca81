"""What `cli run` prints after a run, read from the warehouse without Spark: where each table
is, the evaluation, and a few of each product by name. Each part reads the columns it needs and
only the rows it prints (pyarrow filters), so the summary's memory does not grow with the play
log: the first listeners' lists, not every list; one streaming sum of plays per item; the
names of the items shown, not the catalogue.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..tables import TableStore
from .catalogue import newest_catalogue, plays_per_item

ITEMS_ARE_ARTISTS = "; items are artists here, so a station is a sequence of artists"


def summary(store: TableStore, show_users: int) -> str:
    """Every part, in the order printed."""
    return "\n".join([show_outputs(store), show_evaluation(store), show_artist_evaluation(store),
                      show_users_lists(store, show_users),
                      show_similar_artists(store, n_artists=3, per_artist=5),
                      show_one_station(store, per_station=10)])


def show_outputs(store: TableStore) -> str:
    """Where each asset's current table is, in the graph's order (from the definitions)."""
    from ..definitions import defs

    lines = [f"\noutputs under {store.base_dir}:"]
    for key in defs.resolve_asset_graph().toposorted_asset_keys:
        name = key.to_user_string()
        days = store.partitions(name)
        if days:
            lines.append(f"  {name:24s} {store.table_dir(name)}/<day>/current ({len(days)} "
                         f"days, {days[0]}..{days[-1]})")
        elif store.exists(name):
            lines.append(f"  {name:24s} {os.path.join(store.table_dir(name), 'current')}")
    return "\n".join(lines)


def show_evaluation(store: TableStore) -> str:
    """The test split's metrics per model, and the intervals of the gated ones."""
    metrics = store.read_pandas("evaluation_metrics", frame="metrics")
    overall = metrics[(metrics.segment == "all") & ~metrics.model.str.contains("-")]
    lines = ["\nevaluation (test split):",
             overall.pivot(index="metric", columns="model", values="value").to_string(
                 float_format=lambda v: f"{v:.4f}")]
    lines += [f"  {r.model} {r.metric}@{r.k}: {r.value:.4f} "
              f"(95% CI {r.ci_low:.4f}..{r.ci_high:.4f})"
              for r in metrics[metrics.ci_low.notna()].itertuples()]
    return "\n".join(lines)


def show_artist_evaluation(store: TableStore) -> str:
    """The held-out numbers of similar artists and artist radio."""
    table = (store.read_pandas("artist_evaluation", frame="metrics")
             if store.exists("artist_evaluation") else None)
    if table is None or table.empty:
        return "similar artists and radio: not evaluated (the source names no artist)"
    heads = {"new_artist_recall": "similar artists (test split: listeners' new artists named "
             "by an artist's list):",
             "radio": "artist radio (test split: share of a station's songs its seed artist's "
             "listeners played; diversity and popularity per station):"}
    lines = []
    for head, part in (("new_artist_recall", table[table.metric == "new_artist_recall"]),
                       ("radio", table[table.metric != "new_artist_recall"])):
        lines.append(heads[head])
        lines += [f"  {r.model} {r.metric}@{r.k}: {r.value:.4f} "
                  f"(95% CI {r.ci_low:.4f}..{r.ci_high:.4f})" for r in part.itertuples()]
    return "\n".join(lines)


def distinct(path: str, column: str) -> list:
    """The distinct values of one column of a Parquet table, sorted (that column only)."""
    values = pc.unique(pq.read_table(path, columns=[column]).column(column))
    return values.take(pc.array_sort_indices(values)).to_pylist()


def show_users_lists(store: TableStore, show_users: int) -> str:
    """The first users' recommendations, by name (by id, boxed as the seed's example printed
    them, when the catalogue names none of the items)."""
    everyone = distinct(store.current_path("user_recommendations"), "user_id")
    users = everyone[:show_users]
    recs = store.read_pandas("user_recommendations",
                             filters=[("user_id", "in", users)] if users else None)
    names = newest_catalogue(store, recs.item_id.unique(), ("name",))
    lines = [f"\nrecommendations for {len(users)} of {len(everyone)} users:"]
    if names.empty:  # ids only, as the seed's example printed them
        return "\n".join([*lines, show_recommendations(recs, per_user=5)])
    recs = recs.merge(names, on="item_id", how="left")
    for user in users:
        rows = recs[recs.user_id == user].sort_values("rank").head(5)
        items = ", ".join(f"{lab} ({s:.2f})"
                          for lab, s in zip(rows["name"].fillna(rows.item_id), rows.score))
        lines.append(f"  {user}: {items}")
    return "\n".join(lines)


def most_played_artists(store: TableStore) -> pd.Series:
    """artist_id -> its songs' plays over every stored day, most played first."""
    plays = plays_per_item(store).rename("plays").rename_axis("item_id").reset_index()
    artists = newest_catalogue(store, columns=("artist_id",)).dropna(subset=["artist_id"])
    return (plays.merge(artists, on="item_id").groupby("artist_id").plays.sum()
            .sort_values(ascending=False, kind="stable"))


def show_similar_artists(store: TableStore, n_artists: int, per_artist: int) -> str:
    """The similar artists of the most played artists, by name."""
    path = store.current_path("similar_artists")
    listed = set(distinct(path, "artist_id")) if path else set()
    if not listed:
        return "\nsimilar artists: none (the source names no artist for its items)"
    top = [a for a in most_played_artists(store).index if a in listed][:n_artists]
    sims = store.read_pandas("similar_artists", filters=[("artist_id", "in", top)])
    lines = [f"\nsimilar artists of the {len(top)} most played of {len(listed)} artists:"]
    for artist in top:
        rows = sims[sims.artist_id == artist].sort_values("rank").head(per_artist)
        named = ", ".join(f"{n} ({s:.2f})" for n, s in
                          zip(rows.similar_artist_name.fillna(rows.similar_artist_id),
                              rows.score))
        label = rows.artist_name.iloc[0] if rows.artist_name.notna().iloc[0] else artist
        lines.append(f"  {label}: {named}")
    return "\n".join(lines)


def show_one_station(store: TableStore, per_station: int) -> str:
    """The first songs of the station of the most listened artist."""
    path = store.current_path("artist_radio")
    if path is None:
        return "\nartist radio: none"
    seeds = distinct(os.path.join(path, "stations"), "seed_artist_id")
    if not seeds:
        return "\nartist radio: none (the source names no artist for its items)"
    from .station_lookup import format_station

    listeners = store.read_pandas("artist_radio", frame="artists",
                                  columns=["artist_id", "listeners"]).set_index("artist_id")
    seed = listeners.listeners.reindex(seeds).idxmax()
    rows = store.read_pandas("artist_radio", frame="stations",
                             filters=[("seed_artist_id", "=", seed)]).sort_values("position")
    label = rows.seed_artist_name.iloc[0] if rows.seed_artist_name.notna().iloc[0] else seed
    shown = rows.head(per_station).assign(name=lambda d: d.name.fillna(d.item_id),
                                          artist_name=lambda d: d.artist_name.fillna(d.artist_id))
    note = ITEMS_ARE_ARTISTS if store.manifest("artist_radio")["params"].get(
        "items_are_artists") else ""
    return ("\n" + format_station(shown, f"radio station of {label}, the most listened artist, "
            f"first {len(shown)} of {len(rows)} songs{note}")
            + f"\n  (python -m recsys_dagster.cli radio --artist {label!r} [--user ID] for a "
            "listener's own)")


def show_recommendations(recs: pd.DataFrame, per_user: int) -> str:
    """user_id and its [{item_id, score}, ...] list, boxed as Spark's DataFrame.show() prints
    MLlib's recommendForAllUsers (the seed's example), users in id order."""
    rows = []
    for user, group in sorted(recs.groupby("user_id"), key=lambda g: _natural(g[0])):
        best = group.sort_values("rank").head(per_user)
        rows.append((str(user), "[" + ", ".join(
            f"{{{item}, {np.float32(score)!s}}}" for item, score in zip(best.item_id, best.score))
            + "]"))
    header = ("user_id", "recommendations")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in (0, 1)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"
    lines = [rule, "|" + "|".join(h.ljust(w) for h, w in zip(header, widths)) + "|", rule]
    lines += ["|" + "|".join(c.ljust(w) for c, w in zip(r, widths)) + "|" for r in rows]
    return "\n".join([*lines, rule])


def _natural(value: str):
    """Numeric ids in numeric order, others after them in text order."""
    return (0, int(value), "") if str(value).isdigit() else (1, 0, str(value))
